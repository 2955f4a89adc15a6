// ICO frames: what one length-prefixed record on a direct stream holds. A JSON frame is one
// envelope signed over its JCS bytes (the reference form every peer speaks). A binary frame
// carries n messages of one sender with one ed25519 signature over the exact bytes sent, so
// the hot path neither canonicalizes nor signs per message. decodeFrame never throws; a binary
// frame is judged as a whole (one bad byte or a replayed seq drops every message in it).
import { base64urlDecode, base64urlEncode, bytesEqual, crypto, MAX_JCS_DEPTH, parseJson, peerIdFromPublicKeyBytes, publicKeyFromPeerId, varintLength, writeVarint } from '../crypto/index.ts';
import { decodeEnvelope, openEnvelope, type DecodeContext, type DecodeResult, type EnvelopeSealer } from './envelope.ts';
import {
  BadSignatureError, FrameTooLargeError, IcoError, MalformedEnvelopeError, ReplayedError, SenderMismatchError, TimestampSkewError,
  UnknownTypeError,
} from './errors.ts';
import { DEFAULT_CODEC_LIMITS, ICO_TYPES, type Envelope, type IcoType, type JsonObject } from './types.ts';
import { boundedMemo } from '../util/bounded-memo.ts';

/** First byte of a binary frame (layout 1). A JSON frame starts with `{` or JSON whitespace. */
export const BINARY_FRAME_MAGIC = 0xb1;
/** HELLO capability: the sender reads binary frames, so they may be sent to it. */
export const BINARY_CAPABILITY = 'ico-bin/1';
/** Messages in one binary frame at most (the replay window must hold a whole frame). */
export const MAX_MESSAGES_PER_FRAME = 1024;
/** Latest timestamp a binary frame may carry: 9999-12-31T23:59:59.999Z (RFC 3339 has 4-digit years). */
export const MAX_FRAME_TIMESTAMP_MS = 253_402_300_799_999;
/** The reserved payload key: `{"$bytes": "<base64url>"}` is the JSON form of a raw-bytes payload. */
export const BYTES_PAYLOAD_KEY = '$bytes';

const SIGNATURE_BYTES = 64;
/** An ed25519 PeerId as bytes: identity multihash (0x00, 36) of the protobuf key {Type: Ed25519, Data: 32 bytes}. */
const ED25519_PEER_ID_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);
const SENDER_BYTES = ED25519_PEER_ID_PREFIX.length + 32;
/** magic, flags, major, minor, sender length. */
const HEAD_BYTES = 5;
/** seq (8), timestamp (8), count (2). */
const FIXED_BYTES = 18;
/** Smallest message: type, encoding, a one-byte length, no payload. */
const MIN_MESSAGE_BYTES = 3;
const TWO_32 = 2 ** 32;
/** Highest 32-bit half of a u64 that still makes a safe integer. */
const MAX_SAFE_HIGH = 2 ** 21 - 1;

export const PAYLOAD_JSON = 0;
export const PAYLOAD_BYTES = 1;
export type PayloadEncoding = typeof PAYLOAD_JSON | typeof PAYLOAD_BYTES;

const TYPE_CODE: Record<IcoType, number> = { HELLO: 1, STATE_SYNC: 2, CONSENSUS: 3, HEARTBEAT: 4, GOODBYE: 5 };
const TYPE_OF_CODE: ReadonlyArray<IcoType | undefined> = [undefined, ...ICO_TYPES];
if (ICO_TYPES.some((t, i) => TYPE_CODE[t] !== i + 1)) throw new Error('binary type codes must follow ICO_TYPES');

export type WireEncoding = 'json' | 'binary';

/** A received message: its JSON form, and the raw bytes when its payload is bytes. */
export interface IcoMessage {
  envelope: Envelope;
  bytes?: Uint8Array;
}

export type FrameDecodeResult = { ok: true; encoding: WireEncoding; messages: IcoMessage[] } | { ok: false; error: IcoError };

/** One message ready for a binary frame: its payload already serialized. */
export interface BinaryMessage {
  type: IcoType;
  encoding: PayloadEncoding;
  body: Uint8Array;
}

