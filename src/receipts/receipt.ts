// Receipts: the seed's fields plus `signer` (PeerId) and `index`, signed by the signer's
// ed25519 key, chained by hash, and verified by the seed's five steps. Rules:
//   receipt_id        = "receipt_" + hex SHA-256(JCS(receipt without receipt_id and signature))
//   signature         = ed25519 over JCS(receipt without signature), base64url
//   receipt hash      = SHA-256(JCS(receipt without signature)), i.e. of the bytes the
//                       signature covers, as `sha256:<hex>`; the next receipt's
//                       prev_receipt_hash, and (raw bytes) the Merkle leaf data. The chain
//                       and the tree link receipt bodies, not signatures, so a replica can
//                       append, chain and commit a receipt before (or without) signing it.
//   genesis prev hash = "sha256:" + 64 zeros
//   inputs_hash / outputs_hash = SHA-256(JCS(inputs / outputs))
import { base64urlDecode, base64urlEncode, crypto, digestJson, hexEncode, isDigest, publicKeyFromPeerId, sha256Hex, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';

export const GENESIS_HASH = `sha256:${'0'.repeat(64)}`;
/** How far into the future (ms) a receipt timestamp may be, by default. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 30_000;
export const RECEIPT_ID_PATTERN = /^receipt_[0-9a-f]{64}$/;
/** Operator ids are identifiers (e.g. `kv.put`, `op_123`), never free text. */
export const OPERATOR_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export interface Receipt {
  receipt_id: string;
  timestamp: string;
  operation: { type: 'operator_execution'; operator_id: string; inputs_hash: string; outputs_hash: string };
  prev_receipt_hash: string;
  signer: string;
  index: number;
  signature: string;
}

/** The seed's verification steps, numbered as in the seed. */
export const STEPS = { signature: 1, link: 2, inputs: 3, outputs: 4, timestamp: 5 } as const;
export type StepName = keyof typeof STEPS;

/** The stable code of a failure at each step; a receipt that is not one at all fails step 1 as RECEIPT_MALFORMED. */
export const STEP_CODES = {
  signature: 'RECEIPT_SIGNATURE_INVALID',
  link: 'RECEIPT_LINK_BROKEN',
  inputs: 'RECEIPT_INPUTS_MISMATCH',
  outputs: 'RECEIPT_OUTPUTS_MISMATCH',
  timestamp: 'RECEIPT_TIMESTAMP_INVALID',
} as const;
export type ReceiptFailureCode = (typeof STEP_CODES)[StepName] | 'RECEIPT_MALFORMED';

export interface VerifyFailure {
  ok: false;
  code: ReceiptFailureCode;
  /** The receipt's position in the chain (its own index once its signature holds). */
  index: number;
  step: number;
  stepName: StepName;
  reason: string;
}
export type VerifyResult = { ok: true } | VerifyFailure;

export function fail(index: number, step: StepName, reason: string, code: ReceiptFailureCode = STEP_CODES[step]): VerifyFailure {
  return { ok: false, code, index, step: STEPS[step], stepName: step, reason };
}

const encoder = new TextEncoder();

// The receipt's schema is fixed, so its canonical (RFC 8785) form is written directly, keys
// in JCS order: index, operation{inputs_hash, operator_id, outputs_hash, type},
// prev_receipt_hash, [receipt_id], [signature], signer, timestamp. The optional fields sit in
// the middle, so the three forms (body, body + id, full) share one head and one tail. A unit
// test holds this equal to the generic canonicalizer on random receipts. Every receipt hash,
// id and signature goes through here (the hot path of appends and verifies).
type ReceiptBody = Omit<Receipt, 'receipt_id' | 'signature'>;

function canonicalHead(r: ReceiptBody): string {
  const o = r.operation;
  return `{"index":${JSON.stringify(r.index)},"operation":{"inputs_hash":${JSON.stringify(o.inputs_hash)},"operator_id":${JSON.stringify(o.operator_id)},"outputs_hash":${JSON.stringify(o.outputs_hash)},"type":${JSON.stringify(o.type)}},"prev_receipt_hash":${JSON.stringify(r.prev_receipt_hash)}`;
}

function canonicalTail(r: ReceiptBody): string {
  return `,"signer":${JSON.stringify(r.signer)},"timestamp":${JSON.stringify(r.timestamp)}}`;
}

/** RFC 8785 bytes of a (shape-checked) receipt, with or without `receipt_id` and `signature`. */
export function receiptCanonicalBytes(r: ReceiptBody & { receipt_id?: string; signature?: string }): Uint8Array {
  let text = canonicalHead(r);
  if (r.receipt_id !== undefined) text += `,"receipt_id":${JSON.stringify(r.receipt_id)}`;
  if (r.signature !== undefined) text += `,"signature":${JSON.stringify(r.signature)}`;
  return encoder.encode(text + canonicalTail(r));
}

/** The receipt hash: SHA-256 of the JCS bytes of the receipt without `signature` (what the signature covers). */
export function receiptHashBytes(receipt: ReceiptBody & { receipt_id: string }): Uint8Array {
  return crypto.sha256(receiptCanonicalBytes({ ...receiptBodyOf(receipt), receipt_id: receipt.receipt_id }));
}

function receiptBodyOf(r: ReceiptBody): ReceiptBody {
  return { timestamp: r.timestamp, operation: r.operation, prev_receipt_hash: r.prev_receipt_hash, signer: r.signer, index: r.index };
}

export function receiptHash(receipt: ReceiptBody & { receipt_id: string }): string {
  return `sha256:${hexEncode(receiptHashBytes(receipt))}`;
}

export interface BuildInput {
  operator_id: string;
  inputs: Json;
  outputs: Json;
  index: number;
  prevHash: string;
  signer: Ed25519Signer;
  signerId: string;
  now: number;
}

/** A new receipt with its canonical bytes (valid JSON: what a log stores) and its hash (of the unsigned bytes). */
export interface BuiltReceipt {
  receipt: Receipt;
  bytes: Uint8Array;
  hash: Uint8Array;
}

/**
 * What a receipt says about its operation (operator id checked, inputs and outputs hashed over
 * their JCS bytes). It does not depend on the chain, so a log computes the next receipt's while
 * the previous one is being signed. Throws RangeError or JcsError on bad input.
 */
export function receiptOperation(operator_id: string, inputs: Json, outputs: Json): Receipt['operation'] {
  if (!OPERATOR_ID_PATTERN.test(operator_id)) throw new RangeError(`invalid operator id '${operator_id.slice(0, 40)}'`);
  return { type: 'operator_execution', operator_id, inputs_hash: digestJson(inputs), outputs_hash: digestJson(outputs) };
}

/** Where a receipt goes in its signer's chain. */
export interface Placement {
  index: number;
  prevHash: string;
  signerId: string;
  now: number;
}

/** A receipt before its signature: the canonical text's shared head and tail are written once for its three forms. */
export interface UnsignedReceipt {
  body: ReceiptBody;
  receipt_id: string;
  /** JCS text of the receipt without `signature`, up to where `signature` goes. */
  withId: string;
  tail: string;
  /** The bytes the signature covers. */
  message: Uint8Array;
}

export function unsignedReceipt(operation: Receipt['operation'], at: Placement): UnsignedReceipt {
  const body: ReceiptBody = { timestamp: new Date(at.now).toISOString(), operation, prev_receipt_hash: at.prevHash, signer: at.signerId, index: at.index };
  const head = canonicalHead(body);
  const tail = canonicalTail(body);
  const receipt_id = `receipt_${sha256Hex(encoder.encode(head + tail))}`;
  const withId = `${head},"receipt_id":"${receipt_id}"`;
  return { body, receipt_id, withId, tail, message: encoder.encode(withId + tail) };
}

/** `hash`, when the caller has it already, is the receipt hash: SHA-256 of `u.message`. */
export function signedReceipt(u: UnsignedReceipt, signatureBytes: Uint8Array, hash: Uint8Array = crypto.sha256(u.message)): BuiltReceipt {
  const signature = base64urlEncode(signatureBytes);
  const bytes = encoder.encode(`${u.withId},"signature":"${signature}"${u.tail}`);
  return { receipt: { receipt_id: u.receipt_id, ...u.body, signature }, bytes, hash };
}

/** Builds and signs a receipt with the signer's synchronous form (ReceiptLog signs with the asynchronous one). */
export function buildReceiptWithBytes(i: BuildInput): BuiltReceipt {
  const u = unsignedReceipt(receiptOperation(i.operator_id, i.inputs, i.outputs), i);
  return signedReceipt(u, i.signer.sign(u.message));
}

export function buildReceipt(i: BuildInput): Receipt {
  return buildReceiptWithBytes(i).receipt;
}

const FIELDS = ['receipt_id', 'timestamp', 'operation', 'prev_receipt_hash', 'signer', 'index', 'signature'];

/** Shape check of untrusted JSON; returns the reason it is not a receipt, or null. */
export function receiptShapeProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.includes(k)) return `unexpected field '${k.slice(0, 40)}'`;
  for (const k of FIELDS) if (!(k in r)) return `missing field '${k}'`;
  if (typeof r['receipt_id'] !== 'string' || !RECEIPT_ID_PATTERN.test(r['receipt_id'])) return 'receipt_id must be receipt_<64 hex>';
  if (typeof r['timestamp'] !== 'string' || !RFC3339_UTC.test(r['timestamp']) || Number.isNaN(Date.parse(r['timestamp']))) return 'timestamp must be RFC 3339 UTC';
  const op = r['operation'];
  if (typeof op !== 'object' || op === null || Array.isArray(op)) return 'operation must be an object';
  const o = op as Record<string, unknown>;
  if (Object.keys(o).length !== 4 || o['type'] !== 'operator_execution' || typeof o['operator_id'] !== 'string' || !OPERATOR_ID_PATTERN.test(o['operator_id']) || !isDigest(o['inputs_hash']) || !isDigest(o['outputs_hash'])) {
    return 'operation must be {type: "operator_execution", operator_id, inputs_hash, outputs_hash}';
  }
  if (!isDigest(r['prev_receipt_hash'])) return 'prev_receipt_hash must be sha256:<64 hex>';
  if (typeof r['signer'] !== 'string') return 'signer must be a PeerId';
  if (typeof r['index'] !== 'number' || !Number.isSafeInteger(r['index']) || r['index'] < 0) return 'index must be a non-negative integer';
  if (typeof r['signature'] !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(r['signature'])) return 'signature must be 64 bytes of base64url';
  return null;
}

