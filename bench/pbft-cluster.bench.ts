// PBFT n = 4 over libp2p on loopback against Raft in the same run: a devnet (relay + four
// `hypersync node` processes: Raft on three with the relay as learner, PBFT on all four with the
// relay as client) driven through the relay's REST API by closed-loop clients (one request in
// flight each, kv.put with unique keys) at 1, 16 and 64 clients. Raft writes go through the
// relay's engine, PBFT writes with options.consensus 'pbft'; batching on (64 per round) and off
// (a second devnet with --pbft-max-batch 1). Reports writes/s, p50/p99, CPU ms per write (all
// five processes, from /proc, and the relay's share), and from the replicas' status: signatures
// made and verified per request, requests per batch, and ICO frames, envelopes and frame
// signatures per request (all four replicas). Raft and PBFT alternate per client count, so
// machine noise hits both. BENCH_CLIENTS=64, BENCH_BATCHING=on and BENCH_RAFT=off narrow a probe.
import { readFileSync, existsSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { killAll, run as runProcess, tempDir, type Proc } from '../test/harness/processes.ts';
import { freePortBase } from '../test/harness/ports.ts';
import { sumCpuMs } from './proc-cpu.ts';
import { percentile, type BenchRow } from './table.ts';

const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 4000);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 1000);
const CLIENTS: readonly number[] = process.env['BENCH_CLIENTS'] !== undefined ? process.env['BENCH_CLIENTS'].split(',').map(Number) : [1, 16, 64];
/** BENCH_RAFT=off: PBFT rounds only (a probe to profile). */
const RAFT = process.env['BENCH_RAFT'] !== 'off';
const BATCHING: ReadonlyArray<'on' | 'off'> = process.env['BENCH_BATCHING'] === 'on' ? ['on'] : process.env['BENCH_BATCHING'] === 'off' ? ['off'] : ['on', 'off'];
const REQUEST_TIMEOUT_MS = 10_000;
const STARTUP_MS = 180_000;
const TARGET_RATIO_64 = 0.5;

interface Endpoints {
  rest: string;
  token: string;
  ca: string;
  peers: Array<{ pid: number; role: string }>;
}

interface WireCounters {
  frames_out: number;
  envelopes_out: number;
  bytes_out: number;
  signatures: number;
  verifications: number;
}

interface ReplicaStatus {
  view: number;
  requests_executed: number;
  batches_executed: number;
  retransmissions: number;
  dropped_total: number;
  signatures_made: number;
  signatures_verified: number;
  wire: WireCounters | null;
}

const NO_WIRE: WireCounters = { frames_out: 0, envelopes_out: 0, bytes_out: 0, signatures: 0, verifications: 0 };

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

/** The four replicas' counters, summed. */
type Totals = Omit<ReplicaStatus, 'wire'> & { wire: WireCounters };

async function replicaTotals(d: Devnet): Promise<Totals> {
  const r = await call(d, 'GET', '/api/v1/cluster');
  const replicas = (r.json as { pbft?: { replicas?: ReplicaStatus[] } }).pbft?.replicas ?? [];
  const zero: Totals = { view: 0, requests_executed: 0, batches_executed: 0, retransmissions: 0, dropped_total: 0, signatures_made: 0, signatures_verified: 0, wire: NO_WIRE };
  return replicas.reduce((a: Totals, s): Totals => {
    const w = s.wire ?? NO_WIRE;
    return {
      view: Math.max(a.view, s.view),
      requests_executed: a.requests_executed + s.requests_executed,
      batches_executed: a.batches_executed + s.batches_executed,
      retransmissions: a.retransmissions + s.retransmissions,
      dropped_total: a.dropped_total + s.dropped_total,
      signatures_made: a.signatures_made + s.signatures_made,
      signatures_verified: a.signatures_verified + s.signatures_verified,
      wire: { frames_out: a.wire.frames_out + w.frames_out, envelopes_out: a.wire.envelopes_out + w.envelopes_out, bytes_out: a.wire.bytes_out + w.bytes_out, signatures: a.wire.signatures + w.signatures, verifications: a.wire.verifications + w.verifications },
    };
  }, zero);
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
  /** 1-min load average at the end of the round (the machine is shared). */
  load1: number;
  /** The relay's share of the CPU. */
  relayCpuMsPerWrite: number;
  pbft?: PbftCounts;
}

