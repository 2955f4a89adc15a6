// IndexedDB store (browser) through `idb`. Keys are binary IndexedDB keys, which compare as
// unsigned bytes, matching the other adapters. Range scans read bounded pages, each in its
// own transaction, so a slow consumer never holds a transaction open.
import { openDB, unwrap, type IDBPDatabase } from 'idb';
import { checkBatch, checkKey, checkRange, checkValue, StoreError, type BatchOp, type RangeOptions, type Store } from './types.ts';

const OBJECT_STORE = 'kv';
/** Entries fetched per range page. */
export const IDB_RANGE_PAGE = 256;

function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new StoreError('STORE_INVALID', 'IndexedDB returned a non-binary value');
}

/** A view of a whole buffer as is, else a copy: IndexedDB clones a view's entire underlying buffer. */
function ownBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
}

function keyRange(o: RangeOptions, after?: Uint8Array): IDBKeyRange | undefined {
  let lower = o.gte ?? o.gt;
  let lowerOpen = o.gte === undefined && o.gt !== undefined;
  let upper = o.lte ?? o.lt;
  let upperOpen = o.lte === undefined && o.lt !== undefined;
  if (after !== undefined) {
    if (o.reverse === true) {
      upper = after;
      upperOpen = true;
    } else {
      lower = after;
      lowerOpen = true;
    }
  }
  if (lower !== undefined && upper !== undefined) {
    try {
      return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
    } catch {
      return IDBKeyRange.only(new Uint8Array([0]).subarray(0, 0));
    }
  }
  if (lower !== undefined) return IDBKeyRange.lowerBound(lower, lowerOpen);
  if (upper !== undefined) return IDBKeyRange.upperBound(upper, upperOpen);
  return undefined;
}

export class IdbStore implements Store {
  readonly #db: IDBPDatabase;
  #closed = false;

  private constructor(db: IDBPDatabase) {
    this.#db = db;
  }

  static async open(name: string): Promise<IdbStore> {
    const db = await openDB(name, 1, {
      upgrade(database) {
        database.createObjectStore(OBJECT_STORE);
      },
    });
    return new IdbStore(db);
  }

  #live(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'store is closed');
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#live();
    checkKey(key);
    const v: unknown = await this.#db.get(OBJECT_STORE, Uint8Array.from(key));
    return v === undefined ? undefined : toBytes(v);
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    checkValue(value);
    await this.#db.put(OBJECT_STORE, Uint8Array.from(value), Uint8Array.from(key));
  }

  async delete(key: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    await this.#db.delete(OBJECT_STORE, Uint8Array.from(key));
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.#live();
    checkBatch(ops);
    // One readwrite transaction with durability 'strict': all or nothing, on disk when done.
    // The requests go to the native object store: idb's wrapper would make a promise and two
    // listeners per request (a fifth of a tab's CPU per receipt append, profiled), and the
    // transaction's outcome is all a batch needs.
    const tx = this.#db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' });
    const store = unwrap(tx).objectStore(OBJECT_STORE);
    for (const op of ops) {
      if (op.type === 'put') store.put(ownBuffer(op.value), ownBuffer(op.key));
      else store.delete(ownBuffer(op.key));
    }
    await tx.done;
  }

  async *range(options: RangeOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.#live();
    checkRange(options);
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let after: Uint8Array | undefined;
    while (remaining > 0) {
      const page: Array<[Uint8Array, Uint8Array]> = [];
      const tx = this.#db.transaction(OBJECT_STORE, 'readonly');
      let cursor = await tx.store.openCursor(keyRange(options, after), options.reverse === true ? 'prev' : 'next');
      while (cursor !== null && page.length < Math.min(IDB_RANGE_PAGE, remaining)) {
        page.push([toBytes(cursor.key), toBytes(cursor.value)]);
        cursor = await cursor.continue();
      }
      await tx.done;
      for (const entry of page) yield entry;
      remaining -= page.length;
      if (page.length < IDB_RANGE_PAGE) return;
      after = page[page.length - 1]![0];
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#db.close();
  }
}
