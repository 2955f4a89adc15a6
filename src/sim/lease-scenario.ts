// The leader-lease scenario: the one fault a lease must survive, aimed at it. A leader is cut off
// from both followers at a random moment while a client keeps reading from it (clients reach it
// directly) and another writes through the followers, which elect a new leader. The leader's
// clock runs slow and the followers' fast, by a chosen ratio; the recorded history goes through
// the linearizability checker. Within the clock-rate bound the runtimes assume, every run is
// linearizable; beyond it (or with the bound check broken) the old leader serves stale reads
// from its lease and the checker says so. Seeded: a failing seed replays exactly.
import type { RaftRuntime } from '../consensus/raft/runtime/runtime.ts';
import type { Json } from '../ico/types.ts';
import { SimCluster } from './cluster.ts';
import { checkKvHistory, type CheckResult, type KvOperation } from './linearizability.ts';
import { Xoshiro128 } from './prng.ts';

/** Simulated ms the partitioned phase runs (several election timeouts of the fastest clock). */
export const LEASE_SCENARIO_MS = 2_000;
/** Longest a read may wait (a read that never answers had no effect). */
const READ_DEADLINE_MS = 1_000;
/** Longest a write may wait before the writer gives up on it (its outcome is then unknown). */
const WRITE_DEADLINE_MS = 150;
/** Upper bound on events per scenario run. */
const MAX_EVENTS = 500_000;
/** Network delay bound: fast links make the new leader come early, where a stale lease would show. */
const MAX_DELAY_MS = 3;
const KEY = 'x';

export interface LeaseScenarioOptions {
  readonly seed: number;
  /** The cut-off leader's clock rate (1.2: 20 % slow) and the followers' (0.8: 20 % fast). */
  readonly leaderRate: number;
  readonly followerRate: number;
  /** The bound the runtimes assume (their lease shrinks by it). */
  readonly clockRateBound: number;
  /** Default true; false: every read takes a ReadIndex round (the control). */
  readonly leaseReads?: boolean;
}

export interface LeaseScenarioResult {
  readonly seed: number;
  readonly result: CheckResult;
  /** Reads the cut-off leader answered after the cut (lease reads, since it could reach no one). */
  readonly readsAfterCut: number;
  readonly writesCompleted: number;
  /** Whether the followers elected a new leader while the old one was cut off. */
  readonly newLeader: boolean;
}

export async function runLeaseScenario(opts: LeaseScenarioOptions): Promise<LeaseScenarioResult> {
  const rng = new Xoshiro128(opts.seed);
  const c = new SimCluster({ rng, voters: ['n1', 'n2', 'n3'], learners: [], snapshotEvery: 1_000, clockRateBound: opts.clockRateBound, ...(opts.leaseReads === false ? { leaseReads: false } : {}) });
  c.net.maxDelay = MAX_DELAY_MS;
  const history: KvOperation[] = [];
  const engine = (id: string): RaftRuntime => {
    const e = c.engine(id);
    if (e === undefined) throw new Error(`lease scenario: ${id} is down`);
    return e;
  };
  try {
    await c.run(() => c.leader() !== undefined, 5_000, MAX_EVENTS);
    const old = c.leader();
    if (old === undefined) throw new Error('lease scenario: no leader elected');
    const followers = [...c.nodes.keys()].filter((id) => id !== old.id);
    await c.settled(engine(old.id).submit({ operator_id: 'kv.put', inputs: { key: KEY, value: 'v0' } }), 5_000);
    history.push({ client: 'setup', input: { kind: 'put', key: KEY, value: 'v0' }, output: 'ok', call: 0, ret: c.clock.now });
    for (const n of c.nodes.values()) {
      n.rate = n.id === old.id ? opts.leaderRate : opts.followerRate;
      if (n.timers !== undefined) n.timers.rate = n.rate;
    }
    // Cut at a random phase of the heartbeat cadence.
    await c.run(() => false, c.clock.now + rng.range(100, 400), MAX_EVENTS);
    for (const f of followers) {
      c.net.blocked.add(`${old.id}>${f}`);
      c.net.blocked.add(`${f}>${old.id}`);
    }
    const cutAt = c.clock.now;
    const end = cutAt + LEASE_SCENARIO_MS;
    let readsAfterCut = 0;
    let writesCompleted = 0;
    let live = true;
    const call = (client: string, input: KvOperation['input'], p: (signal: AbortSignal) => Promise<Json | 'ok'>, next: () => void): void => {
      const at = c.clock.now;
      const deadline = new AbortController();
      let done = false;
      c.clock.at(at + (input.kind === 'get' ? READ_DEADLINE_MS : WRITE_DEADLINE_MS), () => {
        if (done) return;
        done = true;
        deadline.abort(new DOMException('deadline', 'TimeoutError'));
        // A write that never answered may have taken effect; a read that never answered had none.
        if (input.kind !== 'get') history.push({ client, input, output: undefined, call: at, ret: Infinity });
        next();
      });
      p(deadline.signal).then(
        (out) => {
          if (done) return;
          done = true;
          const output = input.kind === 'get' ? ((out as { found: boolean; value?: string }).found ? ((out as { value: string }).value ?? null) : null) : 'ok';
          history.push({ client, input, output, call: at, ret: c.clock.now });
          if (input.kind === 'get') readsAfterCut++;
          else writesCompleted++;
          next();
        },
        () => {
          if (done) return;
          done = true;
          if (input.kind !== 'get') history.push({ client, input, output: undefined, call: at, ret: Infinity });
          next();
        },
      );
    };
    let w = 0;
    const write = (): void => {
      if (!live || c.clock.now > end) return;
      const value = `v${++w}`;
      // The writer follows the new leader once there is one (as a client with a leader hint does).
      const l = c.leader();
      const via = l !== undefined && l.id !== old.id ? l.id : (followers[w % followers.length] as string);
      call('writer', { kind: 'put', key: KEY, value }, (signal) => engine(via).submit({ operator_id: 'kv.put', inputs: { key: KEY, value }, idempotency: { client: 'writer', key: String(w) } }, { signal }).then(() => 'ok' as const), () => c.clock.at(c.clock.now + rng.range(1, 10), write));
    };
    const read = (): void => {
      if (!live || c.clock.now > end) return;
      call(
        'reader',
        { kind: 'get', key: KEY },
        (signal) =>
          engine(old.id)
            .read('kv.get', { key: KEY }, { consistency: 'linearizable', signal })
            .then((r) => (r.ok ? r.outputs : Promise.reject(new Error(r.message)))),
        () => c.clock.at(c.clock.now + rng.range(1, 10), read),
      );
    };
    write();
    read();
    let newLeader = false;
    await c.run(
      () => {
        const l = c.leader();
        if (l !== undefined && l.id !== old.id) newLeader = true;
        return false;
      },
      end + READ_DEADLINE_MS,
      MAX_EVENTS,
    );
    live = false;
    return { seed: opts.seed, result: checkKvHistory(history).result, readsAfterCut, writesCompleted, newLeader };
  } finally {
    c.stop();
  }
}