export interface SealedFrame {
  frame: Uint8Array;
  /** seq of the first message; message i has firstSeq + i. */
  firstSeq: number;
  timestampMs: number;
  signature: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// ---- payloads ------------------------------------------------------------------------------

/** The raw bytes a payload stands for, if it is the JSON form of a bytes payload. */
export function payloadBytes(payload: JsonObject): Uint8Array | undefined {
  const b = payload[BYTES_PAYLOAD_KEY];
  if (typeof b !== 'string') return undefined;
  for (const key in payload) if (key !== BYTES_PAYLOAD_KEY) return undefined;
  try {
    return base64urlDecode(b);
  } catch {
    return undefined;
  }
}

/** The JSON form of a raw-bytes payload. */
export function bytesPayload(bytes: Uint8Array): JsonObject {
  return { [BYTES_PAYLOAD_KEY]: base64urlEncode(bytes) };
}

class NotJson {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

// What the JSON form (JCS) accepts, checked without building its text: finite numbers, plain
// objects, arrays without holes, well-formed strings, bounded depth. JSON.stringify alone
// would silently turn NaN into null or drop undefined, and the two encodings would differ.
function checkJson(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new NotJson('lone surrogate in string');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson('non-finite number');
      return;
    case 'boolean':
      return;
    case 'object': {
      if (value === null) return;
      // The same bound as JCS, so both encodings accept the same payloads; it also ends cycles.
      if (depth >= MAX_JCS_DEPTH) throw new NotJson(`nesting deeper than ${MAX_JCS_DEPTH} (or a cycle)`);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw new NotJson('sparse array hole');
          const item: unknown = value[i];
          if (item === undefined) throw new NotJson('undefined is not JSON');
          checkJson(item, depth + 1);
        }
        return;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new NotJson('not a plain object');
      const record = value as Record<string, unknown>;
      for (const key in record) {
        if (!key.isWellFormed()) throw new NotJson('lone surrogate in a key');
        const item = record[key];
        if (item === undefined) throw new NotJson('undefined is not JSON');
        checkJson(item, depth + 1);
      }
      return;
    }
    default:
      throw new NotJson(`${typeof value} is not JSON`);
  }
}

/** UTF-8 JSON text of a payload object for a binary frame; MalformedEnvelopeError for non-JSON data. */
export function encodeJsonPayload(payload: JsonObject): Uint8Array {
  try {
    checkJson(payload, 0);
  } catch (e) {
    if (e instanceof NotJson) throw new MalformedEnvelopeError(`payload is not JSON data: ${e.reason}`);
    throw e;
  }
  return encoder.encode(JSON.stringify(payload));
}

// ---- sealing -------------------------------------------------------------------------------

function writeU64(view: DataView, at: number, n: number): void {
  view.setUint32(at, Math.floor(n / TWO_32));
  view.setUint32(at + 4, n % TWO_32);
}

/** Bytes a binary frame of these messages takes (sender of the usual 38 bytes). */
export function binaryFrameBytes(messages: readonly BinaryMessage[]): number {
  let n = HEAD_BYTES + SENDER_BYTES + FIXED_BYTES + SIGNATURE_BYTES;
  for (const m of messages) n += binaryMessageBytes(m.body.length);
  return n;
}

/** Bytes one message with a body of `bodyLength` adds to a binary frame. */
export function binaryMessageBytes(bodyLength: number): number {
  return 2 + varintLength(bodyLength) + bodyLength;
}

/** Bytes of a binary frame around its messages (head, sender, seq, timestamp, count, signature). */
export const BINARY_FRAME_OVERHEAD = HEAD_BYTES + SENDER_BYTES + FIXED_BYTES + SIGNATURE_BYTES;

const senderBytesCache = new Map<string, Uint8Array>();
/** Upper bound on cached PeerId → bytes encodings (we seal for one identity; tests use a few). */
const MAX_CACHED_SENDERS = 64;

function senderBytes(peerId: string): Uint8Array {
  return boundedMemo(senderBytesCache, MAX_CACHED_SENDERS, peerId, (id) => {
    const bytes = new Uint8Array(SENDER_BYTES);
    bytes.set(ED25519_PEER_ID_PREFIX);
    bytes.set(publicKeyFromPeerId(id), ED25519_PEER_ID_PREFIX.length);
    return bytes;
  });
}

function versionBytes(v: string): [number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(v);
  const major = Number(m?.[1]);
  const minor = Number(m?.[2]);
  if (m === null || major > 255 || minor > 255) throw new RangeError(`version ${v} does not fit a binary frame`);
  return [major, minor];
}

