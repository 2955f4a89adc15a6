// Receipts: the seed's fields plus `signer` (PeerId) and `index`, signed by the signer's
// ed25519 key, chained by hash, and verified by the seed's five steps. Rules:
//   receipt_id        = "receipt_" + hex SHA-256(JCS(receipt without receipt_id and signature))
//   signature         = ed25519 over JCS(receipt without signature), base64url
//   receipt hash      = SHA-256(JCS(full receipt)), as `sha256:<hex>`; the next receipt's
//                       prev_receipt_hash, and (raw bytes) the Merkle leaf data
//   genesis prev hash = "sha256:" + 64 zeros
//   inputs_hash / outputs_hash = SHA-256(JCS(inputs / outputs))
import { base64urlDecode, base64urlEncode, crypto, digestJson, hexEncode, isDigest, publicKeyFromPeerId, type Ed25519Signer } from '../crypto/index.ts';
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

export type VerifyResult = { ok: true } | { ok: false; index: number; step: number; stepName: StepName; reason: string };

export function fail(index: number, step: StepName, reason: string): VerifyResult {
  return { ok: false, index, step: STEPS[step], stepName: step, reason };
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

export function receiptHashBytes(receipt: Receipt): Uint8Array {
  return crypto.sha256(receiptCanonicalBytes(receipt));
}

export function receiptHash(receipt: Receipt): string {
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

/** A new receipt with its canonical bytes (valid JSON: what a log stores) and its hash. */
export interface BuiltReceipt {
  receipt: Receipt;
  bytes: Uint8Array;
  hash: Uint8Array;
}

/**
 * Builds and signs a receipt, writing the canonical text's shared head and tail once for
 * its three forms (id input, signed message, hashed whole).
 */
export function buildReceiptWithBytes(i: BuildInput): BuiltReceipt {
  if (!OPERATOR_ID_PATTERN.test(i.operator_id)) throw new RangeError(`invalid operator id '${i.operator_id.slice(0, 40)}'`);
  const body: ReceiptBody = {
    timestamp: new Date(i.now).toISOString(),
    operation: { type: 'operator_execution', operator_id: i.operator_id, inputs_hash: digestJson(i.inputs), outputs_hash: digestJson(i.outputs) },
    prev_receipt_hash: i.prevHash,
    signer: i.signerId,
    index: i.index,
  };
  const head = canonicalHead(body);
  const tail = canonicalTail(body);
  const receipt_id = `receipt_${hexEncode(crypto.sha256(encoder.encode(head + tail)))}`;
  const withId = `${head},"receipt_id":"${receipt_id}"`;
  const signature = base64urlEncode(i.signer.sign(encoder.encode(withId + tail)));
  const bytes = encoder.encode(`${withId},"signature":"${signature}"${tail}`);
  return { receipt: { receipt_id, ...body, signature }, bytes, hash: crypto.sha256(bytes) };
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

/**
 * Step 1 on a shape-checked receipt: its id matches its content and the signer signed it.
 * On success also returns the receipt's hash (the canonical text is written once for all
 * three; id and signature are plain hex / base64url after the shape check, so they need no
 * escaping).
 */
function signatureAndHash(receipt: Receipt): { problem: string } | { hash: Uint8Array } {
  const head = canonicalHead(receipt);
  const tail = canonicalTail(receipt);
  if (`receipt_${hexEncode(crypto.sha256(encoder.encode(head + tail)))}` !== receipt.receipt_id) return { problem: 'receipt_id does not match the receipt content' };
  let key: Uint8Array;
  try {
    key = publicKeyFromPeerId(receipt.signer);
  } catch {
    return { problem: 'signer is not an ed25519 PeerId' };
  }
  let signature: Uint8Array;
  try {
    signature = base64urlDecode(receipt.signature);
  } catch {
    return { problem: 'signature is not base64url' };
  }
  const withId = `${head},"receipt_id":"${receipt.receipt_id}"`;
  if (!crypto.verify(key, encoder.encode(withId + tail), signature)) return { problem: 'signature does not verify for the signer' };
  return { hash: crypto.sha256(encoder.encode(`${withId},"signature":"${receipt.signature}"${tail}`)) };
}

/** Step 1: the (shape-checked) receipt's id matches its content, and the signer signed it. */
export function checkSignature(receipt: Receipt): string | null {
  const result = signatureAndHash(receipt);
  return 'problem' in result ? result.problem : null;
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
 * Verifies a chain in constant memory: each receipt is checked against only the previous
 * one. Feed receipts in index order; `evidence(i)` supplies inputs/outputs when known.
 */
export class ChainVerifier {
  #prevHash: string | null = null;
  #prevTime = Number.NEGATIVE_INFINITY;
  #expectIndex: number | null = null;
  #count = 0;
  readonly #opts: Required<Omit<ChainOptions, 'signer'>> & { signer?: string };

  constructor(opts: ChainOptions = {}) {
    this.#opts = { now: opts.now ?? Date.now(), maxFutureSkewMs: opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS, ...(opts.signer ? { signer: opts.signer } : {}) };
  }

  get count(): number {
    return this.#count;
  }

  /** Checks the next receipt. `value` is untrusted JSON. */
  next(value: unknown, evidence: Evidence = {}, position = this.#count): VerifyResult {
    const shape = receiptShapeProblem(value);
    if (shape !== null) return fail(this.#expectIndex ?? position, 'signature', `malformed receipt: ${shape}`);
    const r = value as Receipt;
    // Until the signature holds, report where the receipt sits in the chain, not what its
    // (possibly forged) index claims; after it, the index is authentic.
    const at = this.#expectIndex ?? r.index;
    const sig = signatureAndHash(r);
    if ('problem' in sig) return fail(at, 'signature', sig.problem);
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
    this.#prevHash = `sha256:${hexEncode(sig.hash)}`;
    this.#prevTime = t;
    this.#expectIndex = r.index + 1;
    this.#count++;
    return { ok: true };
  }
}

/** Verifies a whole chain from an async source; stops at the first failure. */
export async function verifyChain(receipts: AsyncIterable<unknown> | Iterable<unknown>, opts: ChainOptions = {}, evidence?: (index: number) => Evidence): Promise<VerifyResult & { count: number }> {
  const v = new ChainVerifier(opts);
  let position = 0;
  for await (const r of receipts) {
    const result = v.next(r, evidence?.(position) ?? {}, position);
    if (!result.ok) return { ...result, count: v.count };
    position++;
  }
  return { ok: true, count: v.count };
}

