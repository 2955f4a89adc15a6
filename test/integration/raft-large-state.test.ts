// A Raft cluster of real processes (three `hypersync node` voters, the relay as learner, LevelDB)
// grows its state past the store's 32 MiB batch limit with 64 KiB values while one voter is
// down: every member keeps snapshotting and serving, the voter comes back and installs the
// leader's snapshot (sent in bounded chunks) while the cluster takes more writes, restarts from
// what it saved, and its own disk then holds every acknowledged write.
// Before, the first snapshot over 32 MiB failed its one storage batch and stopped every member;
// then the install never finished (each window of chunks went out as one envelope over the
// frame limit, and was refused again on every heartbeat).
// LARGE_STATE_MIB=N sets the state size (CI: 40; the devnet: 500, run by hand);
// LARGE_STATE_JSON=path writes the measurements (times, sizes, peak RSS, write latencies).
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { killAll, type JsonEvent, type Proc } from '../harness/processes.ts';
import { RaftStorage } from '../../src/consensus/raft/runtime/storage.ts';
import { decodeCommand, StateMachine, StateMachineError } from '../../src/statemachine/index.ts';
import { LevelStore } from '../../src/store/level.ts';
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
 * Time budgets. Unloaded, a value takes about 20 ms and 40 MiB installs in seconds; on this
 * 2-core machine shared with other test runs (load 5-10) 40 MiB was written in 70 s. A broken
 * install fails at its budget instead of holding CI for an hour.
 */
const WRITE_BUDGET_MS = 60_000 + VALUES * 400;
const INSTALL_BUDGET_MS = 60_000 + STATE_MIB * 2_000;
/** Small writes made one after another while the voter installs (bounded). */
const MAX_WRITES_DURING_INSTALL = 10_000;
/** How often the RSS of the leader and the installing voter is read. */
const RSS_EVERY_MS = 250;

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

