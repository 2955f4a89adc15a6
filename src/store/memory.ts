// In-memory store: a Map for point reads plus a lazily sorted key list for range scans
// (appends in key order, the common case, keep it sorted without re-sorting). A scan
// binary-searches its bounds and snapshots only the entries it can return.
import { checkBatch, checkKey, checkRange, checkValue, compareBytes, StoreError, type BatchOp, type RangeOptions, type Store } from './types.ts';

function id(key: Uint8Array): string {
  let s = '';
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i] as number);
  return s;
}

export class MemoryStore implements Store {
  readonly #data = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  #sorted: Uint8Array[] = [];
  #dirty = false;
  #closed = false;

  #live(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'store is closed');
  }

  #set(key: Uint8Array, value: Uint8Array): void {
    const k = id(key);
    if (!this.#data.has(k)) {
      const last = this.#sorted[this.#sorted.length - 1];
      if (!this.#dirty && (last === undefined || compareBytes(last, key) < 0)) this.#sorted.push(Uint8Array.from(key));
      else this.#dirty = true;
    }
    this.#data.set(k, { key: Uint8Array.from(key), value: Uint8Array.from(value) });
  }

  #del(key: Uint8Array): void {
    if (this.#data.delete(id(key))) this.#dirty = true;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#live();
    checkKey(key);
    const hit = this.#data.get(id(key));
    return hit === undefined ? undefined : Uint8Array.from(hit.value);
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    checkValue(value);
    this.#set(key, value);
  }

  async delete(key: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    this.#del(key);
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.#live();
    checkBatch(ops);
    for (const op of ops) {
      if (op.type === 'put') this.#set(op.key, op.value);
      else this.#del(op.key);
    }
  }

  /** First position whose key is > `key` (`after`) or ≥ `key`. */
  #bound(key: Uint8Array, after: boolean): number {
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(this.#sorted[mid]!, key);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async *range(options: RangeOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.#live();
    checkRange(options);
    if (this.#dirty) {
      this.#sorted = [...this.#data.values()].map((e) => e.key).sort(compareBytes);
      this.#dirty = false;
    }
    let lo = 0;
    let hi = this.#sorted.length;
    if (options.gte !== undefined) lo = Math.max(lo, this.#bound(options.gte, false));
    if (options.gt !== undefined) lo = Math.max(lo, this.#bound(options.gt, true));
    if (options.lte !== undefined) hi = Math.min(hi, this.#bound(options.lte, true));
    if (options.lt !== undefined) hi = Math.min(hi, this.#bound(options.lt, false));
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (hi - lo > limit) {
      if (options.reverse === true) lo = hi - limit;
      else hi = lo + limit;
    }
    // A snapshot, as LevelDB iterators give: writes during the scan do not show in it.
    const entries = [];
    for (let i = lo; i < hi; i++) {
      const hit = this.#data.get(id(this.#sorted[i]!));
      if (hit !== undefined) entries.push(hit);
    }
    if (options.reverse === true) entries.reverse();
    for (const e of entries) yield [Uint8Array.from(e.key), Uint8Array.from(e.value)];
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** A new handle on the same data (what "reopening" means for memory). */
  reopen(): MemoryStore {
    const copy = new MemoryStore();
    for (const { key, value } of this.#data.values()) copy.#set(key, value);
    return copy;
  }
}
