// The ICO 1.1 frame decoder (src/ico/frame.ts: binary frames of n messages under one signature,
// and JSON frames) under the shared decoder harness: random bytes, byte-level mutations of
// sealed frames, and layout-aware edits (header bytes, sender, seq, timestamp and count fields,
// a message's type, encoding and varint length, appended or cut bytes), half of them re-signed
// with the sender's real key so the checks behind the signature (types, payloads, replay) are
// reached. Every input decodes to the sealed messages (or, re-signed, to messages within the
// rules) or is rejected with an ICO_* code.
import fc from 'fast-check';
import { DEFAULT_CODEC_LIMITS, ICO_TYPES, IcoError, ReplayGuard, isRfc3339Utc, type IcoErrorCode } from '../../src/ico/index.ts';
import { PAYLOAD_BYTES, PAYLOAD_JSON, decodeFrame, encodeJsonPayload, sealBinaryFrame, type BinaryMessage, type IcoMessage } from '../../src/ico/frame.ts';
import { identity } from '../unit/ico-fixtures.ts';
import { fuzzDecoder, type Decoded, type Mutant } from './decoder-harness.ts';

const NOW = Date.parse('2026-11-24T16:35:38.169Z');
const MAX_FRAME_BYTES = 4096;
const SIGNATURE_BYTES = 64;
/** Offsets in a binary frame (layout 1): magic, flags, major, minor, sender length, sender (38 bytes), seq, timestamp, count, messages. */
const AT = { magic: 0, flags: 1, major: 2, minor: 3, senderLength: 4, sender: 5, seq: 43, timestamp: 51, count: 59, messages: 61 } as const;

const ERROR_CODES: ReadonlySet<IcoErrorCode> = new Set<IcoErrorCode>(['ICO_MALFORMED', 'ICO_UNKNOWN_TYPE', 'ICO_BAD_SIGNATURE', 'ICO_SENDER_MISMATCH', 'ICO_REPLAYED', 'ICO_TIMESTAMP_SKEW', 'ICO_FRAME_TOO_LARGE']);

const ids = [await identity(), await identity()];
const json = (payload: Record<string, unknown>): BinaryMessage['body'] => encodeJsonPayload(payload as never);
const messageSets: BinaryMessage[][] = [
  [{ type: 'CONSENSUS', encoding: PAYLOAD_BYTES, body: Uint8Array.from([1, 2, 3, 250]) }],
  [
    { type: 'HEARTBEAT', encoding: PAYLOAD_JSON, body: json({ beat: 3 }) },
    { type: 'STATE_SYNC', encoding: PAYLOAD_JSON, body: json({ kind: 'ranges', items: [1, 'x', { n: null }], text: 'héllo ✓' }) },
    { type: 'CONSENSUS', encoding: PAYLOAD_BYTES, body: new Uint8Array(130).fill(7) },
  ],
  [{ type: 'GOODBYE', encoding: PAYLOAD_JSON, body: json({ code: 'shutdown', reason: 'bye' }) }],
];
const samples: Uint8Array[] = [];
for (const id of ids) for (const set of messageSets) samples.push(sealBinaryFrame(id.sealer, set, NOW).frame);
// JSON frames go through the same decoder: one sealed envelope each.
samples.push(ids[0]!.sealer.seal('HEARTBEAT', { beat: 1 }, NOW).bytes);

function decode(bytes: Uint8Array): Decoded<IcoMessage[]> {
  const r = decodeFrame(bytes, { now: NOW, replay: new ReplayGuard(), limits: { maxFrameBytes: MAX_FRAME_BYTES } });
  return r.ok ? { ok: true, value: r.messages } : { ok: false, error: r.error };
}

function same(a: IcoMessage[], b: IcoMessage[]): boolean {
  return a.length === b.length && a.every((m, i) => JSON.stringify(m.envelope) === JSON.stringify(b[i]!.envelope));
}

type Edit =
  | { kind: 'byte'; field: 'magic' | 'flags' | 'major' | 'minor' | 'senderLength'; value: number }
  | { kind: 'u64'; field: 'seq' | 'timestamp'; high: number; low: number }
  | { kind: 'count'; value: number }
  | { kind: 'message-byte'; offset: number; value: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'cut'; length: number };

