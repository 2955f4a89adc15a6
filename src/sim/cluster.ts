// A simulated cluster: every node runs the real Raft runtime (src/consensus/raft/runtime) on a
// power-loss store, over the simulated network and per-node clocks, all driven by one seeded
// PRNG and one event queue. A crash is a power cut: the node loses whatever it had not synced.
// The cluster checks what its runtimes report as it happens (election safety, leader
// completeness, state machine safety) and, on request, log matching and the replicas' receipts.
// The fault-injecting simulator (simulator.ts) and the durability tests build on it.
import type { ReplicaPort } from '../consensus/engine.ts';
import type { Entry, NodeId, RaftLimits } from '../consensus/raft/index.ts';
import { RaftRuntime, type RaftEvent } from '../consensus/raft/runtime/runtime.ts';
import { decodeConsensusPayload } from '../consensus/raft/runtime/wire.ts';
import { crypto, peerIdFromPublicKeyBytes, utf8Encode } from '../crypto/index.ts';
import type { JsonObject } from '../ico/types.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { verifyChain } from '../receipts/receipt.ts';
import { mustSyncReceipts, Replica } from '../replica/replica.ts';
import { builtinRegistry } from '../statemachine/builtins.ts';
import type { OperatorRegistry } from '../statemachine/registry.ts';
import { PowerLossStore } from '../store/power-loss.ts';
import { describeMessage } from './describe.ts';
import { KvReplica } from './kv-replica.ts';
import { SimNetwork } from './network.ts';
import { Xoshiro128 } from './prng.ts';
import { NodeTimers, SIM_EPOCH_MS, SimClock } from './time.ts';

/** Rounds of deferred callbacks one event may cause (a livelock is a failure, not a hang). */
const MAX_SETTLE_ROUNDS = 10_000;
/** Microtask yields per round before falling back to an event-loop turn. */
const MICROTASK_YIELDS_PER_ROUND = 1_000;
/** Small Raft limits, so flow control, chunked snapshots and read queues are exercised. */
export const SIM_RAFT_LIMITS: Partial<RaftLimits> = { snapshotChunkBytes: 2048, maxInflightMsgs: 4, maxEntriesPerMsg: 8, maxBytesPerMsg: 1024, maxPendingReads: 64 };
/** Longer than any run's simulated time: no session expires, so exactly-once holds for every retry. */
const SIM_SESSION_TTL_MS = 24 * 60 * 60_000;
/** Clock rates (percent of nominal) a node starts with; skew faults may move them further. */
const START_RATE_PERCENT: readonly [number, number] = [80, 120];
/** Clock rates (percent) the skew fault picks from: leases must stay safe across this range. */
export const SKEW_RATE_PERCENT: readonly [number, number] = [70, 130];
/** The ratio of the fastest to the slowest simulated clock: the lease bound the runtimes assume. */
export const SIM_CLOCK_RATE_BOUND = SKEW_RATE_PERCENT[1] / SKEW_RATE_PERCENT[0];

export class Violation extends Error {
  override name = 'SimViolation';
  readonly property: string;
  constructor(property: string, detail: string) {
    super(detail);
    this.property = property;
  }
}

export interface SimNode {
  readonly id: NodeId;
  /** Listed in the initial configuration (bootstraps it); joiners start empty. */
  readonly initial: boolean;
  readonly learner: boolean;
  /** The Raft log's store; after a crash, the handle on what survived it. */
  store: PowerLossStore | Promise<PowerLossStore>;
  receiptStore: PowerLossStore | Promise<PowerLossStore> | undefined;
  runtime: RaftRuntime | undefined;
  timers: NodeTimers | undefined;
  /** Bumped on every start and crash: callbacks of an older incarnation do nothing. */
  incarnation: number;
  starting: boolean;
  /** Clock rate (1 = nominal; 1.2 = a slow clock). */
  rate: number;
  /** Index this incarnation applied last (state machine safety). */
  applied: number;
}

