// PBFT messages inside CONSENSUS payloads: `{k: 'pbft', m: [base64url(binary message), ...]}`.
// The binary form is codec.ts's (signed, self-describing); the payload is a trust boundary, so
// decoding turns unknown JSON into checked messages plus a count of what was malformed.
import { base64urlDecode, base64urlEncode } from '../../../crypto/index.ts';
import type { JsonObject } from '../../../ico/types.ts';
import { decodeMessage, encodeMessage, type CodecLimits } from '../codec.ts';
import type { PbftMessage } from '../types.ts';

/** PBFT messages in one CONSENSUS payload at most (a Ready's messages to one peer are split). */
export const MAX_PBFT_MESSAGES_PER_PAYLOAD = 256;
/** Bytes of the encoded messages in one payload at most (well under the 1 MiB ICO frame). */
export const MAX_PBFT_PAYLOAD_BYTES = 512 * 1024;

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
