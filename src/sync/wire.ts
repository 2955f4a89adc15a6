// STATE_SYNC payloads: one encoder/decoder pair per message kind (`k`), the grammar
// PROTOCOL.md documents. decodeSyncMessage is the edge: untrusted JSON in, a checked
// SyncMessage or a MalformedSyncMessageError out. Records inside stay unverified JSON here;
// the engine checks each one (shape, signature) as it arrives.
import { base64urlDecode, base64urlEncode, EncodingError } from '../crypto/index.ts';
import type { Json, JsonObject } from '../ico/types.ts';
import type { VersionVector } from './docstore.ts';
import { MalformedSyncMessageError } from './errors.ts';
import { LANES, type Fingerprint } from './itemset.ts';

export const SYNC_PROTOCOL_VERSION = 1;
/** Records per `recs` batch and the bytes they may take (the envelope frame is 1 MiB). */
export const MAX_BATCH_RECORDS = 256;
export const MAX_BATCH_BYTES = 512 * 1024;
/** Base64url characters of one `rng` part (a range message may span parts). */
export const MAX_RANGE_PART_CHARS = 512 * 1024;
/** A reassembled range message may not exceed this. */
export const MAX_RANGE_MESSAGE_BYTES = 4 * 1024 * 1024;
export const MAX_SID_CHARS = 32;
/** Origins one version vector on the wire may name. */
export const MAX_VECTOR_ENTRIES = 4096;
/** Signed tree heads one `rheads` message may list. */
export const MAX_HEADS = 1024;

export type SyncMode = 'auto' | 'vector' | 'range';

/** A root summary: count and the four lanes (16 bytes), base64url. */
export interface RootSummary {
  n: number;
  h: string;
}

export type SyncMessage =
  | { k: 'open'; sid: string; mode: SyncMode; vec: VersionVector; root: RootSummary; d: Uint8Array; lanes: number }
  | { k: 'vec'; sid: string; vec: VersionVector }
  | { k: 'rng'; sid: string; d: Uint8Array; more: boolean }
  | { k: 'recs'; sid: string; n: number; recs: Json[] }
  | { k: 'ack'; sid: string; n: number }
  | { k: 'fin'; sid: string; root: RootSummary; vec: VersionVector }
  | { k: 'check'; sid: string; root: RootSummary; vec: VersionVector }
  | { k: 'checked'; sid: string; root: RootSummary; vec: VersionVector }
  | { k: 'err'; sid: string; code: string; message: string }
  | { k: 'live'; recs: Json[] }
  | { k: 'rheads'; heads: Json[]; reply: boolean }
  | { k: 'rlog'; part: Json };

export function encodeRoot(fp: Fingerprint): RootSummary {
  const b = new Uint8Array(LANES * 4);
  const dv = new DataView(b.buffer);
  for (let l = 0; l < LANES; l++) dv.setUint32(l * 4, fp.lanes[l] as number);
  return { n: fp.count, h: base64urlEncode(b) };
}

export function rootsEqual(a: RootSummary, b: RootSummary): boolean {
  return a.n === b.n && a.h === b.h;
}

/** Encodes a message as the STATE_SYNC payload object. */
export function encodeSyncMessage(m: SyncMessage): JsonObject {
  switch (m.k) {
    case 'open':
      return { k: m.k, v: SYNC_PROTOCOL_VERSION, sid: m.sid, mode: m.mode, vec: m.vec, root: { n: m.root.n, h: m.root.h }, d: base64urlEncode(m.d), lanes: m.lanes };
    case 'rng':
      return { k: m.k, sid: m.sid, d: base64urlEncode(m.d), ...(m.more ? { more: true } : {}) };
    case 'fin':
    case 'check':
    case 'checked':
      return { k: m.k, sid: m.sid, root: { n: m.root.n, h: m.root.h }, vec: m.vec };
    default:
      return m as unknown as JsonObject;
  }
}

function fail(what: string): never {
  throw new MalformedSyncMessageError(what);
}

