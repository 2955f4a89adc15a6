// A snapshot transfer to a returning follower, with the real runtimes in the seeded simulator:
// the leader keeps taking writes while the follower installs, and must not take its next
// snapshot meanwhile (that restarts the transfer from the first chunk; a large state that keeps
// taking writes was then never installed), for at most SNAPSHOT_DEFER_INTERVALS intervals.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import { SNAPSHOT_DEFER_INTERVALS } from '../../src/consensus/raft/runtime/limits.ts';

const IDS = ['n1', 'n2', 'n3'];
const SNAPSHOT_EVERY = 10;
/** Each value a couple of snapshot chunks (2 KiB in the simulator), so a transfer takes round trips. */
const VALUE = 'x'.repeat(3000);

for (const seed of [11, 12, 13, 14, 15]) {
  test(`seed ${seed}: writes during a snapshot transfer do not restart it, and the follower catches up`, async () => {
    const c = new SimCluster({ rng: new Xoshiro128(seed), voters: IDS, learners: [], snapshotEvery: SNAPSHOT_EVERY, receipts: true });
    try {
      assert.ok(await c.run(() => c.leader() !== undefined, c.clock.now + 30_000, 1_000_000), 'a leader');
      const leaderId = c.leader()!.id;
      const leader = c.engine(leaderId)!;
      const behind = IDS.find((id) => id !== leaderId)!;
      const taken: number[] = [];
      leader.onEvent((e) => void (e.type === 'raft:snapshot-taken' && taken.push(e.index)));
      const installed: number[] = [];
      c.engine(behind)!.onEvent((e) => void (e.type === 'raft:snapshot-installed' && installed.push(e.index)));
      const cut = (on: boolean): void => {
        for (const o of IDS) {
          if (o === behind) continue;
          for (const k of [`${o}>${behind}`, `${behind}>${o}`]) {
            if (on) c.net.blocked.add(k);
            else c.net.blocked.delete(k);
          }
        }
      };
      const write = (key: string): Promise<unknown> => leader.submit({ operator_id: 'kv.put', inputs: { key, value: VALUE } });

      cut(true);
      await c.settled(Promise.all(Array.from({ length: 3 * SNAPSHOT_EVERY }, (_, i) => write(`a${i}`))), 60_000);
      assert.ok(await c.run(() => taken.length > 0, c.clock.now + 10_000, 1_000_000), 'the leader compacted while the follower was away');
      // The snapshot of every chunk the follower receives: one transfer, never restarted.
      const chunksOf = new Set<number>();
      c.net.onDeliver = (_from, to, payload) => {
        if (to !== behind || payload['k'] !== 'raft' || !Array.isArray(payload['msgs'])) return;
        for (const m of payload['msgs'] as Array<Record<string, unknown>>) if (m['type'] === 'snapshot') chunksOf.add((m['meta'] as { index: number }).index);
      };

      // Back: more than a snapshot interval of writes lands while it installs.
      cut(false);
      const more = Promise.all(Array.from({ length: 2 * SNAPSHOT_EVERY }, (_, i) => write(`b${i}`)));
      assert.ok(await c.run(() => installed.length > 0, c.clock.now + 60_000, 1_000_000), `${behind} installed a snapshot`);
      assert.deepEqual([...chunksOf], [installed[0]], 'chunks of one snapshot only: the transfer was not restarted');
      const takenBefore = taken.length;
      await c.settled(more, 60_000);

      // Then the log it kept brings the follower up to date, and snapshots resume.
      const follower = c.engine(behind)!;
      const target = leader.raftStatus().commit;
      assert.ok(await c.run(() => follower.raftStatus().applied >= target, c.clock.now + 30_000, 1_000_000), `${behind} applied ${target}`);
      await c.settled(Promise.all(Array.from({ length: SNAPSHOT_EVERY }, (_, i) => write(`c${i}`))), 60_000);
      assert.ok(await c.run(() => taken.length > takenBefore, c.clock.now + 10_000, 1_000_000), 'the leader snapshots again once the transfer is over');
      assert.ok(taken.at(-1)! - installed[0]! <= (SNAPSHOT_DEFER_INTERVALS + 1) * SNAPSHOT_EVERY, `a snapshot at ${taken.at(-1)}, the transfer's at ${installed[0]}`);
    } finally {
      c.stop();
    }
  });
}
