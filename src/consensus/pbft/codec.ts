// The binary encoding of PBFT messages (byte tables in PROTOCOL.md, "PBFT messages"). Every
// message is `signed part ‖ signature(64) ‖ trailer`: the signed part opens with the version
// and type bytes and ends with the signer's u16 index, so a certificate can rebuild it from a
// few fields. Integers are big-endian; u64 fields carry safe integers only (< 2^53).
// decodeMessage turns bytes into a checked message or throws PbftDecodeError; nothing else throws.
import { PbftDecodeError } from './errors.ts';
import {
  MAX_REPLICAS,
  MAX_REQUEST_BUNDLE,
  type BatchMessage,
  type CheckpointMessage,
  type CheckpointProof,
  type CommitCertificateMessage,
  type CommitMessage,
  type Endorsement,
  type FetchBatchMessage,
  type FetchStateMessage,
  type NewViewMessage,
  type NewViewPrePrepare,
  type PbftMessage,
  type PbftMessageType,
  type PrePrepareMessage,
  type PrepareMessage,
  type PreparedCertificate,
  type ReplyMessage,
  type RequestBundleProof,
  type RequestMessage,
  type StateChunkMessage,
  type StatusMessage,
  type ViewChangeMessage,
} from './types.ts';

export const PBFT_WIRE_VERSION = 1;
export const DIGEST_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** The second byte of a bundle's signed part: no message type uses it (TYPE_CODES stop at 14). */
export const REQUEST_BUNDLE_CODE = 0x40;
/** Path hashes of a bundle proof at most (a tree of MAX_REQUEST_BUNDLE leaves needs 6). */
export const MAX_BUNDLE_PATH = 6;
/** Bytes a bundle proof adds to a request's encoding at most. */
export const MAX_BUNDLE_TRAILER_BYTES = 2 + 2 + 1 + MAX_BUNDLE_PATH * DIGEST_BYTES;

export const TYPE_CODES: Readonly<Record<PbftMessageType, number>> = {
  request: 1,
  prePrepare: 2,
  prepare: 3,
  commit: 4,
  checkpoint: 5,
  viewChange: 6,
  newView: 7,
  status: 8,
  fetchState: 9,
  stateChunk: 10,
  fetchBatch: 11,
  batch: 12,
  commitCertificate: 13,
  reply: 14,
};

const TYPE_BY_CODE = new Map<number, PbftMessageType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as PbftMessageType]));

/** What the decoder accepts at most (from PbftLimits; a frame limit bounds the rest). */
export interface CodecLimits {
  readonly maxBatchRequests: number;
  readonly maxOpBytes: number;
  readonly maxResultBytes: number;
  readonly maxClientIdBytes: number;
  readonly stateChunkBytes: number;
  readonly maxStateBytes: number;
  /** Prepared certificates in one VIEW-CHANGE (the watermark window L). */
  readonly watermarkWindow: number;
}

// ---- big-endian integers (no DataView: these run for every message) ------------------------

function putU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

function putU64(b: Uint8Array, at: number, v: number): void {
  putU32(b, at, Math.floor(v / 0x1_0000_0000));
  putU32(b, at + 4, v >>> 0);
}

