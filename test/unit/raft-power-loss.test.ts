// Durability of the Raft runtime against power cuts (SIGKILL cannot show a missing fsync): a
// simulated cluster of real runtimes on power-loss stores, every node cut at the same instant
// after its writes were acknowledged, then restarted from what its disks kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../../src/sim/cluster.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import { runSimulation } from '../../src/sim/simulator.ts';
import type { RaftRuntime } from '../../src/consensus/raft/runtime/runtime.ts';
import { Replica } from '../../src/replica/replica.ts';

const WITHIN_MS = 20_000;
const MAX_EVENTS = 2_000_000;

async function startCluster(seed: number, receipts: boolean): Promise<SimCluster> {
  const c = new SimCluster({ rng: new Xoshiro128(seed), voters: ['n1', 'n2', 'n3'], learners: ['n4'], snapshotEvery: 6, receipts });
  assert.ok(await c.run(() => c.leader() !== undefined, c.clock.now + WITHIN_MS, MAX_EVENTS), 'a leader is elected');
  return c;
}

function engine(c: SimCluster, id: string): RaftRuntime {
  const e = c.engine(id);
  assert.ok(e !== undefined, `${id} is up`);
  return e;
}

/** Cuts the power of every node at the same instant, restarts them all, waits for a leader. */
async function powerCutEverything(c: SimCluster): Promise<void> {
  for (const n of c.nodes.values()) c.crash(n, 'power cut of the whole cluster');
  for (const n of c.nodes.values()) c.start(n);
  assert.ok(await c.run(() => c.leader() !== undefined && [...c.nodes.values()].every((n) => n.runtime !== undefined), c.clock.now + WITHIN_MS, MAX_EVENTS), 'the cluster comes back');
}

test('every acknowledged write survives a power cut of every node at once', async () => {
  const c = await startCluster(11, false);
  const acked = new Map<string, string>();
  for (let i = 0; i < 24; i++) {
    // Through every member: the leader itself, followers and the learner forward to it.
    const via = `n${1 + (i % 4)}`;
    const key = `k${i}`;
    const { result } = await c.settled(engine(c, via).submit({ operator_id: 'kv.put', inputs: { key, value: `v${i}` }, idempotency: { client: 'test', key } }), WITHIN_MS);
    assert.ok(result.ok, JSON.stringify(result));
    acked.set(key, `v${i}`);
  }
  await powerCutEverything(c);
  for (const [key, value] of acked) {
    const r = await c.settled(engine(c, 'n1').read('kv.get', { key }, { consistency: 'linearizable' }), WITHIN_MS);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.outputs, { found: true, value }, `acknowledged write ${key} after the power cut`);
  }
  c.checkLogMatching();
  c.stop();
});

test("receipts are durable before the log is compacted past them: every acknowledged receipt is in its replica's chain after a power cut", async () => {
  const c = await startCluster(12, true);
  const acked: Array<{ via: string; id: string }> = [];
  for (let i = 0; i < 20; i++) {
    const via = `n${1 + (i % 4)}`;
    const outcome = await c.settled(engine(c, via).submit({ operator_id: 'counter.add', inputs: { key: 'n', delta: 1 }, idempotency: { client: 'test', key: `add-${i}` } }), WITHIN_MS);
    assert.ok(outcome.result.ok && outcome.receipt !== null, JSON.stringify(outcome.result));
    const receipt = await c.settled(outcome.receipt, WITHIN_MS);
    acked.push({ via, id: receipt.receipt_id });
  }
  // Compaction ran several times (snapshot every 6 entries) before the cut.
  assert.ok(engine(c, 'n1').core.log.snapIndex() >= 12, `n1 compacted to ${engine(c, 'n1').core.log.snapIndex()}`);
  await powerCutEverything(c);
  // The replicas re-apply what their logs kept and go on; every chain verifies.
  const r = await c.settled(engine(c, 'n2').read('kv.get', { key: 'n' }, { consistency: 'linearizable' }), WITHIN_MS);
  assert.deepEqual(r.ok && r.outputs, { found: true, value: 20 });
  for (const { via, id } of acked) {
    const replica = engine(c, via).replica;
    assert.ok(replica instanceof Replica);
    assert.ok((await c.settled(replica.log.getById(id), WITHIN_MS)) !== undefined, `receipt ${id} acknowledged by ${via} survives`);
  }
  assert.ok((await c.checkReceipts()) >= acked.length);
  c.stop();
});

