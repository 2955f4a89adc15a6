// The one storage interface every layer persists through: bytes in, bytes out, ordered
// range scans and atomic batches. Adapters: memory (tests, simulator), level (Node,
// classic-level), idb (browser, IndexedDB). Every adapter passes src/store/compliance.ts.

export interface RangeOptions {
  gte?: Uint8Array;
  gt?: Uint8Array;
  lte?: Uint8Array;
  lt?: Uint8Array;
  /** At most this many entries (default: all). */
  limit?: number;
  /** Descending key order. */
  reverse?: boolean;
}

export type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

export interface BatchOptions {
  /** Default true: flush to stable storage before resolving. */
  sync?: boolean;
}

export interface Store {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  delete(key: Uint8Array): Promise<void>;
  /** Entries in unsigned byte order of the key (reversed with `reverse`). */
  range(options?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  /**
   * All or nothing; durable when the promise resolves. With `{sync: false}` the batch survives
   * a process crash (kill -9: it reached the OS) but not necessarily a power loss; for data
   * that can be rebuilt from another durable log.
   */
  batch(ops: BatchOp[], options?: BatchOptions): Promise<void>;
  close(): Promise<void>;
}

/** Named limits, the same for every adapter (IndexedDB and LevelDB handle far more). */
export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 4 * 1024 * 1024;
export const MAX_BATCH_OPS = 10_000;
export const MAX_BATCH_BYTES = 32 * 1024 * 1024;

export class StoreError extends Error {
  readonly code: 'STORE_LIMIT' | 'STORE_CLOSED' | 'STORE_INVALID' | 'STORE_IO' | 'STORE_LOCKED';
  override name = 'StoreError';
  constructor(code: StoreError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new StoreError('STORE_INVALID', 'key must be a Uint8Array');
  if (key.length === 0) throw new StoreError('STORE_INVALID', 'key must not be empty');
  if (key.length > MAX_KEY_BYTES) throw new StoreError('STORE_LIMIT', `key of ${key.length} bytes exceeds ${MAX_KEY_BYTES}`);
}

export function checkValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw new StoreError('STORE_INVALID', 'value must be a Uint8Array');
  if (value.length > MAX_VALUE_BYTES) throw new StoreError('STORE_LIMIT', `value of ${value.length} bytes exceeds ${MAX_VALUE_BYTES}`);
}

export function checkBatch(ops: BatchOp[]): void {
  if (ops.length > MAX_BATCH_OPS) throw new StoreError('STORE_LIMIT', `batch of ${ops.length} operations exceeds ${MAX_BATCH_OPS}`);
  let bytes = 0;
  for (const op of ops) {
    checkKey(op.key);
    bytes += op.key.length;
    if (op.type === 'put') {
      checkValue(op.value);
      bytes += op.value.length;
    } else if (op.type !== 'del') {
      throw new StoreError('STORE_INVALID', 'batch operation type must be put or del');
    }
  }
  if (bytes > MAX_BATCH_BYTES) throw new StoreError('STORE_LIMIT', `batch of ${bytes} bytes exceeds ${MAX_BATCH_BYTES}`);
}

/** Range bounds are bytes; a limit is a non-negative integer (every adapter reads them alike). */
export function checkRange(o: RangeOptions): void {
  for (const k of ['gte', 'gt', 'lte', 'lt'] as const) {
    const bound = o[k];
    if (bound !== undefined && !(bound instanceof Uint8Array)) throw new StoreError('STORE_INVALID', `range bound ${k} must be a Uint8Array`);
  }
  if (o.limit !== undefined && !(Number.isSafeInteger(o.limit) && o.limit >= 0)) throw new StoreError('STORE_INVALID', 'range limit must be a non-negative integer');
}

/** Unsigned lexicographic byte order, the order every adapter iterates in. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function inRange(key: Uint8Array, o: RangeOptions): boolean {
  if (o.gte !== undefined && compareBytes(key, o.gte) < 0) return false;
  if (o.gt !== undefined && compareBytes(key, o.gt) <= 0) return false;
  if (o.lte !== undefined && compareBytes(key, o.lte) > 0) return false;
  if (o.lt !== undefined && compareBytes(key, o.lt) >= 0) return false;
  return true;
}
