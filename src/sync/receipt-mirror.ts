// Receipt logs as a synced dataset: a peer keeps verified copies of other signers' logs
// (append-only per signer) and serves them, its own log included. Every receipt is checked on
// arrival (signature, signer, chain link to the copy's last receipt, timestamp order), the
// copy's Merkle root is recomputed over the new leaves and must equal the signed tree head's
// root, and the new head must be consistent (RFC 9162 consistency proof) with the last head
// accepted. Anything else is refused whole with BadReceiptError; the copy stays as it was.
// Store layout, per signer s (utf8 PeerId):
//   R s 00 <index:u64> → receipt JSON       H s → JSON {size, last_hash, last_timestamp, sth, frontier}
import { hexDecode, hexEncode, parseJson, publicKeyFromPeerId, utf8Decode, utf8Encode } from '../crypto/index.ts';
import { consistencyPath, leafHash, MerkleFrontier, nodeHash, verifyConsistency } from '../receipts/merkle.ts';
import { ChainVerifier, GENESIS_HASH, receiptHash, receiptHashBytes, type Receipt } from '../receipts/receipt.ts';
import { verifyTreeHead, type ReceiptLog, type SignedTreeHead } from '../receipts/log.ts';
import { prefixedKey, u64 } from '../store/keys.ts';
import type { Store } from '../store/types.ts';
import { BadReceiptError } from './errors.ts';

/** Receipts one `rlog` message carries at most. */
export const MAX_RECEIPTS_PER_MESSAGE = 256;
/** Signers whose logs a peer mirrors at most. */
export const MAX_MIRRORED_SIGNERS = 1024;

interface MirrorHead {
  size: number;
  last_hash: string;
  last_timestamp: number;
  sth: SignedTreeHead | null;
  /** The Merkle frontier as [level, index, hex hash]. */
  frontier: Array<[number, number, string]>;
}

/** One part of a log transfer; the last part carries the head and the consistency proof. */
export interface LogPart {
  signer: string;
  from: number;
  receipts: Receipt[];
  sth?: SignedTreeHead;
  /** Consistency proof (hex) from the receiver's size to sth.size. */
  proof?: string[];
}

/** Receipts staged per signer before their head arrives. */
export const MAX_STAGED_RECEIPTS = 65_536;
/** Parts waiting for the ones before them (a whole staged transfer, as parts). */
export const MAX_QUEUED_PARTS = MAX_STAGED_RECEIPTS / MAX_RECEIPTS_PER_MESSAGE;
const RECEIPTS_PER_BATCH = 4096;

/**
 * Lets timers and I/O run between two parts. A part verifies or signs up to 256 receipts; a
 * backlog of thousands, served or accepted back to back in microtasks, held a Raft leader's
 * event loop for seconds (its heartbeats stopped, followers campaigned, reads stalled).
 */
const nextTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

const SEP = new Uint8Array([0]);

function receiptKey(signer: string, index: number): Uint8Array {
  return prefixedKey('R', utf8Encode(signer), SEP, u64(index));
}

interface Stage {
  verifier: ChainVerifier;
  frontier: MerkleFrontier;
  receipts: Receipt[];
  lastHash: string;
  lastTime: number;
}

const STH_PATTERN = { size: 'number', root: 'string', timestamp: 'string', signer: 'string', signature: 'string' } as const;

/** Shape check of an untrusted signed tree head. */
export function parseTreeHead(value: unknown): SignedTreeHead {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadReceiptError('tree head must be an object');
  const v = value as Record<string, unknown>;
  for (const [k, t] of Object.entries(STH_PATTERN)) if (typeof v[k] !== t) throw new BadReceiptError(`tree head field ${k} must be a ${t}`);
  if (Object.keys(v).length !== 5 || !Number.isSafeInteger(v['size']) || (v['size'] as number) < 0 || !/^sha256:[0-9a-f]{64}$/.test(v['root'] as string)) throw new BadReceiptError('malformed tree head');
  return v as unknown as SignedTreeHead;
}