/**
 * Seals `messages` into one binary frame: consecutive seqs from the sealer's counter, one
 * timestamp, one signature over every byte before it. Throws RangeError for an empty or
 * over-long message list (the caller splits by MAX_MESSAGES_PER_FRAME and its byte limit).
 */
export function sealBinaryFrame(sealer: EnvelopeSealer, messages: readonly BinaryMessage[], now: number): SealedFrame {
  if (messages.length === 0 || messages.length > MAX_MESSAGES_PER_FRAME) throw new RangeError(`a binary frame holds 1..${MAX_MESSAGES_PER_FRAME} messages, not ${messages.length}`);
  const timestampMs = Math.floor(now);
  if (!(timestampMs >= 0 && timestampMs <= MAX_FRAME_TIMESTAMP_MS)) throw new RangeError(`timestamp ${now} does not fit a binary frame`);
  const [major, minor] = versionBytes(sealer.version);
  const sender = senderBytes(sealer.sender);
  const firstSeq = sealer.allocateSeqs(messages.length, now);
  const frame = new Uint8Array(binaryFrameBytes(messages));
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  frame[0] = BINARY_FRAME_MAGIC;
  frame[1] = 0;
  frame[2] = major;
  frame[3] = minor;
  frame[4] = sender.length;
  frame.set(sender, HEAD_BYTES);
  let at = HEAD_BYTES + sender.length;
  writeU64(view, at, firstSeq);
  writeU64(view, at + 8, timestampMs);
  view.setUint16(at + 16, messages.length);
  at += FIXED_BYTES;
  for (const m of messages) {
    frame[at++] = TYPE_CODE[m.type];
    frame[at++] = m.encoding;
    at = writeVarint(frame, at, m.body.length);
    frame.set(m.body, at);
    at += m.body.length;
  }
  const signature = sealer.signBytes(frame.subarray(0, at));
  frame.set(signature, at);
  return { frame, firstSeq, timestampMs, signature };
}

/** Renders the JSON form of message i of a sealed binary frame (what `ico:out` shows). */
export function renderBinaryMessages(sealer: EnvelopeSealer, sealed: SealedFrame): (i: number, type: IcoType, payload: JsonObject) => Envelope {
  const timestamp = new Date(sealed.timestampMs).toISOString();
  const signature = base64urlEncode(sealed.signature);
  return (i, type, payload) => ({ v: sealer.version, type, sender: sealer.sender, seq: sealed.firstSeq + i, timestamp, payload, signature });
}

// ---- decoding ------------------------------------------------------------------------------

/** Bounded PeerId strings of raw keys seen in frames without an expected sender (tests, tools). */
const peerIdCache = new Map<string, string>();
const MAX_CACHED_PEER_IDS = 1024;

function peerIdOfKey(key: Uint8Array): string {
  return boundedMemo(peerIdCache, MAX_CACHED_PEER_IDS, String.fromCharCode(...key), () => peerIdFromPublicKeyBytes(key));
}

/** Reads a u64 that must be a safe integer; -1 when it is not. */
function readSafeU64(view: DataView, at: number): number {
  const high = view.getUint32(at);
  if (high > MAX_SAFE_HIGH) return -1;
  return high * TWO_32 + view.getUint32(at + 4);
}

interface ParsedMessage {
  typeCode: number;
  encoding: number;
  start: number;
  end: number;
}

const malformed = (why: string): FrameDecodeResult => ({ ok: false, error: new MalformedEnvelopeError(`binary frame: ${why}`) });

/**
 * Bytes of one frame → its verified messages or a typed error. Never throws. Checks run
 * cheapest first (size, layout, sender binding, clock skew, then the one signature, types,
 * payloads), and the replay window is only touched once everything else passed.
 */
export function decodeFrame(bytes: Uint8Array, ctx: DecodeContext): FrameDecodeResult {
  try {
    if (bytes.length === 0 || bytes[0] !== BINARY_FRAME_MAGIC) return jsonFrame(decodeEnvelope(bytes, ctx));
    const frame = prepareBinary(bytes, ctx);
    if ('ok' in frame) return frame;
    return crypto.verify(frame.publicKey, bytes.subarray(0, frame.end), bytes.subarray(frame.end)) ? finishBinary(frame) : badSignature(frame);
  } catch (e) {
    return undecodable(e);
  }
}

