// Connects the pure Raft core to time, a transport and storage, all injected (production: the
// libp2p adapter, system timers, LevelDB; the simulator: a faulty network, simulated time and
// a power-loss store). For each Ready, in order: persist (one batch, durable when safety needs
// it), send (one CONSENSUS payload per destination), install a snapshot, apply committed
// entries to the replica, serve reads, advance. Invariant: a follower never sends before its
// write is durable; a leader may (it counts itself only after advance, thesis §10.2.1).
import { bootstrapState, decodeConfChange, DEFAULT_CLOCK_RATE_BOUND, DEFAULT_ELECTION_TICKS, leaseDurationMs, LeaderTransferError, ProposalDroppedError, RaftNode, type ConfChange, type Entry, type Message, type NodeId, type PersistedState, type RaftLimits, type Ready } from '../index.ts';
import { InvalidCommandError, UnavailableError, type CommandOutcome, type Consensus, type EngineMember, type EngineStatus, type ReadOptions, type ReplicaPort, type SteppedSnapshot, type SubmitCommand, type SubmitOptions } from '../../engine.ts';
import { fixedCadence, logSendFailure, systemTimers, type Cancel, type EngineTransport, type Timers } from '../../ports.ts';
import type { Json, JsonObject } from '../../../ico/types.ts';
import { createLogger, type Logger } from '../../../log/logger.ts';
import { commandProblem } from '../../../statemachine/command.ts';
import type { ApplyResult } from '../../../statemachine/types.ts';
import { ClientCommands, RETRY_KEY_PREFIX, type CommandStats } from './commands.ts';
import { DEFAULT_SNAPSHOT_EVERY, DEFAULT_TICK_MS, LEADERLESS_ELECTIONS, MAX_READIES_PER_RUN, RUNTIME_RAFT_LIMITS, SNAPSHOT_DEFER_INTERVALS } from './limits.ts';
import { LinearizableReads } from './reads.ts';
import { RaftStorage } from './storage.ts';
import { SnapshotProgress } from './snapshot-progress.ts';
import type { Store } from '../../../store/types.ts';
import { decodeConsensusPayload, encodeConsensusPayload, packRaftMessages } from './wire.ts';

export type RaftEvent =
  | { type: 'raft:role'; role: string; leader: string; term: number }
  | { type: 'raft:snapshot-installed'; index: number; bytes: number }
  | { type: 'raft:snapshot-taken'; index: number; bytes: number }
  | { type: 'raft:fatal'; error: string };

export interface RaftRuntimeOptions<R extends ReplicaPort> {
  /** This member's id (its PeerId). */
  id: NodeId;
  transport: EngineTransport;
  /** Where the Raft log lives (the runtime owns it from here and closes it). */
  store: Store;
  /**
   * Default true. False writes the log without fsync while this member is a learner: a learner
   * never votes and never counts towards a commit, so it can fetch a suffix lost to a power cut
   * again. Once promoted to voter it syncs, starting with a barrier before any ack.
   */
  syncWhileLearner?: boolean;
  /**
   * The initial membership, written when the storage was fresh (every initial member must get
   * the same lists). Absent: a fresh member starts empty and learns it (a joiner).
   */
  bootstrap?: { voters: readonly NodeId[]; learners: readonly NodeId[] };
  replica: R;
  timers?: Timers;
  /** A number in [0, 1): election jitter and anonymous session keys (seeded in the simulator). */
  random?: () => number;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotEvery?: number;
  raftLimits?: Partial<RaftLimits>;
  /**
   * Default true: the leader answers linearizable reads from its lease (CheckQuorum plus the
   * clock-rate bound below) and falls back to a ReadIndex round when the lease lapsed. False:
   * every linearizable read takes a ReadIndex round.
   */
  leaseReads?: boolean;
  /**
   * The most any member's clock may run faster than another's (a ratio, default
   * DEFAULT_CLOCK_RATE_BOUND = 1.5). Leases are safe only while this holds.
   */
  clockRateBound?: number;
  /**
   * Storage failed or an invariant broke: the runtime has stopped and cannot go on safely.
   * Default: rethrow, so the process crashes loudly.
   */
  onFatal?: (e: Error) => void;
  /** Sees every committed entry as this replica applies it, in order (the simulator's checks). */
  onApplied?: (e: Entry) => void;
  logger?: Logger;
}

export interface RaftRuntimeStatus {
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
  stats: CommandStats;
}