/** Per committed request, over the four replicas (what one ordered request costs the group). */
interface PbftCounts {
  sigsMade: number;
  sigsVerified: number;
  requestsPerBatch: number;
  framesOut: number;
  envelopesOut: number;
  wireSignatures: number;
  /** Messages the replicas resent to help each other, and messages they dropped (duplicates mostly), per request. */
  retransmissions: number;
  dropped: number;
  /** Views the group moved through during the round (0: no view change). */
  viewChanges: number;
}

async function measure(d: Devnet, clients: number, pbft: boolean): Promise<Measured> {
  const pids = d.endpoints.peers.map((p) => p.pid);
  const relay = d.endpoints.peers.filter((p) => p.role === 'relay').map((p) => p.pid);
  await closedLoop(d, clients, pbft, WARMUP_MS);
  const before = pbft ? await replicaTotals(d) : undefined;
  const cpu0 = sumCpuMs(pids);
  const relay0 = sumCpuMs(relay);
  const r = await closedLoop(d, clients, pbft, ROUND_MS);
  const cpuMs = sumCpuMs(pids) - cpu0;
  const relayMs = sumCpuMs(relay) - relay0;
  const after = pbft ? await replicaTotals(d) : undefined;
  const m: Measured = { writesPerS: r.ok / r.seconds, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), cpuMsPerWrite: r.ok > 0 ? cpuMs / r.ok : NaN, relayCpuMsPerWrite: r.ok > 0 ? relayMs / r.ok : NaN, errors: r.errors, load1: loadavg()[0] ?? NaN };
  if (before === undefined || after === undefined) return m;
  // Every replica executes every request: the group's requests are a quarter of the sum.
  const executed = (after.requests_executed - before.requests_executed) / 4;
  const per = (a: number, b: number): number => (a - b) / executed;
  return {
    ...m,
    pbft: {
      sigsMade: per(after.signatures_made, before.signatures_made),
      sigsVerified: per(after.signatures_verified, before.signatures_verified),
      requestsPerBatch: (after.requests_executed - before.requests_executed) / (after.batches_executed - before.batches_executed),
      framesOut: per(after.wire.frames_out, before.wire.frames_out),
      envelopesOut: per(after.wire.envelopes_out, before.wire.envelopes_out),
      wireSignatures: per(after.wire.signatures, before.wire.signatures),
      viewChanges: after.view - before.view,
      retransmissions: per(after.retransmissions, before.retransmissions),
      dropped: per(after.dropped_total, before.dropped_total),
    },
  };
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
    note: `p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, CPU ${m.cpuMsPerWrite.toFixed(2)} ms/write (5 processes; relay ${m.relayCpuMsPerWrite.toFixed(2)})${m.pbft !== undefined ? `, per request (4 replicas): signatures ${m.pbft.sigsMade.toFixed(2)} made / ${m.pbft.sigsVerified.toFixed(2)} verified, ${m.pbft.requestsPerBatch.toFixed(1)} requests per batch, ${m.pbft.framesOut.toFixed(2)} frames / ${m.pbft.envelopesOut.toFixed(2)} envelopes out, ${m.pbft.wireSignatures.toFixed(2)} frame signatures, ${m.pbft.retransmissions.toFixed(2)} replica retransmissions, ${m.pbft.dropped.toFixed(2)} drops, ${m.pbft.viewChanges} view changes` : ''}${m.errors > 0 ? `, ${m.errors} errors` : ''}, load ${m.load1.toFixed(1)}`,
    ...(m.pbft !== undefined ? { extra: { ...m.pbft, cpuMsPerWrite: m.cpuMsPerWrite, relayCpuMsPerWrite: m.relayCpuMsPerWrite, p50: m.p50, p99: m.p99, errors: m.errors, load1: m.load1 } } : { extra: { cpuMsPerWrite: m.cpuMsPerWrite, relayCpuMsPerWrite: m.relayCpuMsPerWrite, p50: m.p50, p99: m.p99, errors: m.errors, load1: m.load1 } }),
  });
  return rows;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  try {
    for (const batching of BATCHING) {
      const d = await startDevnet(batching === 'off' ? ['--pbft-max-batch', '1'] : []);
      try {
        await ready(d);
        for (const clients of CLIENTS) {
          const raft = batching === 'on' && RAFT ? await measure(d, clients, false) : undefined;
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
