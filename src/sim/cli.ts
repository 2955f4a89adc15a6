// `npm run sim -- --seeds N [--start S] [--workers W]` runs seeds S..S+N-1 (S defaults to 1),
// spread over W worker threads (default: up to 2, one per core); `npm run sim -- --seed S
// [--trace]` replays one seed, optionally printing its event trace. `--receipts` runs the real
// replica (signed receipts on power-loss stores). Exit 0 when every seed passes; on a failure
// print the seed, the property and the replay command, and exit 1.
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { count, optionalCount, parseSeedArgs } from './seed-args.ts';
import { runSimulation, type SimOptions, type SimResult, type SimStats } from './simulator.ts';

interface CliArgs {
  seeds: number;
  start: number;
  single: number | undefined;
  trace: boolean;
  receipts: boolean;
  faultTicks: number | undefined;
  workers: number;
}

/** Worker threads at most (each runs whole seeds; a run is single-threaded and deterministic). */
const MAX_WORKERS = 8;

const USAGE = `usage: npm run sim -- [--seeds N] [--start S] [--workers W] | --seed S [--trace] [--receipts] [--fault-ticks T]
  --seeds N        run N seeds (default 100) starting at --start (default 1)
  --workers W      worker threads for --seeds (default ${Math.min(2, availableParallelism())}, at most ${MAX_WORKERS})
  --seed S         run one seed; with --trace print its event trace
  --receipts       run the real replica (operator state machine, signed receipts) on every node
  --fault-ticks T  ticks of fault injection per run before healing (default 160)
`;

function parseArgs(argv: string[]): CliArgs | 'help' {
  const a = parseSeedArgs(argv, { workers: { type: 'string' }, receipts: { type: 'boolean' }, 'fault-ticks': { type: 'string' } });
  if (a.help) return 'help';
  const p = a.parsed;
  return {
    seeds: a.seeds,
    start: a.start,
    single: a.single,
    trace: a.trace,
    receipts: p.values['receipts'] === true,
    faultTicks: optionalCount(p, 'fault-ticks'),
    workers: Math.min(MAX_WORKERS, Math.max(1, count(p, 'workers', Math.min(2, availableParallelism())))),
  };
}

function replayCommand(seed: number, receipts: boolean): string {
  return `npm run sim -- --seed ${seed}${receipts ? ' --receipts' : ''} --trace`;
}

function report(r: SimResult, receipts: boolean): void {
  const v = r.violation;
  process.stderr.write(`\nFAIL seed ${r.seed}: ${v?.property ?? 'unknown'} violated\n${v?.detail ?? ''}\nreplay: ${replayCommand(r.seed, receipts)}\n`);
}

interface Job {
  seeds: number[];
  opts: Omit<SimOptions, 'seed'>;
}

type WorkerMessage = { kind: 'result'; result: SimResult } | { kind: 'done' };

/** A worker runs its seeds in order and posts each result (the trace stays behind). */
async function workerMain(job: Job): Promise<void> {
  for (const seed of job.seeds) {
    const r = await runSimulation({ seed, ...job.opts });
    parentPort?.postMessage({ kind: 'result', result: { ...r, trace: [] } } satisfies WorkerMessage);
    if (!r.ok) break;
  }
  parentPort?.postMessage({ kind: 'done' } satisfies WorkerMessage);
}

function sum(a: SimStats, b: SimStats): void {
  for (const k of Object.keys(a) as Array<keyof SimStats>) a[k] += b[k];
}

async function runMany(args: CliArgs, opts: Omit<SimOptions, 'seed'>): Promise<number> {
  const t0 = performance.now();
  const total: SimStats = { voters: 0, learners: 0, events: 0, messages: 0, elections: 0, crashes: 0, confChanges: 0, snapshotsSent: 0, opsCompleted: 0, opsChecked: 0, maxCommit: 0, receipts: 0 };
  const all = Array.from({ length: args.seeds }, (_, i) => args.start + i);
  const workers = Math.min(args.workers, Math.max(1, all.length));
  let failure: SimResult | undefined;
  let passed = 0;
  await new Promise<void>((resolve, reject) => {
    let running = workers;
    const threads: Worker[] = [];
    for (let w = 0; w < workers; w++) {
      const job: Job = { seeds: all.filter((_, i) => i % workers === w), opts };
      const t = new Worker(new URL(import.meta.url), { workerData: job });
      threads.push(t);
      t.on('message', (m: WorkerMessage) => {
        if (m.kind === 'done') {
          void t.terminate();
          if (--running === 0) resolve();
          return;
        }
        if (m.result.ok) {
          passed++;
          sum(total, m.result.stats);
        } else if (failure === undefined || m.result.seed < failure.seed) {
          failure = m.result;
          for (const other of threads) if (other !== t) void other.terminate().then(() => undefined);
          resolve();
        }
      });
      t.on('error', reject);
    }
  });
  if (failure !== undefined) {
    report(failure, args.receipts);
    return 1;
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(
    `sim: ${passed} seeds (${args.start}..${args.start + args.seeds - 1}) passed in ${secs.toFixed(1)} s on ${workers} worker${workers === 1 ? '' : 's'} ` +
      `(${(passed / secs).toFixed(1)} seeds/s); ${total.opsChecked} client ops checked for linearizability, ` +
      `${total.messages} payloads, ${total.elections} elections, ${total.crashes} power cuts, ${total.confChanges} conf changes, ${total.snapshotsSent} snapshot chunks` +
      `${args.receipts ? `, ${total.receipts} receipts verified` : ''}\n`,
  );
  return 0;
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
  const opts = { ...(args.faultTicks === undefined ? {} : { faultTicks: args.faultTicks }), ...(args.receipts ? { receipts: true } : {}) };
  if (args.single !== undefined) {
    const r = await runSimulation({ seed: args.single, trace: args.trace, ...opts });
    if (args.trace) process.stdout.write(r.trace.join('\n') + '\n');
    process.stdout.write(`seed ${r.seed}: ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (!r.ok) {
      report(r, args.receipts);
      return 1;
    }
    return 0;
  }
  return runMany(args, opts);
}

if (isMainThread) process.exitCode = await main();
else await workerMain(workerData as Job);