const edgeByte = fc.oneof(fc.constantFrom(0, 1, 2, 5, 6, 0x7f, 0x80, 0xb1, 0xff), fc.integer({ min: 0, max: 255 }));
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), field: fc.constantFrom('magic' as const, 'flags' as const, 'major' as const, 'minor' as const, 'senderLength' as const), value: edgeByte }),
  fc.record({ kind: fc.constant('u64' as const), field: fc.constantFrom('seq' as const, 'timestamp' as const), high: fc.constantFrom(0, 1, 2 ** 21 - 1, 2 ** 21, 0xffffffff), low: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, NOW % 2 ** 32) }),
  fc.record({ kind: fc.constant('count' as const), value: fc.constantFrom(0, 1, 2, 3, 4, 1024, 1025, 0xffff) }),
  fc.record({ kind: fc.constant('message-byte' as const), offset: fc.nat({ max: 200 }), value: edgeByte }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('cut' as const), length: fc.integer({ min: 1, max: 80 }) }),
);

/** Layout edits on a binary sample; with `sign`, the bytes before the last 64 are signed again by the sender. */
const structured: fc.Arbitrary<Mutant<IcoMessage[]>> = fc.tuple(fc.nat({ max: samples.length - 2 }), fc.array(editArb, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.nat({ max: ids.length - 1 })).map(([i, edits, sign, signerIndex]) => {
  let frame = samples[i]!.slice();
  for (const e of edits) {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    switch (e.kind) {
      case 'byte':
        if (AT[e.field] < frame.length) frame[AT[e.field]] = e.value;
        break;
      case 'u64':
        if (AT[e.field] + 8 > frame.length) break;
        view.setUint32(AT[e.field], e.high);
        view.setUint32(AT[e.field] + 4, e.low);
        break;
      case 'count':
        if (AT.count + 2 <= frame.length) view.setUint16(AT.count, e.value);
        break;
      case 'message-byte': {
        const at = AT.messages + (e.offset % Math.max(1, frame.length - SIGNATURE_BYTES - AT.messages));
        if (at < frame.length) frame[at] = e.value;
        break;
      }
      case 'append': {
        if (frame.length < SIGNATURE_BYTES) break;
        const grown = new Uint8Array(frame.length + e.bytes.length);
        grown.set(frame.subarray(0, frame.length - SIGNATURE_BYTES));
        grown.set(e.bytes, frame.length - SIGNATURE_BYTES);
        grown.set(frame.subarray(frame.length - SIGNATURE_BYTES), frame.length - SIGNATURE_BYTES + e.bytes.length);
        frame = grown;
        break;
      }
      case 'cut':
        frame = frame.slice(0, Math.max(0, frame.length - e.length));
        break;
    }
  }
  if (!sign || frame.length <= SIGNATURE_BYTES) return { bytes: frame };
  // Re-signed by a real key (the frame's own sender or the other identity, whose key the sender field may not name).
  const signature = ids[signerIndex]!.signer.sign(frame.subarray(0, frame.length - SIGNATURE_BYTES));
  frame.set(signature, frame.length - SIGNATURE_BYTES);
  return { bytes: frame, resigned: true };
});

fuzzDecoder<IcoMessage[]>({
  name: 'ICO frame decoder (binary and JSON frames)',
  samples,
  decode,
  errorCodes: ERROR_CODES,
  codeOf: (e) => (e instanceof IcoError ? e.code : null),
  same,
  invariant(messages) {
    if (messages.length === 0) return 'no messages';
    for (const { envelope: e } of messages) {
      if (!(ICO_TYPES as readonly string[]).includes(e.type)) return `type ${e.type}`;
      if (!Number.isSafeInteger(e.seq) || e.seq <= 0) return `seq ${e.seq}`;
      if (!isRfc3339Utc(e.timestamp) || Math.abs(Date.parse(e.timestamp) - NOW) > DEFAULT_CODEC_LIMITS.maxSkewMs) return `timestamp ${e.timestamp}`;
      if (!ids.some((id) => id.peerId === e.sender)) return `sender ${e.sender} is no key that signed`;
      if (typeof e.payload !== 'object' || e.payload === null || Array.isArray(e.payload)) return 'payload is not an object';
    }
    return null;
  },
  structured,
});
