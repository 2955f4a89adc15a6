// A document version: one keyed JSON value written by one peer, stamped with a hybrid
// logical clock, the writer's PeerId (`origin`) and its per-origin sequence number, and
// signed by the writer. Its id is SHA-256 over its canonical bytes (signature included), so
// an id names exactly one signed version. Decoding is the edge: parseRecord turns untrusted
// JSON into a checked DocRecord or a typed error; verifyRecord checks the signature.
import { base64urlDecode, base64urlEncode, canonicalBytes, crypto, KeyError, publicKeyFromPeerId, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { BadRecordError, BadRecordSignatureError } from './errors.ts';
import { isHlc, type Hlc } from './hlc.ts';

export type RecordOp = 'put' | 'del' | 'resolve';

/** Causal context: for each origin, the highest of its sequence numbers of this key the writer had seen. */
export type CausalContext = { [origin: string]: number };

export interface DocRecord {
  key: string;
  op: RecordOp;
  /** null for `del` (a tombstone, kept so the delete syncs). */
  value: Json;
  t: Hlc;
  origin: string;
  seq: number;
  ctx?: CausalContext;
  /** ed25519 by `origin` over the JCS of the record without `sig`, base64url. */
  sig: string;
}

/** Longest document key in UTF-8 bytes (store keys add a prefix and a 32-byte id). */
export const MAX_DOC_KEY_BYTES = 512;
/** Largest canonical record (value included). */
export const MAX_RECORD_BYTES = 64 * 1024;
/** Origins one causal context may name. */
export const MAX_CTX_ORIGINS = 64;
export const RECORD_ID_BYTES = 32;

const RECORD_FIELDS = new Set(['key', 'op', 'value', 't', 'origin', 'seq', 'ctx', 'sig']);
const SIG_PATTERN = /^[A-Za-z0-9_-]{86}$/;

export function checkDocKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new BadRecordError('key must be a non-empty string');
  if (key.includes('\u0000')) throw new BadRecordError('key must not contain U+0000');
  if (!key.isWellFormed()) throw new BadRecordError('key must be well-formed Unicode');
  if (utf8Encode(key).length > MAX_DOC_KEY_BYTES) throw new BadRecordError(`key longer than ${MAX_DOC_KEY_BYTES} bytes`);
  return key;
}

function unsigned(r: Omit<DocRecord, 'sig'> & { sig?: string }): Omit<DocRecord, 'sig'> {
  const out: Omit<DocRecord, 'sig'> = { key: r.key, op: r.op, value: r.value, t: r.t, origin: r.origin, seq: r.seq };
  if (r.ctx !== undefined && Object.keys(r.ctx).length > 0) out.ctx = r.ctx;
  return out;
}

export type RecordDraft = Omit<DocRecord, 'sig'>;

export function signRecord(draft: RecordDraft, signer: Ed25519Signer): DocRecord {
  const body = unsigned(draft);
  const bytes = canonicalBytes(body);
  if (bytes.length > MAX_RECORD_BYTES) throw new BadRecordError(`record of ${bytes.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  return { ...body, sig: base64urlEncode(signer.sign(bytes)) };
}

/** Canonical bytes of the whole record: what is stored and what its id hashes. */
export function recordBytes(r: DocRecord): Uint8Array {
  return canonicalBytes(r);
}

export function recordId(bytes: Uint8Array): Uint8Array {
  return crypto.sha256(bytes);
}

/** Shape check of untrusted JSON; does not verify the signature. */
export function parseRecord(value: unknown): DocRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadRecordError('record must be a JSON object');
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RECORD_FIELDS.has(k)) throw new BadRecordError(`unknown record field '${k}'`);
  const key = checkDocKey(r['key']);
  const op = r['op'];
  if (op !== 'put' && op !== 'del' && op !== 'resolve') throw new BadRecordError('op must be put, del or resolve');
  if (!('value' in r)) throw new BadRecordError('value is required');
  if (op === 'del' && r['value'] !== null) throw new BadRecordError('a del record has value null');
  if (!isHlc(r['t'])) throw new BadRecordError('t must be [wall ms, counter]');
  if (typeof r['origin'] !== 'string' || r['origin'].length > 128) throw new BadRecordError('origin must be a PeerId');
  const seq = r['seq'];
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw new BadRecordError('seq must be a positive integer');
  const ctx = r['ctx'];
  if (ctx !== undefined) {
    if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx)) throw new BadRecordError('ctx must be an object');
    const entries = Object.entries(ctx as Record<string, unknown>);
    if (entries.length === 0 || entries.length > MAX_CTX_ORIGINS) throw new BadRecordError(`ctx must name 1..${MAX_CTX_ORIGINS} origins`);
    for (const [o, s] of entries) {
      if (o.length > 128 || !Number.isSafeInteger(s) || (s as number) < 1) throw new BadRecordError('ctx maps origins to positive integers');
    }
  }
  if (ctx !== undefined && ((ctx as CausalContext)[r['origin']] ?? 0) >= (seq as number)) throw new BadRecordError('ctx cannot cover the record itself');
  if (typeof r['sig'] !== 'string' || !SIG_PATTERN.test(r['sig'])) throw new BadRecordError('sig must be 64 bytes base64url');
  return r as unknown as DocRecord;
}

/** Throws BadRecordSignatureError unless `origin`'s key signed the record. */
export function verifyRecord(r: DocRecord): void {
  const c = signatureCheck(r);
  if (!crypto.verify(c.publicKey, c.body, c.signature)) throw signatureError(r);
}

/**
 * verifyRecord off the JS thread (crypto.verifyParallel): a batch of records verifies across
 * the cores. Rejects with the same typed errors.
 */
export async function verifyRecordParallel(r: DocRecord): Promise<void> {
  const c = signatureCheck(r);
  if (!(await crypto.verifyParallel(c.publicKey, c.body, c.signature))) throw signatureError(r);
}

function signatureError(r: DocRecord): BadRecordSignatureError {
  return new BadRecordSignatureError(`signature of ${r.key}@${r.origin.slice(-8)}:${r.seq} does not verify`);
}

/** What the signature covers, or a typed error for a record that cannot carry a valid one. */
function signatureCheck(r: DocRecord): { publicKey: Uint8Array; body: Uint8Array; signature: Uint8Array } {
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyFromPeerId(r.origin);
  } catch (e) {
    if (e instanceof KeyError) throw new BadRecordSignatureError(`origin is not an ed25519 PeerId: ${e.message}`);
    throw e;
  }
  let body: Uint8Array;
  try {
    body = canonicalBytes(unsigned(r));
  } catch (e) {
    throw new BadRecordError(`record is not canonical JSON: ${(e as Error).message}`);
  }
  if (body.length > MAX_RECORD_BYTES) throw new BadRecordError(`record of ${body.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  return { publicKey, body, signature: base64urlDecode(r.sig) };
}

/** What the API shows of a version. */
export interface VersionView {
  key: string;
  op: RecordOp;
  value: Json;
  t: [number, number];
  origin: string;
  seq: number;
  id: string;
}
