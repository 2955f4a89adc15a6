// `npm run sim:pbft -- --n 4,7 --seeds N [--start S] [--jobs J]` runs seeds S..S+N-1 of the
// Byzantine PBFT simulator for each cluster size, on J worker threads (default: one per core, at
// most 2); `npm run sim:pbft -- --n N --seed S [--trace]` replays one seed. Exit 0 when every seed
// passes; otherwise print each failing seed (lowest first) with its property and replay command.
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DROP_REASONS, type DropReason } from '../consensus/pbft/errors.ts';
import { str, UsageError } from '../cli/args.ts';
import { BEHAVIOURS, type Behaviour } from './pbft-byzantine.ts';
import { count, optionalCount, parseSeedArgs } from './seed-args.ts';
import { runPbftSimulation, type PbftSimResult } from './pbft-simulator.ts';

/** Seeds a worker runs per request to the main thread (keeps the pool busy and progress visible). */
const SEEDS_PER_TASK = 25;
/** Worker threads at most (the machines here have 2 cores). */
const MAX_JOBS = 2;
/** Failing seeds printed in full. */
const MAX_REPORTED_FAILURES = 10;

interface Task {
  readonly n: number;
  readonly start: number;
  readonly count: number;
  readonly byzantine: number | undefined;
  readonly behaviours: readonly Behaviour[] | undefined;
}

/** The per-run counters summed over seeds. */
const SUMMED = ['requestsCompleted', 'completedAfterGst', 'highestView', 'stateTransfers', 'stableCheckpoints', 'signaturesMade', 'signaturesVerified', 'certificatesChecked', 'rewrites', 'messages'] as const;
type Summed = (typeof SUMMED)[number];

interface Totals {
  seeds: number;
  sums: Record<Summed, number>;
  dropped: Record<DropReason, number>;
  failures: { seed: number; n: number; property: string; detail: string; byzantine: string[] }[];
}

function emptyTotals(): Totals {
  return {
    seeds: 0,
    sums: Object.fromEntries(SUMMED.map((k) => [k, 0])) as Record<Summed, number>,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    failures: [],
  };
}

function merge(into: Totals, t: Pick<Totals, 'seeds' | 'failures'> & { sums: Readonly<Record<Summed, number>>; dropped: Readonly<Record<DropReason, number>> }): void {
  into.seeds += t.seeds;
  for (const k of SUMMED) into.sums[k] += t.sums[k];
  for (const k of DROP_REASONS) into.dropped[k] += t.dropped[k];
  into.failures.push(...t.failures);
}

function add(t: Totals, r: PbftSimResult, n: number): void {
  const failures = r.ok ? [] : [{ seed: r.seed, n, property: r.violation?.property ?? 'unknown', detail: r.violation?.detail ?? '', byzantine: r.stats.byzantine }];
  merge(t, { seeds: 1, sums: r.stats, dropped: r.stats.dropped, failures });
}

function runTask(task: Task): Totals {
  const t = emptyTotals();
  for (let seed = task.start; seed < task.start + task.count; seed++) {
    const opts = { seed, n: task.n, ...(task.byzantine === undefined ? {} : { byzantine: task.byzantine }), ...(task.behaviours === undefined ? {} : { behaviours: task.behaviours }) };
    add(t, runPbftSimulation(opts), task.n);
  }
  return t;
}

// ---- worker ------------------------------------------------------------------------------------

if (!isMainThread) {
  const port = parentPort;
  if (port === null) throw new Error('pbft sim worker without a parent port');
  port.on('message', (task: Task | null) => {
    if (task === null) {
      port.close();
      return;
    }
    port.postMessage(runTask(task));
  });
  if (workerData !== 'pbft-sim') throw new Error('unexpected worker data');
}

// ---- main ----------------------------------------------------------------------------------------

interface CliArgs {
  sizes: number[];
  seeds: number;
  start: number;
  single: number | undefined;
  trace: boolean;
  jobs: number;
  byzantine: number | undefined;
  behaviours: Behaviour[] | undefined;
}

const USAGE = `usage: npm run sim:pbft -- [--n 4,7] [--seeds N] [--start S] [--jobs J] [--byzantine B] [--behaviours a,b]
       npm run sim:pbft -- --n N --seed S [--trace]
  --n            cluster sizes, 3f+1 each (default 4)
  --seeds N      seeds per size (default 100) from --start (default 1)
  --jobs J       worker threads (default ${MAX_JOBS} or the core count if lower)
  --byzantine B  Byzantine replicas (default f; more than f shows the checks fail)
  --behaviours   Byzantine behaviours to draw from: ${BEHAVIOURS.join(', ')}
  --seed S       replay one seed; --trace prints its event trace
`;

