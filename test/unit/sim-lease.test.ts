// Leader leases under clock drift, in the seeded simulator (src/sim/lease-scenario.ts): a leader
// cut off from its followers keeps answering reads from its lease while they elect a new leader
// and take writes. Within the clock-rate bound every history is linearizable; beyond it the
// linearizability checker catches the stale lease reads. A failing seed replays with
// runLeaseScenario({ seed, ... }).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CLOCK_RATE_BOUND } from '../../src/consensus/raft/index.ts';
import { runLeaseScenario } from '../../src/sim/lease-scenario.ts';

const WITHIN_SEEDS = 60;
const BEYOND_SEEDS = 20;
/** Leader 20 % slow, followers 20 % fast: a rate ratio of exactly the 1.5 bound. */
const WITHIN = { leaderRate: 1.2, followerRate: 0.8, clockRateBound: DEFAULT_CLOCK_RATE_BOUND };

describe('sim: leader leases under clock drift', () => {
  it(`within the clock-rate bound, ${WITHIN_SEEDS} seeds of a cut-off leader serving lease reads stay linearizable`, async () => {
    assert.ok(Math.abs(WITHIN.leaderRate / WITHIN.followerRate - DEFAULT_CLOCK_RATE_BOUND) < 1e-9);
    let leaseReads = 0;
    for (let seed = 1; seed <= WITHIN_SEEDS; seed++) {
      const r = await runLeaseScenario({ seed, ...WITHIN });
      assert.equal(r.result, 'ok', `seed ${seed}: ${JSON.stringify(r)}`);
      assert.ok(r.newLeader, `seed ${seed}: the followers elected no new leader`);
      assert.ok(r.writesCompleted > 0, `seed ${seed}: no write completed`);
      leaseReads += r.readsAfterCut;
    }
    // The cut-off leader could reach nobody: every read it answered came from its lease.
    assert.ok(leaseReads > WITHIN_SEEDS, `only ${leaseReads} reads answered from leases`);
  });

  it('with a leader clock 3.75x slower than its followers (beyond the 1.5 bound) the checker catches stale lease reads', async () => {
    const illegal: number[] = [];
    for (let seed = 1; seed <= BEYOND_SEEDS; seed++) {
      const r = await runLeaseScenario({ seed, leaderRate: 3, followerRate: 0.8, clockRateBound: DEFAULT_CLOCK_RATE_BOUND });
      if (r.result === 'illegal') illegal.push(seed);
    }
    assert.ok(illegal.length > 0, `no stale read caught in ${BEYOND_SEEDS} seeds`);
  });

  it('with leases off, the same drift cannot break linearizability (reads take ReadIndex rounds)', async () => {
    for (let seed = 1; seed <= BEYOND_SEEDS; seed++) {
      const r = await runLeaseScenario({ seed, leaderRate: 3, followerRate: 0.8, clockRateBound: DEFAULT_CLOCK_RATE_BOUND, leaseReads: false });
      assert.equal(r.result, 'ok', `seed ${seed}: ${JSON.stringify(r)}`);
      assert.equal(r.readsAfterCut, 0, `seed ${seed}: a cut-off leader without a lease answered a read`);
    }
  });
});