/**
 * decodeFrame with the adapter's asynchronous signature check: native WebCrypto in a browser
 * tab (8-18x noble there). Same verdicts; never rejects. The replay window moves only when
 * the frame is finished, so frames of one stream must be opened in order.
 */
export async function openFrame(bytes: Uint8Array, ctx: DecodeContext): Promise<FrameDecodeResult> {
  try {
    if (bytes.length === 0 || bytes[0] !== BINARY_FRAME_MAGIC) return jsonFrame(await openEnvelope(bytes, ctx));
    const frame = prepareBinary(bytes, ctx);
    if ('ok' in frame) return frame;
    return (await crypto.verifyAsync(frame.publicKey, bytes.subarray(0, frame.end), bytes.subarray(frame.end))) ? finishBinary(frame) : badSignature(frame);
  } catch (e) {
    return undecodable(e);
  }
}

function jsonFrame(r: DecodeResult): FrameDecodeResult {
  if (!r.ok) return r;
  const raw = payloadBytes(r.envelope.payload);
  return { ok: true, encoding: 'json', messages: [raw === undefined ? { envelope: r.envelope } : { envelope: r.envelope, bytes: raw }] };
}

function undecodable(e: unknown): FrameDecodeResult {
  // Only a bug can land here; still a typed drop rather than an exception past the codec.
  return { ok: false, error: e instanceof IcoError ? e : new MalformedEnvelopeError(`undecodable frame: ${e instanceof Error ? e.message : String(e)}`) };
}

/** A binary frame checked for everything but its signature (over bytes [0, end)). */
interface BinaryFrame {
  bytes: Uint8Array;
  ctx: DecodeContext;
  parsed: ParsedMessage[];
  major: number;
  minor: number;
  firstSeq: number;
  timestampMs: number;
  senderId: string;
  publicKey: Uint8Array;
  end: number;
}

function badSignature(frame: BinaryFrame): FrameDecodeResult {
  return { ok: false, error: new BadSignatureError(`frame signature does not verify for ${frame.senderId}`) };
}

