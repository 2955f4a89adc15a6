// The set of record ids a peer holds, with additive fingerprints over the binary trie of id
// prefixes: node (depth d, prefix p) holds the ids whose first d bits are p. Ids are SHA-256
// outputs, so the trie is balanced without any rebalancing and node bounds never travel on
// the wire. A fingerprint is the count and four 32-bit lanes, each the sum mod 2^32 of one
// of the first four words of the ids: subtracting two fingerprints gives the fingerprint of
// the difference, and a difference of one id gives that id's first 16 bytes back.
// Layout: 2^BUCKET_BITS sorted buckets under a segment tree of their sums, so a node at
// depth ≤ BUCKET_BITS costs O(1) and a deeper one a binary search in one bucket.
import { invariant } from './errors.ts';

export const BUCKET_BITS = 12;
const BUCKETS = 1 << BUCKET_BITS;
export const ID_BYTES = 32;
export const LANES = 4;
/** Deepest trie node: the first 32 bits of an id. Below it, ids are listed instead. */
export const MAX_TRIE_DEPTH = 32;

export interface Fingerprint {
  count: number;
  /** LANES words, each a sum mod 2^32. */
  lanes: Uint32Array;
}

export function emptyFingerprint(): Fingerprint {
  return { count: 0, lanes: new Uint32Array(LANES) };
}

export function fingerprintsEqual(a: Fingerprint, b: Fingerprint, lanes = LANES): boolean {
  if (a.count !== b.count) return false;
  for (let i = 0; i < lanes; i++) if (a.lanes[i] !== b.lanes[i]) return false;
  return true;
}

function word(id: Uint8Array, i: number): number {
  const o = i * 4;
  return (((id[o] as number) << 24) | ((id[o + 1] as number) << 16) | ((id[o + 2] as number) << 8) | (id[o + 3] as number)) >>> 0;
}