/** What remains of a check once everything else is done: one ed25519 verification. */
export interface SignatureCheck {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

export const BAD_SIGNATURE = 'signature does not verify for the signer';

/**
 * Step 1 on a shape-checked receipt, all but the signature check itself: its signer is an
 * ed25519 PeerId, its signature decodes, its id matches its content. Also returns the
 * receipt's hash: the canonical text is written and encoded once for all three (id and
 * signature are plain hex / base64url after the shape check, so they need no escaping).
 */
export function prepareReceipt(receipt: Receipt): { problem: string } | { check: SignatureCheck; hash: Uint8Array } {
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyFromPeerId(receipt.signer);
  } catch {
    return { problem: 'signer is not an ed25519 PeerId' };
  }
  let signature: Uint8Array;
  try {
    signature = base64urlDecode(receipt.signature);
  } catch {
    return { problem: 'signature is not base64url' };
  }
  const head = canonicalHead(receipt);
  const tail = canonicalTail(receipt);
  const idField = `,"receipt_id":"${receipt.receipt_id}"`;
  const full = `${head}${idField},"signature":"${receipt.signature}"${tail}`;
  const bytes = encoder.encode(full);
  let idText: Uint8Array;
  let message: Uint8Array;
  if (bytes.length === full.length) {
    // Every field of a shape-checked receipt with a PeerId signer is ASCII (one byte per
    // character), so the full text, encoded once, gives the other two by cutting out its middle.
    const signed = head.length + idField.length;
    const rest = bytes.subarray(bytes.length - tail.length);
    idText = new Uint8Array(head.length + tail.length);
    idText.set(bytes.subarray(0, head.length));
    idText.set(rest, head.length);
    message = new Uint8Array(signed + tail.length);
    message.set(bytes.subarray(0, signed));
    message.set(rest, signed);
  } else {
    idText = encoder.encode(head + tail);
    message = encoder.encode(head + idField + tail);
  }
  if (`receipt_${sha256Hex(idText)}` !== receipt.receipt_id) return { problem: 'receipt_id does not match the receipt content' };
  return { check: { publicKey, message, signature }, hash: crypto.sha256(message) };
}

