// Net hot-path bench: what one replicated write costs on the wire. Real clusters (relay learner
// serving the API + three `hypersync node` voters, LevelDB each, libp2p TCP between them) under
// closed-loop kv.put load at 1/16/64 clients; per committed write it reports the leader's ICO
// frames and signatures, the write-family syscalls of the leader's main thread (where libuv
// writes sockets) and of all four processes, server CPU, and writes/s.
//
// Systems, rounds interleaved so machine noise hits each alike:
//   binary  this tree, the negotiated binary wire (the default)
//   json    this tree with `--wire json` (one JCS-signed envelope per frame, coalesced writes)
//   before  NET_BENCH_BASELINE_TREE=<checkout> (e.g. a worktree of an older commit), its own
//           harness and bin; its raft:status lines must carry `wire` counters for the frame rows
// The measured window runs between two `raft:status` lines of the leader (printed every
// 500 ms), so frames and commits come from the same two lines; perf counts syscalls and /proc
// the CPU over the same window. Knobs: NET_BENCH_ROUNDS, NET_BENCH_WINDOW_MS, NET_BENCH_SYSTEMS.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { jsonClient } from './raft-cluster.bench.ts';
import { percentile, type BenchRow } from './table.ts';

const ROUNDS = Number(process.env['NET_BENCH_ROUNDS'] ?? 2);
/** Least time between the two status lines that bound a measured window. */
const WINDOW_MS = Number(process.env['NET_BENCH_WINDOW_MS'] ?? 3000);
const WARMUP_MS = 500;
const CLIENTS = [1, 16, 64] as const;
const VALUE = 'v'.repeat(100);
const BASELINE_TREE = process.env['NET_BENCH_BASELINE_TREE'];
/** Comma-separated subset of before,json,binary (default: all available). */
const ONLY = process.env['NET_BENCH_SYSTEMS']?.split(',');
const THIS_TREE = resolve(import.meta.dirname, '..');
/** perf tracepoints for the write family (sockets go through write/writev in libuv). */
const SYSCALLS = ['write', 'writev', 'sendmsg', 'sendto'] as const;
const STATUS_WAIT_MS = 5_000;

interface WireCounters {
  framesOut: number;
  framesIn: number;
  envelopesOut: number;
  envelopesIn: number;
  signatures: number;
  verifications: number;
  streamWrites: number;
  bytesOut: number;
}

interface Harness {
  startRaftCluster(o: { voters: number; relayArgs?: string[]; nodeArgs?: string[] }): Promise<{
    api: string;
    token: string;
    dir: string;
    relay: { pid: number };
    nodes: Array<{ peerId: string; proc: { pid: number; events: Array<{ type: string; [k: string]: unknown }> } }>;
  }>;
}

interface System {
  name: string;
  put(worker: number, i: number, tag: string): Promise<boolean>;
  pids: number[];
  leader(): Promise<{ pid: number; events: Array<{ type: string; [k: string]: unknown }> }>;
  stop(): Promise<void>;
}

