// API bench (issue 6 item 7). REST execute (kv.put, a unique key per request) at 1/16/64
// clients against (a) the relay's API on one node without consensus and (b) the three-node
// Raft cluster, against the same-run baselines: (d) a bare Fastify route on the same TLS doing
// schema validation + sha256 + ed25519 sign, and a three-member etcd on loopback driven through
// its HTTP gateway by the same client. (c) gRPC unary at 16 clients and StreamResults replay.
// Servers and load generators are separate processes; rounds are interleaved and reported as
// medians, each with the 1-minute load average, because this 2-core machine is shared.
//
// Knobs: API_BENCH_ROUNDS (3), API_BENCH_SECONDS (5), API_BENCH_WARMUP (1),
// API_BENCH_PARTS (a,b,c: which parts run; `flags` runs an A/B of V8 flags instead (or, with
// API_BENCH_AB_BEFORE=<older checkout>, of that checkout against this tree): two relay
// API servers, one with API_BENCH_FLAGS (default --max-semi-space-size=2), alternating rounds
// at each of API_BENCH_CLIENTS, CPU per request of each), API_BENCH_CLIENTS (1,16,64), API_BENCH_CPU_PROF=<dir>
// (--cpu-prof the (a) server).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createApiKey } from '../relay/api/keys-file.ts';
import { generateDevCa } from '../relay/api/tls.ts';
import { startRaftCluster, type RaftCluster } from '../test/harness/raft-cluster.ts';
import type { LoadResult, LoadSpec } from './api-load.ts';
import { cpuMs } from './proc-cpu.ts';
import type { BenchRow } from './table.ts';

const ROUNDS = Number(process.env['API_BENCH_ROUNDS'] ?? 3);
const SECONDS = Number(process.env['API_BENCH_SECONDS'] ?? 5);
const WARMUP = Number(process.env['API_BENCH_WARMUP'] ?? 1);
const PARTS = new Set((process.env['API_BENCH_PARTS'] ?? 'a,b,c').split(','));
const CPU_PROF = process.env['API_BENCH_CPU_PROF'];
const CONCURRENCY = (process.env['API_BENCH_CLIENTS'] ?? '1,16,64').split(',').map((c) => Number(c) as 1 | 16 | 64).filter((c) => c === 1 || c === 16 || c === 64);
const GRPC_CLIENTS = 16;
/** Results replayed by the StreamResults measurement (at most what (a) stored). */
const STREAM_REPLAY = 20_000;
/** The relay's default per-key limit is 1000/s; (a) lifts it to measure the pipeline itself. */
const UNLIMITED_RATE = 1_000_000;
/** Same-machine etcd anchor (anchors-etcd/README.md), used only when etcd is not on PATH. */
const ETCD_ANCHOR = { 1: { rate: 731, p99: 5 }, 16: { rate: 2220, p99: 24 }, 64: { rate: 3637, p99: 49 } } as const;

const HERE = import.meta.dirname;
const children = new Set<ChildProcess>();

/** Spawns a node script or binary and resolves with it and its first stdout line. */
function spawnReady(cmd: string, argv: string[], what: string, timeoutMs = 60_000): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no output within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited (${code}) before answering`));
    });
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(t);
      resolve({ child, line });
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

interface Sample extends LoadResult {
  load1: number;
  /** The server's CPU ms (user + system, all its threads) per successful request; NaN when not measured. */
  serverCpuMsPerReq: number;
}

/** Drives `spec`; with `serverPid`, also the server's CPU per request over warm-up and measurement (warm-up counted at the measured rate). */
async function drive(spec: LoadSpec, serverPid?: number): Promise<Sample> {
  const budget = 'durationS' in spec ? (spec.warmupS + spec.durationS) * 1000 + 60_000 : 120_000;
  const cpu0 = serverPid === undefined ? Number.NaN : cpuMs(serverPid);
  const { child, line } = await spawnReady(process.execPath, [join(HERE, 'api-load.ts'), JSON.stringify(spec)], `load generator (${spec.kind})`, budget);
  await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  const result = JSON.parse(line) as LoadResult;
  const requests = 'durationS' in spec ? (result.ok * (spec.warmupS + spec.durationS)) / spec.durationS : result.ok;
  const serverCpuMsPerReq = serverPid === undefined ? Number.NaN : (cpuMs(serverPid) - cpu0) / Math.max(1, requests);
  return { ...result, load1: loadavg()[0] ?? Number.NaN, serverCpuMsPerReq };
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Summary {
  rate: number;
  p50: number;
  p99: number;
  failed: number;
  load: string;
  rounds: number;
}

function summarize(samples: readonly Sample[]): Summary {
  const loads = samples.map((s) => s.load1);
  return {
    rate: median(samples.map((s) => s.rate)),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    failed: samples.reduce((a, s) => a + s.failed, 0),
    load: `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
    rounds: samples.length,
  };
}

