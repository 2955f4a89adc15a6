// PBFT n = 4 over libp2p on loopback against Raft in the same run: a devnet (relay + four
// `hypersync node` processes: Raft on three with the relay as learner, PBFT on all four with the
// relay as client) driven through the relay's REST API by closed-loop clients (one request in
// flight each, kv.put with unique keys) at 1, 16 and 64 clients. Raft writes go through the
// relay's engine, PBFT writes with options.consensus 'pbft'; batching on (64 per round) and off
// (a second devnet with --pbft-max-batch 1). Reports writes/s, p50/p99, CPU ms per write (all
// five processes, from /proc), and the replicas' signatures made and verified per request (from
// their status). Raft and PBFT alternate per client count, so machine noise hits both.
import { readFileSync, existsSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { killAll, run as runProcess, tempDir, type Proc } from '../test/harness/processes.ts';
import { freePortBase } from '../test/harness/ports.ts';
import { percentile, type BenchRow } from './table.ts';

const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 4000);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 1000);
const CLIENTS = [1, 16, 64] as const;
const REQUEST_TIMEOUT_MS = 10_000;
const STARTUP_MS = 180_000;
const TARGET_RATIO_64 = 0.5;
const CLOCK_TICKS_PER_S = 100;

interface Endpoints {
  rest: string;
  token: string;
  ca: string;
  peers: Array<{ pid: number }>;
}

interface ReplicaStatus {
  requests_executed: number;
  signatures_made: number;
  signatures_verified: number;
}

interface Devnet {
  proc: Proc;
  endpoints: Endpoints;
  agent: Agent;
  ca: Buffer;
}

async function startDevnet(extra: string[]): Promise<Devnet> {
  const dir = join(tempDir(), 'devnet');
  const base = await freePortBase();
  const proc = runProcess('bench-devnet', ['devnet', '--dir', dir, '--port-base', String(base), '--no-web', ...extra]);
  const end = Date.now() + STARTUP_MS;
  while (!existsSync(join(dir, 'endpoints.json'))) {
    if (Date.now() > end) throw new Error('the devnet did not come up');
    await new Promise((r) => setTimeout(r, 200));
  }
  const endpoints = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')) as Endpoints;
  return { proc, endpoints, agent: new Agent({ keepAlive: true, maxSockets: 128 }), ca: readFileSync(endpoints.ca) };
}

function post(d: Devnet, path: string, body: unknown): Promise<number> {
  return call(d, 'POST', path, body).then((r) => r.status);
}

