// The compact binary form of session messages (sync-bin/1), for peers whose ICO link carries
// raw-bytes payloads in binary frames. It says exactly what the JSON form says (wire.ts stays
// the reference form for browsers, gossip and logs): same kinds, same limits, same checks.
// Records travel as fields instead of canonical JSON: origins once per batch in a table, the
// signature as its 64 raw bytes, the value as its JSON text. The receiver rebuilds each
// record's JSON object and verifies it exactly as it verifies a JSON-borne one.
// `live`, `rheads` and `rlog` have no binary form: they stay JSON.
import { base64urlDecode, base64urlEncode, EncodingError, parseJson, utf8Decode, utf8Encode } from '../crypto/index.ts';
import type { Json, JsonObject } from '../ico/types.ts';
import type { VersionVector } from './docstore.ts';
import { MalformedSyncMessageError } from './errors.ts';
import { LANES } from './itemset.ts';
import { MAX_CTX_ORIGINS, MAX_DOC_KEY_BYTES, MAX_RECORD_BYTES, parseRecord, type DocRecord } from './record.ts';
import { ByteReader, ByteWriter } from './varint.ts';
import { MAX_BATCH_RECORDS, MAX_RANGE_PART_CHARS, MAX_SID_CHARS, MAX_VECTOR_ENTRIES, type RootSummary, type SyncMessage, type SyncMode } from './wire.ts';

/** First byte of a binary session message; anything else is not ours (apps may send bytes too). */
export const SYNC_BINARY_MAGIC = 0xa5;
/** What a HELLO sync summary advertises (`bin`) and the second byte of every binary message. */
export const SYNC_BINARY_VERSION = 1;
/** Bytes of one `rng` part: what MAX_RANGE_PART_CHARS base64url characters carry. */
export const MAX_RANGE_PART_BYTES = Math.floor((MAX_RANGE_PART_CHARS * 3) / 4);
/** Distinct origins (writers and causal-context origins) one record batch may name. */
export const MAX_BATCH_ORIGINS = 1024;
const MAX_ORIGIN_BYTES = 128;
const SIG_BYTES = 64;
const ROOT_HASH_BYTES = LANES * 4;

type BinaryKind = Exclude<SyncMessage['k'], 'live' | 'rheads' | 'rlog'>;
const KIND_CODE: Record<BinaryKind, number> = { open: 1, vec: 2, rng: 3, recs: 4, ack: 5, fin: 6, check: 7, checked: 8, err: 9 };
const MODES: readonly SyncMode[] = ['auto', 'vector', 'range'];
const OPS = ['put', 'del', 'resolve'] as const;

/** True when `bytes` is a binary session message (the receiver then decodes it). */
export function isBinarySyncMessage(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === SYNC_BINARY_MAGIC;
}

/** True for the kinds that have a binary form. */
export function hasBinaryForm(m: SyncMessage): m is Extract<SyncMessage, { k: BinaryKind }> {
  return m.k in KIND_CODE;
}

// ---- encoding -----------------------------------------------------------------------------

function writeString(w: ByteWriter, s: string): void {
  w.bytes(utf8Encode(s));
}

function writeRoot(w: ByteWriter, root: RootSummary): void {
  w.varint(root.n);
  w.raw(base64urlDecode(root.h));
}

function writeVector(w: ByteWriter, vec: VersionVector): void {
  const entries = Object.entries(vec);
  w.varint(entries.length);
  for (const [origin, seq] of entries) {
    writeString(w, origin);
    w.varint(seq);
  }
}

/** The records of a batch: an origin table, then each record's fields (see PROTOCOL.md). */
function writeRecords(w: ByteWriter, recs: Json[]): void {
  const records: DocRecord[] = recs.map((r) => parseRecord(r));
  const index = new Map<string, number>();
  const origins: string[] = [];
  const indexOf = (o: string): number => {
    let i = index.get(o);
    if (i === undefined) {
      i = origins.length;
      index.set(o, i);
      origins.push(o);
    }
    return i;
  };
  for (const r of records) {
    indexOf(r.origin);
    if (r.ctx !== undefined) for (const o of Object.keys(r.ctx)) indexOf(o);
  }
  w.varint(origins.length);
  for (const o of origins) writeString(w, o);
  w.varint(records.length);
  for (const r of records) {
    writeString(w, r.key);
    w.byte(OPS.indexOf(r.op));
    writeString(w, JSON.stringify(r.value));
    w.varint(r.t[0]);
    w.varint(r.t[1]);
    w.varint(indexOf(r.origin));
    w.varint(r.seq);
    const ctx = r.ctx === undefined ? [] : Object.entries(r.ctx);
    w.varint(ctx.length);
    for (const [o, s] of ctx) {
      w.varint(indexOf(o));
      w.varint(s);
    }
    w.raw(base64urlDecode(r.sig));
  }
}

/** The binary form of a session message (hasBinaryForm(m) must hold). */
export function encodeBinarySyncMessage(m: Extract<SyncMessage, { k: BinaryKind }>): Uint8Array {
  const w = new ByteWriter();
  w.byte(SYNC_BINARY_MAGIC);
  w.byte(SYNC_BINARY_VERSION);
  w.byte(KIND_CODE[m.k]);
  writeString(w, m.sid);
  switch (m.k) {
    case 'open':
      w.byte(MODES.indexOf(m.mode));
      w.byte(m.lanes);
      writeRoot(w, m.root);
      writeVector(w, m.vec);
      w.bytes(m.d);
      break;
    case 'vec':
      writeVector(w, m.vec);
      break;
    case 'rng':
      w.byte(m.more ? 1 : 0);
      w.bytes(m.d);
      break;
    case 'recs':
      w.varint(m.n);
      writeRecords(w, m.recs);
      break;
    case 'ack':
      w.varint(m.n);
      break;
    case 'fin':
    case 'check':
    case 'checked':
      writeRoot(w, m.root);
      writeVector(w, m.vec);
      break;
    case 'err':
      writeString(w, m.code.slice(0, 64));
      writeString(w, m.message.slice(0, 512));
      break;
  }
  return w.finish();
}

