// The append-only receipt log on the Store interface, with its RFC 9162 Merkle tree.
// Key layout (one byte prefix, big-endian integers so keys sort by number):
//   'r' u64(index)            → receipt JSON                (the log)
//   'i' utf8(receipt_id)      → u64(index)                  (lookup by id)
//   'm' u8(level) u64(index)  → 32-byte subtree hash        (complete subtrees only)
//   'h'                       → head JSON {size, last_hash, last_timestamp}
// Each append writes its receipt, id, new Merkle nodes and head in ONE atomic batch, so a
// crash leaves the log at some acknowledged prefix. Concurrent appends are group-committed:
// one durable batch (one fsync) for a group; the next group is signed while one is written.
import { hexEncode, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import type { BatchOp, Store } from '../store/types.ts';
import { prefixedKey, readU64, u64, writeU64 } from '../store/keys.ts';
import { consistencyPath, inclusionPath, leafHash, MerkleFrontier, type NodeReader } from './merkle.ts';
import { GENESIS_HASH, receiptHashBytes, receiptOperation, signedReceipt, unsignedReceipt, type BuiltReceipt, type Receipt, type UnsignedReceipt } from './receipt.ts';
import { signTreeHead, type InclusionProof, type SignedTreeHead } from './tree-head.ts';

export { verifyTreeHead, type InclusionProof, type SignedTreeHead } from './tree-head.ts';

/** Appends committed together at most (bounds one batch's size and one fsync's latency). */
export const MAX_APPENDS_PER_BATCH = 512;
/** Appends waiting to be built at most; past it append() rejects (RECEIPT_LOG_BUSY) rather than queue without bound. */
export const MAX_QUEUED_APPENDS = 65_536;
/** Batches built ahead of the disk at most: one being written, one being signed behind it. */
export const MAX_BATCHES_IN_FLIGHT = 2;
/** A queue this long or longer, with nothing being written, is split so signing overlaps I/O. */
const MIN_SPLIT_GROUP = 32;

export class ReceiptLogError extends Error {
  readonly code: 'RECEIPT_NOT_FOUND' | 'RECEIPT_LOG_CORRUPT' | 'RECEIPT_INVALID' | 'RECEIPT_LOG_BUSY';
  override name = 'ReceiptLogError';
  constructor(code: ReceiptLogError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

const key = prefixedKey;

const R = 'r'.charCodeAt(0);
const M = 'm'.charCodeAt(0);

export const keys = {
  receipt: (index: number): Uint8Array => {
    const k = new Uint8Array(9);
    k[0] = R;
    writeU64(k, 1, index);
    return k;
  },
  id: (id: string): Uint8Array => key('i', utf8Encode(id)),
  node: (level: number, index: number): Uint8Array => {
    const k = new Uint8Array(10);
    k[0] = M;
    k[1] = level;
    writeU64(k, 2, index);
    return k;
  },
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
  /** The caller's own writes, committed atomically with this receipt (keys outside r/i/m/h). */
  extra: readonly BatchOp[] | undefined;
  resolve: (r: Receipt) => void;
  reject: (e: unknown) => void;
}

/** A signed group, ready to be written as one atomic batch. */
interface Batch {
  ops: BatchOp[];
  members: Array<[Pending, Receipt]>;
  /** The log's head and frontier once the batch is durable. */
  head: Head;
  frontier: MerkleFrontier;
}

/** A pending append's operation, or why it has none (it fails alone). */
function operationOf(p: Pending): Receipt['operation'] | { error: unknown } {
  try {
    return receiptOperation(p.operator_id, p.inputs, p.outputs);
  } catch (error) {
    return { error };
  }
}

export interface ReceiptLogOptions {
  signer: Ed25519Signer;
  /** PeerId of the signer (its key signs receipts and tree heads). */
  peerId: string;
  /** Appends per durable batch at most (default and ceiling: MAX_APPENDS_PER_BATCH). */
  maxAppendsPerBatch?: number;
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
  readonly #maxGroup: number;
  /** State after every batch built so far (durable or still being written): what appends build on. */
  #head: Head;
  #frontier: MerkleFrontier;
  /** State after the last durable batch: what sizes, roots, tree heads and proofs show. */
  #durable: { head: Head; frontier: MerkleFrontier };
  #queue: Pending[] = [];
  #buildScheduled = false;
  /** A build is signing a group (signing is asynchronous; one build at a time). */
  #building = false;
  /** Batches built and handed to the store, not yet durable (≤ MAX_BATCHES_IN_FLIGHT). */
  #inFlight = 0;
  /** The chain of batch writes: each starts when the one before it is durable. */
  #writes: Promise<void> = Promise.resolve();
  /** Bumped when a batch fails: batches built before that on its state are void. */
  #epoch = 0;
  #idleWaiters: Array<() => void> = [];

  private constructor(store: Store, opts: ReceiptLogOptions, head: Head, frontier: MerkleFrontier) {
    this.#store = store;
    this.#signer = opts.signer;
    this.#sync = opts.sync ?? true;
    this.peerId = opts.peerId;
    this.#head = head;
    this.#frontier = frontier;
    this.#durable = { head, frontier };
    this.#maxGroup = Math.max(1, Math.min(opts.maxAppendsPerBatch ?? MAX_APPENDS_PER_BATCH, MAX_APPENDS_PER_BATCH));
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

  /** Receipts durably in the log (appends still being written are not counted). */
  get size(): number {
    return this.#durable.head.size;
  }

  /** Appends one execution; resolves with the receipt once it is durable. */
  append(entry: { operator_id: string; inputs: Json; outputs: Json }, now: number = Date.now(), extra?: readonly BatchOp[]): Promise<Receipt> {
    if (this.#queue.length >= MAX_QUEUED_APPENDS) return Promise.reject(new ReceiptLogError('RECEIPT_LOG_BUSY', `${MAX_QUEUED_APPENDS} appends already wait to be written`));
    return new Promise((resolve, reject) => {
      this.#queue.push({ operator_id: entry.operator_id, inputs: entry.inputs, outputs: entry.outputs, now, extra, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Schedules a build as a microtask, so every append made in the same turn (or resolved by
   * the same acknowledgement) joins one group. One build runs at a time.
   */
  #kick(): void {
    if (this.#buildScheduled || this.#building) return;
    this.#buildScheduled = true;
    queueMicrotask(() => {
      this.#buildScheduled = false;
      void this.#build();
    });
  }

  /**
   * Builds groups of receipts, each one batch, and chains their writes. Signing (CPU, or
   * WebCrypto off the main thread) of the next group overlaps the write (fsync) of the
   * previous one: when nothing is being written a long queue is split in two, so there always
   * is a next group. Receipts of a group are signed one after another (each links to the hash
   * of the one before, signature included). A receipt is acknowledged only when its own batch
   * is durable; batches become durable in order.
   */
  async #build(): Promise<void> {
    this.#building = true;
    try {
      while (this.#queue.length > 0 && this.#inFlight < MAX_BATCHES_IN_FLIGHT) {
        const take = this.#inFlight === 0 && this.#queue.length >= 2 * MIN_SPLIT_GROUP ? Math.ceil(this.#queue.length / 2) : this.#queue.length;
        const group = this.#queue.splice(0, Math.min(take, this.#maxGroup));
        const epoch = this.#epoch;
        const batch = await this.#sign(group);
        if (epoch !== this.#epoch) {
          // A batch this group builds on failed while it was being signed: its indexes and
          // links point at receipts that are not there.
          const e = new ReceiptLogError('RECEIPT_INVALID', 'the receipt log failed to persist an earlier batch');
          for (const [p] of batch.members) p.reject(e);
          continue;
        }
        if (batch.members.length === 0) continue;
        this.#write(batch);
        // Build the next group in a later microtask: the write just chained is queued first,
        // so its batch is handed to the store (and its fsync runs off the main thread) before
        // the signing of the next group starts, instead of after it.
        break;
      }
    } finally {
      this.#building = false;
    }
    if (this.#queue.length > 0 && this.#inFlight < MAX_BATCHES_IN_FLIGHT) this.#kick();
    else this.#notifyIfIdle();
  }

  /**
   * Signs a group in chain order on the state built so far, and lays out its batch: receipt,
   * id, new Merkle nodes, the caller's own writes, then the head. Bad input (an invalid
   * operator id, inputs that are not JSON) fails its own append only.
   */
  async #sign(group: Pending[]): Promise<Batch> {
    const ops: BatchOp[] = [];
    const members: Array<[Pending, Receipt]> = [];
    let head = this.#head;
    const frontier = new MerkleFrontier(this.#frontier.size, [...this.#frontier.nodes]);
    let next = operationOf(group[0]!);
    for (let g = 0; g < group.length; g++) {
      const p = group[g]!;
      const operation = next;
      let unsigned: UnsignedReceipt | undefined;
      let signature: Promise<Uint8Array> | undefined;
      try {
        if ('error' in operation) throw operation.error;
        // Timestamps never go backwards along the chain, whatever the wall clock does.
        unsigned = unsignedReceipt(operation, { index: head.size, prevHash: head.last_hash, signerId: this.peerId, now: Math.max(p.now, head.last_timestamp) });
        signature = this.#signer.signAsync(unsigned.message);
      } catch (e) {
        p.reject(e);
      }
      // The next receipt's operation (JCS and hashes of its inputs and outputs) does not
      // depend on the chain: it is computed while this signature is being made.
      if (g + 1 < group.length) next = operationOf(group[g + 1]!);
      if (unsigned === undefined || signature === undefined) continue;
      let built: BuiltReceipt;
      try {
        built = signedReceipt(unsigned, await signature);
      } catch (e) {
        p.reject(e);
        continue;
      }
      const { receipt, bytes, hash } = built;
      // The stored value is the receipt's canonical JSON (any JSON reader parses it).
      ops.push({ type: 'put', key: keys.receipt(head.size), value: bytes });
      ops.push({ type: 'put', key: keys.id(receipt.receipt_id), value: u64(head.size) });
      for (const [level, index, node] of frontier.append(leafHash(hash))) ops.push({ type: 'put', key: keys.node(level, index), value: node });
      head = { size: head.size + 1, last_hash: `sha256:${hexEncode(hash)}`, last_timestamp: Date.parse(receipt.timestamp) };
      if (p.extra !== undefined) ops.push(...p.extra);
      members.push([p, receipt]);
    }
    ops.push({ type: 'put', key: keys.head(), value: utf8Encode(JSON.stringify(head)) });
    return { ops, members, head, frontier };
  }

  /** Adopts a built group's state now and writes its batch after every earlier one. */
  #write({ ops, members, head, frontier }: Batch): void {
    const epoch = this.#epoch;
    this.#head = head;
    this.#frontier = frontier;
    this.#inFlight++;
    const write = this.#writes.then(async () => {
      // Built on a batch that failed: its index and prev hash point at receipts that are not there.
      if (epoch !== this.#epoch) throw new ReceiptLogError('RECEIPT_INVALID', 'the receipt log failed to persist an earlier batch');
      try {
        await this.#store.batch(ops, this.#sync ? undefined : { sync: false });
      } catch (e) {
        // Every earlier batch is durable (writes are chained): build on from there.
        this.#epoch++;
        this.#head = this.#durable.head;
        this.#frontier = this.#durable.frontier;
        throw e;
      }
      this.#durable = { head, frontier };
    });
    this.#writes = write.catch(() => undefined);
    write.then(
      () => {
        for (const [p, r] of members) p.resolve(r);
      },
      (e: unknown) => {
        for (const [p] of members) p.reject(e);
      },
    ).finally(() => {
      this.#inFlight--;
      if (this.#queue.length > 0) this.#kick();
      else this.#notifyIfIdle();
    });
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#inFlight === 0 && !this.#buildScheduled && !this.#building;
  }

  #notifyIfIdle(): void {
    if (!this.#idle()) return;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Resolves once every append made so far is durable or has failed. */
  flushed(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
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
    return this.#durable.frontier.root();
  }

  /** A tree head over the current size, signed by this log's signer. */
  signedTreeHead(now: number = Date.now()): SignedTreeHead {
    return signTreeHead(this.#durable.head.size, `sha256:${hexEncode(this.root())}`, now, this.#signer, this.peerId);
  }

  async inclusionProof(receiptId: string, treeSize = this.size): Promise<InclusionProof> {
    const index = await this.indexOf(receiptId);
    if (index === undefined) throw new ReceiptLogError('RECEIPT_NOT_FOUND', `no receipt ${receiptId.slice(0, 80)}`);
    if (index >= treeSize || treeSize > this.size) throw new ReceiptLogError('RECEIPT_INVALID', `receipt ${index} is not in a tree of size ${treeSize}`);
    const receipt = await this.get(index);
    if (receipt === undefined) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `receipt ${index} missing`);
    const path = await inclusionPath(this.#reader(), index, 0, treeSize);
    return { receipt_id: receiptId, index, tree_size: treeSize, leaf_hash: hexEncode(leafHash(receiptHashBytes(receipt))), path: path.map(hexEncode) };
  }

  async consistencyProof(first: number, second = this.size): Promise<string[]> {
    if (second > this.size) throw new ReceiptLogError('RECEIPT_INVALID', `the log has ${this.size} receipts, not ${second}`);
    return (await consistencyPath(this.#reader(), first, second)).map(hexEncode);
  }

  /** Waits for queued appends, then closes the store. */
  async close(): Promise<void> {
    await this.flushed();
    await this.#store.close();
  }
}