function call(d: Devnet, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${d.endpoints.rest}${path}`, { method, agent: d.agent, ca: d.ca, headers: { authorization: `Bearer ${d.endpoints.token}`, ...(data !== undefined ? { 'content-type': 'application/json' } : {}) }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

function cpuTicks(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      sum += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return sum;
}

async function replicaTotals(d: Devnet): Promise<ReplicaStatus> {
  const r = await call(d, 'GET', '/api/v1/cluster');
  const replicas = ((r.json as { pbft?: { replicas?: ReplicaStatus[] } }).pbft?.replicas ?? []);
  return replicas.reduce((a, s) => ({ requests_executed: a.requests_executed + s.requests_executed, signatures_made: a.signatures_made + s.signatures_made, signatures_verified: a.signatures_verified + s.signatures_verified }), { requests_executed: 0, signatures_made: 0, signatures_verified: 0 });
}

let keySeq = 0;

async function closedLoop(d: Devnet, clients: number, pbft: boolean, ms: number): Promise<{ ok: number; errors: number; latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await post(d, '/api/v1/operators/execute', { operator_id: 'kv.put', inputs: { key: `k${keySeq++}`, value: 'v'.repeat(100) }, options: { timeout_ms: REQUEST_TIMEOUT_MS, ...(pbft ? { consensus: 'pbft' } : {}) } }).catch(() => 0);
        if (status === 200) {
          ok++;
          latencies.push(performance.now() - t);
        } else errors++;
      }
    }),
  );
  return { ok, errors, latencies, seconds: (performance.now() - start) / 1000 };
}

async function ready(d: Devnet): Promise<void> {
  for (const pbft of [false, true]) {
    const end = Date.now() + 60_000;
    while ((await post(d, '/api/v1/operators/execute', { operator_id: 'kv.put', inputs: { key: 'warm', value: 1 }, options: pbft ? { consensus: 'pbft' } : {} }).catch(() => 0)) !== 200) {
      if (Date.now() > end) throw new Error(`${pbft ? 'PBFT' : 'Raft'} never answered`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

interface Measured {
  writesPerS: number;
  p50: number;
  p99: number;
  cpuMsPerWrite: number;
  errors: number;
  sigsMade?: number;
  sigsVerified?: number;
}

async function measure(d: Devnet, clients: number, pbft: boolean): Promise<Measured> {
  const pids = d.endpoints.peers.map((p) => p.pid);
  await closedLoop(d, clients, pbft, WARMUP_MS);
  const before = pbft ? await replicaTotals(d) : undefined;
  const cpu0 = cpuTicks(pids);
  const r = await closedLoop(d, clients, pbft, ROUND_MS);
  const cpuMs = ((cpuTicks(pids) - cpu0) * 1000) / CLOCK_TICKS_PER_S;
  const after = pbft ? await replicaTotals(d) : undefined;
  const m: Measured = { writesPerS: r.ok / r.seconds, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), cpuMsPerWrite: r.ok > 0 ? cpuMs / r.ok : NaN, errors: r.errors };
  if (before !== undefined && after !== undefined) {
    const executed = (after.requests_executed - before.requests_executed) / 4;
    return { ...m, sigsMade: (after.signatures_made - before.signatures_made) / executed, sigsVerified: (after.signatures_verified - before.signatures_verified) / executed };
  }
  return m;
}

function rowsOf(label: string, clients: number, m: Measured, raft?: Measured): BenchRow[] {
  const rows: BenchRow[] = [];
  const name = `${label}, ${clients} client${clients === 1 ? '' : 's'}`;
  const ratio = raft === undefined ? undefined : m.writesPerS / raft.writesPerS;
  rows.push({
    suite: 'pbft-cluster',
    name: `${name}: writes/s`,
    value: Math.round(m.writesPerS),
    unit: 'writes/s',
    ...(raft !== undefined ? { baseline: { name: `raft, ${clients} clients`, value: Math.round(raft.writesPerS) }, ratio: Math.round((ratio ?? 0) * 100) / 100 } : {}),
    ...(clients === 64 && raft !== undefined && label.includes('batching on') ? { target: `>= ${TARGET_RATIO_64} x Raft`, met: (ratio ?? 0) >= TARGET_RATIO_64 } : {}),
    note: `p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, CPU ${m.cpuMsPerWrite.toFixed(2)} ms/write (5 processes)${m.sigsMade !== undefined ? `, signatures per request (4 replicas): ${m.sigsMade.toFixed(2)} made, ${m.sigsVerified?.toFixed(2)} verified` : ''}${m.errors > 0 ? `, ${m.errors} errors` : ''}`,
  });
  return rows;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  try {
    for (const batching of ['on', 'off'] as const) {
      const d = await startDevnet(batching === 'off' ? ['--pbft-max-batch', '1'] : []);
      try {
        await ready(d);
        for (const clients of CLIENTS) {
          const raft = batching === 'on' ? await measure(d, clients, false) : undefined;
          const pbft = await measure(d, clients, true);
          if (raft !== undefined) rows.push(...rowsOf('raft (3 voters + relay learner)', clients, raft));
          rows.push(...rowsOf(`pbft n=4, batching ${batching}`, clients, pbft, raft));
        }
      } finally {
        d.agent.destroy();
        d.proc.child.kill('SIGINT');
        await d.proc.exited;
      }
    }
  } finally {
    await killAll();
  }
  return rows;
}
