// Durable Raft state on the Store interface: hard state, log entries and the latest snapshot.
// Keys: 'h' → {term, vote, commit, last} (last = highest live entry index; entries above it
// are stale leftovers of a truncation), 'e' u64(index) → u64 term | u8 type | data,
// 's' → snapshot meta, 'd' u32(i) → snapshot data chunk i. Each Ready is one atomic batch;
// deleting stale entries happens in later bounded batches, which is safe because the loader
// trusts only [snapshot.index + 1, last].
import type { ConfState, Entry, HardState, PersistedState, Ready, Snapshot, SnapshotMeta } from '../types.ts';
import { utf8Decode, utf8Encode } from '../../../crypto/index.ts';
import { readU64, writeU64 } from '../../../store/keys.ts';
import { MAX_BATCH_OPS, MAX_VALUE_BYTES, type BatchOp, type Store } from '../../../store/types.ts';

/** Snapshot data is split into chunks of this size (the Store limits one value). */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Stale entries deleted per background batch. */
const DELETE_BATCH = Math.min(4096, MAX_BATCH_OPS);

export class RaftStorageError extends Error {
  readonly code = 'RAFT_STORAGE_CORRUPT';
  override name = 'RaftStorageError';
}

const HARD = Uint8Array.of(0x68); // 'h'
const SNAP_META = Uint8Array.of(0x73); // 's'

function entryKey(index: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = 0x65; // 'e'
  writeU64(k, 1, index);
  return k;
}

function chunkKey(i: number): Uint8Array {
  const k = new Uint8Array(5);
  k[0] = 0x64; // 'd'
  new DataView(k.buffer).setUint32(1, i);
  return k;
}

function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(9 + e.data.length);
  writeU64(out, 0, e.term);
  out[8] = e.type === 'normal' ? 0 : 1;
  out.set(e.data, 9);
  return out;
}

function decodeEntry(index: number, b: Uint8Array): Entry {
  if (b.length < 9) throw new RaftStorageError(`entry ${index}: ${b.length} bytes`);
  const term = readU64(b);
  return { term, index, type: b[8] === 0 ? 'normal' : 'confChange', data: b.slice(9) };
}

interface HardRecord extends HardState {
  last: number;
}

export class RaftStorage {
  readonly #store: Store;
  #hard: HardRecord;
  /** Lowest entry index that may still be on disk (stale ones below the snapshot included). */
  #diskFirst: number;
  #cleanup: Promise<void> = Promise.resolve();
  /** Whether the last persist was durable: the first durable one after others is a barrier. */
  #wasDurable = true;

  private constructor(store: Store, hard: HardRecord, diskFirst: number) {
    this.#store = store;
    this.#hard = hard;
    this.#diskFirst = diskFirst;
  }

  /** Opens the storage; `fresh` is true when nothing was ever persisted (bootstrap then). */
  static async open(store: Store): Promise<{ storage: RaftStorage; state: PersistedState; fresh: boolean }> {
    return RaftStorage.#open(store);
  }