// ---- decoding (the edge: untrusted bytes in, a checked SyncMessage or MalformedSyncMessageError out)

function fail(what: string): never {
  throw new MalformedSyncMessageError(what);
}

function readString(r: ByteReader, maxBytes: number, what: string): string {
  try {
    return utf8Decode(r.bytes(maxBytes));
  } catch (e) {
    if (e instanceof EncodingError) fail(`${what}: ${e.message}`);
    throw e;
  }
}

function readRoot(r: ByteReader): RootSummary {
  const n = r.varint();
  return { n, h: base64urlEncode(r.raw(ROOT_HASH_BYTES)) };
}

function readVector(r: ByteReader): VersionVector {
  const count = r.varint(MAX_VECTOR_ENTRIES);
  const vec: VersionVector = {};
  for (let i = 0; i < count; i++) {
    const origin = readString(r, MAX_ORIGIN_BYTES, 'vec origin');
    if (Object.hasOwn(vec, origin) || origin === '__proto__') fail('vec names an origin twice (or names __proto__)');
    vec[origin] = r.varint();
  }
  return vec;
}

function readRecords(r: ByteReader): Json[] {
  const nOrigins = r.varint(MAX_BATCH_ORIGINS);
  const origins: string[] = [];
  for (let i = 0; i < nOrigins; i++) origins.push(readString(r, MAX_ORIGIN_BYTES, 'origin'));
  const count = r.varint(MAX_BATCH_RECORDS);
  if (count === 0) fail(`recs must hold 1..${MAX_BATCH_RECORDS} records`);
  const originAt = (i: number): string => origins[i] ?? fail(`origin index ${i} outside the table of ${origins.length}`);
  const out: Json[] = [];
  for (let i = 0; i < count; i++) {
    const key = readString(r, MAX_DOC_KEY_BYTES, 'key');
    const op = OPS[r.byte()] ?? fail('op must be put, del or resolve');
    let value: Json;
    try {
      value = parseJson(readString(r, MAX_RECORD_BYTES, 'value')) as Json;
    } catch (e) {
      if (e instanceof SyntaxError) fail(`value is not JSON text: ${e.message}`);
      throw e;
    }
    const t: Json = [r.varint(), r.varint()];
    const origin = originAt(r.varint(MAX_BATCH_ORIGINS));
    const seq = r.varint();
    const nCtx = r.varint(MAX_CTX_ORIGINS);
    const rec: JsonObject = { key, op, value, t, origin, seq };
    if (nCtx > 0) {
      const ctx: JsonObject = {};
      for (let c = 0; c < nCtx; c++) {
        const o = originAt(r.varint(MAX_BATCH_ORIGINS));
        if (Object.hasOwn(ctx, o) || o === '__proto__') fail('ctx names an origin twice (or names __proto__)');
        ctx[o] = r.varint();
      }
      rec['ctx'] = ctx;
    }
    rec['sig'] = base64urlEncode(r.raw(SIG_BYTES));
    out.push(rec);
  }
  return out;
}

/** Decodes a binary session message; MalformedSyncMessageError for anything off the grammar. */
export function decodeBinarySyncMessage(bytes: Uint8Array): SyncMessage {
  const r = new ByteReader(bytes);
  if (r.byte() !== SYNC_BINARY_MAGIC) fail('not a binary sync message');
  const version = r.byte();
  if (version !== SYNC_BINARY_VERSION) fail(`unsupported binary sync version ${version}`);
  const code = r.byte();
  const sid = readString(r, MAX_SID_CHARS, 'sid');
  if (sid.length === 0 || sid.length > MAX_SID_CHARS) fail('sid must be a short string');
  let m: SyncMessage;
  switch (code) {
    case KIND_CODE.open: {
      const mode = MODES[r.byte()] ?? fail('mode must be auto, vector or range');
      const lanes = r.byte();
      if (lanes < 1 || lanes > LANES) fail(`lanes must be 1..${LANES}`);
      const root = readRoot(r);
      m = { k: 'open', sid, mode, lanes, root, vec: readVector(r), d: r.bytes(64) };
      break;
    }
    case KIND_CODE.vec:
      m = { k: 'vec', sid, vec: readVector(r) };
      break;
    case KIND_CODE.rng: {
      const more = r.byte();
      if (more > 1) fail('rng more flag must be 0 or 1');
      m = { k: 'rng', sid, more: more === 1, d: r.bytes(MAX_RANGE_PART_BYTES) };
      break;
    }
    case KIND_CODE.recs: {
      const n = r.varint();
      m = { k: 'recs', sid, n, recs: readRecords(r) };
      break;
    }
    case KIND_CODE.ack:
      m = { k: 'ack', sid, n: r.varint() };
      break;
    case KIND_CODE.fin:
    case KIND_CODE.check:
    case KIND_CODE.checked: {
      const k = code === KIND_CODE.fin ? 'fin' : code === KIND_CODE.check ? 'check' : 'checked';
      const root = readRoot(r);
      m = { k, sid, root, vec: readVector(r) };
      break;
    }
    case KIND_CODE.err: {
      const errCode = readString(r, 64, 'code');
      m = { k: 'err', sid, code: errCode, message: readString(r, 512, 'message') };
      break;
    }
    default:
      fail(`unknown binary sync message kind ${code}`);
  }
  if (!r.done) fail('trailing bytes after the sync message');
  return m;
}