function parseArgs(argv: string[]): CliArgs | 'help' {
  const a = parseSeedArgs(argv, { n: { type: 'string' }, jobs: { type: 'string' }, byzantine: { type: 'string' }, behaviours: { type: 'string' } });
  if (a.help) return 'help';
  const p = a.parsed;
  const sizes = (str(p, 'n') ?? '4').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 4 || (n - 1) % 3 !== 0)) throw new UsageError('--n takes sizes 3f+1 (4, 7, 10, ...)');
  const list = str(p, 'behaviours')?.split(',');
  for (const b of list ?? []) if (!(BEHAVIOURS as readonly string[]).includes(b)) throw new UsageError(`unknown behaviour '${b}'`);
  return {
    sizes,
    seeds: a.seeds,
    start: a.start,
    single: a.single,
    trace: a.trace,
    jobs: Math.max(1, count(p, 'jobs', Math.min(MAX_JOBS, availableParallelism()))),
    byzantine: optionalCount(p, 'byzantine'),
    behaviours: list as Behaviour[] | undefined,
  };
}

function replayCommand(args: CliArgs, n: number, seed: number): string {
  const extra = `${args.byzantine === undefined ? '' : ` --byzantine ${args.byzantine}`}${args.behaviours === undefined ? '' : ` --behaviours ${args.behaviours.join(',')}`}`;
  return `npm run sim:pbft -- --n ${n} --seed ${seed}${extra} --trace`;
}

async function runPool(args: CliArgs, n: number): Promise<Totals> {
  const tasks: Task[] = [];
  for (let s = args.start; s < args.start + args.seeds; s += SEEDS_PER_TASK) {
    tasks.push({ n, start: s, count: Math.min(SEEDS_PER_TASK, args.start + args.seeds - s), byzantine: args.byzantine, behaviours: args.behaviours });
  }
  const totals = emptyTotals();
  if (args.jobs <= 1) {
    for (const t of tasks) merge(totals, runTask(t));
    return totals;
  }
  const workers = Array.from({ length: Math.min(args.jobs, tasks.length) }, () => new Worker(new URL(import.meta.url), { workerData: 'pbft-sim' }));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const next = (): void => {
            const t = tasks.shift();
            w.postMessage(t ?? null);
            if (t === undefined) resolve();
          };
          w.on('message', (t: Totals) => {
            merge(totals, t);
            next();
          });
          w.on('error', reject);
          next();
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  return totals;
}

async function main(): Promise<number> {
  let args: CliArgs | 'help';
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.single !== undefined) {
    const n = args.sizes[0] as number;
    const r = runPbftSimulation({ seed: args.single, n, trace: args.trace, ...(args.byzantine === undefined ? {} : { byzantine: args.byzantine }), ...(args.behaviours === undefined ? {} : { behaviours: args.behaviours }) });
    if (args.trace) process.stdout.write(r.trace.join('\n') + '\n');
    process.stdout.write(`seed ${r.seed} (n=${n}): ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (r.ok) return 0;
    process.stderr.write(`\nFAIL seed ${r.seed}: ${r.violation?.property} violated\n${r.violation?.detail}\n`);
    return 1;
  }
  let failed = false;
  for (const n of args.sizes) {
    const t0 = performance.now();
    const t = await runPool(args, n);
    const secs = (performance.now() - t0) / 1000;
    const drops = DROP_REASONS.filter((k) => t.dropped[k] > 0).map((k) => `${k} ${t.dropped[k]}`).join(', ');
    process.stdout.write(
      `sim:pbft n=${n} f=${(n - 1) / 3}: ${t.seeds} seeds (${args.start}..${args.start + args.seeds - 1}) in ${secs.toFixed(1)} s on ${args.jobs} thread(s); ` +
        `${t.failures.length} failed; ${t.sums.requestsCompleted} requests certified (${t.sums.completedAfterGst} submitted after GST), ${t.sums.certificatesChecked} certificates checked, ` +
        `${(t.sums.highestView / Math.max(1, t.seeds)).toFixed(1)} views/run, ${t.sums.stateTransfers} state transfers, ${t.sums.stableCheckpoints} stable checkpoints, ` +
        `${t.sums.rewrites} Byzantine rewrites, ${t.sums.messages} messages; dropped by honest replicas: ${drops}\n`,
    );
    if (t.failures.length > 0) {
      failed = true;
      t.failures.sort((a, b) => a.seed - b.seed);
      for (const f of t.failures.slice(0, MAX_REPORTED_FAILURES)) {
        process.stderr.write(`\nFAIL n=${f.n} seed ${f.seed} [${f.byzantine.join(' ')}]: ${f.property} violated\n${f.detail}\nreplay: ${replayCommand(args, f.n, f.seed)}\n`);
      }
    }
  }
  return failed ? 1 : 0;
}

if (isMainThread) process.exitCode = await main();
