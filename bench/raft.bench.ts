// In-process three-node Raft commit throughput and latency, in memory (no disk, no network):
// the cost of the pure core and its batching. Baseline in the same run: one entry per round.
// Target from issue 5: >= 200k entries/s batched.
import { MemoryCluster } from '../src/sim/harness.ts';
import { percentile, type BenchRow } from './table.ts';

/** Wall time per measurement. */
const RUN_MS = 1500;
const ENTRY_BYTES = 64;
const TARGET_ENTRIES_PER_SEC = 200_000;

export interface Measurement {
  entriesPerSec: number;
  latencyMs: number[];
  rounds: number[];
}

/** Closed loop on the in-memory cluster: propose `batch` entries, deliver until committed. */
export function measureInMemory(batch: number, ms: number): Measurement {
  const c = new MemoryCluster({ voters: ['n1', 'n2', 'n3'], limits: { maxEntriesPerMsg: 4096, maxBytesPerMsg: 4 * 1024 * 1024, maxUncommittedEntries: 1 << 20 } });
  const leader = c.elect('n1');
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  const datas = Array.from({ length: batch }, () => payload);
  const latencyMs: number[] = [];
  const rounds: number[] = [];
  let committed = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    const t0 = performance.now();
    const first = leader.proposeBatch(datas);
    const last = first + batch - 1;
    let r = 0;
    // Deliver message waves until the leader has committed the batch.
    while (leader.log.committed < last) {
      c.processAll();
      const wave = c.inflight;
      c.inflight = [];
      for (const m of wave) c.deliver(m);
      r++;
      if (r > 100) throw new Error('bench: batch did not commit');
    }
    now = performance.now();
    latencyMs.push(now - t0);
    rounds.push(r);
    committed += batch;
    // Keep memory flat: drop applied records and compact every log.
    c.deliverAll();
    for (const [id, n] of c.nodes) {
      (c.applied.get(id) as unknown[]).length = 0;
      if (n.log.applied > n.log.snapIndex() && n.log.applied <= n.log.stableIndex) {
        n.compact(n.log.applied, new Uint8Array(0));
        const disk = c.disks.get(id);
        if (disk !== undefined) {
          disk.snapshot = n.log.snapshot;
          disk.entries = disk.entries.filter((e) => e.index > n.log.applied);
        }
      }
    }
  }
  return { entriesPerSec: (committed * 1000) / (performance.now() - start), latencyMs, rounds };
}

export async function run(): Promise<BenchRow[]> {
  measureInMemory(256, 200); // warm-up
  const single = measureInMemory(1, RUN_MS);
  const batched = measureInMemory(1024, RUN_MS);
  const rows: BenchRow[] = [
    { suite: 'raft', name: 'three-node commit, 1 entry/round (in memory)', value: single.entriesPerSec, unit: 'entries/s' },
    {
      suite: 'raft',
      name: 'three-node commit, batches of 1024 (in memory)',
      value: batched.entriesPerSec,
      unit: 'entries/s',
      baseline: { name: '1 entry/round', value: single.entriesPerSec },
      ratio: batched.entriesPerSec / single.entriesPerSec,
      target: `>= ${TARGET_ENTRIES_PER_SEC.toLocaleString('en-US')} entries/s`,
      met: batched.entriesPerSec >= TARGET_ENTRIES_PER_SEC,
    },
    { suite: 'raft', name: 'commit latency p50, 1 entry', value: percentile(single.latencyMs, 50), unit: 'ms' },
    { suite: 'raft', name: 'commit latency p99, 1 entry', value: percentile(single.latencyMs, 99), unit: 'ms' },
    { suite: 'raft', name: 'commit latency p50, batch of 1024', value: percentile(batched.latencyMs, 50), unit: 'ms' },
    { suite: 'raft', name: 'commit latency p99, batch of 1024', value: percentile(batched.latencyMs, 99), unit: 'ms' },
    { suite: 'raft', name: 'commit latency p99, message rounds', value: percentile(batched.rounds, 99), unit: 'rounds', note: 'propose -> leader commit, in message waves' },
  ];
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatTable } = await import('./table.ts');
  process.stdout.write(formatTable(await run()) + '\n');
}
