// A Store that knows which of its writes a power cut would keep. A write with `sync: false`
// (and every write not yet followed by a synced one) sits in "the OS cache"; a synced write
// moves the cache and itself to "the disk", in order and atomically per batch, as LevelDB's
// single log file does (one fsync covers every write before it). put and delete are synced,
// as in the LevelDB adapter. powerLoss() cuts this handle (its calls never settle, like a
// machine that lost power) and opens a new one on what the disk kept. SIGKILL cannot show a
// missing fsync; this can. Used under the engines in the simulator and in unit tests.
import { checkBatch, checkKey, checkRange, compareBytes, inRange, StoreError, type BatchOp, type BatchOptions, type RangeOptions, type Store } from './types.ts';

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

type Entries = Map<string, readonly [Uint8Array, Uint8Array]>;

function mapKey(key: Uint8Array): string {
  let s = '';
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i] as number);
  return s;
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

function apply(into: Entries, ops: readonly BatchOp[]): void {
  for (const op of ops) {
    if (op.type === 'put') into.set(mapKey(op.key), [op.key, op.value]);
    else into.delete(mapKey(op.key));
  }
}

export class PowerLossStore implements Store {
  /** What survives a power cut. */
  #disk: Entries = new Map();
  /** What reads see: the disk plus the cache. Entries are private copies, never mutated. */
  #view: Entries = new Map();
  /** The view's keys in byte order, rebuilt lazily for range scans. */
  #sorted: Uint8Array[] | null = [];
  #cache: BatchOp[] = [];
  #cut = false;
  #closed = false;
  readonly #opts: PowerLossOptions;
  /** Synced writes so far (each one an fsync). */
  syncs = 0;

  /** An empty store. */
  constructor(opts: PowerLossOptions = {}) {
    this.#opts = opts;
  }

  /** True once the power was cut under this handle. */
  get cut(): boolean {
    return this.#cut;
  }

  /** Operations written but not yet durable. */
  get unsynced(): number {
    return this.#cache.length;
  }

  #successor(disk: Entries, cache: readonly BatchOp[], opts: PowerLossOptions): PowerLossStore {
    const next = new PowerLossStore(opts);
    next.#disk = disk;
    next.#view = new Map(disk);
    apply(next.#view, cache);
    next.#cache = [...cache];
    next.#sorted = null;
    return next;
  }

  /**
   * Cuts the power under this handle now (its pending and later calls never settle) and opens
   * a handle on what was synced.
   */
  async powerLoss(opts: PowerLossOptions = this.#opts): Promise<PowerLossStore> {
    this.#cut = true;
    this.#cache = [];
    return this.#successor(new Map(this.#disk), [], opts);
  }

  /** A process restart without a power cut (kill -9): the new handle keeps the OS cache. */
  async reopen(): Promise<PowerLossStore> {
    return this.#successor(new Map(this.#disk), this.#cache, this.#opts);
  }

  #live(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'store is closed');
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#cut) return never();
    this.#live();
    checkKey(key);
    const hit = this.#view.get(mapKey(key));
    return hit === undefined ? undefined : Uint8Array.from(hit[1]);
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async delete(key: Uint8Array): Promise<void> {
    await this.batch([{ type: 'del', key }]);
  }

  async *range(options: RangeOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    if (this.#cut) await never<void>();
    this.#live();
    checkRange(options);
    this.#sorted ??= [...this.#view.values()].map(([k]) => k).sort(compareBytes);
    // A snapshot, as LevelDB iterators give: writes during the scan do not show in it.
    let hits: Array<readonly [Uint8Array, Uint8Array]> = [];
    for (const k of this.#sorted) {
      if (!inRange(k, options)) continue;
      const hit = this.#view.get(mapKey(k));
      if (hit !== undefined) hits.push(hit);
    }
    if (options.reverse === true) hits.reverse();
    if (options.limit !== undefined) hits = hits.slice(0, options.limit);
    for (const [k, v] of hits) yield [Uint8Array.from(k), Uint8Array.from(v)];
  }

  async batch(ops: BatchOp[], options?: BatchOptions): Promise<void> {
    if (this.#cut) return never();
    this.#live();
    // Checked first: a refused batch changes nothing anywhere.
    checkBatch(ops);
    const copies = ops.map((op): BatchOp => (op.type === 'put' ? { type: 'put', key: Uint8Array.from(op.key), value: Uint8Array.from(op.value) } : { type: 'del', key: Uint8Array.from(op.key) }));
    for (const op of copies) if (op.type === 'put' && !this.#view.has(mapKey(op.key))) this.#sorted = null;
    apply(this.#view, copies);
    this.#cache.push(...copies);
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
    apply(this.#disk, this.#cache);
    this.#cache = [];
    this.syncs++;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
