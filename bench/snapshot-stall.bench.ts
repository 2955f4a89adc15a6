// How long a Raft snapshot holds the event loop (issue 11: at 64 clients round 3 of the
// raft-cluster bench, once the log passed DEFAULT_SNAPSHOT_EVERY entries, p99 was ~460 ms).
// States shaped like the raft-cluster bench's (kv.put of unique keys, 100-byte values, one
// retry session per write) at several sizes. Baseline, same run: the snapshot in one go (what
// the runtime did before, all of it on the loop). Measured: the stepped job the runtime now
// runs beside its Ready loop: its longest step (wall and CPU) and its total CPU.
import { StateMachine } from '../src/statemachine/machine.ts';
import type { BenchRow } from './table.ts';

const SIZES = (process.env['SNAPSHOT_BENCH_SIZES'] ?? '11000,100000,300000').split(',').map(Number);
const REPEATS = 3;
const VALUE = 'v'.repeat(100);
const T0 = 1_700_000_000_000;

function cpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

function benchState(writes: number): StateMachine {
  // One client's retry sessions last 2 minutes: the writes come 1 ms apart so all are kept (up to the table's cap).
  const sm = new StateMachine();
  for (let i = 0; i < writes; i++) {
    const r = sm.apply({ operator_id: 'kv.put', inputs: { key: `bench/x64/${i % 64}/${i}`, value: VALUE }, timestamp: T0 + i, session: { client: 'bench', key: `~r.bench.${i}`, retry: true } });
    if (!r.ok) throw new Error(`snapshot bench: apply failed: ${r.message}`);
  }
  return sm;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const writes of SIZES) {
    const sm = benchState(writes);
    let oneGoMs = Number.POSITIVE_INFINITY;
    let bytes = 0;
    for (let r = 0; r < REPEATS; r++) {
      const t = performance.now();
      bytes = sm.snapshot().length;
      oneGoMs = Math.min(oneGoMs, performance.now() - t);
    }
    let longestMs = Number.POSITIVE_INFINITY;
    let longestCpuMs = Number.POSITIVE_INFINITY;
    let totalCpuMs = Number.POSITIVE_INFINITY;
    let steps = 0;
    for (let r = 0; r < REPEATS; r++) {
      const job = sm.beginSnapshot();
      let longest = 0;
      let longestCpu = 0;
      let total = 0;
      steps = 0;
      for (let done = false; !done; ) {
        const c = process.cpuUsage();
        const t = performance.now();
        done = job.step();
        longest = Math.max(longest, performance.now() - t);
        const cpu = cpuMs(c);
        longestCpu = Math.max(longestCpu, cpu);
        total += cpu;
        steps++;
        // A turn of the loop between steps, as in the runtime.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (job.bytes().length !== bytes) throw new Error('snapshot bench: stepped bytes differ from one go');
      // The best of the repeats for each figure (each is a lower bound the machine's load only raises).
      longestMs = Math.min(longestMs, longest);
      longestCpuMs = Math.min(longestCpuMs, longestCpu);
      totalCpuMs = Math.min(totalCpuMs, total);
    }
    const name = `${writes} writes (${(bytes / 1048576).toFixed(1)} MiB)`;
    rows.push({
      suite: 'snapshot-stall',
      name: `${name}: longest loop block, stepped`,
      value: longestMs,
      unit: 'ms',
      baseline: { name: 'one go', value: oneGoMs },
      ratio: oneGoMs / longestMs,
      target: 'a few ms at any size',
      met: longestMs <= 10,
      note: `${steps} steps; longest step CPU ${longestCpuMs.toFixed(1)} ms; total CPU ${totalCpuMs.toFixed(0)} ms (one go ${oneGoMs.toFixed(0)} ms wall)`,
      extra: { writes, bytes, steps, oneGoMs, longestMs, longestCpuMs, totalCpuMs },
    });
  }
  return rows;
}
