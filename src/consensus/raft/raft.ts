// RaftNode: the pure Raft state machine (Raft paper + thesis: PreVote, CheckQuorum, ReadIndex,
// leader transfer, single-server membership with learners, chunked InstallSnapshot). It owns
// no clock, socket or disk: the driver calls tick()/step()/propose() and drains ready()/advance().
// Safety rests on the driver persisting Ready.hardState/entries before sending Ready.messages.
//
// Membership choice: one server at a time; a conf change takes effect on every node when its
// entry is COMMITTED (as in etcd's V1 changes), the leader accepts one only after it committed
// an entry of its own term and when no other change is pending (Ongaro's fix for the
// single-server bug). Learners get the log but never count for quorum nor campaign.
import {
  ConfChangeRejectedError,
  LeaderTransferError,
  ProposalDroppedError,
  invariant,
} from './errors.ts';
import { EMPTY_CONF, applyConfChange, confChangeProblem, decodeConfChange, encodeConfChange } from './confchange.ts';
import { LeaderLease } from './lease.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import {
  NONE,
  RAFT_DEFAULTS,
  type AppendMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type HeartbeatMessage,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftLimits,
  type RaftRandom,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotChunkMessage,
  type SoftState,
} from './types.ts';

/**
 * Ticks without a leader before campaigning, randomized in [n, 2n). With the runtime's 50 ms
 * tick that is 400-800 ms, so even a split vote (two candidates in one term, the classic tail
 * of a 3-node election after a leader dies) resolves well within 2 s.
 */
export const DEFAULT_ELECTION_TICKS = 8;
/** Ticks between leader heartbeats (must stay below the election ticks). */
export const DEFAULT_HEARTBEAT_TICKS = 2;
/**
 * Max snapshot bytes a follower buffers while receiving chunks: the state a cluster may hold
 * (a devnet with 500 MiB of state keeps working; the storage saves any size in bounded batches).
 */
export const MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024 * 1024;
/**
 * Heartbeat responses in a row, with snapshot chunks out and none acknowledged, after which the
 * leader takes the chunks for lost and sends again from the last acknowledged one. A busy
 * follower may take longer than one heartbeat for a window of chunks: resending on every
 * heartbeat buried it in duplicates.
 */
export const SNAPSHOT_STALL_HEARTBEATS = 4;

const EMPTY = new Uint8Array(0);

interface PendingRead {
  readonly ctx: string;
  readonly from: NodeId;
  readonly index: number;
  readonly seq: number;
}

interface SnapshotReceive {
  readonly index: number;
  readonly term: number;
  readonly total: number;
  /** Taken once at the announced size and filled in place (one copy of the snapshot, not two). */
  readonly data: Uint8Array;
  received: number;
}

interface Outstanding {
  readonly lastEntry: Entry | undefined;
  readonly snapshotIndex: number;
  readonly appliedTo: number;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly firstIndex: number;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  readonly progress: ReadonlyMap<NodeId, { readonly match: number; readonly next: number; readonly state: string; readonly learner: boolean }>;
}

export class RaftNode {
  readonly id: NodeId;
  readonly limits: RaftLimits;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private readonly random: RaftRandom;
  /** Lease-based reads (with CheckQuorum only); undefined: every read takes a ReadIndex round. */
  private readonly lease: LeaderLease | undefined;
  /**
   * With leases, a node that (re)starts ignores (pre)votes for its first election timeout, as if
   * it had just heard from a leader: before a crash it may have answered a heartbeat that a
   * leader's lease still counts on, and it forgot that.
   */
  private bootGuard: boolean;
  /** A leader transfer began in this term: the transferee campaigns past every follower's vote guard. */
  private transferStarted = false;

  private term: number;
  private vote: NodeId;
  private leader: NodeId = NONE;
  private role: Role = 'follower';
  readonly log: RaftLog;
  private conf: ConfState;
  /** Committed configurations by index, oldest first; the first is at or below the snapshot. */
  private confHistory: { index: number; conf: ConfState }[];
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = NONE;
  private pendingConfIndex = 0;
  /** Proposals appended since the last ready(): broadcast in one batch there. */
  private appendPending = false;

