// Durable Raft state on the Store interface: hard state, log entries and the latest snapshot.
// Keys: 'h' → {term, vote, commit, last} (last = highest live entry index; entries above it
// are stale leftovers of a truncation), 'e' u64(index) → u64 term | u8 type | data,
// 's' → snapshot meta {index, term, conf, bytes, chunks, gen}, 'd' u64(gen) u32(i) → chunk i
// of snapshot generation gen. Invariants: every batch leaves a loadable state (its hard record
// names only entries already written, so a hard state is never durable without the entries it
// covers, however a large Ready is split); a snapshot's chunks are written, in bounded batches,
// under a new generation before the one batch that switches the meta to it, so a crash at any
// point keeps the old snapshot or the new one, never a mix. Stale entries and chunks of older
// generations are deleted afterwards in bounded batches: the loader trusts only
// [snapshot.index + 1, last] and the meta's own generation.
import type { ConfState, Entry, HardState, PersistedState, Ready, Snapshot, SnapshotMeta } from '../types.ts';
import { utf8Decode, utf8Encode } from '../../../crypto/index.ts';
import { readU64, writeU64 } from '../../../store/keys.ts';
import { MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_VALUE_BYTES, type BatchOp, type Store } from '../../../store/types.ts';

/** Snapshot data is split into chunks of this size (the Store limits one value). */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes of keys and values in one storage batch at most: a Ready, or a snapshot, larger than
 * this is written in several batches (each one a loadable state). Well under the Store's
 * MAX_BATCH_BYTES, so one write never holds the disk for long.
 */
export const MAX_PERSIST_BATCH_BYTES = 8 * 1024 * 1024;
/** Operations in one storage batch at most. */
export const MAX_PERSIST_BATCH_OPS = Math.min(4096, MAX_BATCH_OPS);
/** Stale entries or chunks deleted per background batch. */
const DELETE_BATCH = MAX_PERSIST_BATCH_OPS;
/** Room kept in every batch for the hard record and the snapshot meta. */
const RECORD_ROOM_BYTES = 64 * 1024;

export class RaftStorageError extends Error {
  readonly code = 'RAFT_STORAGE_CORRUPT';
  override name = 'RaftStorageError';
}

const HARD = Uint8Array.of(0x68); // 'h'
const SNAP_META = Uint8Array.of(0x73); // 's'
const CHUNK_PREFIX = 0x64; // 'd'
const ENTRY_PREFIX = 0x65; // 'e'

function entryKey(index: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = ENTRY_PREFIX;
  writeU64(k, 1, index);
  return k;
}

