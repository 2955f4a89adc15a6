// In-process three-node Raft commit throughput and latency on LevelDB: three RaftNode cores,
// each with a RaftStorage on its own LevelStore (own temp dir, fsync per Ready), messages
// delivered in-process. Each node runs the driver's Ready loop: a follower persists before it
// sends, the leader sends first and counts itself only after its write is durable (thesis
// §10.2.1, as src/consensus/raft/runtime/runtime.ts does). Baseline in the same run: the in-memory core
// (bench/raft.bench.ts) at the same batch size.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNode, bootstrapState, type Message, type NodeId, type Ready } from '../src/consensus/raft/index.ts';
import { RaftStorage } from '../src/consensus/raft/runtime/storage.ts';
import { Xoshiro128 } from '../src/sim/prng.ts';
import { LevelStore } from '../src/store/level.ts';
import { CountingStore, type IoCounts } from './counting-store.ts';
import { measureInMemory } from './raft.bench.ts';
import { percentile, type BenchRow } from './table.ts';

/** Wall time per measurement. */
const RUN_MS = Number(process.env['BENCH_DURABLE_MS'] ?? 2000);
const ENTRY_BYTES = 64;
/** Compact the in-memory logs every this many applied entries (the disk keeps them). */
const COMPACT_EVERY = 20_000;
/** Concurrent single-entry proposers in the "clients" shape (batching happens per Ready). */
const CONCURRENT_PROPOSERS = 64;
const VOTERS: readonly NodeId[] = ['n1', 'n2', 'n3'];
const LIMITS = { maxEntriesPerMsg: 4096, maxBytesPerMsg: 4 * 1024 * 1024, maxUncommittedEntries: 1 << 20 };

/** Storage writes (batches) and fsyncs (synced batches) of every member, counted at the Store. */
const io: IoCounts = { writes: 0, fsyncs: 0 };


/** One durable member: the driver's Ready loop without timers, sockets or a state machine. */
class DurableMember {
  readonly node: RaftNode;
  readonly storage: RaftStorage;
  readonly store: LevelStore;
  readyCount = 0;
  syncedEntries = 0;
  #running = false;
  #scheduled = false;
  #stopped = false;
  readonly #send: (m: readonly Message[]) => void;
  readonly #onAdvance: () => void;

  constructor(node: RaftNode, storage: RaftStorage, store: LevelStore, send: (m: readonly Message[]) => void, onAdvance: () => void) {
    this.node = node;
    this.storage = storage;
    this.store = store;
    this.#send = send;
    this.#onAdvance = onAdvance;
  }

  step(m: Message): void {
    this.node.step(m);
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  /** Stops taking Readies; resolves once the one being handled (if any) is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#running) await new Promise((r) => setTimeout(r, 1));
  }

  async #run(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      for (let rd = this.node.ready(); rd !== null && !this.#stopped; rd = this.node.ready()) await this.#handle(rd);
    } finally {
      this.#running = false;
    }
    if (this.node.hasReady()) this.schedule();
  }

  async #handle(rd: Ready): Promise<void> {
    const early = this.node.currentRole() === 'leader';
    if (early) this.#send(rd.messages);
    await this.storage.persist(rd);
    if (!early) this.#send(rd.messages);
    this.readyCount++;
    this.syncedEntries += rd.entries.length;
    this.node.advance(rd);
    const log = this.node.log;
    if (log.applied - log.snapIndex() >= COMPACT_EVERY && log.applied <= log.stableIndex) this.node.compact(log.applied, new Uint8Array(0));
    this.#onAdvance();
  }
}

interface DurableCluster {
  members: Map<NodeId, DurableMember>;
  leader: DurableMember;
  /** Resolves when the leader's commit index reaches `index`. */
  committed(index: number): Promise<void>;
  close(): Promise<void>;
}

async function openCluster(): Promise<DurableCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-raft-durable-'));
  const members = new Map<NodeId, DurableMember>();
  const waiters: { index: number; resolve: () => void }[] = [];
  const rng = new Xoshiro128(7);
  let leaderId: NodeId = 'n1';
  const onAdvance = (): void => {
    const leader = members.get(leaderId);
    if (leader === undefined) return;
    const c = leader.node.log.committed;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i] as { index: number; resolve: () => void };
      if (w.index <= c) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  const send = (msgs: readonly Message[]): void => {
    if (msgs.length === 0) return;
    // Delivered on a later turn, like a socket would (lets the sender's fsync overlap).
    setImmediate(() => {
      for (const m of msgs) members.get(m.to)?.step(m);
    });
  };
  const boot = bootstrapState(VOTERS);
  for (const id of VOTERS) {
    const store = await LevelStore.open(join(dir, id));
    const { storage, state, fresh } = await RaftStorage.open(new CountingStore(store, io));
    if (fresh) await storage.persist({ hardState: boot.hardState, entries: boot.entries });
    const node = new RaftNode({ id, random: rng.fork(), preVote: true, checkQuorum: true, storage: fresh ? boot : state, limits: LIMITS });
    members.set(id, new DurableMember(node, storage, store, send, onAdvance));
  }
  const first = members.get('n1') as DurableMember;
  first.node.campaign();
  first.schedule();
  const deadline = performance.now() + 10_000;
  while (first.node.currentRole() !== 'leader' || first.node.log.committed < first.node.log.lastIndex()) {
    if (performance.now() > deadline) throw new Error('raft-durable: no leader within 10 s');
    await new Promise((r) => setTimeout(r, 1));
  }
  leaderId = 'n1';
  return {
    members,
    leader: first,
    committed(index: number): Promise<void> {
      if (first.node.log.committed >= index) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ index, resolve }));
    },
    async close(): Promise<void> {
      for (const m of members.values()) await m.stop();
      for (const m of members.values()) {
        await m.storage.close();
        await m.store.close();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Measurement {
  entriesPerSec: number;
  latencyMs: number[];
  /** Leader Readies (each one durable batch) per committed entry. */
  readiesPerEntry: number;
  /** Storage writes and fsyncs of all three members per committed entry. */
  writesPerEntry: number;
  fsyncsPerEntry: number;
}

/** `proposers` closed-loop proposers, each proposing `batch` entries and waiting for commit. */
async function measureDurable(batch: number, proposers: number, ms: number): Promise<Measurement> {
  const c = await openCluster();
  try {
    const payload = new Uint8Array(ENTRY_BYTES).fill(7);
    const datas = Array.from({ length: batch }, () => payload);
    const latencyMs: number[] = [];
    let committed = 0;
    const readiesBefore = c.leader.readyCount;
    const ioBefore = { ...io };
    const start = performance.now();
    const end = start + ms;
    const proposer = async (): Promise<void> => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const first = c.leader.node.proposeBatch(datas);
        c.leader.schedule();
        await c.committed(first + batch - 1);
        latencyMs.push(performance.now() - t0);
        committed += batch;
      }
    };
    await Promise.all(Array.from({ length: proposers }, () => proposer()));
    const elapsed = performance.now() - start;
    const n = Math.max(1, committed);
    return { entriesPerSec: (committed * 1000) / elapsed, latencyMs, readiesPerEntry: (c.leader.readyCount - readiesBefore) / n, writesPerEntry: (io.writes - ioBefore.writes) / n, fsyncsPerEntry: (io.fsyncs - ioBefore.fsyncs) / n };
  } finally {
    await c.close();
  }
}