async function put(key: string, v: string | number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const r = await execute(c.api, 'kv.put', { key, value: v }, { idempotency_key: key, timeout_ms: 10_000 });
    if (r.httpStatus === 200) return;
    assert.ok([0, 503, 504].includes(r.httpStatus), `unexpected ${r.httpStatus}: ${JSON.stringify(r.body).slice(0, 300)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.fail(`${key} was never acknowledged`);
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Peak RSS of each process until stopped. */
function watchRss(procs: Record<string, Proc>): { stop(): Record<string, number> } {
  const peak: Record<string, number> = {};
  const sample = (): void => {
    for (const [name, p] of Object.entries(procs)) peak[name] = Math.max(peak[name] ?? 0, rssBytes(p.pid));
  };
  sample();
  const timer = setInterval(sample, RSS_EVERY_MS);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** The state a voter's own LevelDB holds: its snapshot, then the committed entries after it. */
async function stateOnDisk(dataDir: string): Promise<StateMachine> {
  const store = await LevelStore.open(join(dataDir, 'raft'), { createIfMissing: false });
  try {
    const { storage, state } = await RaftStorage.open(store);
    const sm = state.snapshot !== undefined ? StateMachine.restore(state.snapshot.data) : new StateMachine();
    const commit = state.hardState.commit;
    for (const e of state.entries) {
      if (e.index > commit || e.type !== 'normal' || e.data.length === 0) continue;
      const cmd = decodeCommand(e.data);
      if (!(cmd instanceof StateMachineError)) sm.apply(cmd);
    }
    await storage.close();
    return sm;
  } finally {
    await store.close();
  }
}

const bigSnapshot = (type: string) => (e: JsonEvent): boolean => e.type === type && Number(e['bytes']) > MAX_BATCH_BYTES;
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

test(`${STATE_MIB} MiB of state (${VALUES} values of 64 KiB): a voter that was down installs the leader's snapshot while the cluster keeps taking writes, and its disk holds every acknowledged write`, { timeout: 120_000 + WRITE_BUDGET_MS + 3 * INSTALL_BUDGET_MS }, async () => {
  const out: Record<string, unknown> = { stateMiB: STATE_MIB, values: VALUES, valueChars: VALUE_CHARS, snapshotEvery: SNAPSHOT_EVERY, loadAvg1mAtStart: loadavg()[0] };
  // A follower goes down before the state grows: it will need the whole state by snapshot.
  const first = await clusterStatus(c.api);
  const downIndex = c.nodes.findIndex((n) => n.peerId !== first.leader);
  const down = c.nodes[downIndex]!;
  down.proc.child.kill('SIGKILL');
  await down.proc.exited;

  let next = 0;
  const started = Date.now();
  const writing = Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < VALUES; i = next++) await put(`big-${i}`, value(i));
    }),
  );
  await Promise.race([writing, new Promise((_, reject) => setTimeout(() => reject(new Error(`${VALUES} values not written in ${WRITE_BUDGET_MS} ms`)), WRITE_BUDGET_MS).unref())]);
  out['writeMs'] = Date.now() - started;
  process.stdout.write(`# ${VALUES} values (${STATE_MIB} MiB) written in ${out['writeMs']} ms\n`);

  // Every live voter took a snapshot over the old limit and is still running (the relay, a
  // learner, snapshots at its default interval).
  const live = c.nodes.filter((_, i) => i !== downIndex);
  for (const n of live) {
    await n.proc.waitFor(bigSnapshot('raft:snapshot-taken'), INSTALL_BUDGET_MS, `${n.name}: a snapshot over 32 MiB`);
    const e = n.proc.events.filter((x) => x.type === 'raft:snapshot-taken').at(-1)!;
    process.stdout.write(`# ${n.name}: snapshot at ${String(e['index'])} of ${String(e['bytes'])} bytes\n`);
    out['snapshotBytes'] = e['bytes'];
    assert.equal(n.proc.child.exitCode, null, `${n.name} is running`);
  }

  // The voter that missed everything comes back and installs a snapshot that large, while a
  // client goes on writing through the relay.
  const leader = c.nodes.find((n) => n.peerId === first.leader) ?? live[0]!;
  const target = (await clusterStatus(c.api)).commit_index;
  const installStarted = Date.now();
  const back = await c.startNode(downIndex);
  const rss = watchRss({ leader: leader.proc, voter: back.proc });
  let installing = true;
  const during: number[] = [];
  const duringWrites = (async () => {
    for (let k = 0; installing && k < MAX_WRITES_DURING_INSTALL; k++) {
      const t0 = performance.now();
      await put(`during-${k}`, k);
      during.push(performance.now() - t0);
    }
  })();
  try {
    const installed = await back.proc.waitFor(bigSnapshot('raft:snapshot-installed'), INSTALL_BUDGET_MS, `${back.name}: a snapshot over 32 MiB from the leader`);
    out['installMs'] = Date.now() - installStarted;
    out['installedBytes'] = installed['bytes'];
    process.stdout.write(`# ${back.name}: installed snapshot at ${String(installed['index'])} of ${String(installed['bytes'])} bytes in ${out['installMs']} ms\n`);
    await until(`${back.name} to apply ${target}`, async () => lastStatus(back.proc), (st) => Number(st?.['applied']) >= target, INSTALL_BUDGET_MS, 200);
    out['catchUpMs'] = Date.now() - installStarted;
  } finally {
    installing = false;
    await duringWrites;
    out['peakRssBytes'] = rss.stop();
  }
  const sorted = [...during].sort((a, b) => a - b);
  out['writesDuringInstall'] = { count: during.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) };
  process.stdout.write(`# during the install: ${during.length} writes acknowledged, p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p99 ${percentile(sorted, 0.99).toFixed(1)} ms; peak RSS ${JSON.stringify(out['peakRssBytes'])}\n`);
  assert.ok(during.length > 0, 'the cluster took writes while the voter installed');

  // It restarts from what it saved (the snapshot reloads from its own disk) and keeps up.
  back.proc.child.kill('SIGKILL');
  await back.proc.exited;
  const again = await c.startNode(downIndex);
  await put('after-restart', 1);
  const now = (await clusterStatus(c.api)).commit_index;
  await until(`${again.name} to apply ${now} after its restart`, async () => lastStatus(again.proc), (st) => Number(st?.['applied']) >= now, INSTALL_BUDGET_MS, 200);

  // Its own disk (read after a SIGKILL) holds every acknowledged write, whole.
  again.proc.child.kill('SIGKILL');
  await again.proc.exited;
  const sm = await stateOnDisk(again.dataDir);
  const get = (key: string): unknown => {
    const r = sm.query('kv.get', { key });
    return r.ok ? r.outputs : r;
  };
  for (let i = 0; i < VALUES; i++) assert.deepEqual(get(`big-${i}`), { found: true, value: value(i) }, `big-${i} on ${again.name}'s disk`);
  for (let k = 0; k < during.length; k++) assert.deepEqual(get(`during-${k}`), { found: true, value: k }, `during-${k} on ${again.name}'s disk`);
  assert.deepEqual(get('after-restart'), { found: true, value: 1 });
  for (const n of [...live, { name: 'relay', proc: c.relay }]) assert.equal(n.proc.child.exitCode, null, `${n.name} is running`);

  const json = process.env['LARGE_STATE_JSON'];
  if (json !== undefined) writeFileSync(json, `${JSON.stringify({ ...out, loadAvg1mAtEnd: loadavg()[0], at: new Date().toISOString() }, null, 2)}\n`);
});
