// The Merkle tree of a batch (RFC 9162 §2.1 shape: leaf = H(0x00 ‖ data), node = H(0x01 ‖ l ‖ r),
// the empty tree = H("")), over an injected digest so the simulator can use a fast fake hash.
// Batch digests are roots over request encodings; reply roots are over reply leaves. Built
// bottom-up with an odd last node promoted, which gives RFC 9162's tree for every size.
import type { PbftVerifier } from './types.ts';

type Digest = PbftVerifier['digest'];

const LEAF = 0x00;
const NODE = 0x01;

export function leafHash(digest: Digest, data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(data.byteLength + 1);
  buf[0] = LEAF;
  buf.set(data, 1);
  return digest(buf);
}

function nodeHash(digest: Digest, left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.byteLength + right.byteLength);
  buf[0] = NODE;
  buf.set(left, 1);
  buf.set(right, 1 + left.byteLength);
  return digest(buf);
}

/** Root over leaf hashes (not raw data); the empty tree hashes the empty string. */
export function merkleRoot(digest: Digest, leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return digest(new Uint8Array(0));
  let level: readonly Uint8Array[] = leaves;
  while (level.length > 1) level = parentLevel(digest, level);
  return level[0] as Uint8Array;
}

function parentLevel(digest: Digest, level: readonly Uint8Array[]): Uint8Array[] {
  const up: Uint8Array[] = [];
  for (let i = 0; i + 1 < level.length; i += 2) up.push(nodeHash(digest, level[i] as Uint8Array, level[i + 1] as Uint8Array));
  if (level.length % 2 === 1) up.push(level[level.length - 1] as Uint8Array);
  return up;
}

/** Every level of the tree, leaves first, root last (build once, then take many paths). */
export function merkleLevels(digest: Digest, leaves: readonly Uint8Array[]): (readonly Uint8Array[])[] {
  const levels: (readonly Uint8Array[])[] = [leaves];
  let level: readonly Uint8Array[] = leaves;
  while (level.length > 1) {
    level = parentLevel(digest, level);
    levels.push(level);
  }
  return levels;
}

/** RFC 9162 inclusion path of leaf `index` from prebuilt levels, leaf-side first. */
export function pathFromLevels(levels: readonly (readonly Uint8Array[])[], index: number): Uint8Array[] {
  const leaves = levels[0] ?? [];
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} of ${leaves.length}`);
  const path: Uint8Array[] = [];
  let i = index;
  for (let l = 0; l + 1 < levels.length; l++) {
    const level = levels[l] as readonly Uint8Array[];
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    // The last node of an odd level has no sibling: it moves up unchanged.
    if (sibling < level.length) path.push(level[sibling] as Uint8Array);
    i = Math.floor(i / 2);
  }
  return path;
}

/** RFC 9162 inclusion path of leaf `index`, leaf-side first. */
export function inclusionPath(digest: Digest, leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  return pathFromLevels(merkleLevels(digest, leaves), index);
}

/** RFC 9162 §2.1.3.2: the root that `path` proves for leaf `index` of `size`, or undefined if the path cannot be one. */
export function rootFromPath(digest: Digest, leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(digest, p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(digest, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}