function note(s: Summary, extra = ''): string {
  return `median of ${s.rounds}×${SECONDS}s; load1 ${s.load}${s.failed > 0 ? `; ${s.failed} failed` : ''}${extra}`;
}

function log(msg: string): void {
  process.stderr.write(`  api: ${msg} (load ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
}

async function makeKeys(file: string, n: number): Promise<string[]> {
  const secrets: string[] = [];
  for (let i = 0; i < n; i++) secrets.push((await createApiKey(file, `bench-${i}`, ['execute', 'read'])).secret);
  return secrets;
}

/** (a) + (c) + (d): the relay's API on one node and the bare Fastify baseline, same TLS. */
async function singleNode(dir: string, rows: BenchRow[]): Promise<void> {
  const tlsDir = join(dir, 'tls');
  await generateDevCa(tlsDir);
  const keysFile = join(dir, 'keys.json');
  const credentials = await makeKeys(keysFile, 64);
  const prof = CPU_PROF !== undefined ? [`--cpu-prof`, `--cpu-prof-dir=${CPU_PROF}`] : [];
  const relayArgs = { mode: 'relay', tlsDir, dataDir: join(dir, 'relay'), keysFile, ratePerSecond: UNLIMITED_RATE };
  const relay = await spawnReady(process.execPath, [...prof, join(HERE, 'api-server.ts'), JSON.stringify(relayArgs)], 'relay API server');
  const base = await spawnReady(process.execPath, [join(HERE, 'api-server.ts'), JSON.stringify({ mode: 'baseline', tlsDir })], 'baseline server');
  const relayUrl = (JSON.parse(relay.line) as { url: string }).url;
  const baseUrl = (JSON.parse(base.line) as { url: string }).url;
  try {
    if (PARTS.has('a')) {
      for (const c of CONCURRENCY) {
        const ours: Sample[] = [];
        const bare: Sample[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const spec = { kind: 'rest', target: 'hypersync', connections: c, warmupS: WARMUP, durationS: SECONDS } as const;
          bare.push(await drive({ ...spec, url: baseUrl, credentials: [] }, base.child.pid));
          ours.push(await drive({ ...spec, url: relayUrl, credentials }, relay.child.pid));
          log(`REST ${c} clients round ${r + 1}: baseline ${bare.at(-1)?.rate.toFixed(0)}/s ${bare.at(-1)?.serverCpuMsPerReq.toFixed(3)} ms CPU/req, relay API ${ours.at(-1)?.rate.toFixed(0)}/s ${ours.at(-1)?.serverCpuMsPerReq.toFixed(3)} ms CPU/req`);
        }
        const b = summarize(bare);
        const o = summarize(ours);
        const ratio = o.rate / b.rate;
        rows.push({ suite: 'api', name: `(d) baseline Fastify+schema+sha256+ed25519, TLS, ${c} clients`, value: b.rate, unit: 'req/s', note: `${note(b)}; p50 ${b.p50} ms, p99 ${b.p99} ms` });
        rows.push({ suite: 'api', name: `(a) REST execute kv.put, 1 node LevelDB, TLS, ${c} clients`, value: o.rate, unit: 'req/s', baseline: { name: '(d) baseline', value: b.rate }, ratio, target: '>= 0.70 of baseline', met: ratio >= 0.7, note: `${note(o)}; p50 ${o.p50} ms, p99 ${o.p99} ms` });
        const bareCpu = median(bare.map((x) => x.serverCpuMsPerReq));
        const oursCpu = median(ours.map((x) => x.serverCpuMsPerReq));
        rows.push({ suite: 'api', name: `(d) baseline server CPU per request, ${c} clients`, value: bareCpu, unit: 'ms', note: 'user+system of the server process, from /proc' });
        rows.push({ suite: 'api', name: `(a) relay API server CPU per request, ${c} clients`, value: oursCpu, unit: 'ms', baseline: { name: '(d) baseline', value: bareCpu }, ratio: oursCpu / bareCpu, note: 'user+system of the server process (LevelDB threads included), from /proc' });
        rows.push({ suite: 'api', name: `(a) REST execute ${c} clients p50 / (d) p50`, value: o.p50, unit: 'ms', baseline: { name: '(d) p50', value: b.p50 }, note: 'autocannon latencies have 1 ms resolution' });
        rows.push({ suite: 'api', name: `(a) REST execute ${c} clients p99 / (d) p99`, value: o.p99, unit: 'ms', baseline: { name: '(d) p99', value: b.p99 }, note: 'autocannon latencies have 1 ms resolution' });
      }
    }
    if (PARTS.has('c')) {
      const ca = join(tlsDir, 'ca.pem');
      const unary: Sample[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        unary.push(await drive({ kind: 'grpc-unary', url: relayUrl, ca, credentials, connections: GRPC_CLIENTS, warmupS: WARMUP, durationS: SECONDS }));
        log(`gRPC unary round ${r + 1}: ${unary.at(-1)?.rate.toFixed(0)}/s`);
      }
      const u = summarize(unary);
      rows.push({ suite: 'api', name: `(c) gRPC ExecuteOperator kv.put, HTTP/2 TLS, ${GRPC_CLIENTS} clients`, value: u.rate, unit: 'req/s', note: `${note(u)}; p50 ${u.p50.toFixed(2)} ms, p99 ${u.p99.toFixed(2)} ms; one Connect gRPC transport (HTTP/2 session) per client` });
      const stream: Sample[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        stream.push(await drive({ kind: 'grpc-stream', url: relayUrl, ca, credentials, count: STREAM_REPLAY }));
        log(`gRPC stream replay round ${r + 1}: ${stream.at(-1)?.rate.toFixed(0)} results/s (${stream.at(-1)?.ok})`);
      }
      const s = summarize(stream);
      rows.push({ suite: 'api', name: '(c) gRPC StreamResults replay of stored results, 1 client', value: s.rate, unit: 'results/s', note: `median of ${s.rounds} replays of ${stream[0]?.ok} results from index 0; load1 ${s.load}` });
    }
  } finally {
    await stop(base.child);
    await stop(relay.child);
  }
}

/**
 * API_BENCH_AB_BEFORE=<dir>: the `flags` part's A server is <dir>/bench/api-server.ts, an
 * older checkout of this repository (e.g. `git archive <commit>` unpacked, with a node_modules
 * link), so a change's before/after CPU per request comes from one run; flags then default to none.
 */
const AB_BEFORE = process.env['API_BENCH_AB_BEFORE'];
/** V8 flags the `flags` part tries against the defaults (API_BENCH_FLAGS, space-separated). */
const AB_FLAGS = (process.env['API_BENCH_FLAGS'] ?? (AB_BEFORE !== undefined ? '' : '--max-semi-space-size=2')).split(' ').filter((f) => f !== '');

/** A/B: the relay's API on one node with and without AB_FLAGS (or before/after a change), same run, alternating rounds. */
async function childFlagsAB(dir: string, rows: BenchRow[]): Promise<void> {
  const tlsDir = join(dir, 'tls-ab');
  await generateDevCa(tlsDir);
  const keysFile = join(dir, 'keys-ab.json');
  const credentials = await makeKeys(keysFile, 64);
  const args = (name: string): string => JSON.stringify({ mode: 'relay', tlsDir, dataDir: join(dir, name), keysFile, ratePerSecond: UNLIMITED_RATE });
  const nameA = AB_BEFORE !== undefined ? `before (${AB_BEFORE})` : 'default V8 flags';
  const nameB = AB_BEFORE !== undefined ? `this tree${AB_FLAGS.length > 0 ? ` with ${AB_FLAGS.join(' ')}` : ''}` : AB_FLAGS.join(' ');
  const plain = await spawnReady(process.execPath, [join(AB_BEFORE ?? join(HERE, '..'), 'bench', 'api-server.ts'), args('ab-default')], `relay API server (${nameA})`);
  const flagged = await spawnReady(process.execPath, [...AB_FLAGS, join(HERE, 'api-server.ts'), args('ab-flags')], `relay API server (${nameB})`);
  const urlOf = (line: string): string => (JSON.parse(line) as { url: string }).url;
  try {
    for (const clients of CONCURRENCY) await flagsRounds(clients, credentials, { url: urlOf(plain.line), pid: plain.child.pid, name: nameA }, { url: urlOf(flagged.line), pid: flagged.child.pid, name: nameB }, rows);
  } finally {
    await stop(plain.child);
    await stop(flagged.child);
  }
}

async function flagsRounds(clients: number, credentials: string[], A: { url: string; pid: number | undefined; name: string }, B: { url: string; pid: number | undefined; name: string }, rows: BenchRow[]): Promise<void> {
  const a: Sample[] = [];
  const b: Sample[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const spec = { kind: 'rest', target: 'hypersync', connections: clients, warmupS: WARMUP, durationS: SECONDS, credentials } as const;
    // Alternating which goes first, so neither always meets the other's leftovers.
    const first = r % 2 === 0;
    if (first) a.push(await drive({ ...spec, url: A.url }, A.pid));
    b.push(await drive({ ...spec, url: B.url }, B.pid));
    if (!first) a.push(await drive({ ...spec, url: A.url }, A.pid));
    log(`A/B ${clients} clients round ${r + 1}: ${A.name} ${a.at(-1)?.serverCpuMsPerReq.toFixed(3)} ms CPU/req (${a.at(-1)?.rate.toFixed(0)}/s), ${B.name} ${b.at(-1)?.serverCpuMsPerReq.toFixed(3)} ms CPU/req (${b.at(-1)?.rate.toFixed(0)}/s)`);
  }
  const cpuA = median(a.map((x) => x.serverCpuMsPerReq));
  const cpuB = median(b.map((x) => x.serverCpuMsPerReq));
  const sa = summarize(a);
  const sb = summarize(b);
  rows.push({ suite: 'api', name: `(flags) relay API, ${A.name}, server CPU per request, ${clients} clients`, value: cpuA, unit: 'ms', note: `${note(sa)}; ${sa.rate.toFixed(0)} req/s, p50 ${sa.p50} ms` });
  rows.push({ suite: 'api', name: `(flags) relay API, ${B.name}, server CPU per request, ${clients} clients`, value: cpuB, unit: 'ms', baseline: { name: A.name, value: cpuA }, ratio: cpuB / cpuA, note: `${note(sb)}; ${sb.rate.toFixed(0)} req/s, p50 ${sb.p50} ms; per round (A/B): ${a.map((x, i) => `${x.serverCpuMsPerReq.toFixed(3)}/${b[i]?.serverCpuMsPerReq.toFixed(3)}`).join(', ')}` });
}

interface Etcd {
  url: string;
  procs: ChildProcess[];
  leaderIsTarget: boolean;
}

async function startEtcd(dir: string): Promise<Etcd> {
  // Ports away from anchors-etcd/start.sh's 2379x/2380x, which another session may be using.
  const base = 31000 + Math.floor(Math.random() * 400) * 10;
  const client = (i: number): string => `http://127.0.0.1:${base + i}`;
  const peer = (i: number): string => `http://127.0.0.1:${base + 5 + i}`;
  const cluster = [1, 2, 3].map((i) => `e${i}=${peer(i)}`).join(',');
  const procs = [1, 2, 3].map((i) => {
    const p = spawn('etcd', ['--name', `e${i}`, '--data-dir', join(dir, `etcd-${i}`), '--listen-client-urls', client(i), '--advertise-client-urls', client(i), '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i), '--initial-cluster', cluster, '--initial-cluster-token', `bench-${base}`, '--initial-cluster-state', 'new', '--heartbeat-interval', '100', '--election-timeout', '1000'], { stdio: 'ignore' });
    children.add(p);
    p.once('exit', () => children.delete(p));
    return p;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${client(1)}/v3/maintenance/status`, { method: 'POST', body: '{}' });
      const s = (await r.json()) as { leader?: string; header?: { member_id?: string } };
      if (r.ok && s.leader !== undefined && s.leader !== '0') {
        const put = await fetch(`${client(1)}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: 'YQ==', value: 'YQ==' }) });
        if (put.ok) return { url: client(1), procs, leaderIsTarget: s.leader === s.header?.member_id };
      }
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error('etcd cluster did not elect a leader within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** (b): the three-node Raft cluster (relay learner serving the API) vs a three-member etcd. */
async function raftCluster(dir: string, rows: BenchRow[]): Promise<void> {
  const keysFile = join(dir, 'raft-keys.json');
  const credentials = await makeKeys(keysFile, 64);
  const haveEtcd = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  const etcdVersion = haveEtcd.status === 0 ? (/etcd Version: (\S+)/.exec(haveEtcd.stdout)?.[1] ?? 'unknown') : null;
  if (etcdVersion === null) process.stderr.write('  api: etcd not installed: (b) compares against the anchor numbers of anchors-etcd/README.md (not same-run)\n');
  let cluster: RaftCluster | undefined;
  let etcd: Etcd | undefined;
  try {
    // The harness serves the API over plain HTTP on loopback (it passes --insecure); etcd's
    // gateway is plain HTTP too, so both sides pay the same transport.
    cluster = await startRaftCluster({ relayArgs: ['--keys-file', keysFile] });
    if (etcdVersion !== null) etcd = await startEtcd(join(dir, 'etcd'));
    // Wait for a leader: the first write is the readiness probe.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`${cluster.api}/api/v1/operators/execute`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${credentials[0]}` }, body: JSON.stringify({ operator_id: 'kv.put', inputs: { key: 'probe', value: 1 } }) }).catch(() => undefined);
      if (r?.ok === true) break;
      if (Date.now() > deadline) throw new Error(`Raft cluster not writable within 30 s (last status ${r?.status})`);
      await new Promise((res) => setTimeout(res, 200));
    }
    for (const c of CONCURRENCY) {
      const ours: Sample[] = [];
      const theirs: Sample[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const spec = { kind: 'rest', connections: c, warmupS: WARMUP, durationS: SECONDS } as const;
        ours.push(await drive({ ...spec, target: 'hypersync', url: cluster.api, credentials }));
        if (etcd !== undefined) theirs.push(await drive({ ...spec, target: 'etcd', url: etcd.url, credentials: [] }));
        log(`Raft ${c} clients round ${r + 1}: ours ${ours.at(-1)?.rate.toFixed(0)}/s${etcd !== undefined ? `, etcd ${theirs.at(-1)?.rate.toFixed(0)}/s` : ''}`);
      }
      const o = summarize(ours);
      const e = etcd !== undefined ? summarize(theirs) : undefined;
      const ref = e !== undefined ? { name: `etcd ${etcdVersion} same run`, rate: e.rate, p99: e.p99 } : { name: 'etcd anchor (NOT same run)', rate: ETCD_ANCHOR[c].rate, p99: ETCD_ANCHOR[c].p99 };
      const ratio = o.rate / ref.rate;
      const at64 = c === 64;
      if (e !== undefined) rows.push({ suite: 'api', name: `(b) etcd ${etcdVersion} 3 members, HTTP gateway /v3/kv/put, ${c} clients`, value: e.rate, unit: 'writes/s', note: `${note(e)}; p50 ${e.p50} ms, p99 ${e.p99} ms; driven at member 1 (${etcd?.leaderIsTarget === true ? 'the leader' : 'a follower'})` });
      rows.push({
        suite: 'api',
        name: `(b) REST execute kv.put, 3-voter Raft + relay learner, ${c} clients`,
        value: o.rate,
        unit: 'writes/s',
        baseline: { name: ref.name, value: ref.rate },
        ratio,
        ...(at64 ? { target: '>= 1.00 of etcd', met: ratio >= 1 } : {}),
        note: `${note(o)}; p50 ${o.p50} ms, p99 ${o.p99} ms; plain HTTP (harness), one API key per client`,
      });
      rows.push({
        suite: 'api',
        name: `(b) Raft ${c} clients p99 vs etcd p99`,
        value: o.p99,
        unit: 'ms',
        baseline: { name: ref.name, value: ref.p99 },
        ratio: ref.p99 / o.p99,
        ...(at64 ? { target: 'p99 <= etcd p99', met: o.p99 <= ref.p99 } : {}),
      });
    }
  } finally {
    if (cluster !== undefined) for (const p of [cluster.relay, ...cluster.nodes.map((n) => n.proc)]) await stop(p.child);
    for (const p of etcd?.procs ?? []) await stop(p);
  }
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-apibench-'));
  if (CPU_PROF !== undefined) mkdirSync(CPU_PROF, { recursive: true });
  const rows: BenchRow[] = [];
  const cleanup = (): void => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', cleanup);
  try {
    if (PARTS.has('a') || PARTS.has('c')) await singleNode(dir, rows);
    if (PARTS.has('flags')) await childFlagsAB(dir, rows);
    if (PARTS.has('b')) await raftCluster(dir, rows);
  } finally {
    for (const c of [...children]) await stop(c);
    process.removeListener('exit', cleanup);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