export class RaftRuntime<R extends ReplicaPort = ReplicaPort> implements Consensus<R> {
  readonly kind = 'raft' as const;
  readonly id: NodeId;
  readonly replica: R;
  readonly #transport: EngineTransport;
  readonly #store: Store;
  readonly #storage: RaftStorage;
  readonly #node: RaftNode;
  readonly #timers: Timers;
  readonly #tickMs: number;
  readonly #snapshotEvery: number;
  readonly #onFatal: (e: Error) => void;
  readonly #commands: ClientCommands;
  readonly #reads: LinearizableReads;
  readonly #log: Logger;
  readonly #snapshotsSent: SnapshotProgress;
  readonly #snapshotsReceived: SnapshotProgress;
  readonly #onApplied: ((e: Entry) => void) | undefined;
  readonly #syncWhileLearner: boolean;
  readonly #listeners = new Set<(e: RaftEvent) => void>();
  /** Prefix of this run's anonymous session keys (one per start, then a counter). */
  readonly #anonPrefix: string;
  #anonSeq = 0;
  #cancelTick: Cancel | undefined;
  #unsubscribe: (() => void) | undefined;
  #running = false;
  #scheduled = false;
  #started = false;
  #stopped = false;
  #idle: Array<() => void> = [];
  #closing: Promise<void> | undefined;
  #applied: number;
  #snapIndex: number;
  /** The snapshot being written beside the Ready loop, and its index. */
  #snapJob: { index: number; job: SteppedSnapshot } | undefined;
  /** A finished snapshot waiting for the Ready loop to compact the log with it. */
  #snapReady: { index: number; data: Uint8Array } | undefined;

  private constructor(opts: RaftRuntimeOptions<R>, storage: RaftStorage, node: RaftNode, applied: number) {
    this.id = opts.id;
    this.replica = opts.replica;
    this.#transport = opts.transport;
    this.#store = opts.store;
    this.#storage = storage;
    this.#node = node;
    this.#timers = opts.timers ?? systemTimers;
    this.#tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.#snapshotEvery = opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.#onFatal =
      opts.onFatal ??
      ((e) => {
        throw e;
      });
    this.#log = opts.logger ?? createLogger('raft');
    this.#snapshotsSent = new SnapshotProgress(this.#log, 'sent');
    this.#snapshotsReceived = new SnapshotProgress(this.#log, 'received');
    this.#onApplied = opts.onApplied;
    this.#syncWhileLearner = opts.syncWhileLearner ?? true;
    this.#applied = applied;
    this.#snapIndex = applied;
    const rnd = opts.random ?? Math.random;
    this.#anonPrefix = `${RETRY_KEY_PREFIX}${Math.floor(rnd() * 2 ** 52).toString(36)}.`;
    const kick = (): void => this.#schedule();
    const appliedIndex = (): number => this.#applied;
    const leaderlessWaitMs = LEADERLESS_ELECTIONS * 2 * (opts.electionTicks ?? DEFAULT_ELECTION_TICKS) * this.#tickMs;
    this.#commands = new ClientCommands({ id: this.id, node, timers: this.#timers, tickMs: this.#tickMs, leaderlessWaitMs, send: (to, p, onFail) => this.#sendPayload(to, p, onFail), kick, applied: appliedIndex });
    this.#reads = new LinearizableReads({ id: this.id, node, timers: this.#timers, leaderlessWaitMs, kick, applied: appliedIndex, query: (op, inputs) => this.replica.query(op, inputs) });
  }