test('a learner that answers clients (the relay) keeps every receipt it acknowledged through its own power cut, even when the leader compacted past its log and it restarts from a snapshot', async () => {
  const c = await startCluster(13, true);
  const learner = 'n4';
  const acked: string[] = [];
  for (let i = 0; i < 15; i++) {
    const outcome = await c.settled(engine(c, learner).submit({ operator_id: 'counter.add', inputs: { key: 'n', delta: 1 }, idempotency: { client: 'test', key: `l-${i}` } }), WITHIN_MS);
    assert.ok(outcome.result.ok && outcome.receipt !== null, JSON.stringify(outcome.result));
    acked.push((await c.settled(outcome.receipt, WITHIN_MS)).receipt_id);
  }
  // Only the learner loses power; the voters go on and compact far past its log.
  const node = c.nodes.get(learner);
  assert.ok(node !== undefined);
  c.crash(node, 'power cut of the learner');
  for (let i = 0; i < 30; i++) {
    const { result } = await c.settled(engine(c, 'n1').submit({ operator_id: 'counter.add', inputs: { key: 'n', delta: 1 }, idempotency: { client: 'test', key: `v-${i}` } }), WITHIN_MS);
    assert.ok(result.ok, JSON.stringify(result));
  }
  const target = engine(c, 'n1').status().commitIndex;
  c.start(node);
  assert.ok(await c.run(() => c.engine(learner) !== undefined, c.clock.now + WITHIN_MS, MAX_EVENTS), 'the learner restarts');
  let installed = 0;
  engine(c, learner).onEvent((e) => {
    if (e.type === 'raft:snapshot-installed') installed++;
  });
  assert.ok(await c.run(() => (c.engine(learner)?.status().appliedIndex ?? 0) >= target, c.clock.now + WITHIN_MS, MAX_EVENTS), 'the learner catches up');
  assert.ok(installed > 0, "the learner caught up from the leader's snapshot (its own log was compacted away at the leader)");
  const replica = engine(c, learner).replica;
  assert.ok(replica instanceof Replica);
  const missing: string[] = [];
  for (const id of acked) if ((await c.settled(replica.log.getById(id), WITHIN_MS)) === undefined) missing.push(id);
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} receipts the learner acknowledged are gone after its power cut`);
  c.stop();
});

test('simulator seeds with real replicas: signed receipts on power-loss stores stay valid chains through every fault', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await runSimulation({ seed, receipts: true });
    assert.ok(r.ok, `seed ${seed}: ${r.violation?.property}: ${r.violation?.detail}\nreplay: npm run sim -- --seed ${seed} --receipts --trace`);
    assert.ok(r.stats.receipts > 100 && r.stats.crashes > 0, JSON.stringify(r.stats));
  }
});

test('requests without an idempotency key take retry sessions, never a keyed slot (through the leader and a forwarding member)', async () => {
  const c = await startCluster(13, true);
  for (let i = 0; i < 6; i++) {
    const { result } = await c.settled(engine(c, `n${1 + (i % 4)}`).submit({ operator_id: 'counter.add', inputs: { key: 'anon', delta: 1 } }), WITHIN_MS);
    assert.ok(result.ok, JSON.stringify(result));
  }
  const keyed = await c.settled(engine(c, 'n2').submit({ operator_id: 'counter.add', inputs: { key: 'keyed', delta: 1 }, idempotency: { client: 'test', key: 'k1' } }), WITHIN_MS);
  assert.ok(keyed.result.ok);
  const replica = engine(c, 'n1').replica;
  assert.ok(replica instanceof Replica);
  assert.ok(await c.run(() => replica.sessions.keyed + replica.sessions.retry === 7, c.clock.now + WITHIN_MS, MAX_EVENTS), JSON.stringify(replica.sessions));
  assert.equal(replica.sessions.keyed, 1, JSON.stringify(replica.sessions));
  assert.equal(replica.sessions.retry, 6);
  c.stop();
});
