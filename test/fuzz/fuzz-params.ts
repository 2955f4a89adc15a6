// How many cases each fuzz property runs and with which seed, from the environment, so CI runs
// the same count every time and a failure replays exactly:
//   FUZZ_RUNS=N         cases per property (default 10,000, the CI floor)
//   FUZZ_SEED=S         the seed fast-check printed for a failure
//   FUZZ_PATH=P         …and its counterexample path (replays the shrunk case directly)
import type { Parameters } from 'fast-check';

export const DEFAULT_FUZZ_RUNS = 10_000;

export function fuzzRuns(): number {
  const text = process.env['FUZZ_RUNS'];
  const n = text === undefined || text === '' ? DEFAULT_FUZZ_RUNS : Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`FUZZ_RUNS must be a positive integer, got ${text}`);
  return n;
}

/** fast-check parameters: the run count, and FUZZ_SEED / FUZZ_PATH when replaying a failure. */
export function fuzzParameters<T>(numRuns = fuzzRuns()): Parameters<T> {
  const params: Parameters<T> = { numRuns };
  const seed = process.env['FUZZ_SEED'];
  if (seed !== undefined && seed !== '') params.seed = Number(seed);
  const path = process.env['FUZZ_PATH'];
  if (path !== undefined && path !== '') params.path = path;
  return params;
}

/** Counts rejections by code, so a run can report what it reached (and a test can require coverage). */
export class Tally {
  readonly #counts = new Map<string, number>();

  add(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.#counts.values()) n += v;
    return n;
  }

  keys(): string[] {
    return [...this.#counts.keys()].sort();
  }

  toString(): string {
    return [...this.#counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
  }
}