// ---- writer --------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private buf: Uint8Array;
  length = 0;

  constructor(capacity = 128) {
    this.buf = new Uint8Array(capacity);
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  u16(v: number): void {
    this.room(2);
    putU16(this.buf, this.length, v);
    this.length += 2;
  }

  u32(v: number): void {
    this.room(4);
    putU32(this.buf, this.length, v);
    this.length += 4;
  }

  u64(v: number): void {
    this.room(8);
    putU64(this.buf, this.length, v);
    this.length += 8;
  }

  raw(b: Uint8Array): void {
    this.room(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.raw(b);
  }

  str(s: string): void {
    const b = utf8.encode(s);
    this.u8(b.byteLength);
    this.raw(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

// ---- reader --------------------------------------------------------------------------------

class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) throw new PbftDecodeError(`truncated at byte ${this.pos} (need ${n} more)`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    if (hi > 0x1f_ffff) throw new PbftDecodeError(`u64 at byte ${this.pos} is not a safe integer`);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(max: number, what: string): Uint8Array {
    const n = this.u32();
    if (n > max) throw new PbftDecodeError(`${what} of ${n} bytes over the limit ${max}`);
    return this.raw(n);
  }

  str(max: number, what: string): string {
    const n = this.u8();
    if (n > max) throw new PbftDecodeError(`${what} of ${n} bytes over the limit ${max}`);
    this.need(n);
    try {
      return utf8Strict.decode(this.buf.subarray(this.pos, (this.pos += n)));
    } catch {
      throw new PbftDecodeError(`${what} is not UTF-8`);
    }
  }

  count(max: number, what: string): number {
    const n = this.u16();
    if (n > max) throw new PbftDecodeError(`${n} ${what} over the limit ${max}`);
    return n;
  }

  replica(): number {
    const r = this.u16();
    if (r >= MAX_REPLICAS) throw new PbftDecodeError(`replica index ${r} >= ${MAX_REPLICAS}`);
    return r;
  }

  atEnd(): boolean {
    return this.pos === this.buf.byteLength;
  }

  end(): void {
    if (this.pos !== this.buf.byteLength) throw new PbftDecodeError(`${this.buf.byteLength - this.pos} trailing bytes`);
  }
}

// ---- signed parts --------------------------------------------------------------------------

function header(w: Writer, type: PbftMessageType): void {
  w.u8(PBFT_WIRE_VERSION);
  w.u8(TYPE_CODES[type]);
}

function writeEndorsements(w: Writer, list: readonly Endorsement[]): void {
  w.u16(list.length);
  for (const e of list) {
    w.u16(e.replica);
    w.raw(e.signature);
  }
}

function writeCheckpointProof(w: Writer, p: CheckpointProof): void {
  w.u64(p.seq);
  w.raw(p.digest);
  writeEndorsements(w, p.signatures);
}

function writePreparedCertificate(w: Writer, c: PreparedCertificate): void {
  w.u64(c.view);
  w.u64(c.seq);
  w.raw(c.digest);
  w.raw(c.prePrepare);
  writeEndorsements(w, c.prepares);
}

/** The bytes a client signs (its request without the signature). */
export function requestSignedPart(r: Omit<RequestMessage, 'signature' | 'type'>): Uint8Array {
  const w = new Writer();
  header(w, 'request');
  w.str(r.client);
  w.u64(r.timestamp);
  w.bytes(r.op);
  return w.finish();
}

const NO_PREFIX: Uint8Array = new Uint8Array(0);

/** What a client signs for a bundle of `size` requests: (version, 0x40, u16 size, root); 36 bytes. */
export function bundleSignedPart(size: number, root: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + DIGEST_BYTES);
  out[0] = PBFT_WIRE_VERSION;
  out[1] = REQUEST_BUNDLE_CODE;
  putU16(out, 2, size);
  out.set(root, 4);
  return out;
}

/** Fixed-size signed parts are written in one buffer, after an optional signing-domain prefix. */
function fixedPart(prefix: Uint8Array, type: PbftMessageType, size: number): { out: Uint8Array; at: number } {
  const at = prefix.byteLength;
  const out = new Uint8Array(at + size);
  out.set(prefix, 0);
  out[at] = PBFT_WIRE_VERSION;
  out[at + 1] = TYPE_CODES[type];
  return { out, at: at + 2 };
}

/** Signed part shared by PRE-PREPARE, PREPARE and COMMIT: (view, seq, digest, replica); 52 bytes. */
export function agreementSignedPart(type: 'prePrepare' | 'prepare' | 'commit', view: number, seq: number, digest: Uint8Array, replica: number, prefix: Uint8Array = NO_PREFIX): Uint8Array {
  const p = fixedPart(prefix, type, 52);
  putU64(p.out, p.at, view);
  putU64(p.out, p.at + 8, seq);
  p.out.set(digest, p.at + 16);
  putU16(p.out, p.at + 48, replica);
  return p.out;
}

/** CHECKPOINT: (seq, digest, replica); 44 bytes. */
export function checkpointSignedPart(seq: number, digest: Uint8Array, replica: number, prefix: Uint8Array = NO_PREFIX): Uint8Array {
  const p = fixedPart(prefix, 'checkpoint', 44);
  putU64(p.out, p.at, seq);
  p.out.set(digest, p.at + 8);
  putU16(p.out, p.at + 40, replica);
  return p.out;
}

/** Signed part of a REPLY: one signature covers every reply leaf of a batch through `root`; 52 bytes. */
export function replySignedPart(view: number, seq: number, root: Uint8Array, replica: number, prefix: Uint8Array = NO_PREFIX): Uint8Array {
  const p = fixedPart(prefix, 'reply', 52);
  putU64(p.out, p.at, view);
  putU64(p.out, p.at + 8, seq);
  p.out.set(root, p.at + 16);
  putU16(p.out, p.at + 48, replica);
  return p.out;
}

/** The bytes covered by the message's signature (for a REQUEST: the client's). */
export function signedPart(m: PbftMessage): Uint8Array {
  switch (m.type) {
    case 'request':
      return requestSignedPart(m);
    case 'prePrepare':
    case 'prepare':
    case 'commit':
      return agreementSignedPart(m.type, m.view, m.seq, m.digest, m.replica);
    case 'checkpoint':
      return checkpointSignedPart(m.seq, m.digest, m.replica);
    case 'reply':
      return replySignedPart(m.view, m.seq, m.root, m.replica);
    default:
      break;
  }
  const w = new Writer();
  header(w, m.type);
  switch (m.type) {
    case 'viewChange':
      w.u64(m.view);
      writeCheckpointProof(w, m.checkpoint);
      w.u16(m.prepared.length);
      for (const c of m.prepared) writePreparedCertificate(w, c);
      break;
    case 'newView':
      w.u64(m.view);
      w.u16(m.viewChanges.length);
      for (const vc of m.viewChanges) w.bytes(encodeMessage(vc));
      w.u16(m.prePrepares.length);
      for (const p of m.prePrepares) {
        w.u64(p.seq);
        w.raw(p.digest);
        w.raw(p.signature);
      }
      break;
    case 'status':
      w.u64(m.view);
      w.u8(m.active ? 1 : 0);
      w.u64(m.stableSeq);
      w.u64(m.lastExecuted);
      break;
    case 'fetchState':
      w.u64(m.seq);
      w.u32(m.offset);
      break;
    case 'stateChunk':
      writeCheckpointProof(w, m.proof);
      w.u32(m.totalBytes);
      w.u32(m.offset);
      w.bytes(m.data);
      break;
    case 'fetchBatch':
    case 'batch':
      w.raw(m.digest);
      break;
    case 'commitCertificate':
      w.u64(m.view);
      w.u64(m.seq);
      w.raw(m.digest);
      writeEndorsements(w, m.commits);
      break;
  }
  w.u16(m.replica);
  return w.finish();
}

/** The canonical encoding of one request (what batch digests and leaves are computed over). */
export function encodeRequest(r: RequestMessage): Uint8Array {
  return encodeMessage(r);
}

function writeBatch(w: Writer, batch: readonly RequestMessage[]): void {
  w.u16(batch.length);
  for (const r of batch) w.bytes(encodeRequest(r));
}

export function encodeMessage(m: PbftMessage): Uint8Array {
  const w = new Writer();
  w.raw(signedPart(m));
  w.raw(m.signature);
  switch (m.type) {
    case 'request':
      if (m.bundle !== undefined) {
        // The trailer is the proof: a request without one ends at its signature.
        w.u16(m.bundle.index);
        w.u16(m.bundle.size);
        w.u8(m.bundle.path.length);
        for (const p of m.bundle.path) w.raw(p);
      }
      break;
    case 'prePrepare':
    case 'batch':
    case 'commitCertificate':
      writeBatch(w, m.batch);
      break;
    case 'reply':
      w.str(m.client);
      w.u64(m.timestamp);
      w.bytes(m.result);
      w.u16(m.index);
      w.u16(m.leafCount);
      w.u8(m.path.length);
      for (const p of m.path) w.raw(p);
      break;
    default:
      break;
  }
  return w.finish();
}

// ---- decoding ------------------------------------------------------------------------------

/** Max path elements of a reply proof (a tree of 65,535 leaves needs 16). */
const MAX_PATH = 16;
/** Nested VIEW-CHANGEs in a NEW-VIEW, and endorsements in any proof: at most one per replica. */
const MAX_SIGNERS = MAX_REPLICAS;

function readEndorsements(r: Reader): Endorsement[] {
  const n = r.count(MAX_SIGNERS, 'endorsements');
  const out: Endorsement[] = [];
  for (let i = 0; i < n; i++) out.push({ replica: r.replica(), signature: r.raw(SIGNATURE_BYTES) });
  return out;
}

function readCheckpointProof(r: Reader): CheckpointProof {
  return { seq: r.u64(), digest: r.raw(DIGEST_BYTES), signatures: readEndorsements(r) };
}

function readBatch(r: Reader, limits: CodecLimits): RequestMessage[] {
  const n = r.count(limits.maxBatchRequests, 'requests in a batch');
  const out: RequestMessage[] = [];
  const maxRequestBytes = 2 + 1 + limits.maxClientIdBytes + 8 + 4 + limits.maxOpBytes + SIGNATURE_BYTES + MAX_BUNDLE_TRAILER_BYTES;
  for (let i = 0; i < n; i++) {
    const m = decodeMessage(r.bytes(maxRequestBytes, 'request'), limits);
    if (m.type !== 'request') throw new PbftDecodeError(`batch element ${i} is a ${m.type}`);
    out.push(m);
  }
  return out;
}

/** Decodes one message; throws PbftDecodeError on anything malformed, over a limit, or with trailing bytes. */
export function decodeMessage(bytes: Uint8Array, limits: CodecLimits): PbftMessage {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== PBFT_WIRE_VERSION) throw new PbftDecodeError(`unknown version ${version}`);
  const code = r.u8();
  const type = TYPE_BY_CODE.get(code);
  if (type === undefined) throw new PbftDecodeError(`unknown message type ${code}`);
  const m = decodeBody(r, type, limits);
  r.end();
  return m;
}

function requestBody(r: Reader, limits: CodecLimits): RequestMessage {
  const client = r.str(limits.maxClientIdBytes, 'client id');
  const timestamp = r.u64();
  const op = r.bytes(limits.maxOpBytes, 'op');
  const signature = r.raw(SIGNATURE_BYTES);
  return r.atEnd() ? { type: 'request', client, timestamp, op, signature } : { type: 'request', client, timestamp, op, signature, bundle: bundleProof(r) };
}

function bundleProof(r: Reader): RequestBundleProof {
  const index = r.u16();
  const size = r.u16();
  const pathLength = r.u8();
  if (size < 2 || size > MAX_REQUEST_BUNDLE || index >= size) throw new PbftDecodeError(`bundle leaf ${index} of ${size} (2..${MAX_REQUEST_BUNDLE})`);
  if (pathLength > MAX_BUNDLE_PATH) throw new PbftDecodeError(`bundle path of ${pathLength} over ${MAX_BUNDLE_PATH}`);
  const path: Uint8Array[] = [];
  for (let i = 0; i < pathLength; i++) path.push(r.raw(DIGEST_BYTES));
  return { index, size, path };
}

/** Decodes one REQUEST (what a commit certificate carries) without the other message types' code. */
export function decodeRequest(bytes: Uint8Array, limits: CodecLimits): RequestMessage {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== PBFT_WIRE_VERSION) throw new PbftDecodeError(`unknown version ${version}`);
  const code = r.u8();
  if (code !== TYPE_CODES.request) throw new PbftDecodeError(`expected a request, got message type ${code}`);
  const m = requestBody(r, limits);
  r.end();
  return m;
}