  private readSeq = 0;
  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  private waitingReads: { ctx: string; from: NodeId }[] = [];
  private snapReceive: SnapshotReceive | undefined;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;
  private outstanding: Outstanding | undefined;

  constructor(cfg: RaftConfig) {
    invariant(cfg.id !== NONE, 'raft: empty node id');
    this.id = cfg.id;
    this.random = cfg.random;
    this.electionTicks = cfg.electionTicks ?? DEFAULT_ELECTION_TICKS;
    this.heartbeatTicks = cfg.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS;
    invariant(this.heartbeatTicks > 0 && this.electionTicks > this.heartbeatTicks, 'raft: need 0 < heartbeatTicks < electionTicks');
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    invariant(cfg.lease === undefined || this.checkQuorum, 'raft: leader leases need CheckQuorum');
    this.lease = cfg.lease === undefined ? undefined : new LeaderLease(cfg.lease);
    this.bootGuard = this.lease !== undefined;
    this.limits = { ...RAFT_DEFAULTS, ...cfg.limits };
    invariant(this.limits.snapshotChunkBytes > 0 && this.limits.maxEntriesPerMsg > 0, 'raft: limits must be positive');

    const st = cfg.storage;
    const snapshot: Snapshot = st?.snapshot ?? { meta: { index: 0, term: 0, conf: EMPTY_CONF }, data: EMPTY };
    const hs = st?.hardState ?? { term: 0, vote: NONE, commit: 0 };
    const commit = Math.max(hs.commit, snapshot.meta.index);
    const applied = cfg.applied ?? snapshot.meta.index;
    this.log = new RaftLog(snapshot, st?.entries ?? [], commit, Math.max(applied, snapshot.meta.index));
    invariant(hs.term >= this.log.lastTerm(), 'raft: persisted term below the last log term');
    this.term = hs.term;
    this.vote = hs.vote;
    this.conf = snapshot.meta.conf;
    this.confHistory = [{ index: snapshot.meta.index, conf: this.conf }];
    for (let i = snapshot.meta.index + 1; i <= commit; i++) this.applyCommittedConf(i);
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoft = { leader: NONE, role: 'follower' };
    this.resetRandomizedElectionTimeout();
  }

  // ---- public API -------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Start an election now (tests, operator command); ignored when not a voter or leader. */
  campaign(): void {
    this.hup(false);
  }

