// Deterministic cluster simulator: every node runs the real Raft runtime (its Ready loop,
// forwarding, retries and reads: src/consensus/raft/runtime) over a faulty network, simulated
// clocks and power-loss stores, and clients submit through any member; one seeded PRNG and one
// discrete event queue drive it all. Every run checks election safety, log matching, leader
// completeness, state machine safety, linearizability of the client history, and liveness once
// the faults heal. A crash is a power cut: each node loses whatever it had not synced.
import { ConfChangeRejectedError, LeaderTransferError, ProposalDroppedError, type Entry, type NodeId } from '../consensus/raft/index.ts';
import type { ReplicaPort } from '../consensus/engine.ts';
import { DEFAULT_TICK_MS } from '../consensus/raft/runtime/limits.ts';
import { RaftRuntime, type RaftEvent } from '../consensus/raft/runtime/runtime.ts';
import { decodeConsensusPayload } from '../consensus/raft/runtime/wire.ts';
import { crypto, utf8Encode } from '../crypto/index.ts';
import type { JsonObject } from '../ico/types.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { Replica } from '../replica/replica.ts';
import { builtinRegistry } from '../statemachine/builtins.ts';
import type { OperatorRegistry } from '../statemachine/registry.ts';
import { PowerLossStore } from '../store/power-loss.ts';
import { describeMessage } from './describe.ts';
import { SimNetwork } from './network.ts';
import { Xoshiro128 } from './prng.ts';
import { KvReplica } from './kv-replica.ts';
import { NodeTimers, SimClock } from './time.ts';
import { Workload } from './workload.ts';

/** Simulated ms per tick at nominal clock speed (the runtime's own tick). */
export const TICK_MS = DEFAULT_TICK_MS;
/** Ticks after healing within which a client operation must complete. */
export const LIVENESS_TICKS = 120;
/** Upper bound on events per run (a runaway run is a failure, not a hang). */
export const MAX_EVENTS_PER_RUN = 2_000_000;
/** Most nodes (voters + learners + joiners) a run may create. */
export const MAX_NODES = 8;
/** Rounds of deferred callbacks one event may cause (a livelock is a failure, not a hang). */
const MAX_SETTLE_ROUNDS = 10_000;
/** Microtask yields per round before falling back to an event-loop turn. */
const MICROTASK_YIELDS_PER_ROUND = 1_000;
/** Small Raft limits, so flow control, chunked snapshots and read queues are exercised. */
const SIM_RAFT_LIMITS = { snapshotChunkBytes: 2048, maxInflightMsgs: 4, maxEntriesPerMsg: 8, maxBytesPerMsg: 1024, maxPendingReads: 64 };
/** Above the writes of a run: no session is evicted, so exactly-once holds for every retry. */
const SIM_MAX_SESSIONS = 4096;

export interface SimOptions {
  readonly seed: number;
  /** Ticks with faults injected, then the heal phase. */
  readonly faultTicks?: number;
  readonly healTicks?: number;
  readonly trace?: boolean;
  /** Run the real replica (signed receipts on a power-loss store) instead of the state machine alone. */
  readonly receipts?: boolean;
}

export interface SimViolation {
  readonly property: string;
  readonly detail: string;
}

export interface SimStats {
  voters: number;
  learners: number;
  events: number;
  messages: number;
  elections: number;
  crashes: number;
  confChanges: number;
  snapshotsSent: number;
  opsCompleted: number;
  opsChecked: number;
  maxCommit: number;
  receipts: number;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation?: SimViolation;
  readonly stats: SimStats;
  readonly trace: readonly string[];
}

class Violation extends Error {
  override name = 'SimViolation';
  readonly property: string;
  constructor(property: string, detail: string) {
    super(detail);
    this.property = property;
  }
}

interface SimNode {
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

/** Runs one seeded scenario to completion and checks every property. */
export function runSimulation(opts: SimOptions): Promise<SimResult> {
  return new Simulation(opts).run();
}

const hop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let registry: OperatorRegistry | undefined;
let logger: Logger | undefined;

function simLogger(): Logger {
  logger ??= silentLogger();
  return logger;
}

/** Compiling the operators' schemas costs more than a run: every run shares one registry. */
function simRegistry(): OperatorRegistry {
  registry ??= builtinRegistry();
  return registry;
}

class Simulation {
  readonly #seed: number;
  readonly #rng: Xoshiro128;
  readonly #clock = new SimClock();
  readonly #net: SimNetwork;
  readonly #nodes = new Map<NodeId, SimNode>();
  readonly #workload: Workload;
  readonly #traceOn: boolean;
  readonly #traceLines: string[] = [];
  readonly #receipts: boolean;
  readonly #registry = simRegistry();
  readonly #logger = simLogger();
  readonly #faultEnd: number;
  readonly #end: number;
  readonly #voterIds: NodeId[];
  readonly #learnerIds: NodeId[];
  readonly #compactEvery: number;
  #healed = false;
  #healTime = 0;
  #ended = false;
  #nextNodeNum: number;
  #crashMidReady = 0;
  #violation: Violation | undefined;