  /** Builds the runtime on opened storage (bootstrapping a fresh one); start() sets it going. */
  static async open<R extends ReplicaPort>(opts: RaftRuntimeOptions<R>): Promise<RaftRuntime<R>> {
    const opened = await RaftStorage.open(opts.store);
    const storage = opened.storage;
    let state: PersistedState = opened.state;
    if (opened.fresh && opts.bootstrap !== undefined) {
      state = bootstrapState([...opts.bootstrap.voters].sort(), [...opts.bootstrap.learners].sort());
      await storage.persist({ hardState: state.hardState, entries: state.entries });
    }
    let applied = 0;
    if (state.snapshot !== undefined) {
      await opts.replica.load(state.snapshot.data);
      applied = state.snapshot.meta.index;
    }
    const rnd = opts.random ?? Math.random;
    const timers = opts.timers ?? systemTimers;
    const electionTicks = opts.electionTicks ?? DEFAULT_ELECTION_TICKS;
    const lease =
      opts.leaseReads === false
        ? undefined
        : { now: () => (timers.monotonic !== undefined ? timers.monotonic() : timers.now()), durationMs: leaseDurationMs(electionTicks, opts.tickMs ?? DEFAULT_TICK_MS, opts.clockRateBound ?? DEFAULT_CLOCK_RATE_BOUND) };
    const node = new RaftNode({
      id: opts.id,
      random: { nextInt: (n: number) => Math.floor(rnd() * n) },
      ...(opts.electionTicks !== undefined ? { electionTicks: opts.electionTicks } : {}),
      ...(opts.heartbeatTicks !== undefined ? { heartbeatTicks: opts.heartbeatTicks } : {}),
      preVote: true,
      checkQuorum: true,
      ...(lease !== undefined ? { lease } : {}),
      storage: state,
      applied,
      limits: { ...RUNTIME_RAFT_LIMITS, ...opts.raftLimits },
    });
    return new RaftRuntime(opts, storage, node, applied);
  }

  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#unsubscribe = this.#transport.onMessage((from, payload) => this.#onPayload(from, payload));
    // Ticks keep a fixed cadence: elections would slow down on a busy machine otherwise.
    this.#cancelTick = fixedCadence(this.#timers, this.#tickMs, () => {
      if (this.#stopped) return;
      this.#node.tick();
      this.#reads.onTick();
      this.#schedule();
    });
    this.#schedule();
  }

  // ---- status -------------------------------------------------------------------------------

  raftStatus(): RaftRuntimeStatus {
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
      stats: this.#commands.stats(),
    };
  }

  status(): EngineStatus {
    const s = this.#node.status();
    return { kind: 'raft', self: this.id, leader: s.leader === '' ? null : s.leader, term: s.term, commitIndex: s.commit, appliedIndex: this.#applied };
  }

  members(): EngineMember[] {
    const s = this.#node.status();
    const members: EngineMember[] = [...s.conf.voters.map((peerId) => ({ peerId, role: 'voter' as const })), ...s.conf.learners.map((peerId) => ({ peerId, role: 'learner' as const }))];
    return members.map((m) => {
      const p = s.progress.get(m.peerId);
      return p === undefined ? m : { ...m, match: p.match, state: p.state };
    });
  }

  onEvent(l: (e: RaftEvent) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  #emit(e: RaftEvent): void {
    for (const l of this.#listeners) l(e);
  }

  // ---- client API ---------------------------------------------------------------------------

  submit(cmd: SubmitCommand, opts: SubmitOptions = {}): Promise<CommandOutcome> {
    // Without an idempotency key the runtime still retries, so it needs a session of its own.
    // The session's client is who asked (the replicas record it as the execution's owner).
    const session = cmd.idempotency !== undefined ? { client: cmd.idempotency.client, key: `idem:${cmd.idempotency.key}` } : { client: cmd.owner ?? this.id, key: `${this.#anonPrefix}${++this.#anonSeq}` };
    const problem = commandProblem({ operator_id: cmd.operator_id, inputs: cmd.inputs, timestamp: 0, session });
    if (problem !== null) return Promise.reject(new InvalidCommandError(problem));
    return this.#commands.submit({ operator_id: cmd.operator_id, inputs: cmd.inputs, client: session.client, key: session.key }, opts.signal);
  }

  read(operator_id: string, inputs: Json, opts: ReadOptions = {}): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(new UnavailableError('raft runtime stopped'));
    if (opts.consistency === 'serializable') return Promise.resolve(this.replica.query(operator_id, inputs));
    return this.#reads.read(operator_id, inputs, opts.signal);
  }

  /** Proposes a membership change (leader only; ProposalDroppedError or ConfChangeRejectedError otherwise). */
  changeMembership(cc: ConfChange): number {
    const index = this.#node.proposeConfChange(cc);
    this.#schedule();
    return index;
  }

  /** Hands leadership to `to` (leader only; LeaderTransferError when it cannot). */
  transferLeadership(to: NodeId): void {
    this.#node.transferLeader(to);
    this.#schedule();
  }

  /** A Ready is being handled or is scheduled (tests and the simulator wait for quiet). */
  get busy(): boolean {
    return this.#running || this.#scheduled;
  }

  /** The core's view, for tests and the simulator's safety checks (read only). */
  get core(): Pick<RaftNode, 'log' | 'currentRole' | 'currentTerm' | 'currentLeader' | 'config'> {
    return this.#node;
  }

  // ---- inbound ------------------------------------------------------------------------------

  #onPayload(sender: string, payload: JsonObject): void {
    if (this.#stopped) return;
    const p = decodeConsensusPayload(payload);
    if (p === null) {
      this.#log.warn({ sender }, 'malformed CONSENSUS payload dropped');
      return;
    }
    const conf = this.#node.config();
    // A joiner knows no members until the leader's log or snapshot reaches it: it takes Raft
    // traffic from any peer the transport authenticated and admitted to the cluster.
    const joining = conf.voters.length + conf.learners.length === 0;
    if (!joining && !conf.voters.includes(sender) && !conf.learners.includes(sender)) {
      this.#log.warn({ sender, kind: p.k }, 'CONSENSUS from a non-member dropped');
      return;
    }
    switch (p.k) {
      case 'raft':
        for (const m of p.msgs) {
          // The authenticated sender must be the message's author, and it must be for us.
          if (m.from !== sender || m.to !== this.id) continue;
          if (m.type === 'snapshot') this.#snapshotsReceived.chunk(sender, m);
          try {
            this.#node.step(m);
          } catch (e) {
            if (e instanceof ProposalDroppedError || e instanceof LeaderTransferError) continue;
            this.#fail(e as Error);
            return;
          }
        }
        this.#schedule();
        return;
      case 'propose': {
        const leader = this.#node.currentLeader();
        const answers = leader === this.id ? this.#commands.proposeLocal(p.props) : p.props.map((x) => ({ id: x.id, error: 'notLeader' as const, leader }));
        this.#sendPayload(sender, encodeConsensusPayload({ k: 'proposed', answers }));
        return;
      }
      case 'proposed':
        this.#commands.onAnswers(p.answers);
        return;
    }
  }

  #sendPayload(to: string, payload: JsonObject, onFail?: () => void): void {
    this.#transport.send(to, payload).catch((e: unknown) => {
      logSendFailure(this.#log, 'CONSENSUS', to, e);
      onFail?.();
    });
  }

  // ---- the Ready loop -----------------------------------------------------------------------

  #schedule(): void {
    if (this.#scheduled || this.#stopped || !this.#started) return;
    this.#scheduled = true;
    this.#timers.defer(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      for (let i = 0; i < MAX_READIES_PER_RUN && !this.#stopped; i++) {
        const rd = this.#node.ready();
        if (rd === null) break;
        await this.#handle(rd);
      }
      this.#takeFinishedSnapshot();
    } catch (e) {
      this.#fail(e as Error);
    } finally {
      this.#running = false;
      for (const wake of this.#idle.splice(0)) wake();
    }
    if (this.#node.hasReady()) this.#schedule();
  }

  /** Storage failure or a broken invariant: this node cannot go on safely. */
  #fail(e: Error): void {
    if (this.#stopped) return;
    this.#log.fatal({ err: e.message, stack: e.stack }, 'raft runtime failed; stopping');
    this.#halt(`raft runtime failed: ${e.message}`);
    this.#emit({ type: 'raft:fatal', error: e.message });
    this.#onFatal(e);
  }

  async #handle(rd: Ready): Promise<void> {
    // A leader may send before its own write is durable (Raft thesis §10.2.1): it counts
    // itself towards a quorum only after advance(). Everyone else persists first, and so does
    // a leader whose term or vote changed in this Ready (a single voter elects itself and
    // sends in one Ready): no message of a term leaves before that term is on disk.
    const early = this.#node.currentRole() === 'leader' && !this.#storage.changesTermOrVote(rd.hardState);
    if (early) this.#send(rd.messages);
    await this.#storage.persist(rd, { durable: this.#syncWhileLearner || this.#node.config().voters.includes(this.id) });
    if (this.#stopped) return;
    if (!early) this.#send(rd.messages);
    if (rd.softState !== undefined) {
      const term = this.#node.currentTerm();
      this.#log.info({ role: rd.softState.role, leader: rd.softState.leader, term }, 'raft role');
      this.#emit({ type: 'raft:role', role: rd.softState.role, leader: rd.softState.leader, term });
      if (rd.softState.role === 'leader') this.#commands.onLeader();
    }
    if (rd.snapshot !== undefined) {
      // The state is being replaced: a snapshot of the old one in progress is void.
      this.#snapJob?.job.cancel();
      this.#snapJob = undefined;
      this.#snapReady = undefined;
      await this.replica.restore(rd.snapshot.data);
      if (this.#stopped) return;
      this.#applied = rd.snapshot.meta.index;
      this.#snapIndex = rd.snapshot.meta.index;
      this.#log.info({ index: rd.snapshot.meta.index }, 'snapshot installed from the leader');
      this.#emit({ type: 'raft:snapshot-installed', index: rd.snapshot.meta.index, bytes: rd.snapshot.data.length });
      this.#commands.onSnapshotInstalled(this.#applied);
    }
    for (const e of rd.committedEntries) this.#apply(e);
    this.#reads.onReadStates(rd.readStates);
    this.#reads.serve();
    this.#node.advance(rd);
    await this.#maybeSnapshot();
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<string, Message[]>();
    for (const m of messages) {
      if (m.type === 'snapshot') this.#snapshotsSent.chunk(m.to, m);
      let l = byPeer.get(m.to);
      if (l === undefined) byPeer.set(m.to, (l = []));
      l.push(m);
    }
    for (const [to, msgs] of byPeer) {
      for (const envelope of packRaftMessages(msgs)) this.#sendPayload(to, encodeConsensusPayload({ k: 'raft', msgs: envelope }));
    }
  }

  #apply(e: Entry): void {
    this.#applied = e.index;
    let outcome: CommandOutcome | null = null;
    if (e.type === 'confChange') {
      this.#log.info({ change: decodeConfChange(e.data), index: e.index }, 'membership change applied');
    } else if (e.data.length > 0) {
      // The member a caller waits on signs that receipt in its batch; the others sign lazily.
      outcome = this.replica.apply(e.data, { answering: this.#commands.waiting(e.index) });
    }
    this.#commands.onApplied(e.index, e.term, outcome);
    this.#onApplied?.(e);
  }

  /** Compacts with a snapshot finished beside the loop (called with no Ready in hand). */
  #takeFinishedSnapshot(): void {
    const ready = this.#snapReady;
    if (ready === undefined || this.#stopped) return;
    this.#snapReady = undefined;
    // A snapshot installed from the leader meanwhile may already cover this index.
    if (ready.index > this.#node.log.snapshot.meta.index) this.#compactWith(ready.index, ready.data);
  }

  async #maybeSnapshot(): Promise<void> {
    this.#takeFinishedSnapshot();
    if (this.#snapJob !== undefined || this.#snapReady !== undefined) return;
    const since = this.#applied - this.#snapIndex;
    if (since < this.#snapshotEvery) return;
    if (this.#node.sendingSnapshot() && since < SNAPSHOT_DEFER_INTERVALS * this.#snapshotEvery) return;
    const index = this.#applied;
    if (index > this.#node.log.stableIndex) return;
    // The replica's receipts of the entries about to be compacted away must be on disk first.
    await this.replica.flush();
    if (this.#stopped) return;
    if (this.replica.beginSnapshot === undefined) {
      this.#compactWith(index, this.replica.snapshot());
      return;
    }
    // Written in bounded steps beside the Ready loop, which goes on applying meanwhile (the
    // job keeps the state as of `index`): a large state would otherwise hold the loop, and a
    // leader that stalls that long loses its followers and its clients wait.
    const job = this.replica.beginSnapshot();
    this.#snapIndex = index;
    this.#snapJob = { index, job };
    this.#stepSnapshot(index, job);
  }

  #stepSnapshot(index: number, job: SteppedSnapshot): void {
    if (this.#stopped || this.#snapJob?.job !== job) return;
    let done: boolean;
    try {
      done = job.step();
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    if (!done) {
      this.#timers.defer(() => this.#stepSnapshot(index, job));
      return;
    }
    this.#snapJob = undefined;
    this.#snapReady = { index, data: job.bytes() };
    this.#schedule();
  }

  /** Compacts the log at `index` with the state's bytes there and saves them beside the Ready loop. */
  #compactWith(index: number, data: Uint8Array): void {
    this.#node.compact(index, data);
    this.#snapIndex = index;
    // Saved beside the Ready loop (a large state takes seconds to write, and a leader that
    // stalls that long loses its followers): until the new meta is durable, the disk keeps
    // the previous snapshot and the entries after it, which rebuild the same state.
    const snapshot = this.#node.log.snapshot;
    this.#storage.saveSnapshot(snapshot).then(
      () => {
        this.#log.info({ index, bytes: snapshot.data.length }, 'snapshot taken, log compacted');
        this.#emit({ type: 'raft:snapshot-taken', index, bytes: snapshot.data.length });
      },
      (e: unknown) => this.#fail(e as Error),
    );
  }

  #halt(reason: string): void {
    this.#stopped = true;
    this.#cancelTick?.();
    this.#unsubscribe?.();
    this.#commands.stop(reason);
    this.#reads.stop(reason);
    this.#snapJob?.job.cancel();
    this.#snapJob = undefined;
  }

  /** Stops (pending calls reject UNAVAILABLE), waits for the Ready in hand, closes the log and the replica. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#stopped) this.#halt('node stopping');
      if (this.#running) await new Promise<void>((resolve) => this.#idle.push(resolve));
      await this.#storage.close();
      await this.#store.close();
      await this.replica.close();
    })();
    return this.#closing;
  }
}