  static async #open(store: Store): Promise<{ storage: RaftStorage; state: PersistedState; fresh: boolean }> {
    const rawHard = await store.get(HARD);
    if (rawHard === undefined) {
      const storage = new RaftStorage(store, { term: 0, vote: '', commit: 0, last: 0 }, 1);
      return { storage, state: { hardState: { term: 0, vote: '', commit: 0 }, entries: [] }, fresh: true };
    }
    const hard = parseJson<HardRecord>(rawHard, 'hard state');
    let snapshot: Snapshot | undefined;
    const rawMeta = await store.get(SNAP_META);
    if (rawMeta !== undefined) {
      const m = parseJson<{ index: number; term: number; conf: ConfState; bytes: number; chunks: number }>(rawMeta, 'snapshot meta');
      const parts: Uint8Array[] = [];
      for (let i = 0; i < m.chunks; i++) {
        const c = await store.get(chunkKey(i));
        if (c === undefined) throw new RaftStorageError(`snapshot chunk ${i} of ${m.chunks} missing`);
        parts.push(c);
      }
      const data = new Uint8Array(m.bytes);
      let off = 0;
      for (const p of parts) {
        data.set(p, off);
        off += p.length;
      }
      if (off !== m.bytes) throw new RaftStorageError(`snapshot has ${off} bytes, meta says ${m.bytes}`);
      snapshot = { meta: { index: m.index, term: m.term, conf: m.conf }, data };
    }
    const snapIndex = snapshot?.meta.index ?? 0;
    const entries: Entry[] = [];
    let diskFirst = snapIndex + 1;
    for await (const [k, v] of store.range({ gte: entryKey(0), lte: entryKey(hard.last) })) {
      const index = readU64(k, 1);
      if (entries.length === 0 && index < diskFirst) diskFirst = index;
      if (index <= snapIndex) continue;
      if (index !== snapIndex + 1 + entries.length) throw new RaftStorageError(`log gap: expected entry ${snapIndex + 1 + entries.length}, found ${index}`);
      entries.push(decodeEntry(index, v));
    }
    if (hard.last > snapIndex && entries.length !== hard.last - snapIndex) throw new RaftStorageError(`log ends at ${snapIndex + entries.length}, hard state says ${hard.last}`);
    const storage = new RaftStorage(store, hard, diskFirst);
    const state: PersistedState = { hardState: { term: hard.term, vote: hard.vote, commit: hard.commit }, entries, ...(snapshot !== undefined ? { snapshot } : {}) };
    return { storage, state, fresh: false };
  }

  /**
   * Writes what `rd` asks to persist as one batch (nothing when it has nothing). `durable: false`
   * (a learner's log) skips the fsync: a learner never votes and its log never counts towards a
   * commit, so losing a suffix to a power cut only means fetching it again; the writes still
   * reach the OS, so they survive kill -9. The first durable persist after non-durable ones is
   * always synced, whatever it holds: a learner just promoted to voter must not ack entries
   * that are only in the OS cache.
   */
  async persist(rd: Pick<Ready, 'hardState' | 'entries' | 'snapshot'>, opts: { durable?: boolean } = {}): Promise<void> {
    const durable = opts.durable ?? true;
    const barrier = durable && !this.#wasDurable;
    this.#wasDurable = durable;
    if (rd.hardState === undefined && rd.entries.length === 0 && rd.snapshot === undefined && !barrier) return;
    const ops: BatchOp[] = [];
    const hard: HardRecord = { ...this.#hard, ...(rd.hardState ?? {}) };
    if (rd.snapshot !== undefined) {
      ops.push(...this.#snapshotOps(rd.snapshot));
      hard.last = rd.snapshot.meta.index;
    }
    if (rd.entries.length > 0) {
      for (const e of rd.entries) ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) });
      hard.last = (rd.entries[rd.entries.length - 1] as Entry).index;
    }
    ops.push({ type: 'put', key: HARD, value: utf8Encode(JSON.stringify({ term: hard.term, vote: hard.vote, commit: hard.commit, last: hard.last })) });
    // Entries, a snapshot, a new term or a vote must reach the disk before we send (Raft's
    // safety rests on them). The commit index alone need not: after a crash it is learned
    // again from the leader, so that write skips the fsync (etcd's MustSync rule).
    const sync = durable && (barrier || rd.entries.length > 0 || rd.snapshot !== undefined || hard.term !== this.#hard.term || hard.vote !== this.#hard.vote);
    for (let i = 0; i < ops.length; i += MAX_BATCH_OPS) await this.#store.batch(ops.slice(i, i + MAX_BATCH_OPS), { sync });
    this.#hard = hard;
    if (rd.snapshot !== undefined) this.#compactTo(rd.snapshot.meta.index);
  }

  /** The application snapshotted at `snapshot.meta.index`; persist it and drop the log before it. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.#store.batch(this.#snapshotOps(snapshot));
    this.#compactTo(snapshot.meta.index);
  }

  #snapshotOps(s: Snapshot): BatchOp[] {
    const chunks = Math.ceil(s.data.length / SNAPSHOT_CHUNK_BYTES);
    const ops: BatchOp[] = [];
    for (let i = 0; i < chunks; i++) ops.push({ type: 'put', key: chunkKey(i), value: s.data.subarray(i * SNAPSHOT_CHUNK_BYTES, (i + 1) * SNAPSHOT_CHUNK_BYTES) });
    const meta: SnapshotMeta & { bytes: number; chunks: number } = { index: s.meta.index, term: s.meta.term, conf: s.meta.conf, bytes: s.data.length, chunks };
    ops.push({ type: 'put', key: SNAP_META, value: utf8Encode(JSON.stringify(meta)) });
    if (SNAPSHOT_CHUNK_BYTES > MAX_VALUE_BYTES) throw new RaftStorageError('snapshot chunk larger than a store value');
    return ops;
  }

  /**
   * Deletes entries [diskFirst, index] in the background, in bounded batches. Leftovers above
   * `last` (after a truncation or a snapshot install) are never read and get overwritten
   * before `last` grows over them, since entries are always written contiguously.
   */
  #compactTo(index: number): void {
    const from = this.#diskFirst;
    const to = index;
    if (to < from) return;
    this.#diskFirst = to + 1;
    this.#cleanup = this.#cleanup.then(async () => {
      for (let i = from; i <= to; i += DELETE_BATCH) {
        const ops: BatchOp[] = [];
        for (let j = i; j <= Math.min(to, i + DELETE_BATCH - 1); j++) ops.push({ type: 'del', key: entryKey(j) });
        await this.#store.batch(ops);
      }
    }).catch(() => undefined);
  }

  get lastIndex(): number {
    return this.#hard.last;
  }

  async close(): Promise<void> {
    await this.#cleanup;
  }
}

function parseJson<T>(b: Uint8Array, what: string): T {
  try {
    return JSON.parse(utf8Decode(b)) as T;
  } catch {
    throw new RaftStorageError(`${what} is not valid JSON`);
  }
}

