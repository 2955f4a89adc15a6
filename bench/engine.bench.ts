// Engine bench: what the engine seam costs per command. The single-node engine behind the API
// backend (EngineBackend.execute: edge checks, deadline, submit, durable receipt) against the
// replica alone doing the same durable work (state machine + command + outputs + signed receipt
// in one synced LevelDB batch, group-committed), in the same run, at 1 and 64 callers; CPU per
// command from process.cpuUsage. Raft in-process (three runtimes on real time, memory stores,
// loopback transport) through a follower and through the leader, for the runtime's own cost;
// linearizable reads at READ_CALLERS callers with leader leases against ReadIndex rounds
// (leases off), in interleaved rounds of the same run, through the leader and a follower.
// Knobs: ENGINE_BENCH_OPS (4000), ENGINE_BENCH_ROUNDS (3; rounds interleave, the median is kept).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineBackend } from '../relay/api/engine-backend.ts';
import { SingleEngine, singleKeys } from '../src/consensus/single/engine.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../src/crypto/index.ts';
import { Replica } from '../src/replica/replica.ts';
import { encodeCommand } from '../src/statemachine/command.ts';
import { LevelStore } from '../src/store/level.ts';
import { startInProcessCluster } from '../test/harness/raft-inprocess.ts';
import type { BenchRow } from './table.ts';

const OPS = Number(process.env['ENGINE_BENCH_OPS'] ?? 4000);
const ROUNDS = Number(process.env['ENGINE_BENCH_ROUNDS'] ?? 3);
const CALLERS = [1, 64] as const;
const READ_CALLERS = 16;
/** Keys written before the reads (reads spread over them). */
const READ_KEYS = 100;

interface Measured {
  opsPerSec: number;
  cpuUsPerOp: number;
}

/** Runs OPS calls of `one(i)` from `callers` concurrent callers; wall rate and CPU per call. */
async function measure(callers: number, ops: number, one: (i: number) => Promise<unknown>): Promise<Measured> {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < ops) await one(next++);
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { opsPerSec: (ops / ms) * 1000, cpuUsPerOp: (cpu.user + cpu.system) / ops };
}

function median(xs: readonly Measured[]): Measured {
  const by = <K extends keyof Measured>(k: K): number => [...xs].sort((a, b) => a[k] - b[k])[Math.floor(xs.length / 2)]![k];
  return { opsPerSec: by('opsPerSec'), cpuUsPerOp: by('cpuUsPerOp') };
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-engine-bench-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const signerFor = (): { signer: ReturnType<typeof crypto.createSigner>; peerId: string } => {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  return { signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) };
};

/** The baseline: the replica alone, with the single engine's durable layout. */
function replicaAlone(callers: number): Promise<Measured> {
  return inTempDir(async (dir) => {
    const store = await LevelStore.open(dir);
    const { signer, peerId } = signerFor();
    const replica = await Replica.open({ store, signer, peerId, syncReceipts: true, storeOutputs: true, recentExecutions: 1024 });
    const m = await measure(callers, OPS, async (i) => {
      const command = { operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, timestamp: Date.now() };
      const encoded = encodeCommand(command);
      const { receipt } = replica.execute(command, (ordinal) => [{ type: 'put', key: singleKeys.command(ordinal), value: encoded }]);
      await receipt;
    });
    await replica.close();
    return m;
  });
}

/** The single engine behind the API backend, as `hypersync relay --consensus none` runs it. */
function singleBehindApi(callers: number): Promise<Measured> {
  return inTempDir(async (dir) => {
    const { signer, peerId } = signerFor();
    const backend = new EngineBackend({ engine: await SingleEngine.open({ store: await LevelStore.open(dir), signer, peerId }) });
    const m = await measure(callers, OPS, (i) => backend.execute({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, options: {}, principal: 'bench' }));
    await backend.close();
    return m;
  });
}

async function raftInProcess(callers: number, through: 'leader' | 'follower'): Promise<Measured> {
  const c = await startInProcessCluster({ voters: 3 });
  try {
    const leader = await c.leader();
    const engine = through === 'leader' ? leader : c.members.find((m) => m !== leader)!;
    return await measure(callers, OPS, async (i) => {
      const { result, receipt } = await engine.submit({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i } });
      if (!result.ok) throw new Error(result.message);
      await receipt;
    });
  } finally {
    await c.close();
  }
}