async function startSystem(name: string, tree: string, extraArgs: string[]): Promise<System> {
  const harness = (await import(pathToFileURL(join(tree, 'test/harness/raft-cluster.ts')).href)) as Harness;
  const processes = (await import(pathToFileURL(join(tree, 'test/harness/processes.ts')).href)) as { killAll(): Promise<void> };
  const c = await harness.startRaftCluster({ voters: 3, ...(extraArgs.length > 0 ? { relayArgs: extraArgs, nodeArgs: extraArgs } : {}) });
  const api = jsonClient({ url: c.api, token: c.token });
  const leaderId = async (): Promise<string | null> => ((await api.request('GET', '/api/v1/cluster')).body as { leader: string | null } | undefined)?.leader ?? null;
  for (let i = 0; i < 600 && (await leaderId()) === null; i++) await sleep(50);
  return {
    name,
    pids: [c.relay.pid, ...c.nodes.map((n) => n.proc.pid)],
    put: async (w, i, tag) => (await api.request('POST', '/api/v1/operators/execute', { operator_id: 'kv.put', inputs: { key: `b/${tag}/${w}/${i}`, value: VALUE } })).status === 200,
    async leader() {
      const id = await leaderId();
      const node = c.nodes.find((n) => n.peerId === id);
      if (node === undefined) throw new Error(`${name}: leader ${id} is not a node`);
      return node.proc;
    },
    async stop() {
      api.close();
      await processes.killAll();
      rmSync(c.dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU ms (user + system) of a process so far, from /proc; NaN when unreadable. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** `perf stat --per-thread` on the write-family tracepoints; stop() returns counts per thread id. */
function perfSyscalls(pids: number[]): { stop(): Promise<Map<number, number> | undefined> } {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-perf-'));
  const out = join(dir, 'perf.csv');
  const child = spawn('perf', ['stat', '--per-thread', '-x', ',', '-o', out, ...SYSCALLS.flatMap((s) => ['-e', `syscalls:sys_enter_${s}`]), '-p', pids.join(',')], { stdio: 'ignore' });
  let failed = false;
  child.once('error', () => (failed = true));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      try {
        if (failed || !existsSync(out)) return undefined;
        const counts = new Map<number, number>();
        for (const line of readFileSync(out, 'utf8').split('\n')) {
          const [thread, count] = line.split(',');
          const tid = Number(thread?.slice(thread.lastIndexOf('-') + 1));
          if (!Number.isInteger(tid) || count === undefined || !/^\d+$/.test(count)) continue;
          counts.set(tid, (counts.get(tid) ?? 0) + Number(count));
        }
        return counts.size > 0 ? counts : undefined;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

interface Sample {
  system: string;
  clients: number;
  writesPerSec: number;
  latencyMs: number[];
  commits: number;
  leader: Partial<WireCounters>;
  leaderMainSyscalls: number;
  allMainSyscalls: number;
  allSyscalls: number;
  cpuMs: number;
}

type StatusLine = { type: string; commit?: number; wire?: Partial<WireCounters>; [k: string]: unknown };

/** The next raft:status line the process prints after index `from` of its event list. */
async function nextStatus(proc: { events: Array<{ type: string }> }, from: number): Promise<{ line: StatusLine; index: number }> {
  const end = Date.now() + STATUS_WAIT_MS;
  for (;;) {
    for (let i = from; i < proc.events.length; i++) if (proc.events[i]!.type === 'raft:status') return { line: proc.events[i] as StatusLine, index: i };
    if (Date.now() > end) throw new Error('no raft:status line from the leader');
    await sleep(5);
  }
}

async function measure(s: System, clients: number, tag: string): Promise<Sample> {
  const leader = await s.leader();
  let stop = false;
  let okInWindow = 0;
  let counting = false;
  const latencyMs: number[] = [];
  const workers = Array.from({ length: clients }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const t0 = performance.now();
      const ok = await s.put(w, i, tag);
      if (counting && ok) {
        okInWindow++;
        latencyMs.push(performance.now() - t0);
      }
      if (!ok) await sleep(20);
    }
  });
  await sleep(WARMUP_MS);
  // The window opens at a status line of the leader and closes at the first one WINDOW_MS later.
  const a = await nextStatus(leader, leader.events.length);
  const tids = new Map<number, number>(s.pids.flatMap((pid) => { try { return readdirSync(`/proc/${pid}/task`).map((t) => [Number(t), pid] as [number, number]); } catch { return []; } }));
  const perf = perfSyscalls(s.pids);
  const cpu0 = s.pids.reduce((x, p) => x + cpuMs(p), 0);
  const t0 = performance.now();
  counting = true;
  await sleep(WINDOW_MS);
  const b = await nextStatus(leader, leader.events.length);
  counting = false;
  const t1 = performance.now();
  const cpu1 = s.pids.reduce((x, p) => x + cpuMs(p), 0);
  const counts = await perf.stop();
  stop = true;
  await Promise.all(workers);
  const wire: Partial<WireCounters> = {};
  for (const k of ['framesOut', 'framesIn', 'envelopesOut', 'envelopesIn', 'signatures', 'verifications', 'streamWrites', 'bytesOut'] as const) {
    const x = a.line.wire?.[k];
    const y = b.line.wire?.[k];
    if (typeof x === 'number' && typeof y === 'number') wire[k] = y - x;
  }
  const leaderPid = leader.pid;
  let leaderMain = Number.NaN;
  let allMain = Number.NaN;
  let all = Number.NaN;
  if (counts !== undefined) {
    leaderMain = counts.get(leaderPid) ?? 0;
    allMain = s.pids.reduce((x, p) => x + (counts.get(p) ?? 0), 0);
    all = [...counts.entries()].filter(([tid]) => tids.has(tid) || s.pids.includes(tid)).reduce((x, [, n]) => x + n, 0);
  }
  return {
    system: s.name,
    clients,
    writesPerSec: (okInWindow * 1000) / (t1 - t0),
    latencyMs,
    commits: Number(b.line.commit) - Number(a.line.commit),
    leader: wire,
    leaderMainSyscalls: leaderMain,
    allMainSyscalls: allMain,
    allSyscalls: all,
    cpuMs: cpu1 - cpu0,
  };
}

function median(xs: number[]): number {
  return percentile(xs.filter((x) => Number.isFinite(x)), 50);
}

export async function run(): Promise<BenchRow[]> {
  const specs = [
    ...(BASELINE_TREE !== undefined ? [{ name: 'before', tree: resolve(BASELINE_TREE), args: [] }] : []),
    { name: 'json', tree: THIS_TREE, args: ['--wire', 'json'] },
    { name: 'binary', tree: THIS_TREE, args: [] },
  ].filter((x) => ONLY === undefined || ONLY.includes(x.name));
  if (specs.length === 0) throw new Error(`NET_BENCH_SYSTEMS=${ONLY?.join(',')} selects no system`);
  const samples: Sample[] = [];
  const tag = Date.now().toString(36);
  // One cluster at a time (2 cores): each system runs its rounds, then the next starts.
  for (let round = 1; round <= ROUNDS; round++) {
    for (const spec of specs) {
      process.stderr.write(`net-hotpath: round ${round}: starting ${spec.name} (${spec.tree})\n`);
      const s = await startSystem(spec.name, spec.tree, spec.args);
      try {
        for (const n of CLIENTS) {
          const x = await measure(s, n, `${tag}-${round}-${n}`);
          samples.push(x);
          const per = (v: number | undefined): string => (v === undefined ? 'n/a' : (v / x.commits).toFixed(2));
          process.stderr.write(
            `net-hotpath: round ${round} ${s.name} x${n}: ${x.writesPerSec.toFixed(0)} writes/s, ${x.commits} commits; per commit: leader frames out ${per(x.leader.framesOut)} in ${per(x.leader.framesIn)}, ` +
              `signatures ${per(x.leader.signatures)}, leader main-thread write syscalls ${per(x.leaderMainSyscalls)}, all processes ${per(x.allSyscalls)}, CPU ${(x.cpuMs / x.commits).toFixed(2)} ms\n`,
          );
        }
      } finally {
        await s.stop();
      }
    }
  }
  const rows: BenchRow[] = [];
  const base = specs[0]!.name;
  for (const n of CLIENTS) {
    const of = (sys: string): Sample[] => samples.filter((x) => x.system === sys && x.clients === n);
    const per = (sys: string, f: (x: Sample) => number | undefined): number => median(of(sys).map((x) => (f(x) ?? Number.NaN) / x.commits));
    const metrics: Array<{ what: string; unit: string; f: (sys: string) => number; lowerIsBetter: boolean }> = [
      { what: 'writes/s', unit: 'ops/s', f: (sys) => median(of(sys).map((x) => x.writesPerSec)), lowerIsBetter: false },
      { what: 'p50 latency', unit: 'ms', f: (sys) => percentile(of(sys).flatMap((x) => x.latencyMs), 50), lowerIsBetter: true },
      { what: 'server CPU per write (4 processes)', unit: 'ms', f: (sys) => per(sys, (x) => x.cpuMs), lowerIsBetter: true },
      { what: 'leader ICO frames sent per write', unit: 'frames', f: (sys) => per(sys, (x) => x.leader.framesOut), lowerIsBetter: true },
      { what: 'leader ICO frames received per write', unit: 'frames', f: (sys) => per(sys, (x) => x.leader.framesIn), lowerIsBetter: true },
      { what: 'leader envelope signatures per write', unit: 'sigs', f: (sys) => per(sys, (x) => x.leader.signatures), lowerIsBetter: true },
      { what: 'leader stream writes per write', unit: 'writes', f: (sys) => per(sys, (x) => x.leader.streamWrites), lowerIsBetter: true },
      { what: 'leader main-thread write/writev/sendmsg/sendto per write', unit: 'syscalls', f: (sys) => per(sys, (x) => x.leaderMainSyscalls), lowerIsBetter: true },
      { what: 'write-family syscalls per write, 4 processes, all threads', unit: 'syscalls', f: (sys) => per(sys, (x) => x.allSyscalls), lowerIsBetter: true },
    ];
    for (const m of metrics) {
      const baseValue = m.f(base);
      for (const spec of specs) {
        const value = m.f(spec.name);
        const compare = spec.name !== base && Number.isFinite(baseValue) && Number.isFinite(value);
        rows.push({
          suite: 'net-hotpath',
          name: `${spec.name}, ${n} client${n === 1 ? '' : 's'}: ${m.what}`,
          value,
          unit: m.unit,
          ...(compare ? { baseline: { name: base, value: baseValue }, ratio: m.lowerIsBetter ? baseValue / value : value / baseValue } : {}),
          ...(spec.name === specs[0]!.name ? { note: `median of ${ROUNDS} windows of >= ${WINDOW_MS} ms; ratio > 1 is better` } : {}),
        });
      }
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatTable, writeResults } = await import('./table.ts');
  const rows = await run();
  process.stdout.write(formatTable(rows) + '\n');
  process.stdout.write(`results written to ${writeResults(rows)}\n`);
}
