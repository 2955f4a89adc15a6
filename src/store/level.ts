// LevelDB store (Node only) through classic-level. Every write is synced to disk before its
// promise resolves (`sync: true`), so an acknowledged write survives kill -9 and power loss
// as far as the OS's fsync promises.
import { ClassicLevel } from 'classic-level';
import { checkBatch, checkKey, checkRange, checkValue, StoreError, type BatchOp, type BatchOptions, type RangeOptions, type Store } from './types.ts';

const SYNC = { sync: true } as const;
const NO_SYNC = { sync: false } as const;

export class LevelStore implements Store {
  readonly #db: ClassicLevel<Uint8Array, Uint8Array>;
  readonly location: string;

  private constructor(location: string, db: ClassicLevel<Uint8Array, Uint8Array>) {
    this.location = location;
    this.#db = db;
  }

  /** Opens (by default creating) the database; `createIfMissing: false` refuses a missing one. */
  static async open(location: string, options: { createIfMissing?: boolean } = {}): Promise<LevelStore> {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open({ createIfMissing: options.createIfMissing ?? true });
    } catch (e) {
      const cause = (e as { cause?: Error & { code?: string } }).cause;
      // LevelDB admits one process per database: a running node holds the lock.
      if (cause?.code === 'LEVEL_LOCKED') throw new StoreError('STORE_LOCKED', `LevelDB at ${location} is open in another process (one process at a time)`);
      throw new StoreError('STORE_IO', `cannot open LevelDB at ${location}: ${cause?.message ?? (e as Error).message}`);
    }
    return new LevelStore(location, db);
  }

  #live(): void {
    if (this.#db.status !== 'open') throw new StoreError('STORE_CLOSED', 'store is closed');
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#live();
    checkKey(key);
    return (await this.#db.get(key)) ?? undefined;
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    checkValue(value);
    await this.#db.put(key, value, SYNC);
  }

  async delete(key: Uint8Array): Promise<void> {
    this.#live();
    checkKey(key);
    await this.#db.del(key, SYNC);
  }

  async batch(ops: BatchOp[], options?: BatchOptions): Promise<void> {
    this.#live();
    checkBatch(ops);
    // A chained batch: each op goes straight into the native WriteBatch, 2–3× cheaper on the
    // main thread than handing classic-level an array (measured), and just as atomic.
    const batch = this.#db.batch();
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
    } catch (e) {
      await batch.close();
      throw e;
    }
    await batch.write(options?.sync === false ? NO_SYNC : SYNC);
  }

  async *range(options: RangeOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.#live();
    checkRange(options);
    const opts: Record<string, unknown> = { reverse: options.reverse === true };
    for (const k of ['gt', 'gte', 'lt', 'lte'] as const) if (options[k] !== undefined) opts[k] = options[k];
    if (options.limit !== undefined) opts['limit'] = options.limit;
    for await (const [key, value] of this.#db.iterator(opts)) yield [key, value];
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