  // safety bookkeeping
  readonly #leaders = new Map<number, NodeId>();
  readonly #committed: (Entry | undefined)[] = [];
  #maxCommitted = 0;
  readonly #stats: SimStats;

  constructor(opts: SimOptions) {
    this.#seed = opts.seed;
    this.#rng = new Xoshiro128(opts.seed);
    this.#traceOn = opts.trace === true;
    this.#receipts = opts.receipts === true;
    this.#net = new SimNetwork(this.#clock, this.#rng.fork());
    if (this.#traceOn) this.#net.onDeliver = (from, to, payload) => this.#trace(() => `deliver ${from}->${to} ${describePayload(payload)}`);
    const faultTicks = opts.faultTicks ?? 160;
    const healTicks = opts.healTicks ?? LIVENESS_TICKS + 20;
    this.#faultEnd = faultTicks * TICK_MS;
    this.#end = this.#faultEnd + healTicks * TICK_MS;
    const voters = this.#rng.chance(0.7) ? 3 : 5;
    const learners = this.#rng.range(0, 2);
    this.#compactEvery = this.#rng.range(5, 40);
    this.#stats = { voters, learners, events: 0, messages: 0, elections: 0, crashes: 0, confChanges: 0, snapshotsSent: 0, opsCompleted: 0, opsChecked: 0, maxCommit: 0, receipts: 0 };
    this.#voterIds = Array.from({ length: voters }, (_, i) => `n${i + 1}`);
    this.#learnerIds = Array.from({ length: learners }, (_, i) => `n${voters + i + 1}`);
    this.#nextNodeNum = voters + learners + 1;
    for (const id of this.#voterIds) this.#addNode(id, true, false);
    for (const id of this.#learnerIds) this.#addNode(id, true, true);
    this.#workload = new Workload(
      {
        clock: this.#clock,
        rng: this.#rng.fork(),
        members: () => [...this.#nodes.keys()],
        engine: (id) => this.#nodes.get(id)?.runtime,
        stopAt: this.#end - 10 * TICK_MS,
        trace: (line) => this.#trace(line),
        violation: (property, detail) => this.#fail(property, detail),
      },
      this.#rng.range(2, 5),
    );
    this.#clock.at(this.#rng.range(100, 1000), () => this.#fault());
    this.#clock.at(this.#faultEnd, () => this.#heal());
    this.#clock.at(this.#end, () => {
      this.#ended = true;
    });
  }

  #trace(line: string | (() => string)): void {
    if (this.#traceOn) this.#traceLines.push(`[${this.#clock.now}] ${typeof line === 'string' ? line : line()}`);
  }

  #fail(property: string, detail: string): void {
    this.#violation ??= new Violation(property, detail);
  }

  #addNode(id: NodeId, initial: boolean, learner: boolean): void {
    const node: SimNode = {
      id,
      initial,
      learner,
      store: new PowerLossStore(this.#storeHooks(id)),
      receiptStore: this.#receipts ? new PowerLossStore() : undefined,
      runtime: undefined,
      timers: undefined,
      incarnation: 0,
      starting: false,
      rate: 1,
      applied: 0,
    };
    this.#nodes.set(id, node);
    this.#start(node);
  }

  /** A crash between a write and its fsync: the store cuts the power under the node. */
  #storeHooks(id: NodeId): { failSync: () => boolean; onCut: () => void } {
    return {
      failSync: () => this.#crashMidReady > 0 && this.#rng.chance(this.#crashMidReady),
      onCut: () => {
        const node = this.#nodes.get(id);
        if (node !== undefined) this.#crash(node, 'power cut before fsync');
      },
    };
  }