export interface SimClusterOptions {
  readonly rng: Xoshiro128;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly snapshotEvery: number;
  /** Run the real replica (operator state machine, signed receipts on a power-loss store). */
  readonly receipts?: boolean;
  readonly trace?: boolean;
  /** Probability that an fsync is cut by a power failure (the crash between write and fsync). */
  crashMidReady?: () => number;
  /** The clock-rate bound the runtimes' leader leases assume (default: the skew faults' own bound). */
  readonly clockRateBound?: number;
  /** Default true: linearizable reads use leader leases (false: ReadIndex rounds only). */
  readonly leaseReads?: boolean;
}

export interface ClusterStats {
  events: number;
  elections: number;
  crashes: number;
  maxCommit: number;
}

let registry: OperatorRegistry | undefined;
let logger: Logger | undefined;

/** Compiling the operators' schemas costs more than a run: every cluster shares one registry. */
function simRegistry(): OperatorRegistry {
  registry ??= builtinRegistry();
  return registry;
}

function simLogger(): Logger {
  logger ??= silentLogger();
  return logger;
}

const hop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SimCluster {
  readonly clock = new SimClock();
  readonly net: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly stats: ClusterStats = { events: 0, elections: 0, crashes: 0, maxCommit: 0 };
  readonly traceLines: string[] = [];
  readonly #rng: Xoshiro128;
  readonly #opts: SimClusterOptions;
  readonly #traceOn: boolean;
  #violation: Violation | undefined;
  // safety bookkeeping
  readonly #leaders = new Map<number, NodeId>();
  readonly #committed: (Entry | undefined)[] = [];
  #maxCommitted = 0;

  constructor(opts: SimClusterOptions) {
    this.#opts = opts;
    this.#rng = opts.rng;
    this.#traceOn = opts.trace === true;
    this.net = new SimNetwork(this.clock, this.#rng.fork());
    if (this.#traceOn) this.net.onDeliver = (from, to, payload) => this.trace(() => `deliver ${from}->${to} ${describePayload(payload)}`);
    for (const id of opts.voters) this.addNode(id, true, false);
    for (const id of opts.learners) this.addNode(id, true, true);
  }

  trace(line: string | (() => string)): void {
    if (this.#traceOn) this.traceLines.push(`[${this.clock.now}] ${typeof line === 'string' ? line : line()}`);
  }

  /** Records the first violation; the run stops after the event that found it. */
  fail(property: string, detail: string): void {
    this.#violation ??= new Violation(property, detail);
  }

  get violation(): Violation | undefined {
    return this.#violation;
  }

  engine(id: NodeId): RaftRuntime | undefined {
    return this.nodes.get(id)?.runtime;
  }

  addNode(id: NodeId, initial: boolean, learner: boolean): SimNode {
    const node: SimNode = {
      id,
      initial,
      learner,
      store: new PowerLossStore(this.#storeHooks(id)),
      receiptStore: this.#opts.receipts === true ? new PowerLossStore() : undefined,
      runtime: undefined,
      timers: undefined,
      incarnation: 0,
      starting: false,
      rate: 1,
      applied: 0,
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  /** A crash between a write and its fsync: the store cuts the power under the node. */
  #storeHooks(id: NodeId): { failSync: () => boolean; onCut: () => void } {
    return {
      failSync: () => {
        const p = this.#opts.crashMidReady?.() ?? 0;
        return p > 0 && this.#rng.chance(p);
      },
      onCut: () => {
        const node = this.nodes.get(id);
        if (node !== undefined) this.crash(node, 'power cut before fsync');
      },
    };
  }

  /** (Re)starts a node from what its stores kept; runs as the current event's async work. */
  start(node: SimNode): void {
    if (node.runtime !== undefined || node.starting) return;
    const incarnation = ++node.incarnation;
    node.starting = true;
    node.rate = this.#rng.range(START_RATE_PERCENT[0], START_RATE_PERCENT[1]) / 100;
    const timers = new NodeTimers(this.clock, node.rate);
    const transport = this.net.endpoint(node.id, incarnation);
    const random = this.#rng.fork();
    const live = (): boolean => node.incarnation === incarnation;
    void (async () => {
      const store = await node.store;
      if (!live()) return;
      node.store = store;
      let replica: ReplicaPort;
      if (node.receiptStore !== undefined) {
        const receiptStore = await node.receiptStore;
        if (!live()) return;
        node.receiptStore = receiptStore;
        const signer = crypto.createSigner(crypto.sha256(utf8Encode(`sim-signer-${node.id}`)));
        replica = await Replica.open({ store: receiptStore, signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey), registry: simRegistry(), sessions: { sessionTtlMs: SIM_SESSION_TTL_MS }, syncReceipts: mustSyncReceipts(!this.#opts.learners.includes(node.id)) });
      } else {
        replica = new KvReplica();
      }
      const runtime = await RaftRuntime.open<ReplicaPort>({
        id: node.id,
        transport,
        store,
        syncWhileLearner: false,
        ...(node.initial ? { bootstrap: { voters: this.#opts.voters, learners: this.#opts.learners } } : {}),
        replica,
        timers,
        random: () => random.next(),
        snapshotEvery: this.#opts.snapshotEvery,
        raftLimits: SIM_RAFT_LIMITS,
        clockRateBound: this.#opts.clockRateBound ?? SIM_CLOCK_RATE_BOUND,
        ...(this.#opts.leaseReads === false ? { leaseReads: false } : {}),
        logger: simLogger(),
        onFatal: (e) => this.fail(e.name === 'RaftInvariantError' ? 'raft invariant' : 'runtime failure', `${node.id}: ${e.name}: ${e.message}\n${e.stack ?? ''}`),
        onApplied: (e) => {
          if (live()) this.#onApplied(node, e);
        },
      });
      if (!live()) return;
      runtime.onEvent((e) => {
        if (live()) this.#onEvent(node, runtime, e);
      });
      node.runtime = runtime;
      node.timers = timers;
      node.starting = false;
      node.applied = runtime.status().appliedIndex;
      this.trace(() => `start ${node.id} (applied ${node.applied}, term ${runtime.status().term})`);
      await runtime.start();
    })().catch((e: unknown) => {
      if (live()) this.fail('start', `${node.id}: ${(e as Error).stack ?? String(e)}`);
    });
  }

  /** A power cut: the node stops at once and loses whatever it had not synced. */
  crash(node: SimNode, why: string): void {
    if (node.runtime === undefined && !node.starting) return;
    node.incarnation++;
    node.timers?.fence();
    node.runtime = undefined;
    node.timers = undefined;
    node.starting = false;
    this.net.down(node.id);
    node.store = cutPower(node.store);
    if (node.receiptStore !== undefined) node.receiptStore = cutPower(node.receiptStore);
    this.stats.crashes++;
    this.trace(() => `crash ${node.id} (${why})`);
  }

  /** The live node that leads in the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.runtime?.core.currentRole() !== 'leader') continue;
      if (best === undefined || n.runtime.core.currentTerm() > (best.runtime as RaftRuntime).core.currentTerm()) best = n;
    }
    return best;
  }

  /** Wall-clock time the nodes see now. */
  get wallClock(): number {
    return SIM_EPOCH_MS + this.clock.now;
  }

  /**
   * Runs events until `until()` holds after an event, the queue empties, `deadline` (simulated
   * ms) passes, or a violation is found (thrown). Returns whether `until()` held.
   */
  async run(until: () => boolean, deadline: number, maxEvents: number): Promise<boolean> {
    await this.settle();
    for (;;) {
      if (this.#violation !== undefined) throw this.#violation;
      if (until()) return true;
      const ev = this.clock.queue.pop();
      if (ev === undefined || ev.time > deadline) {
        if (ev !== undefined) this.clock.queue.push(ev.time, ev.run);
        return false;
      }
      if (++this.stats.events > maxEvents) throw new Violation('bounded run', `more than ${maxEvents} events`);
      this.clock.now = ev.time;
      const work = ev.run();
      if (work !== undefined) await work;
      await this.settle();
    }
  }

  /** Runs events until `p` settles (or `withinMs` of simulated time pass: then it rejects). */
  async settled<T>(p: Promise<T>, withinMs: number, maxEvents = 1_000_000): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    if (!(await this.run(() => done, this.clock.now + withinMs, this.stats.events + maxEvents))) throw new Violation('timeout', `not settled within ${withinMs} simulated ms`);
    return watched;
  }

  /**
   * Runs what an event set going: deferred callbacks and the promise chains they start. The
   * stores complete within microtasks, so yielding to the microtask queue until every node is
   * quiet is enough (and far cheaper than an event-loop turn); a turn is the fallback.
   */
  async settle(): Promise<void> {
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      this.clock.runDeferred(MAX_SETTLE_ROUNDS);
      for (let i = 0; i < MICROTASK_YIELDS_PER_ROUND; i++) {
        await null;
        if (this.clock.hasDeferred) break;
        if (i >= 2 && !this.#busy()) return;
      }
      if (!this.clock.hasDeferred) await hop();
    }
    throw new Violation('bounded settle', `one event kept the nodes busy for ${MAX_SETTLE_ROUNDS} rounds`);
  }

  #busy(): boolean {
    for (const n of this.nodes.values()) if (n.starting || n.runtime?.busy === true) return true;
    return false;
  }

  /** Stops every node's timers (the end of a run). */
  stop(): void {
    for (const n of this.nodes.values()) n.timers?.fence();
  }

  // ---- checks fed by the runtimes ------------------------------------------------------------

  #onEvent(node: SimNode, runtime: RaftRuntime, e: RaftEvent): void {
    switch (e.type) {
      case 'raft:role':
        this.trace(() => `${node.id} is ${e.role} (leader '${e.leader}', term ${e.term})`);
        if (e.role === 'leader') this.#onLeader(node, runtime, e.term);
        return;
      case 'raft:snapshot-installed':
        node.applied = e.index;
        this.trace(() => `${node.id} installed snapshot ${e.index}`);
        return;
      case 'raft:snapshot-taken':
        this.trace(() => `${node.id} compacted to ${e.index}`);
        return;
      case 'raft:fatal':
        return;
    }
  }

  #onLeader(node: SimNode, runtime: RaftRuntime, term: number): void {
    const prev = this.#leaders.get(term);
    if (prev !== undefined && prev !== node.id) {
      this.fail('election safety', `term ${term} has two leaders: ${prev} and ${node.id}`);
      return;
    }
    this.#leaders.set(term, node.id);
    this.stats.elections++;
    // Leader completeness: every entry known committed is in the new leader's log.
    const log = runtime.core.log;
    for (let i = Math.max(1, log.firstIndex()); i <= this.#maxCommitted; i++) {
      const c = this.#committed[i];
      if (c === undefined) continue;
      if (log.term(i) !== c.term) {
        this.fail('leader completeness', `leader ${node.id} of term ${term} lacks committed entry ${i} (term ${c.term}); has term ${log.term(i)}`);
        return;
      }
    }
  }

  #onApplied(node: SimNode, e: Entry): void {
    if (e.index !== node.applied + 1) {
      this.fail('state machine safety', `${node.id} applies ${e.index} after ${node.applied}`);
      return;
    }
    node.applied = e.index;
    const known = this.#committed[e.index];
    if (known === undefined) {
      this.#committed[e.index] = e;
      if (e.index > this.#maxCommitted) this.#maxCommitted = e.index;
      this.stats.maxCommit = this.#maxCommitted;
    } else if (known.term !== e.term || known.type !== e.type || !bytesEqual(known.data, e.data)) {
      this.fail('state machine safety', `${node.id} applies a different entry at ${e.index} (term ${e.term} vs ${known.term})`);
    }
  }

  // ---- end-of-run checks --------------------------------------------------------------------

  checkLogMatching(): void {
    const live = [...this.nodes.values()].filter((n) => n.runtime !== undefined);
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = ((live[x] as SimNode).runtime as RaftRuntime).core.log;
        const b = ((live[y] as SimNode).runtime as RaftRuntime).core.log;
        const ida = (live[x] as SimNode).id;
        const idb = (live[y] as SimNode).id;
        const lo = Math.max(a.firstIndex(), b.firstIndex());
        let hi = Math.min(a.lastIndex(), b.lastIndex());
        while (hi >= lo && a.term(hi) !== b.term(hi)) hi--;
        for (let i = hi; i >= lo; i--) {
          const ea = a.entry(i) as Entry;
          const eb = b.entry(i) as Entry;
          if (ea.term !== eb.term || !bytesEqual(ea.data, eb.data)) throw new Violation('log matching', `${ida} and ${idb} agree at ${hi} but differ at ${i}`);
        }
      }
    }
  }

  /**
   * With real replicas: every live node's receipts verify as one chain (signatures, links,
   * timestamps), and replicas that ran every execution themselves (no snapshot jump: receipt
   * index = execution ordinal) attest the same operation at the same time for each one.
   * Returns how many receipts were checked.
   */
  async checkReceipts(): Promise<number> {
    let total = 0;
    const byOrdinal = new Map<number, { node: NodeId; operation: string; timestamp: string }>();
    for (const n of this.nodes.values()) {
      const replica = n.runtime?.replica;
      if (!(replica instanceof Replica)) continue;
      const flushed = replica.flush();
      await this.settle();
      await flushed;
      const receipts = [];
      for await (const r of replica.log.iterate(0)) receipts.push(r);
      if (receipts.length !== replica.log.size) throw new Violation('receipts', `${n.id} lists ${receipts.length} receipts, its log says ${replica.log.size}`);
      const verdict = await verifyChain(receipts, { now: this.wallClock + 60_000 });
      if (!verdict.ok) throw new Violation('receipts', `${n.id}'s receipt chain fails at ${verdict.index}: ${verdict.reason}`);
      if (replica.ordinalOf(0) !== 0) {
        total += receipts.length;
        continue;
      }
      for (const r of receipts) {
        const ordinal = r.index;
        const operation = JSON.stringify(r.operation);
        const seen = byOrdinal.get(ordinal);
        if (seen === undefined) byOrdinal.set(ordinal, { node: n.id, operation, timestamp: r.timestamp });
        else if (seen.operation !== operation || seen.timestamp !== r.timestamp) throw new Violation('receipts', `execution ${ordinal}: ${seen.node} and ${n.id} attest different operations`);
      }
      total += receipts.length;
    }
    return total;
  }
}

/** Cuts the power under a store now (a handle in use) or once it is open (a restart pending). */
function cutPower(store: PowerLossStore | Promise<PowerLossStore>): Promise<PowerLossStore> {
  return store instanceof PowerLossStore ? store.powerLoss() : store.then((s) => s.powerLoss());
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describePayload(payload: JsonObject): string {
  const p = decodeConsensusPayload(payload);
  if (p === null) return 'malformed payload';
  switch (p.k) {
    case 'raft':
      return p.msgs.map(describeMessage).join('; ');
    case 'propose':
      return `propose ${p.props.length} (${p.props.map((x) => `${x.client}/${x.key}`).join(' ')})`;
    case 'proposed':
      return `proposed ${p.answers.map((a) => ('error' in a ? `${a.id}:${a.error}` : `${a.id}@${a.index}/t${a.term}`)).join(' ')}`;
  }
}