/** Step 1 (synchronous): the shape-checked receipt's id matches its content, and the signer signed it. */
export function checkSignature(receipt: Receipt): string | null {
  const p = prepareReceipt(receipt);
  if ('problem' in p) return p.problem;
  return crypto.verify(p.check.publicKey, p.check.message, p.check.signature) ? null : BAD_SIGNATURE;
}

export interface ChainOptions {
  /** ms since epoch; timestamps beyond now + maxFutureSkewMs fail step 5. */
  now?: number;
  maxFutureSkewMs?: number;
  /** Expected signer PeerId of every receipt (optional). */
  signer?: string;
}

/** Per-receipt actual inputs/outputs, when the verifier has them (steps 3 and 4). */
export interface Evidence {
  inputs?: Json;
  outputs?: Json;
}

/** Why `value` does not hash to `expected` (evidence JCS cannot canonicalize, e.g. nested too deep, is a mismatch too). */
function evidenceProblem(value: Json, expected: string, what: 'inputs' | 'outputs'): string | null {
  let digest: string;
  try {
    digest = digestJson(value);
  } catch (e) {
    return `the given ${what} are not canonical JSON (${e instanceof Error ? e.message.slice(0, 80) : 'invalid'})`;
  }
  return digest === expected ? null : `${what}_hash does not match the given ${what}`;
}

