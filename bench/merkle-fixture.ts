// A Merkle tree of any size for benches: leaves hashed into an in-memory store laid out as
// the receipt log lays out its complete subtrees, so proofs come from store reads exactly as
// a log serves them. Building 1,000,000 leaves takes seconds, not the hours real receipts would.
import { MemoryStore } from '../src/store/memory.ts';
import { keys } from '../src/receipts/log.ts';
import { leafHash, MerkleFrontier, type NodeReader } from '../src/receipts/merkle.ts';
import type { BatchOp } from '../src/store/types.ts';

/** Nodes written per store batch while building. */
const BUILD_BATCH = 8192;

export interface BenchTree {
  size: number;
  root: Uint8Array;
  read: NodeReader;
  buildMs: number;
  close(): Promise<void>;
}

/** Builds a tree of `size` leaves whose data is `leafData(i)`. */
export async function buildTree(size: number, leafData: (index: number) => Uint8Array): Promise<BenchTree> {
  const store = new MemoryStore();
  const frontier = new MerkleFrontier();
  let ops: BatchOp[] = [];
  const t0 = performance.now();
  for (let i = 0; i < size; i++) {
    for (const [level, index, hash] of frontier.append(leafHash(leafData(i)))) ops.push({ type: 'put', key: keys.node(level, index), value: hash });
    if (ops.length >= BUILD_BATCH) {
      await store.batch(ops);
      ops = [];
    }
  }
  await store.batch(ops);
  return {
    size,
    root: frontier.root(),
    read: async (level, index) => {
      const h = await store.get(keys.node(level, index));
      if (h === undefined) throw new Error(`bench tree lacks node ${level}/${index}`);
      return h;
    },
    buildMs: performance.now() - t0,
    close: () => store.close(),
  };
}

/** 8 bytes naming leaf `index`: the data of the leaves a bench does not care about. */
export function indexLeafData(index: number): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setFloat64(0, index);
  return data;
}
