// Request bundles in process: four real PbftRuntimes (real SHA-256 + ed25519, the shared replica
// with receipts in memory) and the relay's PbftGateway in one process over an in-memory transport,
// 64 closed-loop writers (kv.put, unique keys). The gateway signs each request alone (bundles
// off, the baseline: what main did) or all it sends in one turn as one bundle (on), alternating
// off/on twice in the same run so machine noise hits both. Reports CPU per write (this process:
// all five parties), writes/s, request signatures made and client signatures verified per write.
// No libp2p: the devnet figures are `npm run bench -- pbft-cluster`.
import { MAX_REQUEST_BUNDLE } from '../src/consensus/pbft/types.ts';
import { startInProcessPbft } from '../test/harness/pbft-inprocess.ts';
import type { BenchRow } from './table.ts';

const CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? 64);
const WARMUP_WRITES = 200;
const WRITES = Number(process.env['BENCH_WRITES'] ?? 2000);
const REPEATS = 2;
const WRITE_TIMEOUT_MS = 60_000;

interface Sample {
  cpuMsPerWrite: number;
  writesPerSec: number;
  signedPerWrite: number;
  verifiedPerWrite: number;
}

async function measure(maxBundle: number): Promise<Sample> {
  const c = await startInProcessPbft();
  try {
    const g = c.gateway({ maxBundle });
    let next = 0;
    const loop = async (limit: number): Promise<void> => {
      const writers = Array.from({ length: CLIENTS }, async () => {
        while (next < limit) {
          const i = next++;
          await g.submit({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i } }, { signal: AbortSignal.timeout(WRITE_TIMEOUT_MS) });
        }
      });
      await Promise.all(writers);
    };
    await loop(WARMUP_WRITES);
    const verified0 = c.members.reduce((a, m) => a + m.pbftStatus().stats.clientSignaturesVerified, 0);
    const signed0 = g.requestSignatures;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await loop(WARMUP_WRITES + WRITES);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const verified = c.members.reduce((a, m) => a + m.pbftStatus().stats.clientSignaturesVerified, 0) - verified0;
    return { cpuMsPerWrite: (cpu.user + cpu.system) / 1000 / WRITES, writesPerSec: (WRITES / wall) * 1000, signedPerWrite: (g.requestSignatures - signed0) / WRITES, verifiedPerWrite: verified / WRITES };
  } finally {
    await c.close();
  }
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function run(): Promise<BenchRow[]> {
  const off: Sample[] = [];
  const on: Sample[] = [];
  for (let k = 0; k < REPEATS; k++) {
    off.push(await measure(1));
    on.push(await measure(MAX_REQUEST_BUNDLE));
  }
  const rows: BenchRow[] = [];
  const row = (name: string, s: Sample[], base?: Sample[]): void => {
    const cpu = mean(s.map((x) => x.cpuMsPerWrite));
    const baseCpu = base !== undefined ? mean(base.map((x) => x.cpuMsPerWrite)) : undefined;
    rows.push({
      suite: 'pbft-bundle',
      name: `${name}, ${CLIENTS} writers: CPU per write`,
      value: Number(cpu.toFixed(3)),
      unit: 'ms/write',
      ...(baseCpu !== undefined ? { baseline: { name: 'bundles off', value: Number(baseCpu.toFixed(3)) }, ratio: Number((cpu / baseCpu).toFixed(2)) } : {}),
      note: `${mean(s.map((x) => x.writesPerSec)).toFixed(0)} writes/s; per write: ${mean(s.map((x) => x.signedPerWrite)).toFixed(3)} request signatures made, ${mean(s.map((x) => x.verifiedPerWrite)).toFixed(3)} client signatures verified (4 replicas); runs ${s.map((x) => x.cpuMsPerWrite.toFixed(2)).join(', ')} ms`,
    });
  };
  row('bundles off (each request signed alone)', off);
  row(`bundles on (up to ${MAX_REQUEST_BUNDLE})`, on, off);
  return rows;
}