/**
 * A receipt checked in chain order for everything but its signature: `verdict` holds if the
 * signature verifies, `forged` if it does not. Before the signature holds, failures report
 * where the receipt sits in the chain, not what its (possibly forged) index claims.
 */
export type CheckedReceipt = { ok: false; failure: VerifyFailure } | { ok: true; signature: SignatureCheck; verdict: VerifyResult; forged: VerifyFailure; hash: Uint8Array };

/**
 * Verifies a chain in constant memory: each receipt is checked against only the previous
 * one. Feed receipts in index order; `evidence` supplies inputs/outputs when known. The first
 * failure breaks the chain: every later call returns it again.
 */
export class ChainVerifier {
  #prevHash: string | null = null;
  #prevTime = Number.NEGATIVE_INFINITY;
  #expectIndex: number | null = null;
  #count = 0;
  #failure: VerifyFailure | null = null;
  readonly #opts: Required<Omit<ChainOptions, 'signer'>> & { signer?: string };

  constructor(opts: ChainOptions = {}) {
    this.#opts = { now: opts.now ?? Date.now(), maxFutureSkewMs: opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS, ...(opts.signer ? { signer: opts.signer } : {}) };
  }

  /** Receipts accepted so far (by check(), before their signatures are known). */
  get count(): number {
    return this.#count;
  }

  /** Checks the next receipt (`value` is untrusted JSON), signature included, synchronously. */
  next(value: unknown, evidence: Evidence = {}, position = this.#count): VerifyResult {
    const c = this.check(value, evidence, position);
    if (!c.ok) return c.failure;
    if (!crypto.verify(c.signature.publicKey, c.signature.message, c.signature.signature)) return this.reject(c.forged);
    return c.verdict;
  }

