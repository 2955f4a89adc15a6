// The document store: keyed JSON records that any admitted peer may write, offline too,
// persisted on the project's Store (memory, LevelDB, IndexedDB). Each key holds the
// antichain of its versions under its conflict policy; every stored version's id is in the
// in-memory ItemSet (range reconciliation) and in a per-origin index (version vectors).
// Store layout (one atomic batch per apply):
//   r <id:32>                    → canonical record bytes
//   k <key utf8> 00 <id:32>      → ''             versions of a key
//   o <origin utf8> 00 <seq:u64> → id             versions of an origin, by seq
//   c <key utf8>                 → ''             keys in manual conflict
//   m vec                        → JSON {origin: seq}, the contiguous version vector
//   m hlc                        → JSON [wall, counter], the clock's high-water mark
// Invariant: the ItemSet holds exactly the ids under `r`, and a key's versions form an
// antichain under its policy. Applies are serialized.
import { bytesEqual, hexEncode, parseJson, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { prefixedKey, readU64, u64 } from '../store/keys.ts';
import type { BatchOp, Store } from '../store/types.ts';
import { ClockDriftError, invariant, NotInConflictError, SyncError, SyncLimitError } from './errors.ts';
import { HybridClock } from './hlc.ts';
import { ItemSet } from './itemset.ts';
import { ConflictPolicies, contextOf, unionOf } from './policy.ts';
import { checkDocKey, parseRecord, recordBytes, recordId, signRecord, type DocRecord, type RecordOp, type VersionView } from './record.ts';

/** Records applied in one store batch (each costs up to ~6 store operations). */
export const MAX_APPLY_RECORDS = 1024;
/** Origins a version vector may name (and a peer will track). */
export const MAX_VECTOR_ORIGINS = 4096;
/** Out-of-order sequence numbers remembered per origin above its contiguous prefix. */
export const MAX_PENDING_SEQS_PER_ORIGIN = 4096;
/** Ids one recordBytesOf() call may read (a record batch is at most 256). */
export const MAX_READ_BATCH = 1024;
/** Entries one list() call may return. */
export const MAX_LIST_LIMIT = 1000;

export type VersionVector = { [origin: string]: number };

export interface DocEntry {
  key: string;
  value: Json;
  deleted: boolean;
  conflict: boolean;
  versions: VersionView[];
}

export interface ApplyResult {
  /** Versions stored (new and not superseded on arrival). */
  stored: DocRecord[];
  /** Versions already held or superseded on arrival. */
  ignored: number;
  /** Versions refused (e.g. a clock too far ahead), with the reason. */
  refused: Array<{ record: DocRecord; error: SyncError }>;
  /** Keys whose visible value changed. */
  changedKeys: string[];
}

export type DocChange = { source: 'local' | 'remote'; records: DocRecord[]; keys: string[] };

export interface DocStoreOptions {
  store: Store;
  /** Our PeerId (the origin of our writes) and its signer. */
  self: string;
  signer: Ed25519Signer;
  policies?: ConflictPolicies;
  /** Physical clock in ms (injected so simulations control time). */
  now?: () => number;
}

const SEP = new Uint8Array([0]);
const EMPTY = new Uint8Array(0);
const VEC_KEY = prefixedKey('m', utf8Encode('vec'));
const HLC_KEY = prefixedKey('m', utf8Encode('hlc'));

function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  return end;
}

export function versionView(r: DocRecord, id: Uint8Array): VersionView {
  return { key: r.key, op: r.op, value: r.value, t: [r.t[0], r.t[1]], origin: r.origin, seq: r.seq, id: hexEncode(id) };
}

interface Held {
  record: DocRecord;
  id: Uint8Array;
}

export class DocStore {
  readonly self: string;
  readonly items = new ItemSet();
  readonly clock = new HybridClock();
  readonly policies: ConflictPolicies;
  readonly #store: Store;
  readonly #signer: Ed25519Signer;
  readonly #now: () => number;
  /** Contiguous prefix of each origin's sequence numbers we have merged. */
  readonly #contig = new Map<string, number>();
  /** Merged sequence numbers above the contiguous prefix, per origin. */
  readonly #pending = new Map<string, Set<number>>();
  /** Highest sequence number held per origin (what a vector query may find). */
  readonly #maxSeq = new Map<string, number>();
  readonly #conflicts = new Set<string>();
  readonly #listeners = new Set<(c: DocChange) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  /** Keys loaded by importFresh (it refuses duplicates and non-empty stores). */
  #imported: Set<string> | undefined;