/** Chunk i of snapshot generation `gen`; generation 0 is the layout before generations ('d' u32(i)). */
function chunkKey(gen: number, i: number): Uint8Array {
  if (gen === 0) {
    const k = new Uint8Array(5);
    k[0] = CHUNK_PREFIX;
    new DataView(k.buffer).setUint32(1, i);
    return k;
  }
  const k = new Uint8Array(13);
  k[0] = CHUNK_PREFIX;
  writeU64(k, 1, gen);
  new DataView(k.buffer).setUint32(9, i);
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

function hardValue(h: HardRecord): Uint8Array {
  return utf8Encode(JSON.stringify({ term: h.term, vote: h.vote, commit: h.commit, last: h.last }));
}

interface HardRecord extends HardState {
  last: number;
}

interface SnapshotRecord {
  index: number;
  term: number;
  conf: ConfState;
  bytes: number;
  chunks: number;
  /** Absent in the layout before generations (then 0). */
  gen?: number;
}

/** Counts what reaches the store (the benches report writes and fsyncs per committed write). */
export interface RaftStorageStats {
  batches: number;
  syncedBatches: number;
  bytes: number;
}

export class RaftStorage {
  readonly #store: Store;
  #hard: HardRecord;
  /** Lowest entry index that may still be on disk (stale ones below the snapshot included). */
  #diskFirst: number;
  /** The snapshot the meta on disk names (absent: none yet). */
  #snap: SnapshotRecord | undefined;
  /** Background deletes (stale entries, chunks of older generations), one after another. */
  #cleanup: Promise<void> = Promise.resolve();
  /** Snapshot writes, one after another (a compaction snapshot and an installed one may overlap). */
  #snapWrites: Promise<void> = Promise.resolve();
  /** Whether the last persist was durable: the first durable one after others is a barrier. */
  #wasDurable = true;
  readonly stats: RaftStorageStats = { batches: 0, syncedBatches: 0, bytes: 0 };

  private constructor(store: Store, hard: HardRecord, diskFirst: number, snap: SnapshotRecord | undefined) {
    this.#store = store;
    this.#hard = hard;
    this.#diskFirst = diskFirst;
    this.#snap = snap;
  }

  /** Opens the storage; `fresh` is true when nothing was ever persisted (bootstrap then). */
  static async open(store: Store): Promise<{ storage: RaftStorage; state: PersistedState; fresh: boolean }> {
    const rawHard = await store.get(HARD);
    if (rawHard === undefined) {
      const storage = new RaftStorage(store, { term: 0, vote: '', commit: 0, last: 0 }, 1, undefined);
      await storage.#sweepChunks();
      return { storage, state: { hardState: { term: 0, vote: '', commit: 0 }, entries: [] }, fresh: true };
    }
    const hard = parseJson<HardRecord>(rawHard, 'hard state');
    let snapshot: Snapshot | undefined;
    let record: SnapshotRecord | undefined;
    const rawMeta = await store.get(SNAP_META);
    if (rawMeta !== undefined) {
      record = parseJson<SnapshotRecord>(rawMeta, 'snapshot meta');
      const gen = record.gen ?? 0;
      const data = new Uint8Array(record.bytes);
      let off = 0;
      for (let i = 0; i < record.chunks; i++) {
        const c = await store.get(chunkKey(gen, i));
        if (c === undefined) throw new RaftStorageError(`snapshot chunk ${i} of ${record.chunks} missing`);
        if (off + c.length > record.bytes) throw new RaftStorageError(`snapshot chunks exceed the ${record.bytes} bytes its meta says`);
        data.set(c, off);
        off += c.length;
      }
      if (off !== record.bytes) throw new RaftStorageError(`snapshot has ${off} bytes, meta says ${record.bytes}`);
      snapshot = { meta: { index: record.index, term: record.term, conf: record.conf }, data };
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
    const storage = new RaftStorage(store, hard, diskFirst, record);
    await storage.#sweepChunks();
    const state: PersistedState = { hardState: { term: hard.term, vote: hard.vote, commit: hard.commit }, entries, ...(snapshot !== undefined ? { snapshot } : {}) };
    return { storage, state, fresh: false };
  }

  /**
   * Writes what `rd` asks to persist: one batch, or for a Ready (or snapshot) over
   * MAX_PERSIST_BATCH_BYTES several, each a loadable state. `durable: false` (a learner's log)
   * skips the fsync: a learner never votes and its log never counts towards a commit, so
   * losing a suffix to a power cut only means fetching it again; the writes still reach the
   * OS, so they survive kill -9. The first durable persist after non-durable ones is always
   * synced, whatever it holds: a learner just promoted to voter must not ack entries that are
   * only in the OS cache.
   */
  async persist(rd: Pick<Ready, 'hardState' | 'entries' | 'snapshot'>, opts: { durable?: boolean } = {}): Promise<void> {
    const durable = opts.durable ?? true;
    const barrier = durable && !this.#wasDurable;
    this.#wasDurable = durable;
    if (rd.hardState === undefined && rd.entries.length === 0 && rd.snapshot === undefined && !barrier) return;
    const target: HardRecord = { ...this.#hard, ...(rd.hardState ?? {}) };
    // Entries, a snapshot, a new term or a vote must reach the disk before we send (Raft's
    // safety rests on them). The commit index alone need not: after a crash it is learned
    // again from the leader, so that write skips the fsync (etcd's MustSync rule).
    const sync = durable && (barrier || rd.entries.length > 0 || rd.snapshot !== undefined || target.term !== this.#hard.term || target.vote !== this.#hard.vote);
    let last = this.#hard.last;
    let ops: BatchOp[] = [];
    let bytes = 0;
    let switched: SnapshotRecord | undefined;
    if (rd.snapshot !== undefined) {
      const snap = rd.snapshot;
      // An installed snapshot replaces the log: its chunks first (invisible until the meta
      // names them), then the meta and a hard record ending the log at the snapshot.
      await this.#snapWrites;
      switched = await this.#writeChunks(snap, { sync });
      ops.push({ type: 'put', key: SNAP_META, value: utf8Encode(JSON.stringify(switched)) });
      last = snap.meta.index;
    }
    // Every batch ends with a hard record naming only what is written by then: a crash
    // between batches leaves a shorter log, never a hard state without its entries.
    const flush = async (hard: HardRecord): Promise<void> => {
      ops.push({ type: 'put', key: HARD, value: hardValue(hard) });
      await this.#write(ops, sync);
      this.#hard = hard;
      ops = [];
      bytes = 0;
      if (switched !== undefined) {
        this.#switchedTo(switched);
        switched = undefined;
      }
    };
    for (const e of rd.entries) {
      const value = encodeEntry(e);
      if (ops.length > 0 && (ops.length + 2 > MAX_PERSIST_BATCH_OPS || bytes + value.length + RECORD_ROOM_BYTES > MAX_PERSIST_BATCH_BYTES)) {
        await flush({ term: target.term, vote: target.vote, commit: Math.min(target.commit, last), last });
      }
      ops.push({ type: 'put', key: entryKey(e.index), value });
      bytes += value.length + 9;
      last = e.index;
    }
    await flush({ ...target, last });
  }

  /**
   * The application snapshotted at `snapshot.meta.index`: persist it (chunks in bounded
   * batches, then the meta) and drop the log before it.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    const done = this.#snapWrites.then(async () => {
      if (this.#snap !== undefined && this.#snap.index >= snapshot.meta.index) return;
      const record = await this.#writeChunks(snapshot, { sync: true });
      await this.#write([{ type: 'put', key: SNAP_META, value: utf8Encode(JSON.stringify(record)) }], true);
      this.#switchedTo(record);
    });
    this.#snapWrites = done.catch(() => undefined);
    return done;
  }

  /**
   * Writes a snapshot's chunks under the next generation, at most MAX_PERSIST_BATCH_BYTES per
   * batch, and returns the meta that will name them. Synced like the batch that follows them.
   */
  async #writeChunks(s: Snapshot, opts: { sync: boolean }): Promise<SnapshotRecord> {
    if (SNAPSHOT_CHUNK_BYTES > MAX_VALUE_BYTES) throw new RaftStorageError('snapshot chunk larger than a store value');
    const gen = (this.#snap?.gen ?? 0) + 1;
    const chunks = Math.ceil(s.data.length / SNAPSHOT_CHUNK_BYTES);
    const perBatch = Math.max(1, Math.floor(MAX_PERSIST_BATCH_BYTES / SNAPSHOT_CHUNK_BYTES));
    for (let first = 0; first < chunks; first += perBatch) {
      const ops: BatchOp[] = [];
      for (let i = first; i < Math.min(chunks, first + perBatch); i++) {
        ops.push({ type: 'put', key: chunkKey(gen, i), value: s.data.subarray(i * SNAPSHOT_CHUNK_BYTES, (i + 1) * SNAPSHOT_CHUNK_BYTES) });
      }
      await this.#write(ops, opts.sync);
    }
    return { index: s.meta.index, term: s.meta.term, conf: s.meta.conf, bytes: s.data.length, chunks, gen };
  }

  /** The meta on disk now names `record`: the previous generation's chunks and the log before it go. */
  #switchedTo(record: SnapshotRecord): void {
    const old = this.#snap;
    this.#snap = record;
    if (old !== undefined) {
      const gen = old.gen ?? 0;
      this.#deleteInBackground(Array.from({ length: old.chunks }, (_, i) => chunkKey(gen, i)));
    }
    this.#compactTo(record.index);
  }

  async #write(ops: BatchOp[], sync: boolean): Promise<void> {
    let bytes = 0;
    for (const op of ops) bytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
    if (bytes > MAX_BATCH_BYTES || ops.length > MAX_BATCH_OPS) throw new RaftStorageError(`a storage batch of ${ops.length} operations and ${bytes} bytes is over the store's limits`);
    await this.#store.batch(ops, { sync });
    this.stats.batches++;
    if (sync) this.stats.syncedBatches++;
    this.stats.bytes += bytes;
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
        await this.#store.batch(ops, { sync: false });
      }
    }).catch(() => undefined);
  }

  #deleteInBackground(keys: Uint8Array[]): void {
    if (keys.length === 0) return;
    this.#cleanup = this.#cleanup.then(async () => {
      for (let i = 0; i < keys.length; i += DELETE_BATCH) await this.#store.batch(keys.slice(i, i + DELETE_BATCH).map((key): BatchOp => ({ type: 'del', key })), { sync: false });
    }).catch(() => undefined);
  }

  /**
   * Chunks of any generation but the meta's are garbage: a snapshot write cut short, or an
   * older generation whose deletion a crash interrupted. Swept once while opening, before any
   * new snapshot write could be mistaken for garbage.
   */
  async #sweepChunks(): Promise<void> {
    const keep = this.#snap?.gen ?? 0;
    const keepChunks = this.#snap?.chunks ?? 0;
    // Around the kept generation's keys, so its chunks are not read twice (the range reads
    // values); the layout before generations interleaves with it, so it is scanned whole.
    const all = { gte: Uint8Array.of(CHUNK_PREFIX), lt: Uint8Array.of(CHUNK_PREFIX + 1) };
    const ranges = keep === 0 ? [all] : [{ gte: all.gte, lt: chunkKey(keep, 0) }, { gte: chunkKey(keep, keepChunks), lt: all.lt }];
    let doomed: Uint8Array[] = [];
    for (const range of ranges) {
      for await (const [k] of this.#store.range(range)) {
        const gen = k.length === 13 ? readU64(k, 1) : 0;
        const i = new DataView(k.buffer, k.byteOffset, k.byteLength).getUint32(k.length - 4);
        if (gen === keep && i < keepChunks) continue;
        doomed.push(k);
        if (doomed.length >= DELETE_BATCH) {
          await this.#store.batch(doomed.map((key): BatchOp => ({ type: 'del', key })), { sync: false });
          doomed = [];
        }
      }
    }
    if (doomed.length > 0) await this.#store.batch(doomed.map((key): BatchOp => ({ type: 'del', key })), { sync: false });
  }

  /** Whether persisting `hs` changes the durable term or vote (then it must be synced before sending). */
  changesTermOrVote(hs: HardState | undefined): boolean {
    return hs !== undefined && (hs.term !== this.#hard.term || hs.vote !== this.#hard.vote);
  }

  get lastIndex(): number {
    return this.#hard.last;
  }

  async close(): Promise<void> {
    await this.#snapWrites;
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

