// Connects the pure Raft core to real time, libp2p and storage. For each Ready, in order:
// persist (one durable batch), send (one signed CONSENSUS envelope per destination), install a
// snapshot, apply committed entries to the replica, serve reads, advance. The driver also owns
// the client side: any member (voter or learner) accepts commands, forwards them to the
// leader, and resolves them when it applies the entry at the index and term the leader
// answered; a lost entry is retried with the same session key, so it executes at most once.
import { bootstrapState, decodeConfChange, ProposalDroppedError, RaftNode, type Entry, type Message, type NodeId, type PersistedState, type Ready, type RaftLimits } from '../consensus/raft/index.ts';
import { encodeCommand } from '../statemachine/index.ts';
import type { ApplyResult } from '../statemachine/types.ts';
import type { Json } from '../ico/types.ts';
import type { Receipt } from '../receipts/receipt.ts';
import { createLogger } from '../log/logger.ts';
import { decodeConsensusPayload, encodeConsensusPayload, MAX_MESSAGES_PER_ENVELOPE, MAX_PROPOSALS_PER_ENVELOPE, type ForwardedProposal, type ProposalAnswer } from './raft-wire.ts';
import type { RaftStorage } from './raft-storage.ts';
import type { Replica } from './replica.ts';
import type { HyperSyncPeer } from './types.ts';

export const DEFAULT_TICK_MS = 50;
// 8 ticks × 50 ms: a timeout randomized in [400, 800) ms, so even a split vote (two candidates in
// one term, the classic tail of a 3-node election after a leader dies) resolves well within 2 s.
export const DEFAULT_ELECTION_TICKS = 8;
export const DEFAULT_HEARTBEAT_TICKS = 2;
export const DEFAULT_SNAPSHOT_EVERY = 10_000;
/** Commands waiting for their entry at most (beyond it, new ones are refused: overloaded). */
export const MAX_PENDING_COMMANDS = 16_384;
/** A forwarded command with no answer or no apply in this time is retried (same session key). */
export const ATTEMPT_TIMEOUT_MS = 1_500;
/** Forwarded proposal batches awaiting the leader's answer before new commands wait to batch. */
export const MAX_FORWARDS_IN_FLIGHT = 2;
/** Longest a command waits to join a forwarded batch (also unsticks a lost answer). */
export const FORWARD_GATHER_MAX_MS = 5;
/** Reads waiting at most (beyond it, new ones are refused: overloaded). */
export const MAX_PENDING_READS = 16_384;
/** ReadIndex rounds in flight at once; reads arriving meanwhile share the next round. */
export const MAX_READ_ROUNDS = 2;
/** Applied entries remembered so a late-registered waiter still finds its result. */
const APPLIED_MEMORY = 4096;

/** Raft limits sized so one Ready's messages to a peer fit one 1 MiB ICO frame as base64. */
export const DRIVER_RAFT_LIMITS: Partial<RaftLimits> = {
  maxBytesPerMsg: 256 * 1024,
  snapshotChunkBytes: 128 * 1024,
  maxInflightMsgs: 64,
  maxEntriesPerMsg: 1024,
};

export class ClusterUnavailableError extends Error {
  readonly code = 'UNAVAILABLE';
  override name = 'ClusterUnavailableError';
}
export class DeadlineExceededError extends Error {
  readonly code = 'DEADLINE_EXCEEDED';
  override name = 'DeadlineExceededError';
}

export type RaftEvent =
  | { type: 'raft:role'; role: string; leader: string; term: number }
  | { type: 'raft:snapshot-installed'; index: number }
  | { type: 'raft:snapshot-taken'; index: number };

export interface CommandOutcome {
  result: ApplyResult;
  receipt: Promise<Receipt> | null;
  /** Raft index of the entry that carried the command. */
  index: number;
}

export interface RaftDriverOptions {
  peer: HyperSyncPeer;
  storage: RaftStorage;
  state: PersistedState;
  fresh: boolean;
  replica: Replica;
  /** Initial members when `fresh` (every initial member must be given the same lists). */
  voters: readonly string[];
  learners: readonly string[];
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotEvery?: number;
  random?: () => number;
}

interface Waiter {
  term: number;
  resolve: (o: CommandOutcome) => void;
  retry: () => void;
}

