// A bounded cache for keys that are costly to decode or import (node:crypto KeyObjects,
// WebCrypto CryptoKeys, PeerId → raw key). Decoding a key costs more than the signature it
// checks, so each adapter keeps them; the bound keeps a stream of fresh keys from growing
// memory. Invariant: at most MAX_CACHED_KEYS entries; the oldest insertion leaves first.

/** Upper bound on cached keys per cache. */
export const MAX_CACHED_KEYS = 4096;

export class KeyCache<V> {
  readonly #entries = new Map<string, V>();
  readonly #limit: number;

  constructor(limit = MAX_CACHED_KEYS) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`key cache limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): V | undefined {
    return this.#entries.get(id);
  }

  /** The cached value for `id`, or `make()`'s, which is then cached (evicting the oldest when full). */
  getOrCreate(id: string, make: () => V): V {
    let value = this.#entries.get(id);
    if (value === undefined) {
      value = make();
      if (this.#entries.size >= this.#limit) {
        // Maps iterate in insertion order, so the first key is the oldest entry.
        const oldest = this.#entries.keys().next();
        if (oldest.done !== true) this.#entries.delete(oldest.value);
      }
      this.#entries.set(id, value);
    }
    return value;
  }
}

/** A map key for raw key bytes (one UTF-16 code unit per byte; 32-byte keys make 32-char ids). */
export function bytesId(bytes: Uint8Array): string {
  let id = '';
  for (let i = 0; i < bytes.length; i++) id += String.fromCharCode(bytes[i] as number);
  return id;
}
