// Three durable processes over libp2p on loopback, and etcd 3.4 beside them in the same run.
// Ours: test/harness/raft-cluster.ts (relay learner serving the API + three `hypersync node`
// voters, LevelDB each). etcd: three members on loopback (heartbeat 100 ms, election 1000 ms,
// like ../shared/anchors-etcd/start.sh), driven through its HTTP/JSON gateway. Both get the same
// closed-loop clients (keep-alive HTTP, one request in flight per client): kv put with unique
// keys and 100-byte values at 1/16/64 clients, linearizable gets at 16, and SIGKILL of the
// leader under a 16-client write load (time to a new leader). Rounds alternate ours/etcd so
// machine noise hits both; each figure is the median over rounds. Without etcd on PATH it
// still runs and says so, with the anchor numbers (measured earlier, not this run) as reference.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { killAll, tempDir } from '../test/harness/processes.ts';
import { lastStatus, startRaftCluster, type RaftCluster } from '../test/harness/raft-cluster.ts';
import { sumCpuMs } from './proc-cpu.ts';
import { percentile, type BenchRow } from './table.ts';
import { MAX_RATE_PER_SECOND } from '../relay/api/auth.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 2000);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 500);
const KILLS = Number(process.env['BENCH_KILLS'] ?? 3);
const SKIP_ETCD = process.env['BENCH_NO_ETCD'] === '1';
const WRITE_CLIENTS = [1, 16, 64] as const;
const READ_CLIENTS = 16;
const KILL_LOAD_CLIENTS = 16;
const READ_KEYS = 100;
const VALUE = 'v'.repeat(100);
/** Per-request bound; a request past it counts as an error. */
const REQUEST_TIMEOUT_MS = 10_000;
const NEW_LEADER_TIMEOUT_MS = 15_000;
/** How often the bench asks for the cluster status when the API is busy (429/503), and how long between. */
const STATUS_ATTEMPTS = 50;
const STATUS_RETRY_MS = 200;
/** Targets from issue 5. */
const TARGET_WRITE_RATIO_64 = 1.4;
const TARGET_READ_RATIO_16 = 2;
const TARGET_NEW_LEADER_MS = 1500;
/** etcd 3.4 on this machine, ../shared/anchors-etcd/README.md (used only when etcd is absent). */
const ETCD_ANCHOR = { put: { 1: 731, 16: 2220, 64: 3637 } as Record<number, number>, get16: 3084, newLeaderMs: 1142 };
const ETCD_CLIENT_PORTS = [23791, 23792, 23793];
const ETCD_PEER_PORTS = [23801, 23802, 23803];

// ---- HTTP client (the only place that knows URL, TLS and auth) -----------------------------

/** Where an API lives. `ca` and `token` are for the relay's HTTPS API (Fastify) when it lands. */
export interface ApiTarget {
  url: string;
  ca?: string | Buffer;
  token?: string;
}

export interface JsonReply {
  status: number;
  body: unknown;
}

export interface JsonClient {
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply>;
  close(): void;
}

