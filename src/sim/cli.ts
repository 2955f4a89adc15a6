// `npm run sim -- --seeds N [--start S]` runs seeds S..S+N-1 (S defaults to 1);
// `npm run sim -- --seed S [--trace]` replays one seed, optionally printing its event trace.
// Exit 0 when every seed passes; on the first failure print seed, property, replay command; exit 1.
import { runSimulation, type SimResult } from './simulator.ts';

interface CliArgs {
  seeds: number;
  start: number;
  single: number | undefined;
  trace: boolean;
  faultTicks: number | undefined;
}

const USAGE = `usage: npm run sim -- [--seeds N] [--start S] | --seed S [--trace] [--fault-ticks T]
  --seeds N        run N seeds (default 100) starting at --start (default 1)
  --seed S         run one seed; with --trace print its event trace
  --fault-ticks T  ticks of fault injection per run before healing (default 160)
`;

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: 100, start: 1, single: undefined, trace: false, faultTicks: undefined };
  const int = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--seeds':
        args.seeds = int(i++, a);
        break;
      case '--start':
        args.start = int(i++, a);
        break;
      case '--seed':
        args.single = int(i++, a);
        break;
      case '--trace':
        args.trace = true;
        break;
      case '--fault-ticks':
        args.faultTicks = int(i++, a);
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${a}'`);
    }
  }
  return args;
}

function report(r: SimResult): void {
  const v = r.violation;
  process.stderr.write(
    `\nFAIL seed ${r.seed}: ${v?.property ?? 'unknown'} violated\n${v?.detail ?? ''}\n` +
      `replay: npm run sim -- --seed ${r.seed} --trace\n`,
  );
}

async function main(): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const opts = args.faultTicks === undefined ? {} : { faultTicks: args.faultTicks };
  if (args.single !== undefined) {
    const r = await runSimulation({ seed: args.single, trace: args.trace, ...opts });
    if (args.trace) process.stdout.write(r.trace.join('\n') + '\n');
    process.stdout.write(`seed ${r.seed}: ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (!r.ok) {
      report(r);
      return 1;
    }
    return 0;
  }
  const t0 = performance.now();
  let ops = 0;
  let msgs = 0;
  let elections = 0;
  let crashes = 0;
  let confChanges = 0;
  let snapshots = 0;
  for (let s = args.start; s < args.start + args.seeds; s++) {
    const r = await runSimulation({ seed: s, ...opts });
    ops += r.stats.opsChecked;
    msgs += r.stats.messages;
    elections += r.stats.elections;
    crashes += r.stats.crashes;
    confChanges += r.stats.confChanges;
    snapshots += r.stats.snapshotsSent;
    if (!r.ok) {
      report(r);
      return 1;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(
    `sim: ${args.seeds} seeds (${args.start}..${args.start + args.seeds - 1}) passed in ${secs.toFixed(1)} s ` +
      `(${(args.seeds / secs).toFixed(1)} seeds/s); ${ops} client ops checked for linearizability, ` +
      `${msgs} messages, ${elections} elections, ${crashes} crashes, ${confChanges} conf changes, ${snapshots} snapshot chunks\n`,
  );
  return 0;
}

process.exitCode = await main();
