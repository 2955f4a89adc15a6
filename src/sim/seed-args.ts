// The arguments every seeded simulator takes (`--seeds N --start S` for a range, `--seed S
// --trace` to replay one), parsed strictly with the CLI's parser so a typo is a usage error,
// plus each simulator's own options.
import { int, parse, str, UsageError, type Options, type Parsed } from '../cli/args.ts';

export interface SeedArgs {
  seeds: number;
  start: number;
  /** `--seed S`: replay this one seed. */
  single: number | undefined;
  trace: boolean;
  /** `--help`/`-h` was given: print the usage and exit 0. */
  help: boolean;
  /** Everything parsed, for the simulator's own options. */
  parsed: Parsed;
}

/** Seeds run when `--seeds` is not given. */
export const DEFAULT_SEEDS = 100;

const SEED_OPTIONS: Options = {
  seeds: { type: 'string' },
  start: { type: 'string' },
  seed: { type: 'string' },
  trace: { type: 'boolean' },
};

/** A non-negative integer option, `fallback` when absent. */
export function count(p: Parsed, name: string, fallback: number): number {
  return int(p, name, fallback, 0, Number.MAX_SAFE_INTEGER);
}

/** A non-negative integer option that may be absent. */
export function optionalCount(p: Parsed, name: string): number | undefined {
  return str(p, name) === undefined ? undefined : count(p, name, 0);
}

export function parseSeedArgs(argv: string[], extra: Options = {}): SeedArgs {
  const p = parse(argv, { ...SEED_OPTIONS, ...extra });
  const single = optionalCount(p, 'seed');
  if (p.values['trace'] === true && single === undefined) throw new UsageError('--trace replays one seed: give --seed S');
  return { seeds: count(p, 'seeds', DEFAULT_SEEDS), start: count(p, 'start', 1), single, trace: p.values['trace'] === true, help: p.values['help'] === true, parsed: p };
}
