// Deterministic cluster simulator: a simulated cluster of real Raft runtimes (cluster.ts), a
// fault phase (faults.ts) and a heal phase, and clients submitting through any member
// (workload.ts); one seeded PRNG drives it all, so a failing seed replays exactly. Every run
// checks election safety, log matching, leader completeness, state machine safety,
// linearizability of the client history, and liveness once the faults heal; with `receipts`
// it also checks every replica's signed receipt chain.
import { DEFAULT_TICK_MS } from '../consensus/raft/runtime/limits.ts';
import { SimCluster, Violation } from './cluster.ts';
import { injectFault, type FaultState } from './faults.ts';
import { Xoshiro128 } from './prng.ts';
import { Workload } from './workload.ts';

export { MAX_NODES } from './faults.ts';

/** Simulated ms per tick at nominal clock speed (the runtime's own tick). */
export const TICK_MS = DEFAULT_TICK_MS;
/** Ticks after healing within which a client operation must complete. */
export const LIVENESS_TICKS = 120;
/** Upper bound on events per run (a runaway run is a failure, not a hang). */
export const MAX_EVENTS_PER_RUN = 2_000_000;

export interface SimOptions {
  readonly seed: number;
  /** Ticks with faults injected, then the heal phase. */
  readonly faultTicks?: number;
  readonly healTicks?: number;
  readonly trace?: boolean;
  /** Run the real replica (signed receipts on a power-loss store) instead of a plain KV. */
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

/** Runs one seeded scenario to completion and checks every property. */
export async function runSimulation(opts: SimOptions): Promise<SimResult> {
  const rng = new Xoshiro128(opts.seed);
  const faultEnd = (opts.faultTicks ?? 160) * TICK_MS;
  const end = faultEnd + (opts.healTicks ?? LIVENESS_TICKS + 20) * TICK_MS;
  const voters = rng.chance(0.7) ? 3 : 5;
  const learners = rng.range(0, 2);
  const voterIds = Array.from({ length: voters }, (_, i) => `n${i + 1}`);
  const learnerIds = Array.from({ length: learners }, (_, i) => `n${voters + i + 1}`);
  const st: FaultState = { crashMidReady: 0, nextNodeNum: voters + learners + 1, confChanges: 0 };
  const cluster = new SimCluster({
    rng,
    voters: voterIds,
    learners: learnerIds,
    snapshotEvery: rng.range(5, 40),
    crashMidReady: () => st.crashMidReady,
    ...(opts.receipts === true ? { receipts: true } : {}),
    ...(opts.trace === true ? { trace: true } : {}),
  });
  const workload = new Workload(
    {
      clock: cluster.clock,
      rng: rng.fork(),
      members: () => [...cluster.nodes.keys()],
      engine: (id) => cluster.engine(id),
      stopAt: end - 10 * TICK_MS,
      trace: (line) => cluster.trace(line),
      violation: (property, detail) => cluster.fail(property, detail),
    },
    rng.range(2, 5),
  );
  let healed = false;
  let healTime = 0;
  const fault = (): void => {
    if (healed) return;
    injectFault(cluster, rng, st);
    cluster.clock.at(cluster.clock.now + rng.range(100, 800), fault);
  };
  cluster.clock.at(rng.range(100, 1000), fault);
  cluster.clock.at(faultEnd, () => {
    healed = true;
    healTime = cluster.clock.now;
    workload.watchFrom(healTime);
    cluster.net.heal();
    st.crashMidReady = 0;
    cluster.trace('HEAL: links, drops and crashes repaired');
    for (const n of cluster.nodes.values()) if (n.runtime === undefined) cluster.start(n);
  });
  const stats = (): SimStats => ({
    voters,
    learners,
    events: cluster.stats.events,
    messages: cluster.net.stats.payloads,
    elections: cluster.stats.elections,
    crashes: cluster.stats.crashes,
    confChanges: st.confChanges,
    snapshotsSent: cluster.net.stats.snapshotChunks,
    opsCompleted: workload.completed,
    opsChecked: 0,
    maxCommit: cluster.stats.maxCommit,
    receipts: 0,
  });
  try {
    const livenessLost = (): boolean => healed && workload.firstCompletedSince < 0 && cluster.clock.now > healTime + LIVENESS_TICKS * TICK_MS;
    await cluster.run(livenessLost, end, MAX_EVENTS_PER_RUN);
    if (workload.firstCompletedSince < 0) throw new Violation('liveness', `no client operation completed within ${LIVENESS_TICKS} ticks after healing`);
    cluster.checkLogMatching();
    const report = workload.check();
    if (report.result === 'illegal') throw new Violation('linearizability', `client history of key partition ${report.partition} is not linearizable`);
    if (report.result === 'unknown') throw new Violation('linearizability', 'checker gave up (search limit)');
    const receipts = opts.receipts === true ? await cluster.checkReceipts() : 0;
    return { seed: opts.seed, ok: true, stats: { ...stats(), opsChecked: report.checked, receipts }, trace: cluster.traceLines };
  } catch (err) {
    const v = err instanceof Violation ? err : new Violation('exception', `${(err as Error).name}: ${(err as Error).message}\n${(err as Error).stack ?? ''}`);
    return { seed: opts.seed, ok: false, violation: { property: v.property, detail: v.message }, stats: stats(), trace: cluster.traceLines };
  } finally {
    cluster.stop();
  }
}