function compareIds(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = (a[aOff + i] as number) - (b[bOff + i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

class Bucket {
  ids = new Uint8Array(0);
  count = 0;

  /** First position whose id is ≥ `id` (or > with `after`). */
  bound(id: Uint8Array, after: boolean): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareIds(this.ids, mid * ID_BYTES, id, 0);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First position whose first word is ≥ w. */
  boundWord(w: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (word(this.ids.subarray(mid * ID_BYTES, mid * ID_BYTES + 4), 0) < w) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insertAt(pos: number, id: Uint8Array): void {
    const need = (this.count + 1) * ID_BYTES;
    if (need > this.ids.length) {
      const grown = new Uint8Array(Math.max(need, this.ids.length * 2, 8 * ID_BYTES));
      grown.set(this.ids.subarray(0, this.count * ID_BYTES));
      this.ids = grown;
    }
    this.ids.copyWithin((pos + 1) * ID_BYTES, pos * ID_BYTES, this.count * ID_BYTES);
    this.ids.set(id, pos * ID_BYTES);
    this.count++;
  }

  removeAt(pos: number): void {
    this.ids.copyWithin(pos * ID_BYTES, (pos + 1) * ID_BYTES, this.count * ID_BYTES);
    this.count--;
  }

  id(pos: number): Uint8Array {
    return this.ids.slice(pos * ID_BYTES, (pos + 1) * ID_BYTES);
  }
}

export class ItemSet {
  readonly #buckets: Bucket[] = Array.from({ length: BUCKETS }, () => new Bucket());
  /** Segment tree in heap order: node 1 is the root, node (1 << d) + p is trie node (d, p) for d ≤ BUCKET_BITS. */
  readonly #counts = new Float64Array(2 * BUCKETS);
  readonly #lanes = new Uint32Array(2 * BUCKETS * LANES);

  get size(): number {
    return this.#counts[1] as number;
  }

  has(id: Uint8Array): boolean {
    const b = this.#buckets[word(id, 0) >>> (32 - BUCKET_BITS)] as Bucket;
    const pos = b.bound(id, false);
    return pos < b.count && compareIds(b.ids, pos * ID_BYTES, id, 0) === 0;
  }

  /** Adds an id; false if it was already there. */
  add(id: Uint8Array): boolean {
    invariant(id.length === ID_BYTES, 'ids are 32 bytes');
    const bi = word(id, 0) >>> (32 - BUCKET_BITS);
    const b = this.#buckets[bi] as Bucket;
    const pos = b.bound(id, false);
    if (pos < b.count && compareIds(b.ids, pos * ID_BYTES, id, 0) === 0) return false;
    b.insertAt(pos, id);
    this.#update(bi, id, 1);
    return true;
  }

  /** Removes an id; false if it was not there. */
  delete(id: Uint8Array): boolean {
    const bi = word(id, 0) >>> (32 - BUCKET_BITS);
    const b = this.#buckets[bi] as Bucket;
    const pos = b.bound(id, false);
    if (pos >= b.count || compareIds(b.ids, pos * ID_BYTES, id, 0) !== 0) return false;
    b.removeAt(pos);
    this.#update(bi, id, -1);
    return true;
  }

  #update(bucket: number, id: Uint8Array, sign: 1 | -1): void {
    const w = [word(id, 0), word(id, 1), word(id, 2), word(id, 3)];
    for (let node = BUCKETS + bucket; node >= 1; node >>>= 1) {
      this.#counts[node] = (this.#counts[node] as number) + sign;
      for (let l = 0; l < LANES; l++) {
        const at = node * LANES + l;
        this.#lanes[at] = ((this.#lanes[at] as number) + sign * (w[l] as number)) >>> 0;
      }
    }
  }

  /** Positions [lo, hi) in the bucket of trie node (depth > BUCKET_BITS, prefix). */
  #span(depth: number, prefix: number): { b: Bucket; lo: number; hi: number } {
    const b = this.#buckets[prefix >>> (depth - BUCKET_BITS)] as Bucket;
    const first = (prefix * 2 ** (32 - depth)) >>> 0;
    const lo = b.boundWord(first);
    const next = first + 2 ** (32 - depth);
    const hi = next >= 2 ** 32 ? b.count : b.boundWord(next);
    return { b, lo, hi };
  }

  fingerprint(depth: number, prefix: number): Fingerprint {
    invariant(depth >= 0 && depth <= MAX_TRIE_DEPTH && prefix >= 0 && prefix < 2 ** depth, `trie node (${depth}, ${prefix})`);
    const fp = emptyFingerprint();
    if (depth <= BUCKET_BITS) {
      const node = (1 << depth) + prefix;
      fp.count = this.#counts[node] as number;
      for (let l = 0; l < LANES; l++) fp.lanes[l] = this.#lanes[node * LANES + l] as number;
      return fp;
    }
    const { b, lo, hi } = this.#span(depth, prefix);
    fp.count = hi - lo;
    for (let i = lo; i < hi; i++) {
      for (let l = 0; l < LANES; l++) {
        const o = i * ID_BYTES + l * 4;
        const w = (((b.ids[o] as number) << 24) | ((b.ids[o + 1] as number) << 16) | ((b.ids[o + 2] as number) << 8) | (b.ids[o + 3] as number)) >>> 0;
        fp.lanes[l] = ((fp.lanes[l] as number) + w) >>> 0;
      }
    }
    return fp;
  }

  /** Every id in trie node (depth, prefix), in id order. */
  idsIn(depth: number, prefix: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (depth <= BUCKET_BITS) {
      const width = 1 << (BUCKET_BITS - depth);
      for (let bi = prefix * width; bi < (prefix + 1) * width; bi++) {
        const b = this.#buckets[bi] as Bucket;
        for (let i = 0; i < b.count; i++) out.push(b.id(i));
      }
      return out;
    }
    const { b, lo, hi } = this.#span(depth, prefix);
    for (let i = lo; i < hi; i++) out.push(b.id(i));
    return out;
  }

  /** The id in trie node (depth, prefix) whose first `lanes` words equal `words`, if any. */
  findByWords(depth: number, prefix: number, words: Uint32Array, lanes: number): Uint8Array | undefined {
    const first = words[0] as number;
    const b = this.#buckets[first >>> (32 - BUCKET_BITS)] as Bucket;
    if (depth > 0 && first >>> (32 - depth) !== prefix) return undefined;
    for (let i = b.boundWord(first); i < b.count; i++) {
      const id = b.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
      if (word(id, 0) !== first) return undefined;
      let match = true;
      for (let l = 1; l < lanes && match; l++) match = word(id, l) === words[l];
      if (match) return Uint8Array.from(id);
    }
    return undefined;
  }

  /** All ids in id order (tests, snapshots). */
  *all(): Iterable<Uint8Array> {
    for (const b of this.#buckets) for (let i = 0; i < b.count; i++) yield b.id(i);
  }
}

export function subtractFingerprints(a: Fingerprint, b: Fingerprint): Fingerprint {
  const out = emptyFingerprint();
  out.count = a.count - b.count;
  for (let l = 0; l < LANES; l++) out.lanes[l] = ((a.lanes[l] as number) - (b.lanes[l] as number)) >>> 0;
  return out;
}
