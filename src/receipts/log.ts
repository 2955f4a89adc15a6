// The append-only receipt log on the Store interface, with its RFC 9162 Merkle tree.
// Key layout (one byte prefix, big-endian integers so keys sort by number):
//   'r' u64(index)            → receipt JSON                (the log)
//   'i' utf8(receipt_id)      → u64(index)                  (lookup by id)
//   'm' u8(level) u64(index)  → 32-byte subtree hash        (complete subtrees only)
//   'h'                       → head JSON {size, last_hash, last_timestamp}
// Each append writes its receipt, id, new Merkle nodes and head in ONE atomic batch, so a
// crash leaves the log at some acknowledged prefix. Concurrent appends are group-committed:
// one durable batch (one fsync) for all that queued while the previous batch was writing.
import { base64urlDecode, base64urlEncode, canonicalBytes, crypto, hexEncode, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import type { BatchOp, Store } from '../store/types.ts';
import { consistencyPath, inclusionPath, leafHash, MerkleFrontier, type NodeReader } from './merkle.ts';
import { buildReceipt, GENESIS_HASH, receiptHashBytes, type Receipt } from './receipt.ts';

/** Appends committed together at most (bounds one batch's size and one fsync's latency). */
export const MAX_APPENDS_PER_BATCH = 512;

export class ReceiptLogError extends Error {
  readonly code: 'RECEIPT_NOT_FOUND' | 'RECEIPT_LOG_CORRUPT' | 'RECEIPT_INVALID';
  override name = 'ReceiptLogError';
  constructor(code: ReceiptLogError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface SignedTreeHead {
  size: number;
  root: string;
  timestamp: string;
  signer: string;
  signature: string;
}

export interface InclusionProof {
  receipt_id: string;
  index: number;
  tree_size: number;
  /** Leaf data is the receipt hash bytes; the proof's hashes in hex. */
  leaf_hash: string;
  path: string[];
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function readU64(b: Uint8Array): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0));
}

function key(prefix: string, ...parts: Uint8Array[]): Uint8Array {
  const len = 1 + parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(len);
  out[0] = prefix.charCodeAt(0);
  let off = 1;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export const keys = {
  receipt: (index: number): Uint8Array => key('r', u64(index)),
  id: (id: string): Uint8Array => key('i', utf8Encode(id)),
  node: (level: number, index: number): Uint8Array => key('m', Uint8Array.of(level), u64(index)),
  head: (): Uint8Array => key('h'),
};

interface Head {
  size: number;
  last_hash: string;
  last_timestamp: number;
}

interface Pending {
  operator_id: string;
  inputs: Json;
  outputs: Json;
  now: number;
  resolve: (r: Receipt) => void;
  reject: (e: unknown) => void;
}

export interface ReceiptLogOptions {
  signer: Ed25519Signer;
  /** PeerId of the signer (its key signs receipts and tree heads). */
  peerId: string;
  /**
   * Default true: each batch is fsynced. A replica of a Raft log passes false: its receipts
   * are rebuilt bit for bit by re-applying the durable log, so a write that reached the OS
   * (it survives kill -9) is enough.
   */
  sync?: boolean;
}

export class ReceiptLog {
  readonly #store: Store;
  readonly #signer: Ed25519Signer;
  readonly #sync: boolean;
  readonly peerId: string;
  #head: Head;
  #frontier: MerkleFrontier;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  private constructor(store: Store, opts: ReceiptLogOptions, head: Head, frontier: MerkleFrontier) {
    this.#store = store;
    this.#signer = opts.signer;
    this.#sync = opts.sync ?? true;
    this.peerId = opts.peerId;
    this.#head = head;
    this.#frontier = frontier;
  }

  static async open(store: Store, opts: ReceiptLogOptions): Promise<ReceiptLog> {
    const raw = await store.get(keys.head());
    const head: Head = raw === undefined ? { size: 0, last_hash: GENESIS_HASH, last_timestamp: 0 } : (JSON.parse(utf8Decode(raw)) as Head);
    const nodes: Array<[number, number, Uint8Array]> = [];
    for (const [level, index] of MerkleFrontier.shape(head.size)) {
      const h = await store.get(keys.node(level, index));
      if (h === undefined) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `Merkle node ${level}/${index} missing for a log of ${head.size}`);
      nodes.push([level, index, h]);
    }
    return new ReceiptLog(store, opts, head, new MerkleFrontier(head.size, nodes));
  }

  get size(): number {
    return this.#head.size;
  }

  /** Appends one execution; resolves with the receipt once it is durable. */
  append(entry: { operator_id: string; inputs: Json; outputs: Json }, now: number = Date.now()): Promise<Receipt> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...entry, now, resolve, reject });
      this.#kick();
    });
  }

  /** Starts a flush unless one runs; a flush that ends with work queued starts the next. */
  #kick(): void {
    if (this.#flushing !== null) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  /**
   * Builds groups of receipts and writes each as one batch. Building group N+1 (signing:
   * CPU) overlaps writing group N (fsync: I/O); batches are still issued one after another,
   * and a receipt is acknowledged only when its own batch is durable.
   */
  async #flush(): Promise<void> {
    let writing: Promise<void> = Promise.resolve();
    let failed = false;
    while (this.#queue.length > 0 && !failed) {
      const group = this.#queue.splice(0, MAX_APPENDS_PER_BATCH);
      const ops: BatchOp[] = [];
      const built: Receipt[] = [];
      let head = { ...this.#head };
      const frontier = new MerkleFrontier(this.#frontier.size, [...this.#frontier.nodes]);
      try {
        for (const p of group) {
          // Timestamps never go backwards along the chain, whatever the wall clock does.
          const now = Math.max(p.now, head.last_timestamp);
          const receipt = buildReceipt({ operator_id: p.operator_id, inputs: p.inputs, outputs: p.outputs, index: head.size, prevHash: head.last_hash, signer: this.#signer, signerId: this.peerId, now });
          ops.push({ type: 'put', key: keys.receipt(head.size), value: utf8Encode(JSON.stringify(receipt)) });
          ops.push({ type: 'put', key: keys.id(receipt.receipt_id), value: u64(head.size) });
          const hash = receiptHashBytes(receipt);
          for (const [level, index, node] of frontier.append(leafHash(hash))) ops.push({ type: 'put', key: keys.node(level, index), value: node });
          head = { size: head.size + 1, last_hash: `sha256:${hexEncode(hash)}`, last_timestamp: Date.parse(receipt.timestamp) };
          built.push(receipt);
        }
        ops.push({ type: 'put', key: keys.head(), value: utf8Encode(JSON.stringify(head)) });
      } catch (e) {
        // Bad input for one entry (e.g. an invalid operator id) fails its group only.
        for (const p of group) p.reject(e);
        continue;
      }
      // The next group builds on this one's state; if this write fails, the state is rolled
      // back and everything queued behind it is rejected (it was built on a lost prefix).
      const previous = { head: this.#head, frontier: this.#frontier };
      this.#head = head;
      this.#frontier = frontier;
      writing = writing.then(async () => {
        if (failed) throw new ReceiptLogError('RECEIPT_INVALID', 'an earlier batch failed');
        try {
          await this.#store.batch(ops, this.#sync ? undefined : { sync: false });
        } catch (e) {
          failed = true;
          this.#head = previous.head;
          this.#frontier = previous.frontier;
          throw e;
        }
      });
      writing.then(
        () => group.forEach((p, i) => p.resolve(built[i]!)),
        (e: unknown) => group.forEach((p) => p.reject(e)),
      );
      // Let this batch start before building the next group.
      await Promise.race([writing.catch(() => undefined), Promise.resolve()]);
    }
    await writing.catch(() => undefined);
    if (failed) {
      for (const p of this.#queue.splice(0)) p.reject(new ReceiptLogError('RECEIPT_INVALID', 'the receipt log failed to persist an earlier batch'));
    }
  }

  async get(index: number): Promise<Receipt | undefined> {
    const raw = await this.#store.get(keys.receipt(index));
    return raw === undefined ? undefined : (JSON.parse(utf8Decode(raw)) as Receipt);
  }

  async indexOf(receiptId: string): Promise<number | undefined> {
    const raw = await this.#store.get(keys.id(receiptId));
    return raw === undefined ? undefined : readU64(raw);
  }

  async getById(receiptId: string): Promise<Receipt | undefined> {
    const index = await this.indexOf(receiptId);
    return index === undefined ? undefined : this.get(index);
  }

  /** Receipts in index order from `from`, streamed from the store. */
  async *iterate(from = 0): AsyncIterable<Receipt> {
    for await (const [, value] of this.#store.range({ gte: keys.receipt(from), lt: key('r', new Uint8Array(8).fill(0xff)) })) {
      yield JSON.parse(utf8Decode(value)) as Receipt;
    }
  }

  #reader(): NodeReader {
    return async (level, index) => {
      const h = await this.#store.get(keys.node(level, index));
      if (h === undefined) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `Merkle node ${level}/${index} missing`);
      return h;
    };
  }

  root(): Uint8Array {
    return this.#frontier.root();
  }

  /** A tree head over the current size, signed by this log's signer. */
  signedTreeHead(now: number = Date.now()): SignedTreeHead {
    const body = { size: this.#head.size, root: `sha256:${hexEncode(this.root())}`, timestamp: new Date(now).toISOString(), signer: this.peerId };
    return { ...body, signature: base64urlEncode(this.#signer.sign(canonicalBytes(body))) };
  }

  async inclusionProof(receiptId: string, treeSize = this.#head.size): Promise<InclusionProof> {
    const index = await this.indexOf(receiptId);
    if (index === undefined) throw new ReceiptLogError('RECEIPT_NOT_FOUND', `no receipt ${receiptId.slice(0, 80)}`);
    if (index >= treeSize || treeSize > this.#head.size) throw new ReceiptLogError('RECEIPT_INVALID', `receipt ${index} is not in a tree of size ${treeSize}`);
    const receipt = await this.get(index);
    if (receipt === undefined) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `receipt ${index} missing`);
    const path = await inclusionPath(this.#reader(), index, 0, treeSize);
    return { receipt_id: receiptId, index, tree_size: treeSize, leaf_hash: hexEncode(leafHash(receiptHashBytes(receipt))), path: path.map(hexEncode) };
  }

  async consistencyProof(first: number, second = this.#head.size): Promise<string[]> {
    if (second > this.#head.size) throw new ReceiptLogError('RECEIPT_INVALID', `the log has ${this.#head.size} receipts, not ${second}`);
    return (await consistencyPath(this.#reader(), first, second)).map(hexEncode);
  }

  /** Waits for queued appends, then closes the store. */
  async close(): Promise<void> {
    await this.#flushing;
    await this.#store.close();
  }
}

/** Verifies a signed tree head's signature (pure; browser-safe). */
export function verifyTreeHead(sth: SignedTreeHead, publicKey: Uint8Array): boolean {
  const { signature, ...body } = sth;
  try {
    return crypto.verify(publicKey, canonicalBytes(body), base64urlDecode(signature));
  } catch {
    return false;
  }
}