/** Shape check of an untrusted log part (receipts are checked one by one in accept). */
export function parseLogPart(value: unknown): LogPart {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadReceiptError('log part must be an object');
  const v = value as Record<string, unknown>;
  if (typeof v['signer'] !== 'string' || !Number.isSafeInteger(v['from']) || (v['from'] as number) < 0 || !Array.isArray(v['receipts'])) throw new BadReceiptError('log part needs signer, from, receipts');
  const part: LogPart = { signer: v['signer'], from: v['from'] as number, receipts: v['receipts'] as Receipt[] };
  if (v['sth'] !== undefined) part.sth = parseTreeHead(v['sth']);
  if (v['proof'] !== undefined) {
    if (!Array.isArray(v['proof']) || v['proof'].length > 64 || !v['proof'].every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) throw new BadReceiptError('proof must be up to 64 hex hashes');
    part.proof = v['proof'] as string[];
  }
  return part;
}

export interface ReceiptMirrorOptions {
  /**
   * The members of this peer's own consensus group (Raft or PBFT): their logs are neither
   * mirrored here nor served to them. Each member keeps its own receipts of the same
   * commands; mirroring the other n-1 logs on every member cost n(n-1) receipt verifications
   * per replicated write (12 in a 3-voter cluster with its relay), more CPU than the write.
   */
  sameGroup?: (peerId: string) => boolean;
}

export class ReceiptMirror {
  readonly #store: Store;
  readonly #sameGroup: (peerId: string) => boolean;
  readonly #heads = new Map<string, MirrorHead>();
  readonly #own = new Map<string, ReceiptLog>();
  readonly #staged = new Map<string, Stage>();
  /** Parts are accepted one at a time, in arrival order: each continues the stage the previous one left. */
  #accepting: Promise<unknown> = Promise.resolve();
  #queuedParts = 0;

  private constructor(store: Store, sameGroup: (peerId: string) => boolean) {
    this.#store = store;
    this.#sameGroup = sameGroup;
  }

  static async open(store: Store, ownLogs: ReceiptLog[] = [], opts: ReceiptMirrorOptions = {}): Promise<ReceiptMirror> {
    const m = new ReceiptMirror(store, opts.sameGroup ?? (() => false));
    for (const log of ownLogs) m.#own.set(log.peerId, log);
    const prefix = prefixedKey('H');
    for await (const [k, v] of store.range({ gte: prefix, lt: prefixedKey('I') })) {
      m.#heads.set(utf8Decode(k.subarray(1)), parseJson(utf8Decode(v)) as MirrorHead);
    }
    return m;
  }

