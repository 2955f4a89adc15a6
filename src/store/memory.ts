// In-memory store: a Map for point reads plus a lazily sorted key list for range scans
// (appends in key order, the common case, keep it sorted without re-sorting).
import { checkBatch, checkKey, checkValue, compareBytes, inRange, StoreError, type BatchOp, type RangeOptions, type Store } from './types.ts';

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

  async *range(options: RangeOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.#live();
    if (this.#dirty) {
      this.#sorted = [...this.#data.values()].map((e) => e.key).sort(compareBytes);
      this.#dirty = false;
    }
    const keys = options.reverse === true ? [...this.#sorted].reverse() : [...this.#sorted];
    let n = 0;
    for (const key of keys) {
      if (options.limit !== undefined && n >= options.limit) return;
      if (!inRange(key, options)) continue;
      const hit = this.#data.get(id(key));
      if (hit === undefined) continue;
      n++;
      yield [Uint8Array.from(hit.key), Uint8Array.from(hit.value)];
    }
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
