// The ICO envelope codec: sealing (sign our envelopes with a monotonic seq) and decoding
// (bytes → a checked, verified Envelope or a typed IcoError). decode never throws: the
// checks run cheapest first, and the replay window is only touched after the signature
// verified, so forged sequence numbers cannot poison it. openEnvelope is decodeEnvelope with
// the adapter's asynchronous verification (native WebCrypto in a browser tab, 8-18x noble).
import { base64urlDecode, base64urlEncode, canonicalize, crypto, parseJson, publicKeyFromPeerId, type Ed25519Signer } from '../crypto/index.ts';
import {
  BadSignatureError, FrameTooLargeError, IcoError, MalformedEnvelopeError, ReplayedError, SenderMismatchError,
  TimestampSkewError, UnknownTypeError,
} from './errors.ts';
import type { ReplayGuard } from './replay.ts';
import { DEFAULT_CODEC_LIMITS, ICO_TYPES, ICO_VERSION, type CodecLimits, type Envelope, type IcoType, type Json } from './types.ts';

const ENVELOPE_FIELDS = ['v', 'type', 'sender', 'seq', 'timestamp', 'payload', 'signature'] as const;
const VERSION_PATTERN = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;
const RFC3339_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?Z$/;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; error: IcoError };

export interface DecodeContext {
  /** ms since the epoch, the receiver's clock. */
  now: number;
  /** The Noise-authenticated remote PeerId the bytes arrived from, when known. */
  expectedSender?: string;
  limits?: Partial<CodecLimits>;
  replay?: ReplayGuard;
}

// The envelope's keys in RFC 8785 order (UTF-16 code units): payload, sender, seq,
// signature, timestamp, type, v. The signing text is JCS of the envelope without
// `signature`, built around its one variable-size member so sealing canonicalizes the
// payload once and the wire text is the same JCS with `signature` spliced in.
interface SigningParts {
  head: string;
  tail: string;
}

function signingParts(v: string, type: string, sender: string, seq: number, timestamp: string, payload: unknown): SigningParts {
  return {
    head: `{"payload":${canonicalize(payload)},"sender":${canonicalize(sender)},"seq":${canonicalize(seq)}`,
    tail: `,"timestamp":${canonicalize(timestamp)},"type":${canonicalize(type)},"v":${canonicalize(v)}}`,
  };
}

/** The bytes a signature covers: JCS of the envelope without `signature`. */
export function signingBytes(envelope: Omit<Envelope, 'signature'> & { signature?: string }): Uint8Array {
  const { head, tail } = signingParts(envelope.v, envelope.type, envelope.sender, envelope.seq, envelope.timestamp, envelope.payload);
  return encoder.encode(head + tail);
}

export function isIcoType(value: unknown): value is IcoType {
  return typeof value === 'string' && (ICO_TYPES as readonly string[]).includes(value);
}

export interface SealerOptions {
  signer: Ed25519Signer;
  /** Our PeerId string; its key must be `signer.publicKey`. */
  sender: string;
  /** First seq to use; defaults to ms-since-epoch × 1024 at the first seal, so a restarted sender keeps rising. */
  startSeq?: number;
  version?: string;
}

/** Signs our outgoing envelopes; one per local identity. */
export class EnvelopeSealer {
  readonly sender: string;
  readonly version: string;
  readonly #signer: Ed25519Signer;
  readonly #startSeq: number | undefined;
  #seq: number | undefined;

  constructor(opts: SealerOptions) {
    this.#signer = opts.signer;
    this.sender = opts.sender;
    this.version = opts.version ?? ICO_VERSION;
    this.#startSeq = opts.startSeq;
  }

  /** The last seq sealed (undefined before the first). */
  get lastSeq(): number | undefined {
    return this.#seq;
  }