export async function run(): Promise<BenchRow[]> {
  // Same-run in-memory baselines, then the durable runs.
  measureInMemory(256, 200); // warm-up
  const mem1 = measureInMemory(1, RUN_MS);
  const mem1024 = measureInMemory(1024, RUN_MS);
  await measureDurable(64, 1, 300); // warm-up (LevelDB, JIT)
  const one = await measureDurable(1, 1, RUN_MS);
  const clients = await measureDurable(1, CONCURRENT_PROPOSERS, RUN_MS);
  const big = await measureDurable(1024, 1, RUN_MS);
  const rows: BenchRow[] = [
    { suite: 'raft-durable', name: 'in memory, 1 entry/round (baseline)', value: mem1.entriesPerSec, unit: 'entries/s' },
    { suite: 'raft-durable', name: 'in memory, batches of 1024 (baseline)', value: mem1024.entriesPerSec, unit: 'entries/s' },
    {
      suite: 'raft-durable',
      name: 'LevelDB three-node commit, 1 entry/round',
      value: one.entriesPerSec,
      unit: 'entries/s',
      baseline: { name: 'in memory 1 entry', value: mem1.entriesPerSec },
      ratio: one.entriesPerSec / mem1.entriesPerSec,
    },
    { suite: 'raft-durable', name: 'storage writes per committed entry (3 members), 1 entry/round', value: one.writesPerEntry, unit: 'writes', note: `${one.fsyncsPerEntry.toFixed(3)} fsyncs per entry` },
    { suite: 'raft-durable', name: `storage writes per committed entry (3 members), ${CONCURRENT_PROPOSERS} proposers`, value: clients.writesPerEntry, unit: 'writes', note: `${clients.fsyncsPerEntry.toFixed(3)} fsyncs per entry` },
    { suite: 'raft-durable', name: 'LevelDB commit latency p50, 1 entry', value: percentile(one.latencyMs, 50), unit: 'ms' },
    { suite: 'raft-durable', name: 'LevelDB commit latency p99, 1 entry', value: percentile(one.latencyMs, 99), unit: 'ms' },
    {
      suite: 'raft-durable',
      name: `LevelDB three-node commit, ${CONCURRENT_PROPOSERS} proposers x 1 entry`,
      value: clients.entriesPerSec,
      unit: 'entries/s',
      baseline: { name: 'LevelDB 1 entry/round', value: one.entriesPerSec },
      ratio: clients.entriesPerSec / one.entriesPerSec,
      note: `${clients.readiesPerEntry.toFixed(3)} leader Readies (fsyncs) per entry`,
    },
    { suite: 'raft-durable', name: `LevelDB commit latency p50, ${CONCURRENT_PROPOSERS} proposers`, value: percentile(clients.latencyMs, 50), unit: 'ms' },
    { suite: 'raft-durable', name: `LevelDB commit latency p99, ${CONCURRENT_PROPOSERS} proposers`, value: percentile(clients.latencyMs, 99), unit: 'ms' },
    {
      suite: 'raft-durable',
      name: 'LevelDB three-node commit, batches of 1024',
      value: big.entriesPerSec,
      unit: 'entries/s',
      baseline: { name: 'in memory batches of 1024', value: mem1024.entriesPerSec },
      ratio: big.entriesPerSec / mem1024.entriesPerSec,
    },
    { suite: 'raft-durable', name: 'LevelDB commit latency p50, batch of 1024', value: percentile(big.latencyMs, 50), unit: 'ms' },
    { suite: 'raft-durable', name: 'LevelDB commit latency p99, batch of 1024', value: percentile(big.latencyMs, 99), unit: 'ms' },
  ];
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatTable } = await import('./table.ts');
  process.stdout.write(formatTable(await run()) + '\n');
}