  /** (Re)starts a node from what its stores kept; runs as the event's async work. */
  #start(node: SimNode): void {
    if (node.runtime !== undefined || node.starting) return;
    const incarnation = ++node.incarnation;
    node.starting = true;
    node.rate = this.#rng.range(80, 120) / 100;
    const timers = new NodeTimers(this.#clock, node.rate);
    const transport = this.#net.endpoint(node.id, incarnation);
    const random = this.#rng.fork();
    const signerSeed = crypto.sha256(utf8Encode(`sim-signer-${this.#seed}-${node.id}`));
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
        replica = await Replica.open({ store: receiptStore, signer: crypto.createSigner(signerSeed), peerId: node.id, registry: this.#registry, maxSessions: SIM_MAX_SESSIONS });
      } else {
        replica = new KvReplica();
      }
      const runtime = await RaftRuntime.open<ReplicaPort>({
        id: node.id,
        transport,
        store,
        durableLog: !node.learner,
        ...(node.initial ? { bootstrap: { voters: this.#voterIds, learners: this.#learnerIds } } : {}),
        replica,
        timers,
        random: () => random.next(),
        snapshotEvery: this.#compactEvery,
        raftLimits: SIM_RAFT_LIMITS,
        logger: this.#logger,
        onFatal: (e) => this.#fail(e.name === 'RaftInvariantError' ? 'raft invariant' : 'runtime failure', `${node.id}: ${e.name}: ${e.message}\n${e.stack ?? ''}`),
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
      this.#trace(() => `start ${node.id} (applied ${node.applied}, term ${runtime.status().term})`);
      await runtime.start();
    })().catch((e: unknown) => {
      if (live()) this.#fail('start', `${node.id}: ${(e as Error).stack ?? String(e)}`);
    });
  }

  #crash(node: SimNode, why: string): void {
    if (node.runtime === undefined && !node.starting) return;
    node.incarnation++;
    node.timers?.fence();
    node.runtime = undefined;
    node.timers = undefined;
    node.starting = false;
    this.#net.down(node.id);
    // The power goes: whatever was not synced is gone; the next start sees the rest.
    node.store = cutPower(node.store);
    if (node.receiptStore !== undefined) node.receiptStore = cutPower(node.receiptStore);
    this.#stats.crashes++;
    this.#trace(() => `crash ${node.id} (${why})`);
  }

  async run(): Promise<SimResult> {
    try {
      await this.#loop();
      this.#checkLogMatching();
      const report = this.#workload.check();
      this.#stats.opsChecked = report.checked;
      this.#stats.opsCompleted = this.#workload.completed;
      if (report.result === 'illegal') throw new Violation('linearizability', `client history of key partition ${report.partition} is not linearizable`);
      if (report.result === 'unknown') throw new Violation('linearizability', 'checker gave up (search limit)');
      if (this.#receipts) await this.#checkReceipts();
      return { seed: this.#seed, ok: true, stats: this.#finalStats(), trace: this.#traceLines };
    } catch (err) {
      const v = err instanceof Violation ? err : new Violation('exception', `${(err as Error).name}: ${(err as Error).message}\n${(err as Error).stack ?? ''}`);
      return { seed: this.#seed, ok: false, violation: { property: v.property, detail: v.message }, stats: this.#finalStats(), trace: this.#traceLines };
    } finally {
      for (const n of this.#nodes.values()) n.timers?.fence();
    }
  }

  #finalStats(): SimStats {
    this.#stats.messages = this.#net.stats.payloads;
    this.#stats.snapshotsSent = this.#net.stats.snapshotChunks;
    this.#stats.opsCompleted = this.#workload.completed;
    return this.#stats;
  }

  async #loop(): Promise<void> {
    for (;;) {
      const ev = this.#clock.queue.pop();
      if (ev === undefined) return;
      if (++this.#stats.events > MAX_EVENTS_PER_RUN) throw new Violation('bounded run', `more than ${MAX_EVENTS_PER_RUN} events`);
      this.#clock.now = ev.time;
      await ev.run();
      await this.#settle();
      if (this.#violation !== undefined) throw this.#violation;
      if (this.#ended) {
        if (this.#workload.firstCompletedSince < 0) throw new Violation('liveness', `no client operation completed within ${LIVENESS_TICKS} ticks after healing`);
        return;
      }
      if (this.#healed && this.#workload.firstCompletedSince < 0 && this.#clock.now > this.#healTime + LIVENESS_TICKS * TICK_MS) {
        throw new Violation('liveness', `no client operation completed within ${LIVENESS_TICKS} ticks after healing`);
      }
    }
  }

  /**
   * Runs what the event set going: deferred callbacks and the promise chains they start. The
   * stores complete within microtasks, so yielding to the microtask queue until every node is
   * quiet is enough (and far cheaper than an event-loop turn); a turn is the fallback.
   */
  async #settle(): Promise<void> {
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      this.#clock.runDeferred(MAX_SETTLE_ROUNDS);
      for (let i = 0; i < MICROTASK_YIELDS_PER_ROUND; i++) {
        await null;
        if (this.#clock.hasDeferred) break;
        if (i >= 2 && !this.#busy()) return;
      }
      if (!this.#clock.hasDeferred) await hop();
    }
    throw new Violation('bounded settle', `one event kept the nodes busy for ${MAX_SETTLE_ROUNDS} rounds`);
  }

  #busy(): boolean {
    for (const n of this.#nodes.values()) if (n.starting || n.runtime?.busy === true) return true;
    return false;
  }

  // ---- checks fed by the runtimes ------------------------------------------------------------

  #onEvent(node: SimNode, runtime: RaftRuntime, e: RaftEvent): void {
    switch (e.type) {
      case 'raft:role':
        this.#trace(() => `${node.id} is ${e.role} (leader '${e.leader}', term ${e.term})`);
        if (e.role === 'leader') this.#onLeader(node, runtime, e.term);
        return;
      case 'raft:snapshot-installed':
        node.applied = e.index;
        this.#trace(() => `${node.id} installed snapshot ${e.index}`);
        return;
      case 'raft:snapshot-taken':
        this.#trace(() => `${node.id} compacted to ${e.index}`);
        return;
      case 'raft:fatal':
        return;
    }
  }

  #onLeader(node: SimNode, runtime: RaftRuntime, term: number): void {
    const prev = this.#leaders.get(term);
    if (prev !== undefined && prev !== node.id) {
      this.#fail('election safety', `term ${term} has two leaders: ${prev} and ${node.id}`);
      return;
    }
    this.#leaders.set(term, node.id);
    this.#stats.elections++;
    // Leader completeness: every entry known committed is in the new leader's log.
    const log = runtime.core.log;
    for (let i = Math.max(1, log.firstIndex()); i <= this.#maxCommitted; i++) {
      const c = this.#committed[i];
      if (c === undefined) continue;
      if (log.term(i) !== c.term) {
        this.#fail('leader completeness', `leader ${node.id} of term ${term} lacks committed entry ${i} (term ${c.term}); has term ${log.term(i)}`);
        return;
      }
    }
  }

  #onApplied(node: SimNode, e: Entry): void {
    if (e.index !== node.applied + 1) {
      this.#fail('state machine safety', `${node.id} applies ${e.index} after ${node.applied}`);
      return;
    }
    node.applied = e.index;
    const known = this.#committed[e.index];
    if (known === undefined) {
      this.#committed[e.index] = e;
      if (e.index > this.#maxCommitted) this.#maxCommitted = e.index;
      this.#stats.maxCommit = this.#maxCommitted;
    } else if (known.term !== e.term || known.type !== e.type || !bytesEqual(known.data, e.data)) {
      this.#fail('state machine safety', `${node.id} applies a different entry at ${e.index} (term ${e.term} vs ${known.term})`);
    }
  }

  // ---- faults -------------------------------------------------------------------------------

  #currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.#nodes.values()) {
      if (n.runtime?.core.currentRole() !== 'leader') continue;
      if (best === undefined || n.runtime.core.currentTerm() > (best.runtime as RaftRuntime).core.currentTerm()) best = n;
    }
    return best;
  }

  #fault(): void {
    if (this.#healed) return;
    this.#injectFault();
    this.#clock.at(this.#clock.now + this.#rng.range(100, 800), () => this.#fault());
  }

  #injectFault(): void {
    const ids = [...this.#nodes.keys()];
    const rng = this.#rng;
    const net = this.#net;
    const r = rng.nextInt(100);
    if (r < 12) {
      // Symmetric partition into two random sides.
      net.blocked.clear();
      const side = new Set(ids.filter(() => rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) net.blocked.add(`${a}>${b}`);
      this.#trace(() => `partition {${[...side].join(',')}} | rest`);
    } else if (r < 20) {
      // Asymmetric: a few one-way links cut.
      const k = rng.range(1, 3);
      for (let i = 0; i < k; i++) {
        const a = rng.pick(ids);
        const b = rng.pick(ids);
        if (a !== b) net.blocked.add(`${a}>${b}`);
      }
      this.#trace(() => `one-way cuts: ${[...net.blocked].join(' ')}`);
    } else if (r < 30) {
      net.blocked.clear();
      this.#trace('links healed');
    } else if (r < 50) {
      // Crash a node (the leader half of the time); most come back after a while.
      const up = [...this.#nodes.values()].filter((n) => n.runtime !== undefined);
      const down = this.#nodes.size - up.length;
      if (up.length > 0 && down < Math.floor(this.#nodes.size / 2)) {
        const l = this.#currentLeader();
        const victim = l !== undefined && rng.chance(0.5) ? l : rng.pick(up);
        this.#crash(victim, 'fault');
        if (rng.chance(0.7)) {
          const incarnation = victim.incarnation;
          this.#clock.at(this.#clock.now + rng.range(5, 1500), () => {
            if (victim.incarnation === incarnation) this.#start(victim);
          });
        }
      }
    } else if (r < 56) {
      const down = [...this.#nodes.values()].filter((n) => n.runtime === undefined && !n.starting);
      if (down.length > 0) this.#start(rng.pick(down));
    } else if (r < 68) {
      net.dropRate = rng.pick([0, 0, 0.02, 0.1, 0.3]);
      net.dupRate = rng.pick([0, 0.02, 0.1]);
      net.maxDelay = rng.pick([15, 40, 75, 200]);
      this.#crashMidReady = rng.pick([0, 0, 0.002, 0.01]);
      this.#trace(() => `net drop=${net.dropRate} dup=${net.dupRate} maxDelay=${net.maxDelay} crashMidReady=${this.#crashMidReady}`);
    } else if (r < 74) {
      for (const n of this.#nodes.values()) {
        n.rate = rng.range(70, 130) / 100;
        if (n.timers !== undefined) n.timers.rate = n.rate;
      }
      this.#trace('clock skew changed');
    } else if (r < 84) {
      const l = this.#currentLeader();
      if (l?.runtime !== undefined) {
        const voters = l.runtime.core.config().voters.filter((v) => v !== l.id);
        if (voters.length > 0) {
          const to = rng.pick(voters);
          try {
            l.runtime.transferLeadership(to);
            this.#trace(() => `transfer leadership ${l.id} -> ${to}`);
          } catch (err) {
            if (!(err instanceof LeaderTransferError)) throw err;
          }
        }
      }
    } else {
      this.#changeMembership();
    }
  }

  #changeMembership(): void {
    const l = this.#currentLeader();
    if (l?.runtime === undefined) return;
    const rng = this.#rng;
    const conf = l.runtime.core.config();
    const r = rng.nextInt(3);
    let cc: { type: 'addVoter' | 'addLearner' | 'removeNode'; node: NodeId } | undefined;
    let fresh: NodeId | undefined;
    if (r === 0 && conf.learners.length > 0) {
      cc = { type: 'addVoter', node: rng.pick(conf.learners) };
    } else if (r === 1 && conf.voters.length > 3) {
      cc = { type: 'removeNode', node: rng.pick(conf.voters) };
    } else if (r === 2 && this.#nodes.size < MAX_NODES) {
      fresh = `n${this.#nextNodeNum}`;
      cc = { type: 'addLearner', node: fresh };
    } else if (conf.learners.length > 0 && conf.voters.length + conf.learners.length > 3) {
      cc = { type: 'removeNode', node: rng.pick(conf.learners) };
    }
    if (cc === undefined) return;
    try {
      l.runtime.changeMembership(cc);
    } catch (err) {
      if (err instanceof ConfChangeRejectedError || err instanceof ProposalDroppedError) return;
      throw err;
    }
    this.#stats.confChanges++;
    this.#trace(() => `conf change ${cc.type} ${cc.node} via ${l.id}`);
    if (fresh !== undefined) {
      this.#nextNodeNum++;
      // A joiner starts empty: it learns the members from the log or a snapshot.
      this.#addNode(fresh, false, false);
    }
  }

  #heal(): void {
    this.#healed = true;
    this.#healTime = this.#clock.now;
    this.#workload.watchFrom(this.#clock.now);
    this.#net.heal();
    this.#crashMidReady = 0;
    this.#trace('HEAL: links, drops and crashes repaired');
    for (const n of this.#nodes.values()) if (n.runtime === undefined) this.#start(n);
  }

  // ---- end-of-run checks --------------------------------------------------------------------

  #checkLogMatching(): void {
    const live = [...this.#nodes.values()].filter((n) => n.runtime !== undefined);
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

  /** With real replicas: every live node's receipt chain verifies, and replicas agree on each execution. */
  async #checkReceipts(): Promise<void> {
    let total = 0;
    for (const n of this.#nodes.values()) {
      const replica = n.runtime?.replica;
      if (!(replica instanceof Replica)) continue;
      await replica.flush();
      await this.#settle();
      total += replica.log.size;
    }
    this.#stats.receipts = total;
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