  /**
   * Takes `count` consecutive seqs (a binary frame's messages) and returns the first.
   * Start at ms × 1024, then count by one: a restarted sender starts above everything it
   * sent before unless it averaged over 1024 envelopes per ms, and consecutive envelopes
   * stay adjacent, so reordering (gossip, a stream moving to a better connection) fits
   * inside the receivers' replay window.
   */
  allocateSeqs(count: number, now: number): number {
    const first = this.#seq === undefined ? this.#startSeq ?? Math.floor(now) * 1024 : this.#seq + 1;
    const last = first + count - 1;
    if (!Number.isSafeInteger(first) || first <= 0 || !Number.isSafeInteger(last) || count < 1) throw new RangeError(`envelope seq ${first} (+${count}) is not a positive safe integer`);
    this.#seq = last;
    return first;
  }

  /** Our signature over exact bytes (a binary frame signs what it sends). */
  signBytes(bytes: Uint8Array): Uint8Array {
    return this.#signer.sign(bytes);
  }

  seal(type: IcoType, payload: { [key: string]: Json }, now: number): { envelope: Envelope; bytes: Uint8Array } {
    const seq = this.allocateSeqs(1, now);
    const timestamp = new Date(now).toISOString();
    const { head, tail } = signingParts(this.version, type, this.sender, seq, timestamp, payload);
    const signature = base64urlEncode(this.#signer.sign(encoder.encode(head + tail)));
    const envelope: Envelope = { v: this.version, type, sender: this.sender, seq, timestamp, payload, signature };
    return { envelope, bytes: encoder.encode(`${head},"signature":"${signature}"${tail}`) };
  }
}

/** Strict RFC 3339 UTC: the pattern, and a real calendar date (Date.parse rolls 02-30 over to March). */
export function isRfc3339Utc(text: string): boolean {
  if (!RFC3339_UTC.test(text)) return false;
  const ms = Date.parse(text);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === text.slice(0, 19);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function parseFrame(bytes: Uint8Array, ctx: DecodeContext): { value: unknown } | DecodeResult {
  const limits = { ...DEFAULT_CODEC_LIMITS, ...ctx.limits };
  if (bytes.length > limits.maxFrameBytes) {
    return { ok: false, error: new FrameTooLargeError(`frame of ${bytes.length} bytes exceeds the ${limits.maxFrameBytes}-byte limit`) };
  }
  try {
    // Not JSON.parse directly: it can mis-decode escaped keys (see src/crypto/json.ts).
    return { value: parseJson(decoder.decode(bytes)) };
  } catch {
    return { ok: false, error: new MalformedEnvelopeError('frame is not UTF-8 JSON') };
  }
}

/** Bytes from the wire → a verified envelope or a typed error. Never throws. */
export function decodeEnvelope(bytes: Uint8Array, ctx: DecodeContext): DecodeResult {
  const frame = parseFrame(bytes, ctx);
  return 'value' in frame ? validateEnvelope(frame.value, ctx) : frame;
}

/** decodeEnvelope with the asynchronous signature check (native in browsers). Never rejects. */
export async function openEnvelope(bytes: Uint8Array, ctx: DecodeContext): Promise<DecodeResult> {
  const frame = parseFrame(bytes, ctx);
  return 'value' in frame ? validateEnvelopeAsync(frame.value, ctx) : frame;
}

function failed(e: unknown): DecodeResult {
  if (e instanceof IcoError) return { ok: false, error: e };
  return { ok: false, error: new MalformedEnvelopeError(e instanceof Error ? e.message : 'invalid envelope') };
}

/** Already-parsed JSON (e.g. from gossipsub after the size check) → verified envelope. Never throws. */
export function validateEnvelope(value: unknown, ctx: DecodeContext): DecodeResult {
  try {
    const c = check(value, ctx);
    if (!crypto.verify(c.publicKey, c.message, c.signature)) throw new BadSignatureError(`signature does not verify for ${c.envelope.sender}`);
    return { ok: true, envelope: accept(c.envelope, ctx) };
  } catch (e) {
    return failed(e);
  }
}

/** validateEnvelope with the asynchronous signature check. Never rejects. */
export async function validateEnvelopeAsync(value: unknown, ctx: DecodeContext): Promise<DecodeResult> {
  try {
    const c = check(value, ctx);
    if (!(await crypto.verifyAsync(c.publicKey, c.message, c.signature))) throw new BadSignatureError(`signature does not verify for ${c.envelope.sender}`);
    return { ok: true, envelope: accept(c.envelope, ctx) };
  } catch (e) {
    return failed(e);
  }
}

/** After the signature verified: only a genuinely signed envelope names an unknown type or moves the replay window. */
function accept(envelope: Envelope, ctx: DecodeContext): Envelope {
  // Only a genuinely signed envelope gets to name an unknown type (so a peer on a newer
  // minor version is told apart from garbage).
  const type: string = envelope.type;
  if (!isIcoType(type)) throw new UnknownTypeError(`unknown message type '${type.slice(0, 40)}'`);
  if (ctx.replay !== undefined && !ctx.replay.accept(envelope.sender, envelope.seq)) throw new ReplayedError(`seq ${envelope.seq} from ${envelope.sender} was already seen or is outside the replay window`);
  return envelope;
}

/** The checks before the signature (cheapest first), and what the signature check needs. */
function check(value: unknown, ctx: DecodeContext): { envelope: Envelope; publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array } {
  const limits = { ...DEFAULT_CODEC_LIMITS, ...ctx.limits };
  if (!isPlainObject(value)) throw new MalformedEnvelopeError('envelope must be a JSON object');
  const keys = Object.keys(value);
  for (const key of keys) if (!(ENVELOPE_FIELDS as readonly string[]).includes(key)) throw new MalformedEnvelopeError(`unexpected field '${key.slice(0, 40)}'`);
  for (const key of ENVELOPE_FIELDS) if (!(key in value)) throw new MalformedEnvelopeError(`missing field '${key}'`);
  const { v, type, sender, seq, timestamp, payload, signature } = value;
  if (typeof v !== 'string' || !VERSION_PATTERN.test(v)) throw new MalformedEnvelopeError("'v' must be 'major.minor'");
  if (typeof type !== 'string') throw new MalformedEnvelopeError("'type' must be a string");
  if (typeof sender !== 'string' || sender.length === 0 || sender.length > 128) throw new MalformedEnvelopeError("'sender' must be a PeerId string");
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) throw new MalformedEnvelopeError("'seq' must be a positive safe integer");
  if (typeof timestamp !== 'string' || !isRfc3339Utc(timestamp)) throw new MalformedEnvelopeError("'timestamp' must be RFC 3339 UTC (…Z)");
  if (!isPlainObject(payload)) throw new MalformedEnvelopeError("'payload' must be a JSON object");
  if (typeof signature !== 'string' || !SIGNATURE_PATTERN.test(signature)) throw new MalformedEnvelopeError("'signature' must be 64 bytes of base64url");

  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyFromPeerId(sender);
  } catch {
    throw new MalformedEnvelopeError("'sender' is not an ed25519 PeerId");
  }
  if (ctx.expectedSender !== undefined && sender !== ctx.expectedSender) {
    throw new SenderMismatchError(`sender ${sender} is not the authenticated peer ${ctx.expectedSender}`);
  }
  const skew = Date.parse(timestamp) - ctx.now;
  if (Math.abs(skew) > limits.maxSkewMs) {
    throw new TimestampSkewError(`timestamp is ${Math.round(skew / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} our clock (limit ±${limits.maxSkewMs / 1000} s)`);
  }
  let message: Uint8Array;
  try {
    const { head, tail } = signingParts(v, type, sender, seq, timestamp, payload);
    message = encoder.encode(head + tail);
  } catch (e) {
    throw new MalformedEnvelopeError(`payload is not canonical JSON: ${e instanceof Error ? e.message : 'invalid'}`);
  }
  // The type is checked after the signature: a string here, an IcoType once accept() passes it.
  const envelope = { v, type: type as IcoType, sender, seq, timestamp, payload: payload as { [key: string]: Json }, signature };
  return { envelope, publicKey, message, signature: base64urlDecode(signature) };
}