interface PendingCommand {
  prop: Omit<ForwardedProposal, 'id'>;
  resolve: (o: CommandOutcome) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
}

interface ReadRound {
  reads: PendingRead[];
  /** When the round was last asked (0: not asked yet, no leader known). */
  askedAt: number;
}

interface PendingRead {
  operator_id: string;
  inputs: Json;
  resolve: (r: ApplyResult) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  index: number;
  done: boolean;
}

export class RaftDriver {
  readonly id: NodeId;
  readonly #peer: HyperSyncPeer;
  readonly #storage: RaftStorage;
  readonly #replica: Replica;
  readonly #node: RaftNode;
  readonly #tickMs: number;
  readonly #snapshotEvery: number;
  readonly #log = createLogger('raft');
  #ticker: ReturnType<typeof setInterval> | undefined;
  #unsubscribe: (() => void) | undefined;
  #running = false;
  #scheduled = false;
  #stopped = false;
  #applied: number;
  #snapIndex: number;
  /** Last timestamp stamped on a command by this node as leader (keeps stamps monotonic). */
  #lastStamp = 0;

  // client side
  #nextId = 1;
  readonly #commands = new Map<number, PendingCommand>();
  /** Commands to propose locally (leader) or forward, flushed once per event-loop turn. */
  #outbox: number[] = [];
  #outboxScheduled = false;
  #forwardsInFlight = 0;
  #forwardTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #waiters = new Map<number, Waiter[]>();
  readonly #appliedTerms = new Map<number, { term: number; outcome: CommandOutcome | null }>();
  readonly #readRounds = new Map<string, ReadRound>();
  #unsentReads: PendingRead[] = [];
  #readFlushScheduled = false;
  #readCount = 0;
  #readSeq = 0;
  readonly #readyReads: PendingRead[] = [];
  readonly #stats = { proposed: 0, forwarded: 0, retries: 0, dropped: 0 };
  readonly #listeners = new Set<(e: RaftEvent) => void>();

  private constructor(opts: RaftDriverOptions, node: RaftNode, applied: number) {
    this.id = opts.peer.peerId;
    this.#peer = opts.peer;
    this.#storage = opts.storage;
    this.#replica = opts.replica;
    this.#node = node;
    this.#tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.#snapshotEvery = opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.#applied = applied;
    this.#snapIndex = applied;
  }