  step(m: Message): void {
    invariant(m.to === this.id, () => `raft ${this.id}: message for ${m.to}`);
    invariant(m.from !== this.id, `raft ${this.id}: message from self`);
    if (m.term > this.term) {
      if (m.type === 'vote') {
        const inLease = this.checkQuorum && (this.leader !== NONE || this.bootGuard) && this.electionElapsed < this.electionTicks;
        // A follower that heard from a live leader recently ignores (pre)votes: this keeps a
        // partitioned node that returns from disrupting a healthy leader (thesis §4.2.3).
        if (!m.transfer && inLease) return;
      }
      if (m.type === 'vote' && m.preVote) {
        // A PreVote never changes our term.
      } else if (m.type === 'voteResp' && m.preVote && !m.reject) {
        // Granted PreVotes carry the future term; we move to it only when we win.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
        // A stale leader (or one cut off from us while we moved on): tell it our term so it
        // steps down; without this a node with a higher term that cannot win stays stuck.
        this.send({ type: 'appendResp', term: this.term, from: this.id, to: m.from, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'vote' && m.preVote) {
        this.send({ type: 'voteResp', term: this.term, from: this.id, to: m.from, preVote: true, reject: true });
      }
      return;
    }

    if (m.type === 'vote') {
      this.handleVote(m.from, m.term, m.preVote, m.lastIndex, m.lastTerm);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  /** Append `data` on the leader; returns its log index. Throws ProposalDroppedError otherwise. */
  propose(data: Uint8Array): number {
    return this.proposeBatch([data]);
  }

  /** Append several entries at once (one replication batch); returns the first index. */
  proposeBatch(datas: readonly Uint8Array[]): number {
    this.checkCanPropose(datas.length);
    for (const d of datas) {
      if (d.byteLength > this.limits.maxProposalBytes) throw new ProposalDroppedError('tooLarge', this.leader);
    }
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = datas.map((data, i) => ({ term: this.term, index: first + i, type: 'normal', data }));
    this.appendEntries(entries);
    return first;
  }

  proposeConfChange(cc: ConfChange): number {
    this.checkCanPropose(1);
    if (!this.committedEntryInCurrentTerm()) {
      throw new ConfChangeRejectedError('noCommitInTerm', 'leader has not committed an entry in its term yet');
    }
    if (this.pendingConfIndex > this.log.committed) {
      throw new ConfChangeRejectedError('pending', `change at ${this.pendingConfIndex} not committed yet`);
    }
    const problem = confChangeProblem(this.conf, cc);
    if (problem !== undefined) throw new ConfChangeRejectedError(problem.includes('last voter') ? 'lastVoter' : 'invalid', problem);
    const index = this.log.lastIndex() + 1;
    this.appendEntries([{ term: this.term, index, type: 'confChange', data: encodeConfChange(cc) }]);
    this.pendingConfIndex = index;
    return index;
  }

  /**
   * Request a linearizable read tagged `ctx`: a ReadState {index, ctx} appears in a later Ready
   * once a quorum confirmed this leadership. Dropped silently if leadership changes; retry then.
   */
  readIndex(ctx: string): void {
    if (this.role === 'leader') {
      this.handleReadRequest(ctx, this.id);
      return;
    }
    if (this.leader === NONE) throw new ProposalDroppedError('notLeader', NONE);
    this.send({ type: 'readIndex', term: this.term, from: this.id, to: this.leader, ctx });
  }

  /** Hand leadership to voter `to` (thesis §3.10); proposals are refused until it ends. */
  transferLeader(to: NodeId): void {
    if (this.role !== 'leader') throw new LeaderTransferError(`not leader (leader is '${this.leader}')`);
    if (to === this.id) return;
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isLearner) throw new LeaderTransferError(`${to} is not a voter`);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.transferStarted = true;
    // The transfer must end within one election timeout (tickHeartbeat aborts it).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  /** The application snapshotted its state at `index` (applied, durable): drop the log before it. */
  compact(index: number, data: Uint8Array): void {
    const conf = this.confAt(index);
    this.log.compact(index, data, conf);
    let keep = 0;
    while (keep + 1 < this.confHistory.length && (this.confHistory[keep + 1] as { index: number }).index <= index) keep++;
    this.confHistory = this.confHistory.slice(keep);
  }

  hasReady(): boolean {
    if (this.appendPending) return true;
    if (this.msgs.length > 0 || this.readStates.length > 0) return true;
    if (this.log.unstableSnapshot !== undefined || this.log.hasUnstableEntries() || this.log.hasNextCommitted()) return true;
    if (this.term !== this.prevHard.term || this.vote !== this.prevHard.vote || this.log.committed !== this.prevHard.commit) return true;
    return this.leader !== this.prevSoft.leader || this.role !== this.prevSoft.role;
  }

  /** The next batch of work, or null. Call advance(ready) before asking again. */
  ready(): Ready | null {
    invariant(this.outstanding === undefined, 'raft: ready() called before advance() of the previous Ready');
    if (this.appendPending) {
      this.appendPending = false;
      if (this.role === 'leader') this.bcastAppend();
    }
    if (!this.hasReady()) return null;
    const rd: {
      softState?: SoftState;
      hardState?: HardState;
      snapshot?: Snapshot;
      entries: Entry[];
      messages: Message[];
      committedEntries: Entry[];
      readStates: ReadState[];
    } = {
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: this.log.nextCommitted(this.limits.maxCommittedBytesPerReady),
      readStates: this.readStates,
    };
    if (this.leader !== this.prevSoft.leader || this.role !== this.prevSoft.role) {
      this.prevSoft = { leader: this.leader, role: this.role };
      rd.softState = this.prevSoft;
    }
    if (this.term !== this.prevHard.term || this.vote !== this.prevHard.vote || this.log.committed !== this.prevHard.commit) {
      this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
      rd.hardState = this.prevHard;
    }
    if (this.log.unstableSnapshot !== undefined) rd.snapshot = this.log.unstableSnapshot;
    this.msgs = [];
    this.readStates = [];
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    this.outstanding = {
      lastEntry: rd.entries[rd.entries.length - 1],
      snapshotIndex: rd.snapshot?.meta.index ?? 0,
      appliedTo: last === undefined ? this.log.applied : last.index,
    };
    return rd;
  }

  /** The driver persisted, sent and applied `ready`. */
  advance(ready: Ready): void {
    const o = this.outstanding;
    invariant(o !== undefined, 'raft: advance() without an outstanding Ready');
    this.outstanding = undefined;
    if (ready.snapshot !== undefined && this.log.unstableSnapshot?.meta.index === o.snapshotIndex) this.log.unstableSnapshot = undefined;
    if (o.lastEntry !== undefined) this.log.stableTo(o.lastEntry.index, o.lastEntry.term);
    // A snapshot restored after ready() resets applied beyond o.appliedTo; never go back.
    if (o.appliedTo > this.log.applied) this.log.appliedTo(o.appliedTo);
    if (this.role === 'leader') {
      // The leader counts itself towards quorum only for entries it has made durable.
      const self = this.progress.get(this.id);
      if (self !== undefined && self.maybeUpdate(this.log.stableIndex)) this.leaderMaybeCommit();
    }
  }

  /** Cheap accessors for hot paths (status() copies the progress map). */
  currentTerm(): number {
    return this.term;
  }

  currentRole(): Role {
    return this.role;
  }

  currentLeader(): NodeId {
    return this.leader;
  }

  config(): ConfState {
    return this.conf;
  }

  /** A leader with a follower in snapshot state (its transfer restarts if we compact again). */
  sendingSnapshot(): boolean {
    if (this.role !== 'leader') return false;
    for (const pr of this.progress.values()) if (pr.state === 'snapshot') return true;
    return false;
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, { match: number; next: number; state: string; learner: boolean }>();
    for (const [id, pr] of this.progress) progress.set(id, { match: pr.match, next: pr.next, state: pr.state, learner: pr.isLearner });
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      firstIndex: this.log.firstIndex(),
      conf: this.conf,
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  // ---- roles ------------------------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.transferStarted = false;
    this.lease?.clear();
    this.votes.clear();
    this.progress.clear();
    this.pendingReads = [];
    this.waitingReads = [];
    this.appendPending = false;
  }

  private becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'raft: leader -> preCandidate');
    // Neither the term nor the vote change: a PreVote round is free of side effects.
    this.role = 'preCandidate';
    this.votes.clear();
    this.leader = NONE;
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'raft: leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'raft: only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.rebuildProgress();
    // Any conf change in our uncommitted tail may still be pending.
    this.pendingConfIndex = this.log.lastIndex();
    // Commit an entry of our term: it commits the tail and enables ReadIndex (§5.4.2, §6.4).
    this.appendEntries([{ term: this.term, index: this.log.lastIndex() + 1, type: 'normal', data: EMPTY }]);
  }

  private rebuildProgress(): void {
    const next = this.log.lastIndex() + 1;
    const old = new Map(this.progress);
    this.progress.clear();
    const add = (id: NodeId, learner: boolean): void => {
      const existing = old.get(id);
      if (existing !== undefined) {
        existing.isLearner = learner;
        this.progress.set(id, existing);
        return;
      }
      const pr = new Progress(next, learner, this.limits.maxInflightMsgs, this.limits.maxInflightBytes);
      if (id === this.id) {
        pr.match = this.log.stableIndex;
        pr.becomeReplicate();
        pr.recentActive = true;
      }
      this.progress.set(id, pr);
    };
    for (const v of this.conf.voters) add(v, false);
    for (const l of this.conf.learners) add(l, true);
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTicks + this.random.nextInt(this.electionTicks);
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) this.bootGuard = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      // With a lease every heartbeat is a numbered round (its answers renew the lease).
      this.bcastHeartbeat(this.lease !== undefined ? this.heartbeatRound() : this.pendingReads.length > 0 ? this.readSeq : 0);
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.conf.voters) {
      if (v === this.id || this.progress.get(v)?.recentActive === true) active++;
    }
    return active >= quorum(this.conf.voters.length);
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.preVote && !transfer) this.campaignRound(true, false);
    else this.campaignRound(false, transfer);
  }

  private campaignRound(preVote: boolean, transfer: boolean): void {
    let voteTerm: number;
    if (preVote) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      if (preVote) this.campaignRound(false, false);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const v of this.conf.voters) {
      if (v === this.id) continue;
      this.send({ type: 'vote', term: voteTerm, from: this.id, to: v, preVote, lastIndex, lastTerm, transfer });
    }
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.conf.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = quorum(this.conf.voters.length);
    if (yes >= q) return 'won';
    if (no > this.conf.voters.length - q) return 'lost';
    return 'pending';
  }

  private handleVote(from: NodeId, term: number, preVote: boolean, lastIndex: number, lastTerm: number): void {
    const canVote =
      this.vote === from ||
      (this.vote === NONE && this.leader === NONE) ||
      (preVote && term > this.term);
    // Learners and non-members answer too: a just-promoted learner may not know it yet.
    if (canVote && this.log.isUpToDate(lastIndex, lastTerm)) {
      // Answer with the request's term so a PreVote candidate does not discard it as stale.
      this.send({ type: 'voteResp', term, from: this.id, to: from, preVote, reject: false });
      if (!preVote) {
        this.electionElapsed = 0;
        this.vote = from;
      }
    } else {
      this.send({ type: 'voteResp', term: this.term, from: this.id, to: from, preVote, reject: true });
    }
  }

  // ---- per-role message handling -----------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshotChunk(m);
        return;
      case 'timeoutNow':
        // Leader transfer: campaign at once, skipping PreVote and the leader lease.
        this.hup(true);
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, ctx: m.ctx });
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshotChunk(m);
        return;
      case 'voteResp': {
        // Only responses of the current round count (stale PreVote answers are ignored).
        if (m.preVote !== (this.role === 'preCandidate')) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaignRound(false, false);
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    if (m.type === 'readIndex') {
      this.handleReadRequest(m.ctx, m.from);
      return;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appendResp':
        pr.recentActive = true;
        if (m.reject) this.handleAppendReject(m.from, pr, m.index, m.hintIndex, m.hintTerm);
        else this.handleAppendAck(m.from, pr, m.index);
        return;
      case 'heartbeatResp':
        pr.recentActive = true;
        if (pr.state === 'probe') pr.probeSent = false;
        else if (pr.state === 'replicate' && pr.inflights.full()) {
          // Every in-flight append may have been lost: fall back to probing from match.
          pr.becomeProbe();
        } else if (pr.state === 'snapshot') {
          if (pr.snapSentChunks > pr.snapAckedChunks && ++pr.snapIdleHeartbeats >= SNAPSHOT_STALL_HEARTBEATS) {
            // Nothing acknowledged for several heartbeats: the chunks out were lost.
            pr.snapSentChunks = pr.snapAckedChunks;
            pr.snapIdleHeartbeats = 0;
            pr.snapResentFrom = -1;
          }
          this.sendSnapshotChunks(m.from, pr);
        }
        if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (m.readSeq > pr.readAck) {
          pr.readAck = m.readSeq;
          this.lease?.acked(m.from, m.readSeq);
          this.advanceReads();
        }
        return;
      case 'snapshotResp': {
        pr.recentActive = true;
        if (pr.state !== 'snapshot' || m.snapIndex !== pr.pendingSnapshot) return;
        const chunk = this.limits.snapshotChunkBytes;
        const acked = Math.floor(m.nextOffset / chunk);
        if (m.reject) {
          // The follower misses the chunk at nextOffset (one was lost, or it lost what it had).
          // Every chunk already in flight behind that gap is rejected with the same offset:
          // resend once per gap, not a window per rejection.
          if (acked === pr.snapResentFrom) return;
          pr.snapResentFrom = acked;
          pr.snapAckedChunks = acked;
          pr.snapSentChunks = acked;
          pr.snapIdleHeartbeats = 0;
        } else if (acked > pr.snapAckedChunks) {
          pr.snapAckedChunks = acked;
          pr.snapIdleHeartbeats = 0;
          pr.snapResentFrom = -1;
          if (pr.snapSentChunks < acked) pr.snapSentChunks = acked;
        }
        this.sendSnapshotChunks(m.from, pr);
        return;
      }
      default:
        return;
    }
  }

  private handleAppendReject(from: NodeId, pr: Progress, rejected: number, hintIndex: number, hintTerm: number): void {
    let nextProbe = hintIndex;
    // Skip every index whose term on our side is above the follower's term there: one probe
    // per term instead of one per entry (etcd's and the thesis' fast backtracking).
    if (hintTerm > 0) nextProbe = this.log.findConflictByTerm(hintIndex, hintTerm)[0];
    if (pr.maybeDecrTo(rejected, nextProbe)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      this.sendAppend(from);
    }
  }

  private handleAppendAck(from: NodeId, pr: Progress, index: number): void {
    const updated = pr.maybeUpdate(index);
    if (!updated && !(pr.match === index && pr.state === 'probe')) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeLE(index);
    // A commit advance broadcasts the new commit index to every follower; otherwise make sure
    // this one learns the current commit index without waiting for a heartbeat.
    if (!this.leaderMaybeCommit() && pr.sentCommit < this.log.committed) this.maybeSendAppend(from, true);
    if (this.role !== 'leader') return;
    while (this.maybeSendAppend(from, false)) {
      // Fill the in-flight window.
    }
    if (from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(from);
  }

  private handleAppend(m: AppendMessage): void {
    const reply = (index: number, reject: boolean, hintIndex: number, hintTerm: number): void =>
      this.send({ type: 'appendResp', term: this.term, from: this.id, to: m.from, index, reject, hintIndex, hintTerm });
    if (m.prevIndex < this.log.committed) {
      reply(this.log.committed, false, 0, 0);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNew !== undefined) {
      this.commitTo(Math.min(m.commit, lastNew));
      reply(lastNew, false, 0, 0);
      return;
    }
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    reply(m.prevIndex, true, hintIndex, hintTerm);
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader sends min(match, commit): our log matches its up to there.
    this.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', term: this.term, from: this.id, to: m.from, readSeq: m.readSeq });
  }

  private handleSnapshotChunk(m: SnapshotChunkMessage): void {
    const base = { term: this.term, from: this.id, to: m.from } as const;
    if (m.meta.index <= this.log.committed) {
      // Already have it (or more): no need for the rest of the chunks.
      this.snapReceive = undefined;
      this.send({ ...base, type: 'appendResp', index: this.log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    invariant(m.totalBytes <= MAX_SNAPSHOT_BYTES, () => `raft: snapshot of ${m.totalBytes} bytes over MAX_SNAPSHOT_BYTES`);
    let r = this.snapReceive;
    const same = r !== undefined && r.index === m.meta.index && r.term === m.meta.term;
    if (!same && m.offset === 0) {
      r = this.snapReceive = { index: m.meta.index, term: m.meta.term, total: m.totalBytes, data: new Uint8Array(m.totalBytes), received: 0 };
    }
    if (r === undefined || (!same && m.offset !== 0)) {
      this.send({ ...base, type: 'snapshotResp', snapIndex: m.meta.index, nextOffset: 0, reject: true });
      return;
    }
    invariant(m.totalBytes === r.total, 'raft: one snapshot announced with two sizes');
    if (m.offset !== r.received) {
      // Behind what we hold: a resend that crossed our acknowledgement, answered as one (a
      // rejection would make the leader go back). Ahead of it: a chunk was lost, ask for it.
      this.send({ ...base, type: 'snapshotResp', snapIndex: m.meta.index, nextOffset: r.received, reject: m.offset > r.received });
      return;
    }
    invariant(r.received + m.chunk.byteLength <= r.total, 'raft: snapshot chunks exceed the announced size');
    r.data.set(m.chunk, r.received);
    r.received += m.chunk.byteLength;
    if (r.received < r.total) {
      this.send({ ...base, type: 'snapshotResp', snapIndex: m.meta.index, nextOffset: r.received, reject: false });
      return;
    }
    this.snapReceive = undefined;
    const restored = this.restore({ meta: m.meta, data: r.data });
    const index = restored ? this.log.lastIndex() : this.log.committed;
    this.send({ ...base, type: 'appendResp', index, reject: false, hintIndex: 0, hintTerm: 0 });
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    invariant(this.role === 'follower', 'raft: restoring a snapshot while not a follower');
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // Our log already holds it: just fast-forward the commit index.
      this.commitTo(s.meta.index);
      return false;
    }
    // A joiner may not be in the snapshot's conf yet (its addLearner comes later in the log):
    // installing is still safe, as a non-voter never campaigns.
    this.log.restore(s);
    this.conf = s.meta.conf;
    this.confHistory = [{ index: s.meta.index, conf: this.conf }];
    return true;
  }

  // ---- replication ------------------------------------------------------------------------

  private checkCanPropose(count: number): void {
    if (this.role !== 'leader') throw new ProposalDroppedError('notLeader', this.leader);
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('transferInProgress', this.leader);
    if (!this.progress.has(this.id)) throw new ProposalDroppedError('removed', NONE);
    if (this.log.lastIndex() - this.log.committed + count > this.limits.maxUncommittedEntries) {
      throw new ProposalDroppedError('uncommittedLimit', this.leader);
    }
  }

  private appendEntries(entries: Entry[]): void {
    this.log.truncateAndAppend(entries);
    // Broadcast in ready(): every proposal made before it travels in one message.
    this.appendPending = true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderMaybeCommit(): boolean {
    let advanced = false;
    for (let guard = 0; this.role === 'leader' && guard < 1000; guard++) {
      const matches: number[] = [];
      for (const v of this.conf.voters) matches.push(this.progress.get(v)?.match ?? 0);
      if (matches.length === 0) break;
      matches.sort((a, b) => b - a);
      const idx = matches[quorum(matches.length) - 1] as number;
      // Only entries of the current term are committed by counting (§5.4.2).
      if (idx <= this.log.committed || this.log.term(idx) !== this.term) break;
      this.commitTo(idx);
      advanced = true;
    }
    if (advanced && this.role === 'leader') {
      this.releaseWaitingReads();
      this.bcastAppend();
    }
    return advanced;
  }

  private commitTo(index: number): void {
    const old = this.log.committed;
    if (!this.log.commitTo(index)) return;
    for (let i = old + 1; i <= index; i++) this.applyCommittedConf(i);
  }

  private applyCommittedConf(index: number): void {
    const e = this.log.entry(index);
    if (e === undefined || e.type !== 'confChange') return;
    const next = applyConfChange(this.conf, decodeConfChange(e.data));
    if (next === this.conf) return;
    this.conf = next;
    this.confHistory.push({ index, conf: next });
    if (this.role !== 'leader') return;
    if (!next.voters.includes(this.id)) {
      // Removed: let the others learn the commit, then step aside for a new election.
      this.bcastAppend();
      this.becomeFollower(this.term, NONE);
      return;
    }
    this.rebuildProgress();
    if (this.leadTransferee !== NONE && !next.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
  }

  private confAt(index: number): ConfState {
    let conf = (this.confHistory[0] as { conf: ConfState }).conf;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    return conf;
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(readSeq: number): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      if (commit > pr.sentCommit) pr.sentCommit = commit;
      this.send({ type: 'heartbeat', term: this.term, from: this.id, to: id, commit, readSeq });
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends one AppendEntries to `to` if flow control allows; returns whether it sent one. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.paused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      // The entries it needs were compacted: switch to InstallSnapshot.
      this.sendSnapshot(to, pr);
      return false;
    }
    const last = this.log.lastIndex();
    const entries = pr.next <= last ? this.log.slice(pr.next, last + 1, this.limits.maxEntriesPerMsg, this.limits.maxBytesPerMsg) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    this.send({ type: 'append', term: this.term, from: this.id, to, prevIndex, prevTerm, entries, commit: this.log.committed });
    // The follower takes min(commit, last index of this message).
    const effective = Math.min(this.log.committed, prevIndex + entries.length);
    if (effective > pr.sentCommit) pr.sentCommit = effective;
    pr.sentEntries(entries.length, prevIndex + entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    if (pr.state !== 'snapshot' || pr.pendingSnapshot !== this.log.snapIndex()) pr.becomeSnapshot(this.log.snapIndex());
    this.sendSnapshotChunks(to, pr);
  }

  /** Sends the chunks of the current window (at most maxInflightMsgs unacknowledged). */
  private sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot;
    if (snap.meta.index !== pr.pendingSnapshot) {
      // We compacted again meanwhile: start over with the newer snapshot.
      pr.becomeSnapshot(snap.meta.index);
    }
    const chunk = this.limits.snapshotChunkBytes;
    const total = snap.data.byteLength;
    const chunks = Math.max(1, Math.ceil(total / chunk));
    // The window is bounded in bytes too (maxInflightBytes), so a large snapshot does not queue
    // megabytes ahead of a follower's heartbeats.
    const window = this.limits.maxInflightBytes > 0 ? Math.max(1, Math.min(this.limits.maxInflightMsgs, Math.floor(this.limits.maxInflightBytes / chunk))) : this.limits.maxInflightMsgs;
    while (pr.snapSentChunks < chunks && pr.snapSentChunks - pr.snapAckedChunks < window) {
      const offset = pr.snapSentChunks * chunk;
      this.send({
        type: 'snapshot',
        term: this.term,
        from: this.id,
        to,
        meta: snap.meta,
        offset,
        totalBytes: total,
        chunk: snap.data.subarray(offset, Math.min(total, offset + chunk)),
      });
      pr.snapSentChunks++;
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', term: this.term, from: this.id, to });
  }

  // ---- ReadIndex ----------------------------------------------------------------------------

  private handleReadRequest(ctx: string, from: NodeId): void {
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may lag the true one until an entry of our term commits (§6.4).
      if (this.waitingReads.length >= this.limits.maxPendingReads) {
        if (from === this.id) throw new ProposalDroppedError('readQueueFull', this.leader);
        return;
      }
      this.waitingReads.push({ ctx, from });
      return;
    }
    if ((this.conf.voters.length === 1 && this.conf.voters[0] === this.id) || this.leaseHeld()) {
      this.respondRead(ctx, from, this.log.committed);
      return;
    }
    if (this.pendingReads.length >= this.limits.maxPendingReads) {
      if (from === this.id) throw new ProposalDroppedError('readQueueFull', this.leader);
      return;
    }
    const seq = this.heartbeatRound();
    this.pendingReads.push({ ctx, from, index: this.log.committed, seq });
    // A heartbeat round answered by a quorum proves we were still leader after the request.
    this.bcastHeartbeat(seq);
  }

  /** A new numbered heartbeat round (ReadIndex confirmation and lease renewal). */
  private heartbeatRound(): number {
    const seq = ++this.readSeq;
    this.lease?.sent(seq);
    return seq;
  }

  /**
   * Whether this leader may answer a read from its commit index alone: a quorum answered a
   * heartbeat sent within the lease, and no transfer let another voter campaign past the guard.
   */
  private leaseHeld(): boolean {
    if (this.lease === undefined || this.role !== 'leader' || this.transferStarted) return false;
    return this.lease.held(this.id, this.conf.voters, quorum(this.conf.voters.length));
  }

  private releaseWaitingReads(): void {
    if (this.waitingReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.waitingReads;
    this.waitingReads = [];
    for (const w of waiting) this.handleReadRequest(w.ctx, w.from);
  }

  private advanceReads(): void {
    if (this.pendingReads.length === 0) return;
    const acks: number[] = [];
    for (const v of this.conf.voters) acks.push(v === this.id ? Number.MAX_SAFE_INTEGER : (this.progress.get(v)?.readAck ?? 0));
    acks.sort((a, b) => b - a);
    const confirmed = acks[quorum(acks.length) - 1] as number;
    let n = 0;
    while (n < this.pendingReads.length && (this.pendingReads[n] as PendingRead).seq <= confirmed) n++;
    if (n === 0) return;
    const done = this.pendingReads.slice(0, n);
    this.pendingReads = this.pendingReads.slice(n);
    for (const r of done) this.respondRead(r.ctx, r.from, r.index);
  }

  private respondRead(ctx: string, from: NodeId, index: number): void {
    if (from === this.id) this.readStates.push({ index, ctx });
    else this.send({ type: 'readIndexResp', term: this.term, from: this.id, to: from, ctx, index });
  }
}

export function quorum(voters: number): number {
  return Math.floor(voters / 2) + 1;
}