function prepareBinary(bytes: Uint8Array, ctx: DecodeContext): BinaryFrame | FrameDecodeResult {
  const limits = { ...DEFAULT_CODEC_LIMITS, ...ctx.limits };
  if (bytes.length > limits.maxFrameBytes) {
    return { ok: false, error: new FrameTooLargeError(`frame of ${bytes.length} bytes exceeds the ${limits.maxFrameBytes}-byte limit`) };
  }
  if (bytes.length < BINARY_FRAME_OVERHEAD + MIN_MESSAGE_BYTES) return malformed(`${bytes.length} bytes is shorter than any frame`);
  if (bytes[1] !== 0) return malformed(`unknown flags ${bytes[1]}`);
  const major = bytes[2] as number;
  const minor = bytes[3] as number;
  if (bytes[4] !== SENDER_BYTES) return malformed(`sender of ${bytes[4]} bytes is not an ed25519 PeerId`);
  const sender = bytes.subarray(HEAD_BYTES, HEAD_BYTES + SENDER_BYTES);
  if (!bytesEqual(sender.subarray(0, ED25519_PEER_ID_PREFIX.length), ED25519_PEER_ID_PREFIX)) return malformed('sender is not an ed25519 PeerId');
  const publicKey = sender.subarray(ED25519_PEER_ID_PREFIX.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = HEAD_BYTES + SENDER_BYTES;
  const firstSeq = readSafeU64(view, at);
  const timestampMs = readSafeU64(view, at + 8);
  const count = view.getUint16(at + 16);
  at += FIXED_BYTES;
  if (firstSeq <= 0) return malformed('seq must be a positive safe integer');
  if (timestampMs < 0 || timestampMs > MAX_FRAME_TIMESTAMP_MS) return malformed('timestamp out of range');
  if (count === 0 || count > MAX_MESSAGES_PER_FRAME) return malformed(`${count} messages (1..${MAX_MESSAGES_PER_FRAME} allowed)`);
  if (!Number.isSafeInteger(firstSeq + count - 1)) return malformed('seq range is not safe integers');
  const end = bytes.length - SIGNATURE_BYTES;
  const parsed: ParsedMessage[] = [];
  for (let i = 0; i < count; i++) {
    if (at + MIN_MESSAGE_BYTES > end) return malformed(`truncated at message ${i}`);
    const typeCode = bytes[at++] as number;
    const encoding = bytes[at++] as number;
    if (encoding !== PAYLOAD_JSON && encoding !== PAYLOAD_BYTES) return malformed(`message ${i} has unknown encoding ${encoding}`);
    let length = 0;
    let scale = 1;
    for (let shift = 0; ; shift++) {
      if (at >= end || shift >= 4) return malformed(`message ${i} has a bad length`);
      const b = bytes[at++] as number;
      length += (b & 0x7f) * scale;
      scale *= 0x80;
      if ((b & 0x80) === 0) {
        if (b === 0 && shift > 0) return malformed(`message ${i} length is not minimally encoded`);
        break;
      }
    }
    if (length > end - at) return malformed(`message ${i} runs past the frame`);
    parsed.push({ typeCode, encoding, start: at, end: at + length });
    at += length;
  }
  if (at !== end) return malformed(`${end - at} stray bytes before the signature`);

  let senderId: string;
  if (ctx.expectedSender !== undefined) {
    let expectedKey: Uint8Array;
    try {
      expectedKey = publicKeyFromPeerId(ctx.expectedSender);
    } catch {
      return { ok: false, error: new SenderMismatchError(`expected sender ${ctx.expectedSender.slice(0, 80)} is not an ed25519 PeerId`) };
    }
    if (!bytesEqual(publicKey, expectedKey)) return { ok: false, error: new SenderMismatchError(`frame sender is not the authenticated peer ${ctx.expectedSender}`) };
    senderId = ctx.expectedSender;
  } else {
    senderId = peerIdOfKey(publicKey);
  }
  const skew = timestampMs - ctx.now;
  if (Math.abs(skew) > limits.maxSkewMs) {
    return { ok: false, error: new TimestampSkewError(`timestamp is ${Math.round(skew / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} our clock (limit ±${limits.maxSkewMs / 1000} s)`) };
  }
  return { bytes, ctx, parsed, major, minor, firstSeq, timestampMs, senderId, publicKey, end };
}

/** After the signature verified: types, payloads, then the replay window. */
function finishBinary({ bytes, ctx, parsed, major, minor, firstSeq, timestampMs, senderId, end }: BinaryFrame): FrameDecodeResult {
  const count = parsed.length;
  const signature = bytes.subarray(end);
  // Only a genuinely signed frame gets to name an unknown type (a newer peer, not garbage).
  for (const m of parsed) {
    const type = TYPE_OF_CODE[m.typeCode];
    if (type === undefined) return { ok: false, error: new UnknownTypeError(`unknown message type code ${m.typeCode}`) };
  }
  const v = `${major}.${minor}`;
  const timestamp = new Date(timestampMs).toISOString();
  const signatureText = base64urlEncode(signature);
  const messages: IcoMessage[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const m = parsed[i] as ParsedMessage;
    const body = bytes.subarray(m.start, m.end);
    const type = TYPE_OF_CODE[m.typeCode] as IcoType;
    const base = { v, type, sender: senderId, seq: firstSeq + i, timestamp, signature: signatureText };
    if (m.encoding === PAYLOAD_BYTES) {
      // A plain copy: the caller may keep it after the stream reuses its buffers (which may be Node Buffers).
      const raw = new Uint8Array(body);
      messages.push({ envelope: { ...base, payload: bytesPayload(raw) }, bytes: raw });
      continue;
    }
    let payload: unknown;
    try {
      payload = parseJson(decoder.decode(body));
    } catch {
      return malformed(`message ${i} payload is not UTF-8 JSON`);
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return malformed(`message ${i} payload is not a JSON object`);
    const envelope: Envelope = { ...base, payload: payload as JsonObject };
    const raw = payloadBytes(envelope.payload);
    messages.push(raw === undefined ? { envelope } : { envelope, bytes: raw });
  }
  if (ctx.replay !== undefined) {
    for (let i = 0; i < count; i++) {
      if (!ctx.replay.check(senderId, firstSeq + i)) return { ok: false, error: new ReplayedError(`seq ${firstSeq + i} from ${senderId} was already seen or is outside the replay window`) };
    }
    for (let i = 0; i < count; i++) ctx.replay.accept(senderId, firstSeq + i);
  }
  return { ok: true, encoding: 'binary', messages };
}
