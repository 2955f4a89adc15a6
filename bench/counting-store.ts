// A Store wrapper that counts what reaches the store under it: batches and single writes
// ("writes") and the synced ones among them ("fsyncs"), the same way on any version of the
// code above it. The durability benches report both per committed write.
import type { BatchOp, BatchOptions, RangeOptions, Store } from '../src/store/types.ts';

export interface IoCounts {
  writes: number;
  fsyncs: number;
}

export class CountingStore implements Store {
  readonly #inner: Store;
  readonly #io: IoCounts;
  constructor(inner: Store, io: IoCounts) {
    this.#inner = inner;
    this.#io = io;
  }
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#inner.get(key);
  }
  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#io.writes++;
    this.#io.fsyncs++;
    return this.#inner.put(key, value);
  }
  delete(key: Uint8Array): Promise<void> {
    this.#io.writes++;
    this.#io.fsyncs++;
    return this.#inner.delete(key);
  }
  range(options?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.#inner.range(options);
  }
  batch(ops: BatchOp[], options?: BatchOptions): Promise<void> {
    this.#io.writes++;
    if (options?.sync !== false) this.#io.fsyncs++;
    return this.#inner.batch(ops, options);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