function sidOf(p: JsonObject): string {
  const sid = p['sid'];
  if (typeof sid !== 'string' || sid.length === 0 || sid.length > MAX_SID_CHARS) fail('sid must be a short string');
  return sid;
}

function vectorOf(v: Json | undefined): VersionVector {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('vec must be an object');
  const entries = Object.entries(v);
  if (entries.length > MAX_VECTOR_ENTRIES) fail('vec names too many origins');
  for (const [o, s] of entries) if (o.length > 128 || typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) fail('vec maps origins to sequence numbers');
  return v as VersionVector;
}

function rootOf(v: Json | undefined): RootSummary {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('root must be {n, h}');
  const n = v['n'];
  const h = v['h'];
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || typeof h !== 'string' || h.length !== 22) fail('root must be {n, h}');
  return { n, h };
}

function bytesOf(v: Json | undefined, maxChars: number): Uint8Array {
  if (typeof v !== 'string' || v.length > maxChars) fail('d must be base64url within its limit');
  try {
    return base64urlDecode(v);
  } catch (e) {
    if (e instanceof EncodingError) fail(`d: ${e.message}`);
    throw e;
  }
}

function counterOf(v: Json | undefined, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${name} must be a non-negative integer`);
  return v;
}

function recsOf(v: Json | undefined): Json[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_BATCH_RECORDS) fail(`recs must hold 1..${MAX_BATCH_RECORDS} records`);
  return v;
}

export function decodeSyncMessage(p: JsonObject): SyncMessage {
  switch (p['k']) {
    case 'open': {
      if (p['v'] !== SYNC_PROTOCOL_VERSION) fail(`unsupported sync protocol version ${String(p['v'])}`);
      const mode = p['mode'];
      if (mode !== 'auto' && mode !== 'vector' && mode !== 'range') fail('mode must be auto, vector or range');
      const lanes = p['lanes'];
      if (typeof lanes !== 'number' || !Number.isInteger(lanes) || lanes < 1 || lanes > LANES) fail(`lanes must be 1..${LANES}`);
      return { k: 'open', sid: sidOf(p), mode, vec: vectorOf(p['vec']), root: rootOf(p['root']), d: bytesOf(p['d'], 64), lanes };
    }
    case 'vec':
      return { k: 'vec', sid: sidOf(p), vec: vectorOf(p['vec']) };
    case 'rng':
      return { k: 'rng', sid: sidOf(p), d: bytesOf(p['d'], MAX_RANGE_PART_CHARS), more: p['more'] === true };
    case 'recs':
      return { k: 'recs', sid: sidOf(p), n: counterOf(p['n'], 'n'), recs: recsOf(p['recs']) };
    case 'ack':
      return { k: 'ack', sid: sidOf(p), n: counterOf(p['n'], 'n') };
    case 'fin':
    case 'check':
    case 'checked':
      return { k: p['k'], sid: sidOf(p), root: rootOf(p['root']), vec: vectorOf(p['vec']) };
    case 'err': {
      const code = p['code'];
      const message = p['message'];
      if (typeof code !== 'string' || typeof message !== 'string') fail('err needs code and message');
      return { k: 'err', sid: sidOf(p), code: code.slice(0, 64), message: message.slice(0, 512) };
    }
    case 'live':
      return { k: 'live', recs: recsOf(p['recs']) };
    case 'rheads': {
      const heads = p['heads'];
      if (!Array.isArray(heads) || heads.length > MAX_HEADS) fail(`heads must be a list of at most ${MAX_HEADS} signed tree heads`);
      return { k: 'rheads', heads, reply: p['reply'] === true };
    }
    case 'rlog': {
      const part = p['part'];
      if (typeof part !== 'object' || part === null || Array.isArray(part)) fail('part must be an object');
      return { k: 'rlog', part };
    }
    default:
      fail(`unknown sync message kind ${JSON.stringify(p['k'])?.slice(0, 40) ?? ''}`);
  }
}