  /**
   * Checks the next receipt for everything but its signature and advances as if the
   * signature held. The caller verifies `signature` (sync or async, in any order) and calls
   * reject(forged) if it does not: receipts checked after it linked to a forgery.
   */
  check(value: unknown, evidence: Evidence = {}, position = this.#count): CheckedReceipt {
    if (this.#failure !== null) return { ok: false, failure: this.#failure };
    const shape = receiptShapeProblem(value);
    if (shape !== null) return { ok: false, failure: this.reject(fail(this.#expectIndex ?? position, 'signature', `malformed receipt: ${shape}`, 'RECEIPT_MALFORMED')) };
    const r = value as Receipt;
    const at = this.#expectIndex ?? r.index;
    const p = prepareReceipt(r);
    if ('problem' in p) return { ok: false, failure: this.reject(fail(at, 'signature', p.problem)) };
    const verdict = this.#link(r, at, p.hash, evidence);
    if (!verdict.ok) this.#failure = verdict;
    return { ok: true, signature: p.check, verdict, forged: fail(at, 'signature', BAD_SIGNATURE), hash: p.hash };
  }

  /** Marks the chain broken at `failure` (the first one stays) and returns it. */
  reject(failure: VerifyFailure): VerifyFailure {
    this.#failure ??= failure;
    return failure;
  }

  /**
   * Continues the chain after `previous` without checking it (it was checked before, or the
   * caller only wants the link): its hash, index and time are what the next receipt must follow.
   */
  follow(previous: unknown): VerifyResult {
    const shape = receiptShapeProblem(previous);
    if (shape !== null) return this.reject(fail(0, 'link', `the previous receipt is malformed: ${shape}`, 'RECEIPT_MALFORMED'));
    const r = previous as Receipt;
    this.#prevHash = receiptHash(r);
    this.#prevTime = Date.parse(r.timestamp);
    this.#expectIndex = r.index + 1;
    return { ok: true };
  }

  /** Steps 2-5 and the expected signer, on a receipt whose signature is taken to hold; advances on success. */
  #link(r: Receipt, at: number, hash: Uint8Array, evidence: Evidence): VerifyResult {
    if (this.#opts.signer !== undefined && r.signer !== this.#opts.signer) return fail(at, 'signature', `signed by ${r.signer}, expected ${this.#opts.signer}`);
    // Step 2: the link. The first receipt seen links to genesis only if it is index 0;
    // a chain exported from an offset starts wherever it starts.
    if (this.#expectIndex !== null && r.index !== this.#expectIndex) return fail(r.index, 'link', `index ${r.index} follows index ${this.#expectIndex - 1}`);
    if (this.#prevHash !== null && r.prev_receipt_hash !== this.#prevHash) return fail(r.index, 'link', 'prev_receipt_hash does not match the previous receipt');
    if (this.#prevHash === null && r.index === 0 && r.prev_receipt_hash !== GENESIS_HASH) return fail(r.index, 'link', 'the first receipt must link to the genesis hash');
    if (evidence.inputs !== undefined) {
      const problem = evidenceProblem(evidence.inputs, r.operation.inputs_hash, 'inputs');
      if (problem !== null) return fail(r.index, 'inputs', problem);
    }
    if (evidence.outputs !== undefined) {
      const problem = evidenceProblem(evidence.outputs, r.operation.outputs_hash, 'outputs');
      if (problem !== null) return fail(r.index, 'outputs', problem);
    }
    const t = Date.parse(r.timestamp);
    if (t < this.#prevTime) return fail(r.index, 'timestamp', 'timestamp is before the previous receipt');
    if (t > this.#opts.now + this.#opts.maxFutureSkewMs) return fail(r.index, 'timestamp', `timestamp is more than ${this.#opts.maxFutureSkewMs / 1000} s in the future`);
    this.#prevHash = `sha256:${hexEncode(hash)}`;
    this.#prevTime = t;
    this.#expectIndex = r.index + 1;
    this.#count++;
    return { ok: true };
  }
}

/**
 * Signature checks of a chain in flight at once: WebCrypto verifies off the main thread, so
 * a browser verifies a chain up to 2.4x faster with many in flight (Firefox, measured);
 * hashes and links are checked in order meanwhile.
 */
export const MAX_SIGNATURES_IN_FLIGHT = 64;

/**
 * Verifies a whole chain from a source in index order, with the adapter's asynchronous
 * verification; stops at the first failure and reports the earliest one in chain order.
 * `count` is the number of receipts verified before it (all of them on success).
 */
export async function verifyChain(receipts: AsyncIterable<unknown> | Iterable<unknown>, opts: ChainOptions = {}, evidence?: (position: number) => Evidence): Promise<VerifyResult & { count: number }> {
  const v = new ChainVerifier(opts);
  const inFlight: Array<{ holds: Promise<boolean>; verdict: VerifyResult; forged: VerifyFailure }> = [];
  let count = 0;
  // The oldest check in flight: its signature first, then whatever else it failed.
  const settle = async (): Promise<VerifyResult> => {
    const item = inFlight.shift()!;
    if (!(await item.holds)) return v.reject(item.forged);
    if (item.verdict.ok) count++;
    return item.verdict;
  };
  // Set by feed(), which TypeScript's narrowing does not follow.
  let stop = null as VerifyFailure | null;
  let position = 0;
  /** Checks one receipt and puts its signature in flight: `full` when the window is, `stop` at a failure. */
  const feed = (value: unknown): 'go' | 'full' | 'stop' => {
    const c = v.check(value, evidence?.(position) ?? {}, position);
    position++;
    if (!c.ok) {
      stop = c.failure;
      return 'stop';
    }
    inFlight.push({ holds: crypto.verifyAsync(c.signature.publicKey, c.signature.message, c.signature.signature), verdict: c.verdict, forged: c.forged });
    if (!c.verdict.ok) return 'stop';
    return inFlight.length >= MAX_SIGNATURES_IN_FLIGHT ? 'full' : 'go';
  };
  // An array (any synchronous source) is read without an await per receipt: only a full window waits.
  if (Symbol.asyncIterator in receipts) {
    for await (const value of receipts) {
      const next = feed(value);
      if (next === 'stop') break;
      if (next === 'full') {
        const result = await settle();
        if (!result.ok) return { ...result, count };
      }
    }
  } else {
    for (const value of receipts) {
      const next = feed(value);
      if (next === 'stop') break;
      if (next === 'full') {
        const result = await settle();
        if (!result.ok) return { ...result, count };
      }
    }
  }
  while (inFlight.length > 0) {
    const result = await settle();
    if (!result.ok) return { ...result, count };
  }
  return stop === null ? { ok: true, count } : { ...stop, count };
}

/** Options for one receipt: the chain options, its inputs/outputs, and the receipt it follows. */
export interface ReceiptOptions extends ChainOptions, Evidence {
  /** The receipt this one must link to (step 2); its own signature is not checked here. */
  previous?: unknown;
}

/**
 * The seed's five steps on one receipt (`value` is untrusted JSON): 1 signature (and id and
 * shape), 2 link to `previous` when given (or to genesis for index 0), 3 inputs and 4 outputs
 * when given, 5 timestamp not before `previous` and not too far in the future.
 */
export async function verifyReceipt(value: unknown, opts: ReceiptOptions = {}): Promise<VerifyResult> {
  const v = new ChainVerifier(opts);
  if (opts.previous !== undefined) {
    const followed = v.follow(opts.previous);
    if (!followed.ok) return followed;
  }
  const evidence: Evidence = {};
  if (opts.inputs !== undefined) evidence.inputs = opts.inputs;
  if (opts.outputs !== undefined) evidence.outputs = opts.outputs;
  const c = v.check(value, evidence);
  if (!c.ok) return c.failure;
  if (!(await crypto.verifyAsync(c.signature.publicKey, c.signature.message, c.signature.signature))) return c.forged;
  return c.verdict;
}
