// PBFT messages inside CONSENSUS payloads: `{k: 'pbft', m: [base64url(binary message), ...]}`.
// The binary form is codec.ts's (signed, self-describing); the payload is a trust boundary, so
// decoding turns unknown JSON into checked messages plus a count of what was malformed.
import { base64urlDecode, base64urlEncode } from '../../../crypto/index.ts';
import type { Json, JsonObject } from '../../../ico/types.ts';
import { decodeMessage, encodeMessage, type CodecLimits } from '../codec.ts';
import type { PbftMessage } from '../types.ts';

/** PBFT messages in one CONSENSUS payload at most (a Ready's messages to one peer are split). */
export const MAX_PBFT_MESSAGES_PER_PAYLOAD = 256;
/** Bytes of the encoded messages in one payload at most (well under the 1 MiB ICO frame). */
export const MAX_PBFT_PAYLOAD_BYTES = 512 * 1024;

/** Payload kinds of PBFT on the CONSENSUS channel (Raft uses others). */
export const PBFT_PAYLOAD_KINDS: ReadonlySet<string> = new Set(['pbft', 'pbft-q', 'pbft-a']);

export function isPbftPayload(payload: JsonObject): boolean {
  return payload['k'] === 'pbft';
}

/** Payloads carrying `messages`, split by count and size. */
export function encodePbftPayloads(messages: readonly PbftMessage[]): JsonObject[] {
  const out: JsonObject[] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const m of messages) {
    const text = base64urlEncode(encodeMessage(m));
    if (cur.length > 0 && (cur.length >= MAX_PBFT_MESSAGES_PER_PAYLOAD || bytes + text.length > MAX_PBFT_PAYLOAD_BYTES)) {
      out.push({ k: 'pbft', m: cur });
      cur = [];
      bytes = 0;
    }
    cur.push(text);
    bytes += text.length;
  }
  if (cur.length > 0) out.push({ k: 'pbft', m: cur });
  return out;
}

export interface DecodedPayload {
  readonly messages: PbftMessage[];
  /** Entries that were not well-formed messages (or the payload itself was not one). */
  readonly malformed: number;
}

/** Never throws. */
export function decodePbftPayload(payload: JsonObject, limits: CodecLimits): DecodedPayload {
  const list = payload['m'];
  if (payload['k'] !== 'pbft' || !Array.isArray(list) || list.length > MAX_PBFT_MESSAGES_PER_PAYLOAD) return { messages: [], malformed: 1 };
  const messages: PbftMessage[] = [];
  let malformed = 0;
  for (const item of list) {
    if (typeof item !== 'string') {
      malformed++;
      continue;
    }
    try {
      messages.push(decodeMessage(base64urlDecode(item), limits));
    } catch {
      malformed++;
    }
  }
  return { messages, malformed };
}

// ---- queries a client (the relay) asks a replica, beside the protocol ----------------------

/** A replica's view of itself, as the relay's cluster status shows it (snake_case: it reaches the API). */
export interface PbftReplicaStatusJson {
  readonly [k: string]: Json;
  readonly self: string;
  readonly view: number;
  readonly primary: string;
  readonly active: boolean;
  readonly low_watermark: number;
  readonly high_watermark: number;
  readonly last_executed: number;
  readonly stable_checkpoint: { readonly seq: number; readonly digest: string };
  readonly dropped_total: number;
  readonly requests_executed: number;
  readonly signatures_made: number;
  readonly signatures_verified: number;
  readonly batches_executed: number;
  /** Messages this replica resent to help a slow or lagging peer (commit certificates, votes, view changes, state). */
  readonly retransmissions: number;
  /** This peer's direct-wire counters (all its traffic, Raft's too): frames, envelopes, bytes, frame signatures made and verified. */
  readonly wire: null | { readonly [k: string]: number; readonly frames_out: number; readonly envelopes_out: number; readonly bytes_out: number; readonly signatures: number; readonly verifications: number };
}

/** Receipts one query asks for (and its answer carries) at most: a client batches its asks per replica. */
export const MAX_RECEIPTS_PER_QUERY = 64;
/** Longest client id a query may name (PbftLimits.maxClientIdBytes is 128 bytes). */
const MAX_QUERY_CLIENT_CHARS = 256;

/** A request a client asks about: its client id and timestamp. */
export interface RequestRef {
  readonly c: string;
  readonly t: number;
}

export interface ReceiptAnswer extends RequestRef {
  readonly receipt: JsonObject | null;
}

export type PbftQuery = { readonly q: 'receipts'; readonly r: readonly RequestRef[] } | { readonly q: 'status' };
export type PbftAnswer = { readonly q: 'receipts'; readonly r: readonly ReceiptAnswer[] } | { readonly q: 'status'; readonly status: PbftReplicaStatusJson };

export function encodeQuery(q: PbftQuery): JsonObject {
  return q.q === 'status' ? { k: 'pbft-q', q: 'status' } : { k: 'pbft-q', q: 'receipts', r: q.r.map((x) => ({ c: x.c, t: x.t })) };
}

export function encodeAnswer(a: PbftAnswer): JsonObject {
  return a.q === 'status' ? { k: 'pbft-a', q: 'status', status: a.status } : { k: 'pbft-a', q: 'receipts', r: a.r.map((x) => ({ c: x.c, t: x.t, receipt: x.receipt })) };
}

export function isQueryPayload(p: JsonObject): boolean {
  return p['k'] === 'pbft-q';
}

export function isAnswerPayload(p: JsonObject): boolean {
  return p['k'] === 'pbft-a';
}

function requestRef(v: Json | undefined): RequestRef | null {
  if (!isObject(v)) return null;
  const { c, t } = v;
  return typeof c === 'string' && c.length <= MAX_QUERY_CLIENT_CHARS && typeof t === 'number' && Number.isSafeInteger(t) ? { c, t } : null;
}

/** 1..MAX_RECEIPTS_PER_QUERY entries, each well-formed; null otherwise. */
function listOf<T>(v: Json | undefined, item: (x: Json) => T | null): T[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_RECEIPTS_PER_QUERY) return null;
  const out: T[] = [];
  for (const x of v) {
    const it = item(x);
    if (it === null) return null;
    out.push(it);
  }
  return out;
}

/** Never throws; null for anything that is not a well-formed query. */
export function decodeQuery(p: JsonObject): PbftQuery | null {
  if (p['q'] === 'status') return { q: 'status' };
  const r = p['q'] === 'receipts' ? listOf(p['r'], requestRef) : null;
  return r === null ? null : { q: 'receipts', r };
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Never throws; null for anything that is not a well-formed answer (the receipt itself is checked by the caller). */
export function decodeAnswer(p: JsonObject): PbftAnswer | null {
  if (p['q'] === 'status') {
    const s = p['status'];
    if (!isObject(s) || typeof s['view'] !== 'number' || typeof s['primary'] !== 'string' || typeof s['self'] !== 'string') return null;
    return { q: 'status', status: s as PbftReplicaStatusJson };
  }
  const r =
    p['q'] === 'receipts'
      ? listOf(p['r'], (x): ReceiptAnswer | null => {
          const ref = requestRef(x);
          const receipt = isObject(x) ? x['receipt'] : undefined;
          return ref !== null && (receipt === null || isObject(receipt)) ? { ...ref, receipt: receipt ?? null } : null;
        })
      : null;
  return r === null ? null : { q: 'receipts', r };
}