function decodeBody(r: Reader, type: PbftMessageType, limits: CodecLimits): PbftMessage {
  const sig = (): Uint8Array => r.raw(SIGNATURE_BYTES);
  switch (type) {
    case 'request':
      return requestBody(r, limits);
    case 'prePrepare': {
      const view = r.u64();
      const seq = r.u64();
      const digest = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      const signature = sig();
      return { type, view, seq, digest, replica, signature, batch: readBatch(r, limits) } satisfies PrePrepareMessage;
    }
    case 'prepare':
    case 'commit': {
      const view = r.u64();
      const seq = r.u64();
      const digest = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      return { type, view, seq, digest, replica, signature: sig() } satisfies PrepareMessage | CommitMessage;
    }
    case 'checkpoint': {
      const seq = r.u64();
      const digest = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      return { type, seq, digest, replica, signature: sig() } satisfies CheckpointMessage;
    }
    case 'viewChange': {
      const view = r.u64();
      const checkpoint = readCheckpointProof(r);
      const n = r.count(limits.watermarkWindow, 'prepared certificates');
      const prepared: PreparedCertificate[] = [];
      for (let i = 0; i < n; i++) {
        prepared.push({ view: r.u64(), seq: r.u64(), digest: r.raw(DIGEST_BYTES), prePrepare: r.raw(SIGNATURE_BYTES), prepares: readEndorsements(r) });
      }
      const replica = r.replica();
      return { type, view, checkpoint, prepared, replica, signature: sig() } satisfies ViewChangeMessage;
    }
    case 'newView': {
      const view = r.u64();
      const n = r.count(MAX_SIGNERS, 'view changes');
      const viewChanges: ViewChangeMessage[] = [];
      // A VIEW-CHANGE holds at most L certificates of at most MAX_SIGNERS endorsements each.
      const maxVcBytes = 64 + (limits.watermarkWindow + 1) * (8 + 8 + DIGEST_BYTES + SIGNATURE_BYTES + 2 + MAX_SIGNERS * (2 + SIGNATURE_BYTES));
      for (let i = 0; i < n; i++) {
        const vc = decodeMessage(r.bytes(maxVcBytes, 'view change'), limits);
        if (vc.type !== 'viewChange') throw new PbftDecodeError(`new-view element ${i} is a ${vc.type}`);
        viewChanges.push(vc);
      }
      const k = r.count(limits.watermarkWindow, 'new-view pre-prepares');
      const prePrepares: NewViewPrePrepare[] = [];
      for (let i = 0; i < k; i++) prePrepares.push({ seq: r.u64(), digest: r.raw(DIGEST_BYTES), signature: r.raw(SIGNATURE_BYTES) });
      const replica = r.replica();
      return { type, view, viewChanges, prePrepares, replica, signature: sig() } satisfies NewViewMessage;
    }
    case 'status': {
      const view = r.u64();
      const activeByte = r.u8();
      if (activeByte > 1) throw new PbftDecodeError('status active flag is not 0 or 1');
      const stableSeq = r.u64();
      const lastExecuted = r.u64();
      const replica = r.replica();
      return { type, view, active: activeByte === 1, stableSeq, lastExecuted, replica, signature: sig() } satisfies StatusMessage;
    }
    case 'fetchState': {
      const seq = r.u64();
      const offset = r.u32();
      const replica = r.replica();
      return { type, seq, offset, replica, signature: sig() } satisfies FetchStateMessage;
    }
    case 'stateChunk': {
      const proof = readCheckpointProof(r);
      const totalBytes = r.u32();
      if (totalBytes > limits.maxStateBytes) throw new PbftDecodeError(`state of ${totalBytes} bytes over the limit ${limits.maxStateBytes}`);
      const offset = r.u32();
      const data = r.bytes(limits.stateChunkBytes, 'state chunk');
      if (offset + data.byteLength > totalBytes) throw new PbftDecodeError('state chunk past the end of the state');
      const replica = r.replica();
      return { type, proof, totalBytes, offset, data, replica, signature: sig() } satisfies StateChunkMessage;
    }
    case 'fetchBatch': {
      const digest = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      return { type, digest, replica, signature: sig() } satisfies FetchBatchMessage;
    }
    case 'batch': {
      const digest = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      const signature = sig();
      return { type, digest, replica, signature, batch: readBatch(r, limits) } satisfies BatchMessage;
    }
    case 'commitCertificate': {
      const view = r.u64();
      const seq = r.u64();
      const digest = r.raw(DIGEST_BYTES);
      const commits = readEndorsements(r);
      const replica = r.replica();
      const signature = sig();
      return { type, view, seq, digest, commits, replica, signature, batch: readBatch(r, limits) } satisfies CommitCertificateMessage;
    }
    case 'reply': {
      const view = r.u64();
      const seq = r.u64();
      const root = r.raw(DIGEST_BYTES);
      const replica = r.replica();
      const signature = sig();
      const client = r.str(limits.maxClientIdBytes, 'client id');
      const timestamp = r.u64();
      const result = r.bytes(limits.maxResultBytes, 'result');
      const index = r.u16();
      const leafCount = r.u16();
      const pathLength = r.u8();
      if (pathLength > MAX_PATH) throw new PbftDecodeError(`reply path of ${pathLength} over ${MAX_PATH}`);
      if (index >= leafCount) throw new PbftDecodeError(`reply leaf ${index} of ${leafCount}`);
      const path: Uint8Array[] = [];
      for (let i = 0; i < pathLength; i++) path.push(r.raw(DIGEST_BYTES));
      return { type, view, seq, root, replica, signature, client, timestamp, result, index, leafCount, path } satisfies ReplyMessage;
    }
  }
}

/** Is the UTF-8 form of `s` at most `max` bytes? (A UTF-16 unit is at most 3 bytes: short strings need no encoding.) */
export function utf8Within(s: string, max: number): boolean {
  return s.length * 3 <= max || utf8.encode(s).byteLength <= max;
}

/** Encoded size without building the bytes twice (used for batch byte limits). */
export function requestSize(r: RequestMessage): number {
  return 2 + 1 + utf8.encode(r.client).byteLength + 8 + 4 + r.op.byteLength + SIGNATURE_BYTES;
}

/** A reply leaf: `client(str8) ‖ timestamp(u64) ‖ digest(result)`; hashed as a Merkle leaf. */
export function replyLeafData(client: string, timestamp: number, resultDigest: Uint8Array): Uint8Array {
  const w = new Writer();
  w.str(client);
  w.u64(timestamp);
  w.raw(resultDigest);
  return w.finish();
}

export { Writer as ByteWriter, Reader as ByteReader };
