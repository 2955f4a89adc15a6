// `npm run sync-sim -- --seeds N [--start S]` runs seeds S..S+N-1; `--seed S [--trace]`
// replays one. Exit 0 when every seed converges; on the first failure print the seed, the
// property and the replay command, exit 1.
import { parseSeedArgs, type SeedArgs } from '../sim/seed-args.ts';
import { runSyncSimulation, type SyncSimResult } from './simulator.ts';

const USAGE = `usage: npm run sync-sim -- [--seeds N] [--start S] | --seed S [--trace]
`;

function report(r: SyncSimResult): void {
  process.stderr.write(`\nFAIL seed ${r.seed}: ${r.violation?.property ?? 'unknown'} violated\n${r.violation?.detail ?? ''}\nreplay: npm run sync-sim -- --seed ${r.seed} --trace\n`);
}

async function main(): Promise<number> {
  let args: SeedArgs;
  try {
    args = parseSeedArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.single !== undefined) {
    const r = await runSyncSimulation({ seed: args.single, trace: args.trace });
    if (args.trace) process.stdout.write(`${r.trace.join('\n')}\n`);
    process.stdout.write(`seed ${r.seed}: ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (!r.ok) report(r);
    return r.ok ? 0 : 1;
  }
  const t0 = performance.now();
  const total = { writes: 0, messages: 0, dropped: 0, sessions: 0, restarts: 0, conflicts: 0, resolutions: 0 };
  for (let s = args.start; s < args.start + args.seeds; s++) {
    const r = await runSyncSimulation({ seed: s });
    for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r.stats[k];
    if (!r.ok) {
      report(r);
      return 1;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(
    `sync-sim: ${args.seeds} seeds (${args.start}..${args.start + args.seeds - 1}) converged in ${secs.toFixed(1)} s; ` +
      `${total.writes} writes, ${total.messages} messages (${total.dropped} dropped), ${total.sessions} sessions, ${total.restarts} restarts, ` +
      `${total.conflicts} open manual conflicts, ${total.resolutions} resolutions\n`,
  );
  return 0;
}

process.exitCode = await main();
