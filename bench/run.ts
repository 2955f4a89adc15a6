// `npm run bench [-- suite...]`: runs every bench module (or the named suites), prints one
// table and writes JSON to bench/results/. Benchmarks never fail the build on a slow machine.
import { formatTable, writeResults, type BenchRow } from './table.ts';

interface BenchModule { run(): Promise<BenchRow[]> }

const suites: Record<string, () => Promise<BenchModule>> = {
  crypto: () => import('./crypto.bench.ts'),
  ico: () => import('./ico.bench.ts'),
  receipts: () => import('./receipts.bench.ts'),
  verify: () => import('./verify.bench.ts'),
  raft: () => import('./raft.bench.ts'),
  'pbft-core': () => import('./pbft-core.bench.ts'),
  'raft-durable': () => import('./raft-durable.bench.ts'),
  'receipt-path': () => import('./receipt-path.bench.ts'),
  'raft-cluster': () => import('./raft-cluster.bench.ts'),
  'snapshot-stall': () => import('./snapshot-stall.bench.ts'),
  'pbft-cluster': () => import('./pbft-cluster.bench.ts'),
  'pbft-bundle': () => import('./pbft-bundle.bench.ts'),
  engine: () => import('./engine.bench.ts'),
  net: () => import('./net.bench.ts'),
  'net-hotpath': () => import('./net-hotpath.bench.ts'),
  api: () => import('./api.bench.ts'),
  'api-edge': () => import('./api-edge.bench.ts'),
  'api-path': () => import('./api-path.bench.ts'),
  sync: () => import('./sync.bench.ts'),
  web: () => import('./web.bench.ts'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
if (process.argv.includes('--help')) {
  process.stdout.write(`usage: npm run bench [-- ${Object.keys(suites).join('|')} ...]\n`);
  process.exit(0);
}
const names = wanted.length > 0 ? wanted : Object.keys(suites);
const rows: BenchRow[] = [];
for (const name of names) {
  const load = suites[name];
  if (load === undefined) {
    process.stderr.write(`unknown bench suite '${name}'; known: ${Object.keys(suites).join(', ')}\n`);
    process.exit(2);
  }
  process.stderr.write(`bench: running ${name}...\n`);
  const mod = await load();
  rows.push(...(await mod.run()));
}
process.stdout.write(formatTable(rows) + '\n');
process.stdout.write(`results written to ${writeResults(rows)}\n`);
