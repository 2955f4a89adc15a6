// A Raft cluster of real processes (three `hypersync node` voters, the relay as learner, LevelDB)
// grows its state past the store's 32 MiB batch limit with 64 KiB values: every member keeps
// snapshotting and serving, a voter that was down the whole time catches up by a snapshot that
// large (sent and saved in bounded chunks), and restarts from it. Before, the first snapshot
// over 32 MiB failed its one storage batch and stopped every member.
// LARGE_STATE_MIB=N sets the state size (CI: 40; the devnet: 500, run by hand).
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { killAll, type JsonEvent } from '../harness/processes.ts';
import { MAX_BATCH_BYTES } from '../../src/store/types.ts';
import { clusterStatus, execute, lastStatus, startRaftCluster, until, type RaftCluster } from '../harness/raft-cluster.ts';

const STATE_MIB = Math.max(34, Number(process.env['LARGE_STATE_MIB'] ?? 40));
/** Characters per value: its JSON (quotes included) stays under the 64 KiB value limit. */
const VALUE_CHARS = 65_000;
const VALUES = Math.ceil((STATE_MIB * 1024 * 1024) / VALUE_CHARS);
/** About four snapshots while the state grows, the last one over the old limit. */
const SNAPSHOT_EVERY = Math.max(100, Math.floor(VALUES / 4));
const CLIENTS = 4;
/**
 * Time budget per value. Unloaded, a value takes about 0.2 s; a 2-core machine shared with
 * other test runs (load 30) was measured near 2 s, so the budget is generous.
 */
const MS_PER_VALUE = 3000;

let c: RaftCluster;

before(async () => {
  // Long ticks (elections after 1.6-3.2 s): this test is about state size, and on a loaded
  // 2-core machine 64 KiB values can starve a follower past the default 400-800 ms.
  c = await startRaftCluster({ voters: 3, snapshotEvery: SNAPSHOT_EVERY, tickMs: 200, readyTimeoutMs: 120_000 });
  await until('a leader known to the relay', () => clusterStatus(c.api), (s) => s.leader !== null, 30_000);
});

after(async () => {
  await killAll();
});

function value(i: number): string {
  const head = `v${i}:`;
  return head + String.fromCharCode(97 + (i % 26)).repeat(VALUE_CHARS - head.length);
}

async function put(i: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const r = await execute(c.api, 'kv.put', { key: `big-${i}`, value: value(i) }, { idempotency_key: `big-${i}`, timeout_ms: 10_000 });
    if (r.httpStatus === 200) return;
    assert.ok([0, 503, 504].includes(r.httpStatus), `unexpected ${r.httpStatus}: ${JSON.stringify(r.body).slice(0, 300)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.fail(`big-${i} was never acknowledged`);
}

const bigSnapshot = (type: string) => (e: JsonEvent): boolean => e.type === type && Number(e['bytes']) > MAX_BATCH_BYTES;

test(`${STATE_MIB} MiB of state (${VALUES} values of 64 KiB): snapshots over the 32 MiB batch limit are taken, installed by a voter that was down, and reloaded; the cluster keeps serving`, { timeout: 120_000 + VALUES * MS_PER_VALUE * 2 }, async () => {
  // A follower goes down before the state grows: it will need the whole state by snapshot.
  const first = await clusterStatus(c.api);
  const downIndex = c.nodes.findIndex((n) => n.peerId !== first.leader);
  const down = c.nodes[downIndex]!;
  down.proc.child.kill('SIGKILL');
  await down.proc.exited;

  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < VALUES; i = next++) await put(i);
    }),
  );
  process.stdout.write(`# ${VALUES} values (${STATE_MIB} MiB) written in ${Date.now() - started} ms\n`);

  // Every live voter took a snapshot over the old limit and is still running (the relay, a
  // learner, snapshots at its default interval).
  const live = c.nodes.filter((_, i) => i !== downIndex);
  for (const n of live) {
    const e = await n.proc.waitFor(bigSnapshot('raft:snapshot-taken'), VALUES * MS_PER_VALUE, `${n.name}: a snapshot over 32 MiB`);
    process.stdout.write(`# ${n.name}: snapshot at ${String(e['index'])} of ${String(e['bytes'])} bytes\n`);
    assert.equal(n.proc.child.exitCode, null, `${n.name} is running`);
  }

  // The voter that missed everything comes back and installs a snapshot that large.
  const target = (await clusterStatus(c.api)).commit_index;
  const back = await c.startNode(downIndex);
  const installed = await back.proc.waitFor(bigSnapshot('raft:snapshot-installed'), VALUES * MS_PER_VALUE, `${back.name}: a snapshot over 32 MiB from the leader`);
  process.stdout.write(`# ${back.name}: installed snapshot at ${String(installed['index'])} of ${String(installed['bytes'])} bytes\n`);
  await until(`${back.name} to apply ${target}`, async () => lastStatus(back.proc), (st) => Number(st?.['applied']) >= target, VALUES * MS_PER_VALUE, 200);

  // It restarts from what it saved (the snapshot reloads from its own disk) and keeps up.
  back.proc.child.kill('SIGKILL');
  await back.proc.exited;
  const again = await c.startNode(downIndex);
  const write = await execute(c.api, 'kv.put', { key: 'after-restart', value: 1 }, { timeout_ms: 20_000 });
  assert.equal(write.httpStatus, 200, JSON.stringify(write.body));
  const now = (await clusterStatus(c.api)).commit_index;
  await until(`${again.name} to apply ${now} after its restart`, async () => lastStatus(again.proc), (st) => Number(st?.['applied']) >= now, VALUES * MS_PER_VALUE, 200);

  // The state is all there: a sample of values read back whole, linearizably.
  for (const i of [0, Math.floor(VALUES / 2), VALUES - 1]) {
    const r = await execute(c.api, 'kv.get', { key: `big-${i}` }, { read: 'linearizable', timeout_ms: 20_000 });
    assert.equal(r.httpStatus, 200, JSON.stringify(r.body).slice(0, 300));
    assert.deepEqual(r.body.outputs, { found: true, value: value(i) }, `big-${i}`);
  }
  for (const n of [...c.nodes, { name: 'relay', proc: c.relay }]) assert.equal(n.proc.child.exitCode, null, `${n.name} is running`);
});
