// Shared shape of every benchmark row, the printed table and the JSON written to
// bench/results/. Each bench module exports `run(): Promise<BenchRow[]>`; bench/run.ts
// collects them. Ratios are always against a baseline measured in the same run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRow {
  /** Group, e.g. 'crypto', 'ico', 'receipts', 'net'. */
  suite: string;
  name: string;
  value: number;
  unit: string;
  /** Same-run baseline this row is compared against, if any. */
  baseline?: { name: string; value: number };
  /** value / baseline.value (or baseline/value when lower is better). */
  ratio?: number;
  /** Human-readable target, e.g. '>= 0.80 of raw node:crypto'. */
  target?: string;
  /** Whether the target was met in this run (undefined when there is no target). */
  met?: boolean;
  note?: string;
  /** Machine-readable figures behind the note (written to the JSON, not the table). */
  extra?: Record<string, number>;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns ops/s. */
export function opsPerSecond(fn: () => void, ms = 1000, batch = 100): number {
  const warmEnd = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

/** Percentile (0..100) of a list of samples; sorts a copy. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
}

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['suite', 'benchmark', 'value', 'unit', 'baseline', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [
    r.suite,
    r.name,
    fmt(r.value),
    r.unit,
    r.baseline ? `${r.baseline.name} ${fmt(r.baseline.value)}` : '',
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

export function writeResults(rows: readonly BenchRow[], dir = 'bench/results'): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `bench-${stamp}.json`);
  const meta = { node: process.version, platform: process.platform, arch: process.arch, cpus: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency };
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), meta, rows }, null, 2) + '\n');
  return file;
}
