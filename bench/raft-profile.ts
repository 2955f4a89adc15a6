// Where a replicated write spends its CPU: starts the bench's cluster (relay learner serving the
// API + three voters) with `--cpu-prof` in every child, drives closed-loop kv.put clients through
// the relay for PROFILE_MS, stops the children gracefully (so V8 writes its profiles) and prints
// each role's top functions by self time, plus CPU ms per write from /proc. The .cpuprofile
// files stay in the printed folder (open them in Chrome DevTools); the summary is also written as
// JSON to bench/results/raft-profile-<time>.json.
//   PROFILE_CLIENTS=64 PROFILE_MS=5000 npx node bench/raft-profile.ts
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { killAll, tempDir } from '../test/harness/processes.ts';
import { clusterStatus, startRaftCluster, until } from '../test/harness/raft-cluster.ts';
import { jsonClient } from './raft-cluster.bench.ts';

const CLIENTS = Number(process.env['PROFILE_CLIENTS'] ?? 64);
const MS = Number(process.env['PROFILE_MS'] ?? 5000);
/** Functions listed per process. */
const TOP = Number(process.env['PROFILE_TOP'] ?? 25);
const VALUE = 'v'.repeat(100);
/** Longest a child may take to stop and write its profile. */
const STOP_TIMEOUT_MS = 20_000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** CLOCK_MONOTONIC in µs: the clock V8 stamps profile samples with on Linux. */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Self time per function (ms), and per file, from a V8 CPU profile, within [fromUs, toUs]. */
function selfTimes(p: CpuProfile, fromUs: number, toUs: number): { fns: [string, number][]; files: [string, number][]; totalMs: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    t += d;
    if (t < fromUs || t > toUs) continue;
    self.set(p.samples[i] as number, (self.get(p.samples[i] as number) ?? 0) + d / 1000);
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const url = n.callFrame.url.replace(/^file:\/\/\/.*?\/(node_modules|src|relay)\//, '$1/');
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    fns.set(fn, (fns.get(fn) ?? 0) + ms);
    const file = url === '' ? n.callFrame.functionName : url.replace(/^(node_modules\/(@[^/]+\/)?[^/]+).*/, '$1');
    files.set(file, (files.get(file) ?? 0) + ms);
    totalMs += ms;
  }
  const sort = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
  return { fns: sort(fns), files: sort(files), totalMs };
}

async function main(): Promise<void> {
  const profDir = tempDir('hypersync-prof-');
  process.env['NODE_OPTIONS'] = `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${profDir}`.trim();
  const c = await startRaftCluster();
  delete process.env['NODE_OPTIONS'];
  const api = jsonClient({ url: c.api, token: c.token });
  const status = await until('a leader', () => clusterStatus(c.api), (s) => s.leader !== null, 60_000, 100);
  const roles = new Map<number, string>([[c.relay.pid, 'relay (learner, API)']]);
  for (const n of c.nodes) roles.set(n.proc.pid, n.peerId === status.leader ? 'leader' : 'follower');
  const leaderAtStart = status.leader;
  const before = new Map([...roles.keys()].map((pid) => [pid, cpuMs(pid)]));
  let ok = 0;
  const fromUs = monoUs();
  const stopAt = Date.now() + MS;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = 0; Date.now() < stopAt; i++) {
        const r = await api.request('POST', '/api/v1/operators/execute', { operator_id: 'kv.put', inputs: { key: `prof/${w}/${i}`, value: VALUE } });
        if (r.status === 200) ok++;
      }
    }),
  );
  const toUs = monoUs();
  const after = await clusterStatus(c.api);
  if (after.leader !== leaderAtStart) console.log(`note: the leader changed during the load (${leaderAtStart} -> ${after.leader}); roles are as at the start`);
  const cpu = new Map([...roles.keys()].map((pid) => [pid, cpuMs(pid) - (before.get(pid) ?? 0)]));
  api.close();
  for (const p of [c.relay, ...c.nodes.map((n) => n.proc)]) p.child.kill('SIGTERM');
  await Promise.race([Promise.all([c.relay, ...c.nodes.map((n) => n.proc)].map((p) => p.exited)), new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS))]);
  const report: { date: string; clients: number; ms: number; writes: number; load1: number[]; cpuMsPerWrite: Record<string, number>; profiles: Array<{ role: string; sampledMs: number; files: [string, number][]; functions: [string, number][] }> } = {
    date: new Date().toISOString(),
    clients: CLIENTS,
    ms: MS,
    writes: ok,
    load1: loadavg(),
    cpuMsPerWrite: {},
    profiles: [],
  };
  console.log(`${ok} writes in ${MS} ms with ${CLIENTS} clients (${((ok * 1000) / MS).toFixed(0)}/s); profiles in ${profDir}`);
  let total = 0;
  for (const [pid, ms] of cpu) {
    total += ms;
    console.log(`  ${roles.get(pid)} pid ${pid}: ${(ms / ok).toFixed(3)} ms CPU per write`);
    report.cpuMsPerWrite[`${roles.get(pid)} ${pid}`] = ms / ok;
  }
  console.log(`  all servers: ${(total / ok).toFixed(3)} ms CPU per write (load ${report.load1.map((l) => l.toFixed(1)).join(', ')})`);
  report.cpuMsPerWrite['all servers'] = total / ok;
  for (const f of readdirSync(profDir).filter((n) => n.endsWith('.cpuprofile'))) {
    const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]);
    const role = roles.get(pid);
    if (role === undefined) continue;
    const t = selfTimes(JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile, fromUs, toUs);
    console.log(`\n== ${role} (pid ${pid}): ${t.totalMs.toFixed(0)} ms sampled during the load`);
    console.log('  by package/file:');
    for (const [name, ms] of t.files.slice(0, 12)) console.log(`    ${((100 * ms) / t.totalMs).toFixed(1).padStart(5)} %  ${name}`);
    console.log('  top functions (self):');
    for (const [name, ms] of t.fns.slice(0, TOP)) console.log(`    ${((100 * ms) / t.totalMs).toFixed(1).padStart(5)} %  ${name}`);
    const pct = (rows: [string, number][]): [string, number][] => rows.slice(0, TOP).map(([n, ms]) => [n, Number(((100 * ms) / t.totalMs).toFixed(2))]);
    report.profiles.push({ role: `${role} ${pid}`, sampledMs: Math.round(t.totalMs), files: pct(t.files), functions: pct(t.fns) });
  }
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `raft-profile-${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nsummary written to ${file}`);
}

try {
  await main();
} finally {
  await killAll();
}
