// RFC 9162 §2.1 Merkle tree math: leaf hash SHA-256(0x00 ‖ d), node hash SHA-256(0x01 ‖ l ‖ r),
// the tree hash of non-power-of-two sizes by the RFC's largest-power-of-two split, inclusion
// and consistency proofs (generated from a node reader, so a store serves them in O(log n)
// reads) and their verifiers (pure; they run in the browser with the noble adapter).
import { crypto } from '../crypto/index.ts';

export const HASH_BYTES = 32;
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

export function leafHash(data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(data.length + 1);
  buf[0] = LEAF_PREFIX;
  buf.set(data, 1);
  return crypto.sha256(buf);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + 2 * HASH_BYTES);
  buf[0] = NODE_PREFIX;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_BYTES);
  return crypto.sha256(buf);
}

/** SHA-256 of the empty string: the hash of the empty tree. */
export function emptyRoot(): Uint8Array {
  return crypto.sha256(new Uint8Array());
}

/** Largest power of two strictly less than n (n ≥ 2). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  // Math.log2 is exact on powers of two, and unlike bit tricks works past 2^31.
  return n > 0 && Number.isInteger(Math.log2(n));
}

/**
 * Reads the hash of the complete subtree of 2^level leaves starting at leaf index × 2^level.
 * Stores keep exactly these nodes, so any proof needs O(log n) of them.
 */
export type NodeReader = (level: number, index: number) => Promise<Uint8Array>;

/** Tree hash of leaves [start, end), built from complete subtrees (one incomplete chain at most). */
export async function rangeHash(read: NodeReader, start: number, end: number): Promise<Uint8Array> {
  const n = end - start;
  if (n <= 0) return emptyRoot();
  if (isPowerOfTwo(n) && start % n === 0) return read(Math.log2(n), start / n);
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(await rangeHash(read, start, start + k), await rangeHash(read, start + k, end));
}

/** RFC 9162 2.1.3.1 PATH(m, D[start:end]). */
export async function inclusionPath(read: NodeReader, m: number, start: number, end: number): Promise<Uint8Array[]> {
  const n = end - start;
  if (n <= 1) return [];
  const k = largestPowerOfTwoBelow(n);
  if (m < start + k) return [...(await inclusionPath(read, m, start, start + k)), await rangeHash(read, start + k, end)];
  return [...(await inclusionPath(read, m, start + k, end)), await rangeHash(read, start, start + k)];
}

/** RFC 9162 2.1.4.1 PROOF(m, D[n]). */
export async function consistencyPath(read: NodeReader, m: number, n: number): Promise<Uint8Array[]> {
  if (m < 1 || m > n) throw new RangeError(`consistency proof needs 1 <= first <= second, got ${m}, ${n}`);
  return subproof(read, m, 0, n, true);
}

async function subproof(read: NodeReader, m: number, start: number, end: number, complete: boolean): Promise<Uint8Array[]> {
  const n = end - start;
  if (m === n) return complete ? [] : [await rangeHash(read, start, end)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...(await subproof(read, m, start, start + k, complete)), await rangeHash(read, start + k, end)];
  return [...(await subproof(read, m - k, start + k, end, false)), await rangeHash(read, start, start + k)];
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

function wellFormed(hashes: unknown): hashes is Uint8Array[] {
  return Array.isArray(hashes) && hashes.every((h) => h instanceof Uint8Array && h.length === HASH_BYTES);
}

/** RFC 9162 2.1.3.2: does `path` prove leaf `leaf` (a leaf hash) at `index` in the tree of `size` with `root`? */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, path: Uint8Array[], root: Uint8Array): boolean {
  if (!wellFormed(path) || leaf.length !== HASH_BYTES || root.length !== HASH_BYTES) return false;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree of `size1` (root1) is a prefix of the tree of `size2` (root2)? */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: Uint8Array[]): boolean {
  if (!wellFormed(proof) || root1.length !== HASH_BYTES || root2.length !== HASH_BYTES) return false;
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0 && equal(root1, emptyRoot());
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return equal(fr, root1) && equal(sr, root2) && sn === 0;
}

/**
 * The frontier of an append-only tree: the complete subtrees of the binary decomposition of
 * its size, largest first. Appending touches O(log n) of them and reports the new nodes.
 */
export class MerkleFrontier {
  size: number;
  /** [level, index, hash] of each complete subtree, largest (leftmost) first. */
  nodes: Array<[number, number, Uint8Array]>;

  constructor(size = 0, nodes: Array<[number, number, Uint8Array]> = []) {
    this.size = size;
    this.nodes = nodes;
  }

  /** Adds a leaf hash; returns every node created, as [level, index, hash]. */
  append(leaf: Uint8Array): Array<[number, number, Uint8Array]> {
    const created: Array<[number, number, Uint8Array]> = [[0, this.size, leaf]];
    let node: [number, number, Uint8Array] = [0, this.size, leaf];
    // While the new node is a right child, merge it with its left sibling on the frontier.
    while (node[1] % 2 === 1) {
      const left = this.nodes.pop();
      if (left === undefined || left[0] !== node[0] || left[1] !== node[1] - 1) throw new Error('merkle frontier invariant broken');
      node = [node[0] + 1, (node[1] - 1) / 2, nodeHash(left[2], node[2])];
      created.push(node);
    }
    this.nodes.push(node);
    this.size++;
    return created;
  }

  root(): Uint8Array {
    if (this.nodes.length === 0) return emptyRoot();
    let acc = this.nodes[this.nodes.length - 1]![2];
    for (let i = this.nodes.length - 2; i >= 0; i--) acc = nodeHash(this.nodes[i]![2], acc);
    return acc;
  }

  /** Which complete subtrees make up a tree of `size` (what to load to rebuild a frontier). */
  static shape(size: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let start = 0;
    for (let level = 52; level >= 0; level--) {
      const width = 2 ** level;
      if (size - start >= width) {
        out.push([level, start / width]);
        start += width;
      }
    }
    return out;
  }
}