  static async start(opts: RaftDriverOptions): Promise<RaftDriver> {
    let state = opts.state;
    if (opts.fresh) {
      state = bootstrapState([...opts.voters].sort(), [...opts.learners].sort());
      await opts.storage.persist({ hardState: state.hardState, entries: state.entries });
    }
    let applied = 0;
    if (state.snapshot !== undefined) {
      opts.replica.load(state.snapshot.data);
      applied = state.snapshot.meta.index;
    }
    const rnd = opts.random ?? Math.random;
    const node = new RaftNode({
      id: opts.peer.peerId,
      random: { nextInt: (n: number) => Math.floor(rnd() * n) },
      electionTicks: opts.electionTicks ?? DEFAULT_ELECTION_TICKS,
      heartbeatTicks: opts.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS,
      preVote: true,
      checkQuorum: true,
      storage: state,
      applied,
      limits: DRIVER_RAFT_LIMITS,
    });
    const d = new RaftDriver(opts, node, applied);
    d.#unsubscribe = opts.peer.on('ico:in', (ev) => {
      if (ev.envelope.type === 'CONSENSUS') d.#onEnvelope(ev.envelope.sender, ev.envelope.payload);
    });
    d.#ticker = setInterval(() => {
      d.#node.tick();
      d.#expireReads();
      d.#schedule();
    }, d.#tickMs);
    d.#schedule();
    return d;
  }

  // ---- status -------------------------------------------------------------------------------

  status(): {
    id: string;
    role: string;
    leader: string;
    term: number;
    commit: number;
    applied: number;
    lastIndex: number;
    voters: string[];
    learners: string[];
    progress: Array<{ peerId: string; match: number; next: number; state: string; learner: boolean }>;
    stats: { proposed: number; forwarded: number; retries: number; dropped: number; pending: number };
  } {
    const s = this.#node.status();
    return {
      id: s.id,
      role: s.role,
      leader: s.leader,
      term: s.term,
      commit: s.commit,
      applied: this.#applied,
      lastIndex: s.lastIndex,
      voters: [...s.conf.voters],
      learners: [...s.conf.learners],
      progress: [...s.progress].map(([peerId, p]) => ({ peerId, match: p.match, next: p.next, state: p.state, learner: p.learner })),
      stats: { ...this.#stats, pending: this.#commands.size },
    };
  }

  get replica(): Replica {
    return this.#replica;
  }

  onEvent(l: (e: RaftEvent) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  #emit(e: RaftEvent): void {
    for (const l of this.#listeners) l(e);
  }

  // ---- client API ---------------------------------------------------------------------------

  /** Executes a command through the log; resolves once this replica applied it. */
  execute(operator_id: string, inputs: Json, session: { client: string; key: string }, timeoutMs: number): Promise<CommandOutcome> {
    if (this.#stopped) return Promise.reject(new ClusterUnavailableError('raft driver stopped'));
    if (this.#commands.size >= MAX_PENDING_COMMANDS) return Promise.reject(new ClusterUnavailableError(`${MAX_PENDING_COMMANDS} commands pending: overloaded, retry later`));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const cmd: PendingCommand = { prop: { operator_id, inputs, client: session.client, key: session.key }, resolve, reject, timer: undefined, done: false };
      this.#commands.set(id, cmd);
      cmd.timer = setTimeout(() => this.#finish(id, new DeadlineExceededError(`not applied within ${timeoutMs} ms (it may still apply; retry with the same idempotency key)`)), timeoutMs);
      this.#enqueue(id);
    });
  }

  /**
   * A linearizable read (ReadIndex): waits until this replica applied the confirmed index.
   * Reads that arrive together share one ReadIndex round (one heartbeat quorum), and at most
   * MAX_READ_ROUNDS rounds are in flight; later reads join the next round, as etcd does.
   */
  read(operator_id: string, inputs: Json, timeoutMs: number): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(new ClusterUnavailableError('raft driver stopped'));
    if (this.#readCount >= MAX_PENDING_READS) return Promise.reject(new ClusterUnavailableError(`${MAX_PENDING_READS} reads pending: overloaded, retry later`));
    return new Promise((resolve, reject) => {
      const r: PendingRead = { operator_id, inputs, resolve, reject, timer: undefined, index: -1, done: false };
      this.#readCount++;
      r.timer = setTimeout(() => this.#finishRead(r, new DeadlineExceededError(`read not confirmed within ${timeoutMs} ms`)), timeoutMs);
      this.#unsentReads.push(r);
      this.#scheduleReadFlush();
    });
  }

  #scheduleReadFlush(): void {
    if (this.#readFlushScheduled) return;
    this.#readFlushScheduled = true;
    setImmediate(() => {
      this.#readFlushScheduled = false;
      this.#flushReads();
    });
  }

  #flushReads(): void {
    if (this.#stopped || this.#readRounds.size >= MAX_READ_ROUNDS) return;
    const reads = this.#unsentReads.filter((r) => !r.done);
    this.#unsentReads = [];
    if (reads.length === 0) return;
    const ctx = `${this.id.slice(-8)}:${++this.#readSeq}`;
    const round: ReadRound = { reads, askedAt: 0 };
    this.#readRounds.set(ctx, round);
    this.#askRead(ctx, round);
  }

  #askRead(ctx: string, round: ReadRound): void {
    round.askedAt = Date.now();
    try {
      this.#node.readIndex(ctx);
      this.#schedule();
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      // No leader known yet: the tick asks again.
      round.askedAt = 0;
    }
  }

  #expireReads(): void {
    // Rounds dropped by a leadership change (or asked before a leader was known) are re-asked.
    const now = Date.now();
    for (const [ctx, round] of this.#readRounds) {
      if (round.reads.every((r) => r.done)) {
        this.#readRounds.delete(ctx);
        continue;
      }
      if (round.askedAt === 0 || now - round.askedAt > ATTEMPT_TIMEOUT_MS) this.#askRead(ctx, round);
    }
    this.#flushReads();
  }

  #finishRead(r: PendingRead, err: Error | null, result?: ApplyResult): void {
    if (r.done) return;
    r.done = true;
    this.#readCount--;
    clearTimeout(r.timer);
    if (err !== null) r.reject(err);
    else r.resolve(result as ApplyResult);
  }

  #finish(id: number, err: Error | null, outcome?: CommandOutcome): void {
    const c = this.#commands.get(id);
    if (c === undefined || c.done) return;
    c.done = true;
    this.#commands.delete(id);
    clearTimeout(c.timer);
    if (err !== null) c.reject(err);
    else c.resolve(outcome as CommandOutcome);
  }

  #enqueue(id: number): void {
    this.#outbox.push(id);
    if (this.#outboxScheduled) return;
    this.#outboxScheduled = true;
    setImmediate(() => {
      this.#outboxScheduled = false;
      this.#flushOutbox();
    });
  }

  #flushOutbox(): void {
    const leader = this.#node.currentLeader();
    // Forwarding: with MAX_FORWARDS_IN_FLIGHT batches unanswered, let commands gather into the
    // next, bigger batch (fewer envelopes per write); an answer or a short timer flushes it.
    if (leader !== this.id && leader !== '' && this.#forwardsInFlight >= MAX_FORWARDS_IN_FLIGHT) {
      if (this.#forwardTimer === undefined) {
        this.#forwardTimer = setTimeout(() => {
          this.#forwardTimer = undefined;
          this.#forwardsInFlight = 0;
          this.#flushOutbox();
        }, FORWARD_GATHER_MAX_MS);
        this.#forwardTimer.unref();
      }
      return;
    }
    // A retry may queue an id that is still waiting here: send each command once per batch.
    const ids = [...new Set(this.#outbox)].filter((id) => this.#commands.has(id));
    this.#outbox = [];
    if (ids.length === 0) return;
    if (leader === this.id) {
      const answers = this.#proposeLocal(ids.map((id) => ({ id, ...(this.#commands.get(id) as PendingCommand).prop })));
      for (const a of answers) {
        this.#onAnswer(a);
        this.#armRetry(a.id);
      }
      return;
    }
    if (leader === '') {
      // No leader yet: try again shortly (an election takes about one election timeout).
      setTimeout(() => {
        for (const id of ids) this.#enqueue(id);
      }, this.#tickMs * 2).unref();
      return;
    }
    for (let i = 0; i < ids.length; i += MAX_PROPOSALS_PER_ENVELOPE) {
      const props = ids.slice(i, i + MAX_PROPOSALS_PER_ENVELOPE).map((id) => ({ id, ...(this.#commands.get(id) as PendingCommand).prop }));
      this.#stats.forwarded += props.length;
      this.#forwardsInFlight++;
      // If the leader cannot be reached (it just died), ask again after a beat rather than
      // waiting out a whole attempt: by then a new leader is usually known.
      this.#sendPayload(leader, encodeConsensusPayload({ k: 'propose', props }), () => {
        this.#forwardAnswered();
        setTimeout(() => {
          for (const p of props) this.#enqueue(p.id);
        }, this.#tickMs * 2).unref();
      });
      for (const p of props) this.#armRetry(p.id);
    }
  }

  #forwardAnswered(): void {
    this.#forwardsInFlight = Math.max(0, this.#forwardsInFlight - 1);
    if (this.#forwardsInFlight < MAX_FORWARDS_IN_FLIGHT && this.#outbox.length > 0) {
      clearTimeout(this.#forwardTimer);
      this.#forwardTimer = undefined;
      this.#flushOutbox();
    }
  }

  /** If no apply arrives within an attempt, send the command again (same session key). */
  #armRetry(id: number): void {
    const c = this.#commands.get(id);
    if (c === undefined) return;
    setTimeout(() => {
      const again = this.#commands.get(id);
      if (again === undefined || again.done || again !== c) return;
      this.#stats.retries++;
      this.#enqueue(id);
    }, ATTEMPT_TIMEOUT_MS).unref();
  }

  /** Leader side: stamp and append commands; answers carry (index, term) or a refusal. */
  #proposeLocal(props: readonly ForwardedProposal[]): ProposalAnswer[] {
    const now = Date.now();
    this.#lastStamp = Math.max(this.#lastStamp, now);
    const datas = props.map((p) => encodeCommand({ operator_id: p.operator_id, inputs: p.inputs, timestamp: this.#lastStamp, session: { client: p.client, key: p.key } }));
    try {
      const first = this.#node.proposeBatch(datas);
      const term = this.#node.currentTerm();
      this.#stats.proposed += props.length;
      this.#schedule();
      return props.map((p, i) => ({ id: p.id, index: first + i, term }));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.#stats.dropped += props.length;
      const error = e.reason === 'notLeader' ? 'notLeader' : 'dropped';
      return props.map((p) => ({ id: p.id, error, leader: e.leaderHint }));
    }
  }

  #onAnswer(a: ProposalAnswer): void {
    const c = this.#commands.get(a.id);
    if (c === undefined) return;
    if ('error' in a) {
      // Refused: retry after a beat (a new leader is being elected, or the leader is busy).
      setTimeout(() => this.#enqueue(a.id), this.#tickMs).unref();
      return;
    }
    const seen = this.#appliedTerms.get(a.index);
    if (seen !== undefined) {
      if (seen.term === a.term && seen.outcome !== null) this.#finish(a.id, null, seen.outcome);
      else this.#enqueue(a.id);
      return;
    }
    if (a.index <= this.#applied) {
      // Applied long ago and forgotten (or compacted): the session table answers a retry.
      this.#enqueue(a.id);
      return;
    }
    let list = this.#waiters.get(a.index);
    if (list === undefined) this.#waiters.set(a.index, (list = []));
    list.push({ term: a.term, resolve: (o) => this.#finish(a.id, null, o), retry: () => this.#enqueue(a.id) });
  }

  // ---- inbound ------------------------------------------------------------------------------

  #onEnvelope(sender: string, payload: { [key: string]: Json }): void {
    if (this.#stopped) return;
    const p = decodeConsensusPayload(payload);
    if (p === null) {
      this.#log.warn({ sender }, 'malformed CONSENSUS payload dropped');
      return;
    }
    const conf = this.#node.config();
    const member = conf.voters.includes(sender) || conf.learners.includes(sender);
    if (!member) {
      this.#log.warn({ sender, kind: p.k }, 'CONSENSUS from a non-member dropped');
      return;
    }
    switch (p.k) {
      case 'raft':
        for (const m of p.msgs) {
          // The signed envelope's sender must be the message's author, and it must be for us.
          if (m.from !== sender || m.to !== this.id) continue;
          try {
            this.#node.step(m);
          } catch (e) {
            if (e instanceof ProposalDroppedError) continue;
            throw e;
          }
        }
        this.#schedule();
        return;
      case 'propose': {
        const answers = this.#node.currentLeader() === this.id ? this.#proposeLocal(p.props) : p.props.map((x) => ({ id: x.id, error: 'notLeader' as const, leader: this.#node.currentLeader() }));
        this.#sendPayload(sender, encodeConsensusPayload({ k: 'proposed', answers }));
        return;
      }
      case 'proposed':
        for (const a of p.answers) this.#onAnswer(a);
        this.#forwardAnswered();
        return;
    }
  }

  #sendPayload(to: string, payload: { [key: string]: Json }, onFail?: () => void): void {
    this.#peer.send(to, 'CONSENSUS', payload).catch((e: unknown) => {
      this.#log.debug({ to, err: (e as Error).message }, 'CONSENSUS send failed');
      onFail?.();
    });
  }

  // ---- the Ready loop -----------------------------------------------------------------------

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      for (let guard = 0; guard < 10_000 && !this.#stopped; guard++) {
        const rd = this.#node.ready();
        if (rd === null) break;
        await this.#handle(rd);
      }
    } catch (e) {
      // Storage failure or a broken invariant: this node cannot go on safely.
      this.#log.fatal({ err: (e as Error).message, stack: (e as Error).stack }, 'raft driver failed; stopping');
      this.#stopped = true;
      process.exitCode = 1;
      throw e;
    } finally {
      this.#running = false;
    }
    if (this.#node.hasReady()) this.#schedule();
  }

  async #handle(rd: Ready): Promise<void> {
    // A leader may send before its own write is durable (Raft thesis §10.2.1): it counts
    // itself towards a quorum only after advance(). Everyone else persists first.
    const early = this.#node.currentRole() === 'leader';
    if (early) this.#send(rd.messages);
    await this.#storage.persist(rd);
    if (!early) this.#send(rd.messages);
    if (rd.softState !== undefined) {
      this.#log.info({ role: rd.softState.role, leader: rd.softState.leader, term: this.#node.currentTerm() }, 'raft role');
      this.#emit({ type: 'raft:role', role: rd.softState.role, leader: rd.softState.leader, term: this.#node.currentTerm() });
      if (rd.softState.role === 'leader') this.#lastStamp = Math.max(this.#lastStamp, Date.now());
    }
    if (rd.snapshot !== undefined) {
      await this.#replica.restore(rd.snapshot.data);
      this.#applied = rd.snapshot.meta.index;
      this.#snapIndex = rd.snapshot.meta.index;
      this.#log.info({ index: rd.snapshot.meta.index }, 'snapshot installed from the leader');
      this.#emit({ type: 'raft:snapshot-installed', index: rd.snapshot.meta.index });
      // Waiters at or below the snapshot will never see their entry: retry (dedup answers).
      for (const [index, list] of this.#waiters) {
        if (index > this.#applied) continue;
        this.#waiters.delete(index);
        for (const w of list) w.retry();
      }
    }
    for (const e of rd.committedEntries) this.#apply(e);
    for (const rs of rd.readStates) {
      const round = this.#readRounds.get(rs.ctx);
      if (round === undefined) continue;
      this.#readRounds.delete(rs.ctx);
      for (const r of round.reads) {
        if (r.done) continue;
        r.index = rs.index;
        this.#readyReads.push(r);
      }
    }
    if (rd.readStates.length > 0) this.#scheduleReadFlush();
    this.#serveReads();
    this.#node.advance(rd);
    await this.#maybeSnapshot();
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<string, Message[]>();
    for (const m of messages) {
      let l = byPeer.get(m.to);
      if (l === undefined) byPeer.set(m.to, (l = []));
      l.push(m);
    }
    for (const [to, msgs] of byPeer) {
      for (let i = 0; i < msgs.length; i += MAX_MESSAGES_PER_ENVELOPE) this.#sendPayload(to, encodeConsensusPayload({ k: 'raft', msgs: msgs.slice(i, i + MAX_MESSAGES_PER_ENVELOPE) }));
    }
  }

  #apply(e: Entry): void {
    this.#applied = e.index;
    let outcome: CommandOutcome | null = null;
    if (e.type === 'confChange') {
      this.#log.info({ change: decodeConfChange(e.data), index: e.index }, 'membership change applied');
    } else if (e.data.length > 0) {
      const { result, receipt } = this.#replica.apply(e.data);
      outcome = { result, receipt, index: e.index };
    }
    this.#appliedTerms.set(e.index, { term: e.term, outcome });
    if (this.#appliedTerms.size > APPLIED_MEMORY) this.#appliedTerms.delete(this.#appliedTerms.keys().next().value as number);
    const list = this.#waiters.get(e.index);
    if (list === undefined) return;
    this.#waiters.delete(e.index);
    for (const w of list) {
      if (w.term === e.term && outcome !== null) w.resolve(outcome);
      else w.retry();
    }
  }

  #serveReads(): void {
    for (let i = 0; i < this.#readyReads.length; ) {
      const r = this.#readyReads[i] as PendingRead;
      if (r.done) {
        this.#readyReads.splice(i, 1);
        continue;
      }
      if (r.index <= this.#applied) {
        this.#readyReads.splice(i, 1);
        this.#finishRead(r, null, this.#replica.query(r.operator_id, r.inputs));
        continue;
      }
      i++;
    }
  }

  async #maybeSnapshot(): Promise<void> {
    if (this.#applied - this.#snapIndex < this.#snapshotEvery) return;
    const index = this.#applied;
    if (index > this.#node.log.stableIndex) return;
    await this.#replica.flush();
    this.#node.compact(index, this.#replica.snapshot());
    this.#snapIndex = index;
    await this.#storage.saveSnapshot(this.#node.log.snapshot);
    this.#log.info({ index }, 'snapshot taken, log compacted');
    this.#emit({ type: 'raft:snapshot-taken', index });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#ticker);
    clearTimeout(this.#forwardTimer);
    this.#unsubscribe?.();
    for (const id of [...this.#commands.keys()]) this.#finish(id, new ClusterUnavailableError('node stopping'));
    for (const round of this.#readRounds.values()) for (const r of round.reads) this.#finishRead(r, new ClusterUnavailableError('node stopping'));
    for (const r of this.#unsentReads) this.#finishRead(r, new ClusterUnavailableError('node stopping'));
    while (this.#running) await new Promise((r) => setTimeout(r, 5));
    await this.#storage.close();
  }
}