/** Linearizable reads through `through`, with leader leases on or off (ReadIndex rounds only). */
async function raftReads(through: 'leader' | 'follower', lease: boolean): Promise<Measured> {
  const c = await startInProcessCluster({ voters: 3, leaseReads: lease });
  try {
    const leader = await c.leader();
    for (let k = 0; k < READ_KEYS; k++) await leader.submit({ operator_id: 'kv.put', inputs: { key: `r${k}`, value: k } });
    const engine = through === 'leader' ? leader : c.members.find((m) => m !== leader)!;
    return await measure(READ_CALLERS, OPS, async (i) => {
      const r = await engine.read('kv.get', { key: `r${i % READ_KEYS}` }, { consistency: 'linearizable' });
      if (!r.ok) throw new Error(r.message);
    });
  } finally {
    await c.close();
  }
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const through of ['leader', 'follower'] as const) {
    const lease: Measured[] = [];
    const readIndex: Measured[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      readIndex.push(await raftReads(through, false));
      lease.push(await raftReads(through, true));
    }
    const l = median(lease);
    const x = median(readIndex);
    process.stderr.write(`  engine: linearizable reads through the ${through}, ${READ_CALLERS} callers: lease ${l.opsPerSec.toFixed(0)}/s ${l.cpuUsPerOp.toFixed(0)} µs/read; ReadIndex ${x.opsPerSec.toFixed(0)}/s ${x.cpuUsPerOp.toFixed(0)} µs/read\n`);
    rows.push({ suite: 'engine', name: `raft in-process: linearizable reads with leader leases, ${READ_CALLERS} callers through the ${through}`, value: Math.round(l.opsPerSec), unit: 'op/s', baseline: { name: 'ReadIndex rounds (leases off), same run', value: Math.round(x.opsPerSec) }, ratio: Math.round((l.opsPerSec / x.opsPerSec) * 100) / 100 });
    rows.push({ suite: 'engine', name: `raft in-process: CPU per linearizable read with leases, ${READ_CALLERS} callers through the ${through}`, value: Math.round(l.cpuUsPerOp), unit: 'µs', baseline: { name: 'ReadIndex rounds (leases off), same run', value: Math.round(x.cpuUsPerOp) }, ratio: Math.round((l.cpuUsPerOp / x.cpuUsPerOp) * 100) / 100, note: 'all three runtimes; ratio < 1: what the lease saves' });
  }
  for (const callers of CALLERS) {
    const base: Measured[] = [];
    const single: Measured[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await replicaAlone(callers));
      single.push(await singleBehindApi(callers));
    }
    const b = median(base);
    const s = median(single);
    process.stderr.write(`  engine: ${callers} callers: replica alone ${b.opsPerSec.toFixed(0)}/s ${b.cpuUsPerOp.toFixed(0)} µs/op; single engine + API backend ${s.opsPerSec.toFixed(0)}/s ${s.cpuUsPerOp.toFixed(0)} µs/op\n`);
    rows.push({ suite: 'engine', name: `(b) replica alone: durable kv.put (LevelDB, receipt signed), ${callers} callers`, value: Math.round(b.opsPerSec), unit: 'op/s' });
    rows.push({ suite: 'engine', name: `(b) replica alone: CPU per command, ${callers} callers`, value: Math.round(b.cpuUsPerOp), unit: 'µs' });
    rows.push({ suite: 'engine', name: `(s) single engine behind the API backend, ${callers} callers`, value: Math.round(s.opsPerSec), unit: 'op/s', baseline: { name: '(b) replica alone', value: Math.round(b.opsPerSec) }, ratio: Math.round((s.opsPerSec / b.opsPerSec) * 100) / 100, target: '>= 0.90 of the replica alone', met: s.opsPerSec >= 0.9 * b.opsPerSec });
    rows.push({ suite: 'engine', name: `(s) single engine behind the API backend: CPU per command, ${callers} callers`, value: Math.round(s.cpuUsPerOp), unit: 'µs', baseline: { name: '(b) replica alone', value: Math.round(b.cpuUsPerOp) }, ratio: Math.round((s.cpuUsPerOp / b.cpuUsPerOp) * 100) / 100, note: 'ratio > 1: what the seam and the API checks add' });
  }
  for (const through of ['leader', 'follower'] as const) {
    const m = await raftInProcess(64, through);
    process.stderr.write(`  engine: raft in-process through the ${through}: ${m.opsPerSec.toFixed(0)}/s, ${m.cpuUsPerOp.toFixed(0)} µs/op (three runtimes in this process)\n`);
    rows.push({ suite: 'engine', name: `raft in-process (3 runtimes, memory stores), 64 callers through the ${through}`, value: Math.round(m.opsPerSec), unit: 'op/s', note: `${Math.round(m.cpuUsPerOp)} µs CPU per command for all three runtimes` });
  }
  return rows;
}
