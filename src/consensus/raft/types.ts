// Types of the pure Raft core: log entries, persisted state, the wire messages and the Ready
// batch. Messages are plain objects (the driver encodes them); ids are opaque strings (peer ids).
// Every limit the core enforces is named in RAFT_DEFAULTS and can be overridden per node.

import type { LeaseConfig } from './lease.ts';

export type NodeId = string;

/** `''` means "nobody" (no vote cast, no leader known). */
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Application bytes; for `confChange` the encoding of a ConfChange (see confchange.ts). */
  readonly data: Uint8Array;
}

export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** Membership: voters count for quorum and elections; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

/** One server at a time. `addVoter` on an existing learner promotes it. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** What the driver loads from its store on restart (all of it was durable). */
export interface PersistedState {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A confirmed linearizable read: serve `ctx` once the state machine applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly ctx: string;
}

interface Base {
  readonly term: number;
  readonly from: NodeId;
  readonly to: NodeId;
}

export interface VoteMessage extends Base {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set by a leader transfer (TimeoutNow): bypasses the CheckQuorum leader lease. */
  readonly transfer: boolean;
}
export interface VoteResponse extends Base {
  readonly type: 'voteResp';
  readonly preVote: boolean;
  readonly reject: boolean;
}
export interface AppendMessage extends Base {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}
export interface AppendResponse extends Base {
  readonly type: 'appendResp';
  /** Accepted: the follower's last index matching the leader. Rejected: the probed prevIndex. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject: the follower's guess of the highest matching (index, term) for fast backtracking. */
  readonly hintIndex: number;
  readonly hintTerm: number;
}
export interface HeartbeatMessage extends Base {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** ReadIndex round being confirmed (0 when none). */
  readonly readSeq: number;
}
export interface HeartbeatResponse extends Base {
  readonly type: 'heartbeatResp';
  readonly readSeq: number;
}
export interface SnapshotChunkMessage extends Base {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly chunk: Uint8Array;
}
export interface SnapshotChunkResponse extends Base {
  readonly type: 'snapshotResp';
  readonly snapIndex: number;
  /** The next offset the follower expects. */
  readonly nextOffset: number;
  /** The chunk was out of order: resend from `nextOffset` (go-back-N on loss or reordering). */
  readonly reject: boolean;
}
export interface TimeoutNowMessage extends Base {
  readonly type: 'timeoutNow';
}
export interface ReadIndexMessage extends Base {
  readonly type: 'readIndex';
  readonly ctx: string;
}
export interface ReadIndexResponse extends Base {
  readonly type: 'readIndexResp';
  readonly ctx: string;
  readonly index: number;
}

export type Message =
  | VoteMessage
  | VoteResponse
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | SnapshotChunkMessage
  | SnapshotChunkResponse
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponse;

export type MessageType = Message['type'];

/**
 * One batch of work for the driver, processed in this order:
 * 1. persist `snapshot` (discarding every persisted entry), `hardState`, then `entries`
 *    (which replace any persisted entries from `entries[0].index` on), and make them durable;
 * 2. send `messages`; 3. install `snapshot` in the state machine, then apply `committedEntries`;
 * 4. serve `readStates` once applied >= index; 5. call `advance(ready)`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/** Randomness is injected so runs replay from a seed: returns an integer in [0, n). */
export interface RaftRandom {
  nextInt(n: number): number;
}

export interface RaftLimits {
  /** Max AppendEntries messages in flight per follower in replicate state. */
  readonly maxInflightMsgs: number;
  /** Max bytes of entries in flight per follower (0 = unlimited). */
  readonly maxInflightBytes: number;
  /** Max entries in one AppendEntries message. */
  readonly maxEntriesPerMsg: number;
  /** Max bytes of entry data in one AppendEntries message (at least one entry is always sent). */
  readonly maxBytesPerMsg: number;
  /** Bytes of snapshot data per InstallSnapshot chunk. */
  readonly snapshotChunkBytes: number;
  /** Max bytes of committed entries handed out in one Ready (at least one entry). */
  readonly maxCommittedBytesPerReady: number;
  /** Max uncommitted entries the leader accepts before dropping proposals. */
  readonly maxUncommittedEntries: number;
  /** Max ReadIndex requests queued on a leader waiting for its first commit of the term or a quorum. */
  readonly maxPendingReads: number;
  /** Max bytes of one proposal. */
  readonly maxProposalBytes: number;
}

export const RAFT_DEFAULTS: RaftLimits = {
  maxInflightMsgs: 256,
  maxInflightBytes: 0,
  maxEntriesPerMsg: 1024,
  maxBytesPerMsg: 1024 * 1024,
  snapshotChunkBytes: 64 * 1024,
  maxCommittedBytesPerReady: 4 * 1024 * 1024,
  maxUncommittedEntries: 65536,
  maxPendingReads: 4096,
  maxProposalBytes: 1024 * 1024,
};

export interface RaftConfig {
  readonly id: NodeId;
  readonly random: RaftRandom;
  /** Ticks without hearing from a leader before campaigning (randomized in [n, 2n)). */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats; must be < electionTicks. */
  readonly heartbeatTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Durable state to start from (restart or bootstrap); empty when absent (a fresh joiner). */
  readonly storage?: PersistedState;
  /** Index the state machine has already applied (>= snapshot index); defaults to the snapshot index. */
  readonly applied?: number;
  readonly limits?: Partial<RaftLimits>;
  /**
   * Serve ReadIndex requests from the leader's lease (needs CheckQuorum; see lease.ts for the
   * clock-drift bound it rests on). Absent: every read is confirmed by a heartbeat round.
   */
  readonly lease?: LeaseConfig;
}
