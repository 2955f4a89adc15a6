// A Store that knows which of its writes a power cut would keep. A write with `sync: false`
// (and every write not yet followed by a synced one) sits in "the OS cache"; a synced write
// moves the cache and itself to "the disk", in order and atomically per batch, as LevelDB's
// single log file does (one fsync covers every write before it). put and delete are synced,
// as in the LevelDB adapter. powerLoss() cuts this handle (its calls never settle, like a
// machine that lost power) and opens a new one on what the disk kept. SIGKILL cannot show a
// missing fsync; this can. Used under the engines in the simulator and in unit tests.
import { MemoryStore } from './memory.ts';
import { StoreError, type BatchOp, type BatchOptions, type RangeOptions, type Store } from './types.ts';

/** Unsynced operations held at most (a writer that never syncs is a bug worth hearing about). */
export const MAX_UNSYNCED_OPS = 1_000_000;

export interface PowerLossOptions {
  /**
   * Asked before each fsync: true means the power fails now, before this write is durable
   * (a crash between write and fsync). The handle is cut, then `onCut` runs.
   */
  failSync?: () => boolean;
  onCut?: () => void;
}

type Disk = Map<string, readonly [Uint8Array, Uint8Array]>;

function diskKey(key: Uint8Array): string {
  let s = '';
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i] as number);
  return s;
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

export class PowerLossStore implements Store {
  /** What survives a power cut. */
  #disk: Disk = new Map();
  /** What reads see: the disk plus the cache. */
  #view = new MemoryStore();
  #cache: BatchOp[] = [];
  #cut = false;
  readonly #opts: PowerLossOptions;
  /** Synced writes so far (each one an fsync). */
  syncs = 0;

  /** An empty store. */
  constructor(opts: PowerLossOptions = {}) {
    this.#opts = opts;
  }

  static async #on(disk: Disk, opts: PowerLossOptions): Promise<PowerLossStore> {
    const s = new PowerLossStore(opts);
    s.#disk = disk;
    for (const [key, value] of disk.values()) await s.#view.put(key, value);
    return s;
  }

  /** True once the power was cut under this handle. */
  get cut(): boolean {
    return this.#cut;
  }

  /** Operations written but not yet durable. */
  get unsynced(): number {
    return this.#cache.length;
  }

  /**
   * Cuts the power under this handle now (its pending and later calls never settle) and opens
   * a handle on what was synced.
   */
  powerLoss(opts: PowerLossOptions = this.#opts): Promise<PowerLossStore> {
    this.#cut = true;
    this.#cache = [];
    return PowerLossStore.#on(new Map(this.#disk), opts);
  }

  /** A process restart without a power cut (kill -9): the new handle keeps the OS cache. */
  async reopen(): Promise<PowerLossStore> {
    const next = await PowerLossStore.#on(new Map(this.#disk), this.#opts);
    for (const op of this.#cache) {
      next.#cache.push(op);
      if (op.type === 'put') await next.#view.put(op.key, op.value);
      else await next.#view.delete(op.key);
    }
    return next;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#cut) return never();
    return this.#view.get(key);
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async delete(key: Uint8Array): Promise<void> {
    await this.batch([{ type: 'del', key }]);
  }

  async *range(options?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    if (this.#cut) await never<void>();
    yield* this.#view.range(options);
  }

  async batch(ops: BatchOp[], options?: BatchOptions): Promise<void> {
    if (this.#cut) return never();
    // The view checks the batch first: a refused batch changes nothing anywhere.
    await this.#view.batch(ops);
    for (const op of ops) this.#cache.push(op.type === 'put' ? { type: 'put', key: Uint8Array.from(op.key), value: Uint8Array.from(op.value) } : { type: 'del', key: Uint8Array.from(op.key) });
    if (options?.sync === false) {
      if (this.#cache.length > MAX_UNSYNCED_OPS) throw new StoreError('STORE_LIMIT', `more than ${MAX_UNSYNCED_OPS} operations written without a sync`);
      return;
    }
    if (this.#opts.failSync?.() === true) {
      this.#cut = true;
      this.#cache = [];
      this.#opts.onCut?.();
      return never();
    }
    // Synchronously, so the flush is atomic whatever else runs meanwhile.
    for (const op of this.#cache) {
      if (op.type === 'put') this.#disk.set(diskKey(op.key), [op.key, op.value]);
      else this.#disk.delete(diskKey(op.key));
    }
    this.#cache = [];
    this.syncs++;
  }

  async close(): Promise<void> {
    if (this.#cut) return;
    await this.#view.close();
  }
}
