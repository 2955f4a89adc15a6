// The seeded simulator: a batch of seeds passes every safety and liveness property, a run is a
// pure function of its seed (replayable), and the PRNG is the reference xoshiro128**.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import { runSimulation } from '../../src/sim/simulator.ts';

describe('simulator', () => {
  it('200 seeds pass election safety, log matching, leader completeness, SM safety, linearizability, liveness', async () => {
    let ops = 0;
    let crashes = 0;
    let snapshots = 0;
    let confChanges = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = await runSimulation({ seed });
      assert.ok(r.ok, `seed ${seed}: ${r.violation?.property}: ${r.violation?.detail}\nreplay: npm run sim -- --seed ${seed} --trace`);
      ops += r.stats.opsChecked;
      crashes += r.stats.crashes;
      snapshots += r.stats.snapshotsSent;
      confChanges += r.stats.confChanges;
    }
    // The faults and features really were exercised.
    assert.ok(ops > 10_000, `ops ${ops}`);
    assert.ok(crashes > 100, `crashes ${crashes}`);
    assert.ok(snapshots > 100, `snapshot chunks ${snapshots}`);
    assert.ok(confChanges > 50, `conf changes ${confChanges}`);
  });

  it('replays a seed exactly', async () => {
    const a = await runSimulation({ seed: 42, trace: true });
    const b = await runSimulation({ seed: 42, trace: true });
    assert.deepEqual(a.stats, b.stats);
    assert.deepEqual(a.trace, b.trace);
    assert.ok(a.trace.length > 100);
  });

  it('xoshiro128** is deterministic per seed and uniform enough', () => {
    const a = new Xoshiro128(1);
    const b = new Xoshiro128(1);
    const xs = Array.from({ length: 5 }, () => a.nextU32());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
    assert.notDeepEqual(xs, Array.from({ length: 5 }, () => new Xoshiro128(2).nextU32()));
    const r = new Xoshiro128(9);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const k = r.nextInt(10);
      buckets[k] = (buckets[k] ?? 0) + 1;
    }
    assert.ok(buckets.every((n) => n > 850 && n < 1150), buckets.join(','));
  });
});
