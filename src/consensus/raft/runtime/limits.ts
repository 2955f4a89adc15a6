// Every time and size limit of the Raft runtime, defined once, with the relations between
// them checked here at load (a broken relation is a bug, so it throws at import).
import { DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS, invariant, type RaftLimits } from '../index.ts';
import { MAX_WAIT_MS } from '../../engine.ts';
import { RETRY_SESSION_TTL_MS } from '../../../statemachine/command.ts';
import { MAX_PENDING_BYTES } from '../../../net/ico-channel.ts';
import { MAX_ENVELOPE_MESSAGE_BYTES } from './wire.ts';

/** One Raft tick of real time (the core counts elections and heartbeats in ticks). */
export const DEFAULT_TICK_MS = 50;
export const DEFAULT_SNAPSHOT_EVERY = 10_000;
/** A command with no answer or no apply in this time is sent again (same session key). */
export const ATTEMPT_TIMEOUT_MS = 1_500;
/** Forwarded proposal batches awaiting the leader's answer before new commands wait to batch. */
export const MAX_FORWARDS_IN_FLIGHT = 2;
/** Longest a command waits to join a forwarded batch (also unsticks a lost answer). */
export const FORWARD_GATHER_MAX_MS = 5;
/** A refused or unsendable proposal is asked again after this many ticks (a leader is being elected). */
export const REPROPOSE_TICKS = 2;
/**
 * A command or read waits for a leader through at most this many of the longest election
 * timeouts (2 × electionTicks × tickMs each); then it fails UNAVAILABLE ("no leader"), so a
 * member cut off from the cluster answers rather than holding every caller to its deadline.
 */
export const LEADERLESS_ELECTIONS = 3;
/** ReadIndex rounds in flight at once; reads arriving meanwhile share the next round. */
export const MAX_READ_ROUNDS = 2;
/** Applied entries remembered so a late answer still finds its result (outputs can be large). */
export const APPLIED_MEMORY = 4096;
/**
 * A leader sending a snapshot postpones its next one (which would restart the transfer from
 * its first chunk, and a large state that keeps taking writes would never be installed) for
 * at most this many snapshot intervals of entries: the log it keeps meanwhile stays bounded.
 */
export const SNAPSHOT_DEFER_INTERVALS = 4;
/** Readies handled in one run of the loop before it yields to other work. */
export const MAX_READIES_PER_RUN = 10_000;

/**
 * Raft limits sized so each message fits one 1 MiB ICO frame as base64 (a Ready's messages to
 * a peer are packed into envelopes of MAX_ENVELOPE_MESSAGE_BYTES), and a whole window of them
 * fits the transport's send queue for the peer.
 */
export const RUNTIME_RAFT_LIMITS = {
  maxBytesPerMsg: 256 * 1024,
  snapshotChunkBytes: 128 * 1024,
  maxInflightMsgs: 64,
  // Bytes of entries (and of snapshot chunks) unacknowledged per follower: large values (64 KiB
  // each) would otherwise queue 16 MiB ahead of a follower's heartbeats on its one stream, and a
  // starved follower then hears nothing for seconds and campaigns. A window leaves at once (a
  // follower catching up, a snapshot's first chunks): as base64 it must fit the peer's send
  // queue (MAX_PENDING_BYTES), or its tail is refused and the follower sees a gap every time.
  maxInflightBytes: 2 * 1024 * 1024,
  maxEntriesPerMsg: 1024,
} as const satisfies Partial<RaftLimits>;

// A request without a key keeps its retry session while the runtime may still send it again.
invariant(RETRY_SESSION_TTL_MS > MAX_WAIT_MS, 'a retry session outlives every retry');
invariant(FORWARD_GATHER_MAX_MS < DEFAULT_TICK_MS, 'a forward gathers for less than a tick');
invariant(DEFAULT_HEARTBEAT_TICKS < DEFAULT_ELECTION_TICKS, 'heartbeats come more often than elections');
// An attempt outlives the longest randomized election timeout: a retry lands on the new leader.
invariant(ATTEMPT_TIMEOUT_MS > 2 * DEFAULT_ELECTION_TICKS * DEFAULT_TICK_MS, 'an attempt outlives an election');
// The largest append and snapshot chunk fit one envelope; a window of them, as base64 with
// room for the other traffic to that peer, fits its send queue.
const asBase64 = (n: number): number => Math.ceil((n * 4) / 3);
invariant(asBase64(RUNTIME_RAFT_LIMITS.maxBytesPerMsg) + RUNTIME_RAFT_LIMITS.maxEntriesPerMsg * 64 < MAX_ENVELOPE_MESSAGE_BYTES, 'an append fits one envelope');
invariant(asBase64(RUNTIME_RAFT_LIMITS.snapshotChunkBytes) + 64 * 1024 < MAX_ENVELOPE_MESSAGE_BYTES, 'a snapshot chunk fits one envelope');
invariant(asBase64(RUNTIME_RAFT_LIMITS.maxInflightBytes + RUNTIME_RAFT_LIMITS.maxBytesPerMsg) < MAX_PENDING_BYTES, 'a window of appends or chunks fits the send queue');