/** Keep-alive JSON over HTTP or HTTPS; network errors and timeouts come back as status 0. */
export function jsonClient(t: ApiTarget): JsonClient {
  const u = new URL(t.url);
  const tls = u.protocol === 'https:';
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 256, ...(t.ca !== undefined ? { ca: t.ca } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const send = tls ? httpsRequest : httpRequest;
  const base = u.pathname.replace(/\/$/, '');
  return {
    request(method, path, body) {
      return new Promise((resolve) => {
        const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const headers: Record<string, string | number> = {};
        if (data !== undefined) {
          headers['content-type'] = 'application/json';
          headers['content-length'] = data.length;
        }
        if (t.token !== undefined) headers['authorization'] = `Bearer ${t.token}`;
        const req = send({ host: u.hostname, port: u.port, path: base + path, method, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => resolve({ status: 0, body: { error: e.message } }));
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        });
        req.on('timeout', () => req.destroy(new Error('request timeout')));
        req.on('error', (e) => resolve({ status: 0, body: { error: e.message } }));
        req.end(data);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

// ---- closed-loop load -----------------------------------------------------------------------

interface LoadResult {
  opsPerSec: number;
  latencyMs: number[];
  errors: number;
  load1: number;
  /** CPU (user + system) the system's server processes spent per successful op; NaN off Linux. */
  serverCpuMsPerOp: number;
}


/** `clients` workers, one op in flight each, for warm-up + `ms`; only the measured window counts. */
async function closedLoop(clients: number, ms: number, op: (worker: number, i: number) => Promise<boolean>, pids: readonly number[]): Promise<LoadResult> {
  const warmEnd = performance.now() + WARMUP_MS;
  const end = warmEnd + ms;
  const latencyMs: number[] = [];
  let errors = 0;
  let cpuStart = Number.NaN;
  const cpuTimer = setTimeout(() => (cpuStart = sumCpuMs(pids)), WARMUP_MS);
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      const ok = await op(w, i);
      const t1 = performance.now();
      if (t0 < warmEnd) continue;
      if (ok) latencyMs.push(t1 - t0);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
  clearTimeout(cpuTimer);
  const serverCpuMsPerOp = (sumCpuMs(pids) - cpuStart) / Math.max(1, latencyMs.length);
  return { opsPerSec: (latencyMs.length * 1000) / ms, latencyMs, errors, load1: loadavg()[0] as number, serverCpuMsPerOp };
}

/** Failed requests of the current round by HTTP status and error code (printed with the round). */
const roundErrors = new Map<string, number>();
function noteError(what: string): void {
  roundErrors.set(what, (roundErrors.get(what) ?? 0) + 1);
}
function takeErrors(): string {
  const s = [...roundErrors].map(([k, n]) => `${n} x ${k}`).join(', ');
  roundErrors.clear();
  return s === '' ? '' : ` (${s})`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** One system under test, as the bench sees it. */
interface System {
  name: string;
  put(worker: number, i: number, tag: string): Promise<boolean>;
  get(worker: number, i: number): Promise<boolean>;
  preload(): Promise<void>;
  /** Server process ids (for CPU accounting). */
  pids(): number[];
  /** SIGKILLs the leader under load, returns ms to a new leader, restarts the victim. */
  killLeader(): Promise<number>;
  stop(): Promise<void>;
}

// ---- ours -----------------------------------------------------------------------------------

async function startOurs(): Promise<System> {
  // The relay's per-principal rate limit (1000/s) is lifted: etcd has none, and the bench's
  // clients share one token.
  const c: RaftCluster = await startRaftCluster({ voters: 3, relayArgs: ['--rate-limit', String(MAX_RATE_PER_SECOND)] });
  const api = jsonClient({ url: c.api, token: c.token });
  const status = async (): Promise<{ leader: string | null; commit_index: number }> => {
    // The clients of underLoad keep the API busy: a 429 or 503 here is asked again, not read as a status.
    for (let attempt = 0; attempt < STATUS_ATTEMPTS; attempt++) {
      const r = await api.request('GET', '/api/v1/cluster');
      if (r.status === 200) return r.body as { leader: string | null; commit_index: number };
      await new Promise((res) => setTimeout(res, STATUS_RETRY_MS));
    }
    throw new Error(`raft-cluster bench: GET /api/v1/cluster did not answer 200 in ${STATUS_ATTEMPTS} attempts`);
  };
  await waitFor('our cluster to elect a leader', async () => typeof (await status()).leader === 'string', 30_000);
  const exec = async (operator_id: string, inputs: unknown, options: Record<string, unknown> = {}): Promise<boolean> => {
    const r = await api.request('POST', '/api/v1/operators/execute', { operator_id, inputs, options });
    if (r.status !== 200) noteError(`${r.status} ${(r.body as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`.trim());
    return r.status === 200;
  };
  return {
    name: 'ours',
    pids: () => [c.relay.pid, ...c.nodes.map((n) => n.proc.pid)],
    put: (w, i, tag) => exec('kv.put', { key: `bench/${tag}/${w}/${i}`, value: VALUE }),
    get: (w, i) => exec('kv.get', { key: `rk/${(w * 7919 + i) % READ_KEYS}` }, { read: 'linearizable' }),
    async preload() {
      for (let i = 0; i < READ_KEYS; i += 16) await Promise.all(Array.from({ length: Math.min(16, READ_KEYS - i) }, (_, j) => exec('kv.put', { key: `rk/${i + j}`, value: VALUE })));
    },
    async killLeader() {
      const before = await status();
      const li = c.nodes.findIndex((n) => n.peerId === before.leader);
      if (li < 0) throw new Error(`raft-cluster bench: leader ${before.leader} is not a node`);
      const victim = c.nodes[li]!;
      const survivors = c.nodes.filter((_, i) => i !== li);
      return underLoad(async () => {
        const killedAt = Date.now();
        victim.proc.child.kill('SIGKILL');
        await victim.proc.exited;
        const elected = await Promise.race(
          survivors.map((n) => n.proc.waitFor((e) => e.type === 'raft:role' && e['role'] === 'leader' && Date.parse(String(e['at'])) >= killedAt, NEW_LEADER_TIMEOUT_MS, 'a new leader')),
        );
        return Date.parse(String(elected['at'])) - killedAt;
      }, (w, i) => exec('kv.put', { key: `kill/${Date.now()}/${w}/${i}`, value: VALUE }), async () => {
        const back = await c.startNode(li);
        const target = (await status()).commit_index;
        await waitFor(`${back.name} to catch up to ${target}`, async () => Number(lastStatus(back.proc)?.['applied']) >= target, 60_000);
      });
    },
    async stop() {
      api.close();
      await killAll();
      rmSync(c.dir, { recursive: true, force: true });
    },
  };
}

// ---- etcd -----------------------------------------------------------------------------------

function etcdInstalled(): boolean {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const etcdProcs = new Set<ChildProcess>();
function killEtcd(): void {
  for (const p of etcdProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}
process.once('exit', killEtcd);

async function startEtcd(): Promise<System> {
  const dir = tempDir('hypersync-etcd-');
  mkdirSync(join(dir, 'logs'));
  const cluster = ETCD_PEER_PORTS.map((p, i) => `n${i + 1}=http://127.0.0.1:${p}`).join(',');
  const procs: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  const startMember = (i: number): void => {
    const name = `n${i + 1}`;
    const log = openSync(join(dir, 'logs', `${name}.log`), 'a');
    const p = spawn('etcd', [
      '--name', name, '--data-dir', join(dir, 'data', name),
      '--listen-client-urls', `http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}`, '--advertise-client-urls', `http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}`,
      '--listen-peer-urls', `http://127.0.0.1:${ETCD_PEER_PORTS[i]}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${ETCD_PEER_PORTS[i]}`,
      '--initial-cluster', cluster, '--initial-cluster-token', 'hypersync-bench', '--initial-cluster-state', 'new',
      '--heartbeat-interval', '100', '--election-timeout', '1000',
    ], { stdio: ['ignore', log, log] });
    etcdProcs.add(p);
    procs[i] = p;
    exits[i] = new Promise((r) => p.once('exit', () => r()));
  };
  for (let i = 0; i < 3; i++) startMember(i);
  const eps = ETCD_CLIENT_PORTS.map((p) => jsonClient({ url: `http://127.0.0.1:${p}` }));
  type Status = { header?: { member_id?: string }; leader?: string } | undefined;
  const statuses = async (): Promise<Status[]> => Promise.all(eps.map(async (e) => {
    const r = await e.request('POST', '/v3/maintenance/status', {});
    return r.status === 200 ? (r.body as Status) : undefined;
  }));
  const healthy = async (): Promise<boolean> => {
    const ss = await statuses();
    return ss.every((s) => s?.leader !== undefined && s.leader !== '0' && s.leader === ss[0]?.leader);
  };
  await waitFor('etcd to elect a leader', healthy, 30_000);
  const put = async (ep: number, key: string): Promise<boolean> => (await eps[ep % 3]!.request('POST', '/v3/kv/put', { key: b64(key), value: b64(VALUE) })).status === 200;
  return {
    name: 'etcd',
    pids: () => procs.map((p) => p.pid ?? -1),
    put: (w, i, tag) => put(w, `bench/${tag}/${w}/${i}`),
    async get(w, i) {
      const r = await eps[w % 3]!.request('POST', '/v3/kv/range', { key: b64(`rk/${(w * 7919 + i) % READ_KEYS}`) });
      return r.status === 200;
    },
    async preload() {
      for (let i = 0; i < READ_KEYS; i += 16) await Promise.all(Array.from({ length: Math.min(16, READ_KEYS - i) }, (_, j) => put(j, `rk/${i + j}`)));
    },
    async killLeader() {
      const ss = await statuses();
      const li = ss.findIndex((s) => s?.leader !== undefined && s.leader === s.header?.member_id);
      if (li < 0) throw new Error('raft-cluster bench: no etcd leader found');
      const oldLeader = ss[li]!.leader;
      // A failed request moves the worker to the next endpoint (the victim refuses).
      const failedOver = new Map<number, number>();
      return underLoad(async () => {
        const killedAt = Date.now();
        procs[li]!.kill('SIGKILL');
        const deadline = killedAt + NEW_LEADER_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const rest = await Promise.all(eps.filter((_, j) => j !== li).map(async (e) => (await e.request('POST', '/v3/maintenance/status', {})).body as Status));
          if (rest.some((s) => s?.leader !== undefined && s.leader !== '0' && s.leader !== oldLeader)) return Date.now() - killedAt;
          await sleep(10);
        }
        throw new Error(`etcd: no new leader within ${NEW_LEADER_TIMEOUT_MS} ms`);
      }, async (w, i) => {
        const ep = w + (failedOver.get(w) ?? 0);
        const ok = await put(ep, `kill/${Date.now()}/${w}/${i}`);
        if (!ok) failedOver.set(w, (failedOver.get(w) ?? 0) + 1);
        return ok;
      }, async () => {
        await exits[li];
        startMember(li); // an existing data dir: rejoins with its identity
        await waitFor('etcd member to rejoin', healthy, 60_000);
      });
    },
    async stop() {
      for (const e of eps) e.close();
      killEtcd();
      await Promise.all(exits);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- shared steps ---------------------------------------------------------------------------

async function waitFor(what: string, pred: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await pred()) return;
    } catch {
      // not reachable yet
    }
    await sleep(25);
  }
  throw new Error(`raft-cluster bench: timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Runs `kill` under a KILL_LOAD_CLIENTS write load, stops the load, then `recover`. */
async function underLoad(kill: () => Promise<number>, op: (w: number, i: number) => Promise<boolean>, recover: () => Promise<void>): Promise<number> {
  let stop = false;
  const workers = Array.from({ length: KILL_LOAD_CLIENTS }, async (_, w) => {
    for (let i = 0; !stop; i++) if (!(await op(w, i))) await sleep(20);
  });
  await sleep(1000);
  try {
    return await kill();
  } finally {
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    await recover();
  }
}

function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

function uptime(): string {
  return loadavg().map((l) => l.toFixed(2)).join(', ');
}

interface Series {
  rounds: LoadResult[];
}

function summary(s: Series): { opsPerSec: number; p50: number; p99: number; errors: number; loads: string; cpuMsPerOp: number } {
  const all = s.rounds.flatMap((r) => r.latencyMs);
  const loads = s.rounds.map((r) => r.load1);
  return {
    opsPerSec: median(s.rounds.map((r) => r.opsPerSec)),
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    errors: s.rounds.reduce((a, r) => a + r.errors, 0),
    loads: `load1 ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
    cpuMsPerOp: median(s.rounds.map((r) => r.serverCpuMsPerOp)),
  };
}

function log(line: string): void {
  process.stderr.write(`raft-cluster: ${line} (load ${uptime()})\n`);
}

export async function run(): Promise<BenchRow[]> {
  const systems: System[] = [];
  let etcdNote: string | undefined;
  const stopAll = async (): Promise<void> => {
    for (const s of systems) await s.stop().catch(() => undefined);
  };
  const onSignal = (): void => {
    killEtcd();
    void killAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log('starting our cluster');
    systems.push(await startOurs());
    if (SKIP_ETCD) etcdNote = 'etcd skipped (BENCH_NO_ETCD=1)';
    else if (!etcdInstalled()) etcdNote = 'etcd not installed';
    else {
      const busy = (await Promise.all([...ETCD_CLIENT_PORTS, ...ETCD_PEER_PORTS].map(portInUse))).some((b) => b);
      if (busy) etcdNote = 'etcd ports 2379x/2380x busy; etcd not measured';
      else {
        log('starting etcd');
        systems.push(await startEtcd());
      }
    }
    if (etcdNote !== undefined) log(`${etcdNote}; comparing with the anchor numbers instead`);
    for (const s of systems) await s.preload();

    const tag = Date.now().toString(36);
    const series = new Map<string, Series>();
    const at = (sys: string, phase: string): Series => {
      const k = `${sys}/${phase}`;
      let s = series.get(k);
      if (s === undefined) series.set(k, (s = { rounds: [] }));
      return s;
    };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of WRITE_CLIENTS) {
        for (const s of systems) {
          const r = await closedLoop(n, ROUND_MS, (w, i) => s.put(w, i, `${tag}-${round}-${n}`), s.pids());
          at(s.name, `put${n}`).rounds.push(r);
          log(`round ${round} ${s.name} put x${n}: ${Math.round(r.opsPerSec)}/s p50 ${percentile(r.latencyMs, 50).toFixed(1)} ms p99 ${percentile(r.latencyMs, 99).toFixed(1)} ms, ${r.errors} errors${takeErrors()}, server CPU ${r.serverCpuMsPerOp.toFixed(2)} ms/op`);
        }
      }
      for (const s of systems) {
        const r = await closedLoop(READ_CLIENTS, ROUND_MS, (w, i) => s.get(w, i), s.pids());
        at(s.name, `get${READ_CLIENTS}`).rounds.push(r);
        log(`round ${round} ${s.name} linearizable get x${READ_CLIENTS}: ${Math.round(r.opsPerSec)}/s p50 ${percentile(r.latencyMs, 50).toFixed(1)} ms p99 ${percentile(r.latencyMs, 99).toFixed(1)} ms, ${r.errors} errors${takeErrors()}, server CPU ${r.serverCpuMsPerOp.toFixed(2)} ms/op`);
      }
    }
    const kills = new Map<string, number[]>();
    for (let k = 1; k <= KILLS; k++) {
      for (const s of systems) {
        const ms = await s.killLeader();
        kills.set(s.name, [...(kills.get(s.name) ?? []), ms]);
        log(`kill ${k} ${s.name}: new leader ${ms} ms after SIGKILL`);
      }
    }

    const rows: BenchRow[] = [];
    const etcdRun = systems.some((s) => s.name === 'etcd');
    const baseLabel = etcdRun ? 'etcd (this run)' : 'etcd anchor (README, not this run)';
    const phases: { phase: string; what: string; anchor: number; target?: number }[] = [
      ...WRITE_CLIENTS.map((n) => ({ phase: `put${n}`, what: `writes, ${n} client${n === 1 ? '' : 's'}`, anchor: ETCD_ANCHOR.put[n] as number, ...(n === 64 ? { target: TARGET_WRITE_RATIO_64 } : {}) })),
      { phase: `get${READ_CLIENTS}`, what: `linearizable reads, ${READ_CLIENTS} clients`, anchor: ETCD_ANCHOR.get16, target: TARGET_READ_RATIO_16 },
    ];
    for (const p of phases) {
      const ours = summary(at('ours', p.phase));
      const etcd = etcdRun ? summary(at('etcd', p.phase)) : undefined;
      const base = etcd?.opsPerSec ?? p.anchor;
      const ratio = ours.opsPerSec / base;
      rows.push({
        suite: 'raft-cluster',
        name: `3 processes, ${p.what}`,
        value: ours.opsPerSec,
        unit: 'ops/s',
        baseline: { name: baseLabel, value: base },
        ratio,
        ...(p.target !== undefined ? { target: `>= ${p.target}x etcd`, met: ratio >= p.target } : {}),
        note: `median of ${ROUNDS} x ${ROUND_MS} ms; ${ours.errors} errors; ${ours.loads}${etcdNote !== undefined ? `; ${etcdNote}` : ''}`,
      });
      rows.push({ suite: 'raft-cluster', name: `3 processes, ${p.what}: p50`, value: ours.p50, unit: 'ms' });
      rows.push({ suite: 'raft-cluster', name: `3 processes, ${p.what}: p99`, value: ours.p99, unit: 'ms' });
      rows.push({
        suite: 'raft-cluster',
        name: `3 processes, ${p.what}: server CPU per op`,
        value: ours.cpuMsPerOp,
        unit: 'ms',
        ...(etcd !== undefined ? { baseline: { name: 'etcd', value: etcd.cpuMsPerOp }, ratio: ours.cpuMsPerOp / etcd.cpuMsPerOp } : {}),
        note: 'user+system CPU of relay + 3 voters (etcd: its 3 members) per successful op, from /proc',
      });
      if (etcd !== undefined) {
        rows.push({ suite: 'raft-cluster', name: `etcd, ${p.what}`, value: etcd.opsPerSec, unit: 'ops/s', note: `${etcd.errors} errors; ${etcd.loads}` });
        rows.push({ suite: 'raft-cluster', name: `etcd, ${p.what}: p50`, value: etcd.p50, unit: 'ms' });
        rows.push({ suite: 'raft-cluster', name: `etcd, ${p.what}: p99`, value: etcd.p99, unit: 'ms' });
      }
    }
    const loads = [...series.values()].flatMap((x) => x.rounds.map((r) => r.load1));
    rows.push({ suite: 'raft-cluster', name: 'machine load during the rounds (1-min avg, 2 cores), max', value: Math.max(...loads), unit: 'load', note: `min ${Math.min(...loads).toFixed(2)}; other engineers share the machine` });
    const ourKill = median(kills.get('ours') ?? []);
    const etcdKill = etcdRun ? median(kills.get('etcd') ?? []) : ETCD_ANCHOR.newLeaderMs;
    rows.push({
      suite: 'raft-cluster',
      name: `new leader after SIGKILL of the leader (median of ${KILLS}, ${KILL_LOAD_CLIENTS}-client write load)`,
      value: ourKill,
      unit: 'ms',
      baseline: { name: baseLabel, value: etcdKill },
      ratio: etcdKill / ourKill,
      target: `<= ${TARGET_NEW_LEADER_MS} ms`,
      met: ourKill <= TARGET_NEW_LEADER_MS,
      note: `ours ${(kills.get('ours') ?? []).join('/')} ms${etcdRun ? `; etcd ${(kills.get('etcd') ?? []).join('/')} ms (polled /v3/maintenance/status every 10 ms)` : ''}; ratio = etcd/ours`,
    });
    return rows;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await stopAll();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatTable } = await import('./table.ts');
  process.stdout.write(formatTable(await run()) + '\n');
}
