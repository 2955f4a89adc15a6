// The append-only receipt log on the Store interface, with its RFC 9162 Merkle tree.
// Key layout (one byte prefix, big-endian integers so keys sort by number):
//   'r' u64(index)            → receipt JSON, signed, or unsigned (no `signature`) when lazy
//   'i' utf8(receipt_id)      → u64(index)                  (lookup by id)
//   'm' u8(level) u64(index)  → 32-byte subtree hash        (complete subtrees only)
//   'h'                       → head JSON {size, last_hash, last_timestamp, sth?}
// Each append writes its receipt, id, new Merkle nodes and head in ONE atomic batch, so a
// crash leaves the log at some acknowledged prefix. Concurrent appends are group-committed:
// one durable batch (one fsync) for a group; the next group is signed while one is written.
// The chain and the tree link receipt bodies (the receipt hash is over the unsigned bytes), so
// an append may be lazy: stored unsigned, committed by a tree head signed once per batch, and
// signed when first read (ed25519 is deterministic: the bytes equal eager signing). A signature
// made on a read from disk is written back (without fsync: it can always be made again).
import { crypto, hexEncode, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import type { BatchOp, Store } from '../store/types.ts';
import { prefixedKey, readU64, u64, writeU64 } from '../store/keys.ts';
import { consistencyPath, inclusionPath, leafHash, MerkleFrontier, type NodeReader } from './merkle.ts';
import { GENESIS_HASH, receiptCanonicalBytes, receiptHashBytes, receiptOperation, signedReceipt, unsignedReceipt, type BuiltReceipt, type Receipt, type UnsignedReceipt } from './receipt.ts';
import { signTreeHead, type InclusionProof, type SignedTreeHead } from './tree-head.ts';

export { verifyTreeHead, type InclusionProof, type SignedTreeHead } from './tree-head.ts';

/** Appends committed together at most (bounds one batch's size and one fsync's latency). */
export const MAX_APPENDS_PER_BATCH = 512;
/** Appends waiting to be built at most; past it append() rejects (RECEIPT_LOG_BUSY) rather than queue without bound. */
export const MAX_QUEUED_APPENDS = 65_536;
/** Batches built ahead of the disk at most: one being written, one being signed behind it. */
export const MAX_BATCHES_IN_FLIGHT = 2;
/** Signatures of one group being made at once at most (the rest of the group waits to be built). */
export const MAX_GROUP_SIGNATURES_IN_FLIGHT = 64;
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
  /** The tree head signed over this head when its batch held lazy appends. */
  sth?: SignedTreeHead;
}

/** A durable append: its index, and its receipt when it was signed in the batch. */
export interface Appended {
  index: number;
  receipt: Receipt | undefined;
}

/** Receipts signed on a read and kept in memory at most (each is also on disk). */
export const MAX_SIGNED_CACHE = 4096;
/** Lazy appends kept in memory unsigned at most, so the first read signs without a disk read. */
export const MAX_UNSIGNED_CACHE = 4096;
/** Receipts signed on a read from disk, written back in one batch at most. */
export const MAX_WRITE_BACK_BATCH = 256;

interface Pending {
  operator_id: string;
  inputs: Json;
  outputs: Json;
  now: number;
  /** The caller's own writes, committed atomically with this receipt (keys outside r/i/m/h). */
  extra: readonly BatchOp[] | undefined;
  /** Signed in the batch (true), or stored unsigned and signed when first read. */
  sign: boolean;
  resolve: (r: Appended) => void;
  reject: (e: unknown) => void;
}

/** A signed group, ready to be written as one atomic batch. */
interface Batch {
  ops: BatchOp[];
  members: Array<[Pending, Appended]>;
  /** The log's head and frontier once the batch is durable. */
  head: Head;
  frontier: MerkleFrontier;
}

