// Receipt signatures, storage writes and fsyncs per committed write on the replicated path,
// in one process: three real Raft runtimes and a learner (the relay's place), each with its
// replica, on LevelDB (own temp dirs), joined by the in-process loopback transport. Every
// write goes through the learner, which awaits its receipt as the API does. Baseline in the
// same run: eager receipts (every member signs every receipt, as before issue 11 item 2).
// CPU per write is this process's CPU (all four members) over the writes committed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore } from '../src/store/level.ts';
import { CountingStore, type IoCounts } from './counting-store.ts';
import { startInProcessCluster } from '../test/harness/raft-inprocess.ts';
import type { BenchRow } from './table.ts';

/** Wall time per measurement. */
const RUN_MS = Number(process.env['BENCH_RECEIPT_PATH_MS'] ?? 3000);
const CLIENT_COUNTS = [1, 16, 64] as const;
/** Longest a single write may take before the run counts it failed. */
const WRITE_TIMEOUT_MS = 10_000;

const io: IoCounts = { writes: 0, fsyncs: 0 };


interface PathRun {
  writes: number;
  writesPerSec: number;
  cpuMsPerWrite: number;
  receiptSignaturesPerWrite: number;
  treeHeadsPerWrite: number;
  storageWritesPerWrite: number;
  fsyncsPerWrite: number;
}

async function measure(receiptSigning: 'eager' | 'lazy', clients: number, ms: number): Promise<PathRun> {
  const dir = mkdtempSync(join(tmpdir(), 'hs-receipt-path-'));
  const c = await startInProcessCluster({ voters: 3, learners: 1, receiptSigning, store: async (i, part) => new CountingStore(await LevelStore.open(join(dir, `${i}-${part}`)), io) });
  try {
    await c.leader(WRITE_TIMEOUT_MS);
    const relay = c.members[3]!;
    const write = async (n: number): Promise<void> => {
      const o = await relay.submit({ operator_id: 'kv.put', inputs: { key: `k${n % 1024}`, value: n } }, { signal: AbortSignal.timeout(WRITE_TIMEOUT_MS) });
      if (!o.result.ok || o.receipt === null) throw new Error(`write ${n} failed: ${JSON.stringify(o.result)}`);
      await o.receipt;
    };
    // Warm-up, then counters from zero.
    for (let i = 0; i < 50; i++) await write(i);
    for (const m of c.members) await m.replica.flush();
    const sigs0 = c.members.reduce((n, m) => n + m.replica.log.receiptSignatures, 0);
    const heads0 = c.members.reduce((n, m) => n + m.replica.log.treeHeadSignatures, 0);
    const applied0 = c.members.map((m) => m.replica.ordinal);
    io.writes = 0;
    io.fsyncs = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + ms;
    let next = 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        // Bounded by the wall time.
        while (performance.now() < end) {
          await write(next++);
          done++;
        }
      }),
    );
    const elapsed = performance.now() - start;
    // Every member applies and makes durable what the relay answered (bounded wait).
    const target = applied0[3]! + done;
    const deadline = Date.now() + WRITE_TIMEOUT_MS;
    while (c.members.some((m) => m.replica.ordinal < target) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    for (const m of c.members) await m.replica.flush();
    const cpu = process.cpuUsage(cpu0);
    const sigs = c.members.reduce((n, m) => n + m.replica.log.receiptSignatures, 0) - sigs0;
    const heads = c.members.reduce((n, m) => n + m.replica.log.treeHeadSignatures, 0) - heads0;
    return {
      writes: done,
      writesPerSec: (done * 1000) / elapsed,
      cpuMsPerWrite: (cpu.user + cpu.system) / 1000 / done,
      receiptSignaturesPerWrite: sigs / done,
      treeHeadsPerWrite: heads / done,
      storageWritesPerWrite: io.writes / done,
      fsyncsPerWrite: io.fsyncs / done,
    };
  } finally {
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  await measure('lazy', 4, 300); // warm-up (LevelDB, JIT)
  const rows: BenchRow[] = [];
  for (const clients of CLIENT_COUNTS) {
    const eager = await measure('eager', clients, RUN_MS);
    const lazy = await measure('lazy', clients, RUN_MS);
    const at = `${clients} client${clients === 1 ? '' : 's'}`;
    const suite = 'receipt-path';
    rows.push(
      { suite, name: `receipt signatures per write, eager (baseline), ${at}`, value: eager.receiptSignaturesPerWrite, unit: 'sigs', note: `${eager.writes} writes` },
      {
        suite,
        name: `receipt signatures per write, lazy, ${at}`,
        value: lazy.receiptSignaturesPerWrite,
        unit: 'sigs',
        baseline: { name: 'eager', value: eager.receiptSignaturesPerWrite },
        ratio: lazy.receiptSignaturesPerWrite / eager.receiptSignaturesPerWrite,
        target: '<= 1 per write',
        met: lazy.receiptSignaturesPerWrite <= 1,
        note: `+ ${lazy.treeHeadsPerWrite.toFixed(3)} batch tree heads per write; ${lazy.writes} writes`,
      },
      { suite, name: `storage writes per write (4 members), eager, ${at}`, value: eager.storageWritesPerWrite, unit: 'writes', note: `${eager.fsyncsPerWrite.toFixed(3)} fsyncs per write` },
      { suite, name: `storage writes per write (4 members), lazy, ${at}`, value: lazy.storageWritesPerWrite, unit: 'writes', note: `${lazy.fsyncsPerWrite.toFixed(3)} fsyncs per write` },
      { suite, name: `CPU per write (4 members, one process), eager, ${at}`, value: eager.cpuMsPerWrite, unit: 'ms', note: `${eager.writesPerSec.toFixed(0)} writes/s` },
      {
        suite,
        name: `CPU per write (4 members, one process), lazy, ${at}`,
        value: lazy.cpuMsPerWrite,
        unit: 'ms',
        baseline: { name: 'eager', value: eager.cpuMsPerWrite },
        ratio: lazy.cpuMsPerWrite / eager.cpuMsPerWrite,
        note: `${lazy.writesPerSec.toFixed(0)} writes/s`,
      },
    );
  }
  return rows;
}
