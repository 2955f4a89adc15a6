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
  /** This peer's direct-wire counters (all its traffic, Raft's too): frames, envelopes, bytes, frame signatures made and verified. */
  readonly wire: null | { readonly [k: string]: number; readonly frames_out: number; readonly envelopes_out: number; readonly bytes_out: number; readonly signatures: number; readonly verifications: number };
}

export type PbftQuery = { readonly q: 'receipt'; readonly c: string; readonly t: number } | { readonly q: 'status' };
export type PbftAnswer = { readonly q: 'receipt'; readonly c: string; readonly t: number; readonly receipt: JsonObject | null } | { readonly q: 'status'; readonly status: PbftReplicaStatusJson };

export function encodeQuery(q: PbftQuery): JsonObject {
  return { k: 'pbft-q', ...q };
}

export function encodeAnswer(a: PbftAnswer): JsonObject {
  return { k: 'pbft-a', ...a };
}

export function isQueryPayload(p: JsonObject): boolean {
  return p['k'] === 'pbft-q';
}

export function isAnswerPayload(p: JsonObject): boolean {
  return p['k'] === 'pbft-a';
}

/** Never throws; null for anything that is not a well-formed query. */
export function decodeQuery(p: JsonObject): PbftQuery | null {
  if (p['q'] === 'status') return { q: 'status' };
  const { c, t } = p;
  if (p['q'] === 'receipt' && typeof c === 'string' && c.length <= 256 && typeof t === 'number' && Number.isSafeInteger(t)) return { q: 'receipt', c, t };
  return null;
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
  const { c, t, receipt } = p;
  if (p['q'] === 'receipt' && typeof c === 'string' && typeof t === 'number' && (receipt === null || isObject(receipt))) return { q: 'receipt', c, t, receipt };
  return null;
}