/** The receipt hash of a receipt not signed yet: of the bytes its signature will cover. */
function receiptHashOfUnsigned(u: UnsignedReceipt): Uint8Array {
  return crypto.sha256(u.message);
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
  /** Lazy appends not yet signed, by index (bounded by MAX_UNSIGNED_CACHE). */
  readonly #unsigned = new Map<number, UnsignedReceipt>();
  /** Receipts signed on a read, by index (bounded by MAX_SIGNED_CACHE). */
  readonly #signed = new Map<number, Receipt>();
  /** Reads signing a receipt right now: a second read of it waits for the same signature. */
  readonly #signing = new Map<number, Promise<Receipt>>();
  #receiptSignatures = 0;
  #treeHeadSignatures = 0;

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

  /**
   * Receipt signatures this log put into receipts (in batches and on reads) since it was opened:
   * a signature thrown away because an earlier one in its group failed is not counted.
   */
  get receiptSignatures(): number {
    return this.#receiptSignatures;
  }

  /** Tree heads signed per batch of lazy appends since it was opened (not those signedTreeHead() makes on request). */
  get treeHeadSignatures(): number {
    return this.#treeHeadSignatures;
  }

  /** The tree head signed with the last durable batch that held lazy appends, if any. */
  get batchTreeHead(): SignedTreeHead | undefined {
    return this.#durable.head.sth;
  }

  /** Receipts durably in the log (appends still being written are not counted). */
  get size(): number {
    return this.#durable.head.size;
  }

  /** Appends one execution; resolves with the receipt once it is durable. */
  append(entry: { operator_id: string; inputs: Json; outputs: Json }, now: number = Date.now(), extra?: readonly BatchOp[]): Promise<Receipt> {
    return this.#enqueue(entry, now, extra, true).then((a) => a.receipt ?? this.#mustGet(a.index));
  }

  /**
   * Appends one execution without signing it: resolves with its index once it is durable
   * (unsigned, chained and in the tree). Its batch carries one signed tree head over it; the
   * receipt is signed when first read (get, getById, iterate, inclusionProof).
   */
  appendLazy(entry: { operator_id: string; inputs: Json; outputs: Json }, now: number = Date.now(), extra?: readonly BatchOp[]): Promise<number> {
    return this.#enqueue(entry, now, extra, false).then((a) => a.index);
  }

  #enqueue(entry: { operator_id: string; inputs: Json; outputs: Json }, now: number, extra: readonly BatchOp[] | undefined, sign: boolean): Promise<Appended> {
    if (this.#queue.length >= MAX_QUEUED_APPENDS) return Promise.reject(new ReceiptLogError('RECEIPT_LOG_BUSY', `${MAX_QUEUED_APPENDS} appends already wait to be written`));
    return new Promise((resolve, reject) => {
      this.#queue.push({ operator_id: entry.operator_id, inputs: entry.inputs, outputs: entry.outputs, now, extra, sign, resolve, reject });
      this.#kick();
    });
  }

  async #mustGet(index: number): Promise<Receipt> {
    const r = await this.get(index);
    if (r === undefined) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `receipt ${index} missing`);
    return r;
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
   * is a next group. A receipt is acknowledged only when its own batch is durable; batches
   * become durable in order.
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
   * Signs a group on the state built so far, and lays out its batch in chain order: receipt,
   * id, new Merkle nodes, the caller's own writes, then the head. A receipt links to the hash
   * of the one before without its signature, so the group's receipts are built in order and
   * their signatures made up to MAX_GROUP_SIGNATURES_IN_FLIGHT at once (WebCrypto signs off the main
   * thread in Firefox and hops a task per signature in Chromium). Bad input (an invalid
   * operator id, inputs that are not JSON) fails its own append only; a signature that fails
   * fails its own append, and the receipts built after it (they link to it) go back to the
   * front of the queue to be built again.
   */
  async #sign(group: Pending[]): Promise<Batch> {
    const ops: BatchOp[] = [];
    const members: Array<[Pending, Appended]> = [];
    let lazy = false;
    let head = this.#head;
    const frontier = new MerkleFrontier(this.#frontier.size, [...this.#frontier.nodes]);
    /** Where the next receipt goes: after the last one built (its signature may still be on its way). */
    let at = { size: head.size, last_hash: head.last_hash, last_timestamp: head.last_timestamp };
    const signing: Array<{ p: Pending; unsigned: UnsignedReceipt; hash: Uint8Array; signature: Promise<Uint8Array> | undefined; time: number }> = [];
    let built = 0;
    let broken = false;
    /** Lays out the oldest receipt being signed; false when its signature failed (the rest is requeued). */
    const layOut = async (): Promise<boolean> => {
      const { p, unsigned, hash, signature, time } = signing.shift()!;
      let receipt: Receipt | undefined;
      let bytes: Uint8Array;
      if (signature !== undefined) {
        try {
          ({ receipt, bytes } = signedReceipt(unsigned, await signature, hash));
          this.#receiptSignatures++;
        } catch (e) {
          p.reject(e);
          // The receipts built after it link to it: build them again, on what is laid out.
          this.#queue.unshift(...signing.splice(0).map((s) => s.p), ...group.slice(built));
          return false;
        }
      } else {
        // Stored unsigned: the canonical JSON without `signature`, exactly the bytes it signs.
        bytes = unsigned.message;
        lazy = true;
      }
      const index = head.size;
      // The stored value is the receipt's canonical JSON (any JSON reader parses it).
      ops.push({ type: 'put', key: keys.receipt(index), value: bytes });
      ops.push({ type: 'put', key: keys.id(unsigned.receipt_id), value: u64(index) });
      for (const [level, i, node] of frontier.append(leafHash(hash))) ops.push({ type: 'put', key: keys.node(level, i), value: node });
      head = { size: index + 1, last_hash: `sha256:${hexEncode(hash)}`, last_timestamp: time };
      if (p.extra !== undefined) ops.push(...p.extra);
      if (receipt === undefined) this.#keepUnsigned(index, unsigned);
      members.push([p, { index, receipt }]);
      return true;
    };
    while (built < group.length && !broken) {
      const p = group[built++]!;
      try {
        const operation = operationOf(p);
        if ('error' in operation) throw operation.error;
        // Timestamps never go backwards along the chain, whatever the wall clock does.
        const unsigned = unsignedReceipt(operation, { index: at.size, prevHash: at.last_hash, signerId: this.peerId, now: Math.max(p.now, at.last_timestamp) });
        const hash = receiptHashOfUnsigned(unsigned);
        let signature: Promise<Uint8Array> | undefined;
        if (p.sign) {
          signature = this.#signer.signAsync(unsigned.message);
          // Awaited by layOut, unless an earlier signature failed and this receipt is built again.
          signature.catch(() => undefined);
        }
        const time = Date.parse(unsigned.body.timestamp);
        signing.push({ p, unsigned, hash, signature, time });
        at = { size: at.size + 1, last_hash: `sha256:${hexEncode(hash)}`, last_timestamp: time };
      } catch (e) {
        p.reject(e);
        continue;
      }
      if (signing.length >= MAX_GROUP_SIGNATURES_IN_FLIGHT) broken = !(await layOut());
    }
    while (signing.length > 0 && !broken) broken = !(await layOut());
    if (lazy) {
      // One signature commits every receipt of the batch (and the whole log before it).
      head.sth = signTreeHead(head.size, `sha256:${hexEncode(frontier.root())}`, head.last_timestamp, this.#signer, this.peerId);
      this.#treeHeadSignatures++;
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
        for (const [p, a] of members) {
          this.#unsigned.delete(a.index);
          p.reject(e);
        }
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

  /** The durable receipt at `index`, signed (a lazy one is signed now, once). */
  async get(index: number): Promise<Receipt | undefined> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) return undefined;
    const cached = this.#signed.get(index);
    if (cached !== undefined) return cached;
    const u = this.#unsigned.get(index);
    if (u !== undefined) return this.#signOnRead(index, u);
    const raw = await this.#store.get(keys.receipt(index));
    if (raw === undefined) return undefined;
    const write: Array<[number, Receipt]> = [];
    const r = await this.#fromDisk(index, raw, write);
    await this.#writeBack(write);
    return r;
  }

  /** A stored receipt, signed: as stored, or signed now and queued on `write` for write-back. */
  async #fromDisk(index: number, raw: Uint8Array, write: Array<[number, Receipt]>): Promise<Receipt> {
    const value = JSON.parse(utf8Decode(raw)) as Receipt | Omit<Receipt, 'signature'>;
    if ('signature' in value) return value;
    const cached = this.#signed.get(index);
    if (cached !== undefined) return cached;
    const u = unsignedReceipt(value.operation, { index: value.index, prevHash: value.prev_receipt_hash, signerId: value.signer, now: Date.parse(value.timestamp) });
    if (u.receipt_id !== value.receipt_id) throw new ReceiptLogError('RECEIPT_LOG_CORRUPT', `receipt ${index} does not match its id`);
    const r = await this.#signOnRead(index, u);
    write.push([index, r]);
    return r;
  }

  /** Signs a lazy receipt once however many reads ask for it at the same time. */
  #signOnRead(index: number, u: UnsignedReceipt): Promise<Receipt> {
    let p = this.#signing.get(index);
    if (p !== undefined) return p;
    this.#receiptSignatures++;
    p = this.#signer.signAsync(u.message).then((sig) => {
      const r = signedReceipt(u, sig).receipt;
      this.#unsigned.delete(index);
      this.#cacheSigned(index, r);
      return r;
    });
    p.finally(() => this.#signing.delete(index)).catch(() => undefined);
    this.#signing.set(index, p);
    return p;
  }

  /** Writes receipts signed on a read back in place of their unsigned form (not fsynced: re-signing gives the same bytes). */
  async #writeBack(write: Array<[number, Receipt]>): Promise<void> {
    if (write.length === 0) return;
    const ops: BatchOp[] = write.map(([index, r]) => ({ type: 'put', key: keys.receipt(index), value: receiptCanonicalBytes(r) }));
    write.length = 0;
    await this.#store.batch(ops, { sync: false });
  }

  #keepUnsigned(index: number, u: UnsignedReceipt): void {
    this.#unsigned.set(index, u);
    if (this.#unsigned.size > MAX_UNSIGNED_CACHE) this.#unsigned.delete(this.#unsigned.keys().next().value as number);
  }

  #cacheSigned(index: number, r: Receipt): void {
    this.#signed.set(index, r);
    if (this.#signed.size > MAX_SIGNED_CACHE) this.#signed.delete(this.#signed.keys().next().value as number);
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
    const write: Array<[number, Receipt]> = [];
    try {
      for await (const [k, value] of this.#store.range({ gte: keys.receipt(from), lt: key('r', new Uint8Array(8).fill(0xff)) })) {
        const index = readU64(k.subarray(1));
        if (index >= this.size) break;
        yield await this.#fromDisk(index, value, write);
        if (write.length >= MAX_WRITE_BACK_BATCH) await this.#writeBack(write);
      }
    } finally {
      await this.#writeBack(write);
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