  /** Signed tree heads of every log we can serve. */
  heads(now: number = Date.now()): SignedTreeHead[] {
    const out: SignedTreeHead[] = [];
    for (const log of this.#own.values()) if (log.size > 0) out.push(log.signedTreeHead(now));
    for (const [signer, h] of this.#heads) if (!this.#own.has(signer) && h.sth !== null) out.push(h.sth);
    return out;
  }

  /** A member of our own consensus group: no logs go to it or come from it. */
  inGroup(peerId: string): boolean {
    return this.#sameGroup(peerId);
  }

  sizeOf(signer: string): number {
    return this.#own.get(signer)?.size ?? this.#heads.get(signer)?.size ?? 0;
  }

  /**
   * `signer`'s log from `from` to the head we hold, in parts of at most
   * MAX_RECEIPTS_PER_MESSAGE receipts; the last part carries the signed head and the
   * consistency proof from `from` to it.
   */
  async *serve(signer: string, from: number): AsyncIterable<LogPart> {
    const own = this.#own.get(signer);
    const head = this.#heads.get(signer);
    const sth = own !== undefined ? own.signedTreeHead() : head?.sth ?? null;
    if (sth === null || from >= sth.size) return;
    const read = async (i: number): Promise<Receipt> => {
      if (own !== undefined) return (await own.get(i)) as Receipt;
      return parseJson(utf8Decode((await this.#store.get(receiptKey(signer, i))) as Uint8Array)) as Receipt;
    };
    for (let start = from; start < sth.size; start += MAX_RECEIPTS_PER_MESSAGE) {
      const end = Math.min(sth.size, start + MAX_RECEIPTS_PER_MESSAGE);
      const receipts: Receipt[] = [];
      if (start > from) await nextTurn();
      for (let i = start; i < end; i++) receipts.push(await read(i));
      if (end < sth.size) {
        yield { signer, from: start, receipts };
        continue;
      }
      const proof = from === 0 ? [] : own !== undefined ? await own.consistencyProof(from, sth.size) : await this.#consistencyFromStore(signer, from, sth.size);
      yield { signer, from: start, receipts, sth, proof };
    }
  }

  /** RFC 9162 consistency path over our copy, hashed from the receipts themselves (O(n)). */
  async #consistencyFromStore(signer: string, first: number, second: number): Promise<string[]> {
    if (first === second) return [];
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < second; i++) {
      leaves.push(leafHash(receiptHashBytes(parseJson(utf8Decode((await this.#store.get(receiptKey(signer, i))) as Uint8Array)) as Receipt)));
    }
    const reader = async (level: number, index: number): Promise<Uint8Array> => {
      let layer = leaves.slice(index * 2 ** level, (index + 1) * 2 ** level);
      while (layer.length > 1) {
        const next: Uint8Array[] = [];
        for (let i = 0; i < layer.length; i += 2) next.push(nodeHash(layer[i] as Uint8Array, layer[i + 1] as Uint8Array));
        layer = next;
      }
      return layer[0] as Uint8Array;
    };
    return (await consistencyPath(reader, first, second)).map(hexEncode);
  }

  /**
   * Takes one part of `signer`'s log. Parts are staged (each receipt verified and chained as
   * it arrives) until the part with the signed head, which commits them if the recomputed
   * root equals the head's and the head is consistent with the last one accepted. Returns
   * the receipts committed; throws BadReceiptError (dropping the staged parts) otherwise.
   */
  accept(part: LogPart, now: number = Date.now()): Promise<number> {
    // A part that started while the one before it still awaited the store saw no stage and
    // was refused ("part starts at N, our copy is at M"), dropping the whole transfer, which
    // the next anti-entropy round then verified again, larger.
    if (this.#queuedParts >= MAX_QUEUED_PARTS) return Promise.reject(new BadReceiptError(`${MAX_QUEUED_PARTS} log parts already waiting; send again later`));
    this.#queuedParts++;
    const run = async (): Promise<number> => {
      try {
        await nextTurn();
        return await this.#accept(part, now);
      } catch (e) {
        this.#staged.delete(part.signer);
        throw e;
      } finally {
        this.#queuedParts--;
      }
    };
    const result = this.#accepting.then(run);
    this.#accepting = result.catch(() => undefined);
    return result;
  }

  async #accept(part: LogPart, now: number): Promise<number> {
    const { signer, from, receipts } = part;
    if (this.#own.has(signer) || this.#sameGroup(signer)) return 0;
    if (receipts.length > MAX_RECEIPTS_PER_MESSAGE) throw new BadReceiptError(`more than ${MAX_RECEIPTS_PER_MESSAGE} receipts in one part`);
    let publicKey: Uint8Array;
    try {
      publicKey = publicKeyFromPeerId(signer);
    } catch {
      throw new BadReceiptError(`signer ${signer.slice(0, 60)} is not an ed25519 PeerId`);
    }
    const head: MirrorHead = this.#heads.get(signer) ?? { size: 0, last_hash: GENESIS_HASH, last_timestamp: 0, sth: null, frontier: [] };
    if (!this.#heads.has(signer) && this.#heads.size >= MAX_MIRRORED_SIGNERS) throw new BadReceiptError(`already mirroring ${MAX_MIRRORED_SIGNERS} logs`);
    let stage = this.#staged.get(signer);
    if (stage === undefined || from === head.size) {
      const verifier = new ChainVerifier({ now, signer });
      // Seed the verifier with our last receipt so the first new one must link to it.
      if (head.size > 0) {
        const prev = verifier.next(parseJson(utf8Decode((await this.#store.get(receiptKey(signer, head.size - 1))) as Uint8Array)));
        if (!prev.ok) throw new BadReceiptError(`our copy of ${signer.slice(-8)} is corrupt: ${prev.reason}`);
      }
      stage = { verifier, frontier: new MerkleFrontier(head.size, head.frontier.map(([l, i, h]) => [l, i, hexDecode(h)])), receipts: [], lastHash: head.last_hash, lastTime: head.last_timestamp };
      this.#staged.set(signer, stage);
    }
    if (from !== stage.frontier.size) throw new BadReceiptError(`part starts at ${from}, our copy of ${signer.slice(-8)} is at ${stage.frontier.size}`);
    if (stage.receipts.length + receipts.length > MAX_STAGED_RECEIPTS) throw new BadReceiptError(`more than ${MAX_STAGED_RECEIPTS} receipts staged for ${signer.slice(-8)}`);
    for (const r of receipts) {
      const v = stage.verifier.next(r);
      if (!v.ok) throw new BadReceiptError(`receipt ${v.index} of ${signer.slice(-8)} fails step ${v.step} (${v.stepName}): ${v.reason}`);
      stage.frontier.append(leafHash(receiptHashBytes(r)));
      stage.receipts.push(r);
      stage.lastTime = Date.parse(r.timestamp);
      stage.lastHash = receiptHash(r);
    }
    const sth = part.sth;
    if (sth === undefined) return 0;
    if (sth.signer !== signer || !verifyTreeHead(sth, publicKey)) throw new BadReceiptError(`tree head of ${signer.slice(-8)} does not verify`);
    if (sth.size !== stage.frontier.size) throw new BadReceiptError(`parts end at ${stage.frontier.size}, the head is over ${sth.size}`);
    const root = stage.frontier.root();
    if (`sha256:${hexEncode(root)}` !== sth.root) throw new BadReceiptError(`recomputed root of ${signer.slice(-8)} differs from its signed head`);
    if (head.sth !== null && head.size > 0) {
      const ok = verifyConsistency(head.size, sth.size, hexDecode(head.sth.root.slice('sha256:'.length)), root, (part.proof ?? []).map(hexDecode));
      if (!ok) throw new BadReceiptError(`head ${sth.size} of ${signer.slice(-8)} is not consistent with head ${head.size}`);
    }
    // Receipts past the stored head are invisible until the head moves, so they may go in
    // several batches; the head goes last.
    for (let i = 0; i < stage.receipts.length; i += RECEIPTS_PER_BATCH) {
      await this.#store.batch(stage.receipts.slice(i, i + RECEIPTS_PER_BATCH).map((r) => ({ type: 'put', key: receiptKey(signer, r.index), value: utf8Encode(JSON.stringify(r)) })));
    }
    const next: MirrorHead = { size: sth.size, last_hash: stage.lastHash, last_timestamp: stage.lastTime, sth, frontier: stage.frontier.nodes.map(([l, i, h]) => [l, i, hexEncode(h)]) };
    await this.#store.put(prefixedKey('H', utf8Encode(signer)), utf8Encode(JSON.stringify(next)));
    this.#heads.set(signer, next);
    this.#staged.delete(signer);
    return stage.receipts.length;
  }

  async get(signer: string, index: number): Promise<Receipt | undefined> {
    const own = this.#own.get(signer);
    if (own !== undefined) return own.get(index);
    const raw = await this.#store.get(receiptKey(signer, index));
    return raw === undefined ? undefined : (parseJson(utf8Decode(raw)) as Receipt);
  }
}