  private constructor(o: DocStoreOptions) {
    this.self = o.self;
    this.#store = o.store;
    this.#signer = o.signer;
    this.policies = o.policies ?? new ConflictPolicies();
    this.#now = o.now ?? Date.now;
  }

  /** Opens the store and rebuilds the in-memory indexes from it. */
  static async open(o: DocStoreOptions): Promise<DocStore> {
    const ds = new DocStore(o);
    const vec = await o.store.get(VEC_KEY);
    if (vec !== undefined) {
      for (const [origin, seq] of Object.entries(parseJson(utf8Decode(vec)) as VersionVector)) ds.#contig.set(origin, seq);
    }
    const oPrefix = prefixedKey('o');
    for await (const [k, v] of o.store.range({ gte: oPrefix, lt: prefixEnd(oPrefix) })) {
      const sep = k.indexOf(0, 1);
      const origin = utf8Decode(k.subarray(1, sep));
      const seq = readU64(k, sep + 1);
      ds.items.add(v);
      if (seq > (ds.#maxSeq.get(origin) ?? 0)) ds.#maxSeq.set(origin, seq);
    }
    const cPrefix = prefixedKey('c');
    for await (const [k] of o.store.range({ gte: cPrefix, lt: prefixEnd(cPrefix) })) ds.#conflicts.add(utf8Decode(k.subarray(1)));
    // Our clock must order after every version we held before a restart.
    const hlc = await o.store.get(HLC_KEY);
    if (hlc !== undefined) {
      const t = parseJson(utf8Decode(hlc)) as [number, number];
      ds.clock.observe(t, Math.max(ds.#now(), t[0]));
    }
    return ds;
  }

  onChange(listener: (c: DocChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(c: DocChange): void {
    for (const l of this.#listeners) l(c);
  }

  /** Runs `fn` after every apply queued before it (one writer at a time). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #load(id: Uint8Array): Promise<Held | undefined> {
    const bytes = await this.#store.get(prefixedKey('r', id));
    if (bytes === undefined) return undefined;
    return { record: parseRecord(parseJson(utf8Decode(bytes))), id };
  }

  async #versionsOf(key: string): Promise<Held[]> {
    const prefix = prefixedKey('k', utf8Encode(key), SEP);
    const out: Held[] = [];
    for await (const [k] of this.#store.range({ gte: prefix, lt: prefixEnd(prefix) })) {
      const held = await this.#load(k.subarray(prefix.length));
      invariant(held !== undefined, `index entry of ${key} without its record`);
      out.push(held);
    }
    return out;
  }

  // --- local writes -------------------------------------------------------------------

  /** Writes a new version of `key` as this peer; returns the signed record. */
  put(key: string, value: Json): Promise<DocRecord> {
    return this.#write(key, 'put', value);
  }

  delete(key: string): Promise<DocRecord> {
    return this.#write(key, 'del', null);
  }

  /** A signed resolution of a manual conflict: supersedes every concurrent version of `key`. */
  resolve(key: string, value: Json): Promise<DocRecord> {
    return this.#write(key, 'resolve', value);
  }

  #write(key: string, op: RecordOp, value: Json): Promise<DocRecord> {
    checkDocKey(key);
    return this.#serial(async () => {
      const current = await this.#versionsOf(key);
      if (op === 'resolve' && !this.#conflicts.has(key)) throw new NotInConflictError(`${key} has no open conflict`);
      const causal = this.policies.isCausal(key);
      let v = value;
      if (op === 'put' && this.policies.policyFor(key).name === 'union') {
        v = unionOf([...current.filter((h) => h.record.op !== 'del').map((h) => h.record.value), value]);
      }
      const seq = Math.max(this.#contig.get(this.self) ?? 0, this.#maxSeq.get(this.self) ?? 0) + 1;
      const ctx = causal ? contextOf(current.map((h) => h.record)) : undefined;
      const record = signRecord({ key, op, value: v, t: this.clock.now(this.#now()), origin: this.self, seq, ...(ctx ? { ctx } : {}) }, this.#signer);
      const result = await this.#applyNow([record], true);
      // Our clock orders the write after every version we hold, so only a value order (max,
      // min) can leave it superseded on arrival, and then nobody needs it.
      const name = this.policies.policyFor(key).name;
      invariant(result.stored.length === 1 || name === 'max' || name === 'min', 'a local write supersedes the versions it saw');
      if (result.stored.length === 1) this.#emit({ source: 'local', records: [record], keys: [key] });
      return record;
    });
  }

  // --- remote versions ------------------------------------------------------------------

  /** Merges verified records (see verifyRecord); serialized with local writes. */
  apply(records: DocRecord[]): Promise<ApplyResult> {
    if (records.length > MAX_APPLY_RECORDS) throw new SyncLimitError(`at most ${MAX_APPLY_RECORDS} records per apply`);
    return this.#serial(async () => {
      const result = await this.#applyNow(records, false);
      if (result.stored.length > 0) this.#emit({ source: 'remote', records: result.stored, keys: result.changedKeys });
      return result;
    });
  }

  async #applyNow(records: DocRecord[], local: boolean): Promise<ApplyResult> {
    const ops: BatchOp[] = [];
    const result: ApplyResult = { stored: [], ignored: 0, refused: [], changedKeys: [] };
    const antichains = new Map<string, Held[]>();
    const addedIds: Uint8Array[] = [];
    const removedIds: Uint8Array[] = [];
    const accounted: Array<[string, number]> = [];
    const now = this.#now();
    // The held versions of every key the batch touches, read together (LevelDB serves the
    // reads on its thread pool; one at a time they cost an event-loop turn each).
    const keys = [...new Set(records.map((r) => r.key))];
    const held = await Promise.all(keys.map((k) => this.#versionsOf(k)));
    for (let i = 0; i < keys.length; i++) antichains.set(keys[i] as string, held[i] as Held[]);
    for (const record of records) {
      if (!local) {
        try {
          this.clock.observe(record.t, now);
        } catch (e) {
          if (e instanceof ClockDriftError) {
            result.refused.push({ record, error: e });
            continue;
          }
          throw e;
        }
      }
      const bytes = recordBytes(record);
      const id = recordId(bytes);
      if (this.items.has(id) || addedIds.some((a) => bytesEqual(a, id))) {
        result.ignored++;
        accounted.push([record.origin, record.seq]);
        continue;
      }
      let current = antichains.get(record.key);
      if (current === undefined) antichains.set(record.key, (current = await this.#versionsOf(record.key)));
      const { kept, superseded } = this.policies.merge(current.map((h) => h.record), record);
      accounted.push([record.origin, record.seq]);
      if (!kept) {
        result.ignored++;
        continue;
      }
      const keyBytes = utf8Encode(record.key);
      for (const s of superseded) {
        const held = current.find((h) => h.record === s) as Held;
        ops.push({ type: 'del', key: prefixedKey('r', held.id) });
        ops.push({ type: 'del', key: prefixedKey('k', keyBytes, SEP, held.id) });
        ops.push({ type: 'del', key: prefixedKey('o', utf8Encode(s.origin), SEP, u64(s.seq)) });
        removedIds.push(held.id);
      }
      ops.push({ type: 'put', key: prefixedKey('r', id), value: bytes });
      ops.push({ type: 'put', key: prefixedKey('k', keyBytes, SEP, id), value: EMPTY });
      ops.push({ type: 'put', key: prefixedKey('o', utf8Encode(record.origin), SEP, u64(record.seq)), value: id });
      addedIds.push(id);
      const next = [...current.filter((h) => !superseded.includes(h.record)), { record, id }];
      antichains.set(record.key, next);
      result.stored.push(record);
      if (!result.changedKeys.includes(record.key)) result.changedKeys.push(record.key);
    }
    // Conflict markers follow the final antichain of each touched key.
    const conflictsNow = new Map<string, boolean>();
    for (const key of result.changedKeys) {
      const m = this.policies.materialize(key, (antichains.get(key) as Held[]).map((h) => h.record));
      conflictsNow.set(key, m.conflict);
      const ck = prefixedKey('c', utf8Encode(key));
      if (m.conflict && !this.#conflicts.has(key)) ops.push({ type: 'put', key: ck, value: EMPTY });
      if (!m.conflict && this.#conflicts.has(key)) ops.push({ type: 'del', key: ck });
    }
    const vectorChanged = this.#account(accounted);
    if (vectorChanged) ops.push({ type: 'put', key: VEC_KEY, value: utf8Encode(JSON.stringify(Object.fromEntries(this.#contig))) });
    if (result.stored.length > 0) ops.push({ type: 'put', key: HLC_KEY, value: utf8Encode(JSON.stringify(this.clock.last)) });
    if (ops.length > 0) await this.#store.batch(ops);
    // Memory follows the store only once the batch is durable.
    for (const id of removedIds) this.items.delete(id);
    for (const id of addedIds) this.items.add(id);
    for (const r of result.stored) if (r.seq > (this.#maxSeq.get(r.origin) ?? 0)) this.#maxSeq.set(r.origin, r.seq);
    for (const [key, c] of conflictsNow) {
      if (c) this.#conflicts.add(key);
      else this.#conflicts.delete(key);
    }
    return result;
  }

  /** Marks (origin, seq) merged; advances contiguous prefixes. True if the vector changed. */
  #account(dots: Array<[string, number]>): boolean {
    let changed = false;
    for (const [origin, seq] of dots) {
      const contig = this.#contig.get(origin) ?? 0;
      if (seq <= contig) continue;
      if (!this.#contig.has(origin) && this.#contig.size >= MAX_VECTOR_ORIGINS) continue;
      if (seq === contig + 1) {
        let c = seq;
        const pending = this.#pending.get(origin);
        while (pending?.delete(c + 1) === true) c++;
        this.#contig.set(origin, c);
        changed = true;
      } else {
        let pending = this.#pending.get(origin);
        if (pending === undefined) this.#pending.set(origin, (pending = new Set()));
        if (pending.size < MAX_PENDING_SEQS_PER_ORIGIN) pending.add(seq);
      }
    }
    return changed;
  }

  /**
   * Loads verified versions of distinct keys into a store that held nothing before the first
   * call (a snapshot, a benchmark fixture) without merging: one batch per MAX_APPLY_RECORDS.
   */
  importFresh(records: DocRecord[]): Promise<void> {
    return this.#serial(async () => {
      if (this.#imported === undefined) {
        if (this.items.size > 0) throw new SyncError('SYNC_LIMIT', 'importFresh needs an empty store');
        this.#imported = new Set();
      }
      const imported = this.#imported;
      for (let i = 0; i < records.length; i += MAX_APPLY_RECORDS) {
        const ops: BatchOp[] = [];
        const ids: Uint8Array[] = [];
        const dots: Array<[string, number]> = [];
        for (const r of records.slice(i, i + MAX_APPLY_RECORDS)) {
          if (imported.has(r.key)) throw new SyncError('SYNC_LIMIT', `importFresh got ${r.key} twice`);
          imported.add(r.key);
          const bytes = recordBytes(r);
          const id = recordId(bytes);
          ops.push({ type: 'put', key: prefixedKey('r', id), value: bytes });
          ops.push({ type: 'put', key: prefixedKey('k', utf8Encode(r.key), SEP, id), value: EMPTY });
          ops.push({ type: 'put', key: prefixedKey('o', utf8Encode(r.origin), SEP, u64(r.seq)), value: id });
          ids.push(id);
          dots.push([r.origin, r.seq]);
          this.clock.observe(r.t, Math.max(this.#now(), r.t[0]));
        }
        this.#account(dots);
        ops.push({ type: 'put', key: VEC_KEY, value: utf8Encode(JSON.stringify(Object.fromEntries(this.#contig))) });
        ops.push({ type: 'put', key: HLC_KEY, value: utf8Encode(JSON.stringify(this.clock.last)) });
        await this.#store.batch(ops, { sync: false });
        for (const id of ids) this.items.add(id);
        for (const [o, s] of dots) if (s > (this.#maxSeq.get(o) ?? 0)) this.#maxSeq.set(o, s);
      }
    });
  }

  // --- version vectors ----------------------------------------------------------------

  vector(): VersionVector {
    return Object.fromEntries([...this.#contig].filter(([, s]) => s > 0));
  }

  /**
   * After a session ended with equal state, the peer's vector holds for us too: take the
   * pointwise maximum (persisted).
   */
  mergeVector(v: VersionVector): Promise<void> {
    return this.#serial(async () => {
      let changed = false;
      for (const [origin, seq] of Object.entries(v)) {
        if (seq > (this.#contig.get(origin) ?? 0) && (this.#contig.has(origin) || this.#contig.size < MAX_VECTOR_ORIGINS)) {
          this.#contig.set(origin, seq);
          const pending = this.#pending.get(origin);
          if (pending !== undefined) for (const s of pending) if (s <= seq) pending.delete(s);
          changed = true;
        }
      }
      if (changed) await this.#store.put(VEC_KEY, utf8Encode(JSON.stringify(Object.fromEntries(this.#contig))));
    });
  }

  /** Ids of held versions a peer with vector `v` may lack, origin by origin; stops past `cap`. */
  async idsAbove(v: VersionVector, cap: number): Promise<Uint8Array[] | null> {
    const out: Uint8Array[] = [];
    for (const [origin, max] of this.#maxSeq) {
      const from = v[origin] ?? 0;
      if (max <= from) continue;
      const prefix = prefixedKey('o', utf8Encode(origin), SEP);
      for await (const [, id] of this.#store.range({ gt: prefixedKey('o', utf8Encode(origin), SEP, u64(from)), lt: prefixEnd(prefix) })) {
        if (out.length >= cap) return null;
        out.push(id);
      }
    }
    return out;
  }

  /**
   * Canonical bytes of held versions by id (missing ones, superseded meanwhile, are skipped).
   * The reads are issued together (LevelDB serves them on its thread pool), so at most
   * MAX_READ_BATCH ids per call.
   */
  async recordBytesOf(ids: Uint8Array[]): Promise<Uint8Array[]> {
    if (ids.length > MAX_READ_BATCH) throw new SyncLimitError(`at most ${MAX_READ_BATCH} ids per read`);
    const all = await Promise.all(ids.map((id) => this.#store.get(prefixedKey('r', id))));
    return all.filter((b): b is Uint8Array => b !== undefined);
  }

  // --- reads ----------------------------------------------------------------------------

  async get(key: string): Promise<DocEntry | undefined> {
    checkDocKey(key);
    const held = await this.#versionsOf(key);
    if (held.length === 0) return undefined;
    return this.#entry(key, held);
  }

  #entry(key: string, held: Held[]): DocEntry {
    const m = this.policies.materialize(key, held.map((h) => h.record));
    return { key, value: m.value, deleted: m.deleted, conflict: m.conflict, versions: held.map((h) => versionView(h.record, h.id)) };
  }

  /** Keys in order from `after` (exclusive) with `prefix`; deleted keys only with `withDeleted`. */
  async list(o: { prefix?: string; after?: string; limit?: number; withDeleted?: boolean } = {}): Promise<DocEntry[]> {
    const limit = Math.min(o.limit ?? 100, MAX_LIST_LIMIT);
    const base = prefixedKey('k', utf8Encode(o.prefix ?? ''));
    const lower = o.after !== undefined ? prefixedKey('k', utf8Encode(o.after), new Uint8Array([1])) : base;
    const out: DocEntry[] = [];
    let key: string | undefined;
    let held: Held[] = [];
    const flush = (): void => {
      if (key === undefined) return;
      const e = this.#entry(key, held);
      if (!e.deleted || o.withDeleted === true) out.push(e);
    };
    const upper = base.length > 1 ? prefixEnd(base) : prefixedKey('l');
    for await (const [k] of this.#store.range({ gte: lower, lt: upper })) {
      const sep = k.length - 33;
      const kKey = utf8Decode(k.subarray(1, sep));
      if (kKey !== key) {
        flush();
        if (out.length >= limit) return out;
        key = kKey;
        held = [];
      }
      const h = await this.#load(k.subarray(sep + 1));
      if (h !== undefined) held.push(h);
    }
    flush();
    return out.slice(0, limit);
  }

  conflictKeys(): string[] {
    return [...this.#conflicts].sort();
  }

  async conflicts(): Promise<DocEntry[]> {
    const out: DocEntry[] = [];
    for (const key of this.conflictKeys()) {
      const e = await this.get(key);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  get size(): number {
    return this.items.size;
  }
}
