// The binary frame codec: a sealed frame decodes to the messages put in, with one signature
// for all; its JSON rendering equals the JSON envelopes of the same messages; and every
// mutation, truncation, oversize frame or garbage input is a typed rejection, never a throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalize } from '../../src/crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer } from '../../src/ico/envelope.ts';
import {
  BINARY_FRAME_MAGIC, BINARY_FRAME_OVERHEAD, bytesPayload, decodeFrame, encodeJsonPayload, MAX_MESSAGES_PER_FRAME, openFrame, PAYLOAD_BYTES, PAYLOAD_JSON, payloadBytes,
  sealBinaryFrame, type BinaryMessage, type FrameDecodeResult,
} from '../../src/ico/frame.ts';
import { ReplayGuard } from '../../src/ico/replay.ts';
import { ICO_TYPES, ICO_VERSION, type IcoErrorCode, type IcoType, type JsonObject } from '../../src/ico/types.ts';
import { identity } from './ico-fixtures.ts';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const alice = await identity();
const bob = await identity();

function json(type: IcoType, payload: JsonObject): BinaryMessage {
  return { type, encoding: PAYLOAD_JSON, body: encodeJsonPayload(payload) };
}
function raw(type: IcoType, bytes: Uint8Array): BinaryMessage {
  return { type, encoding: PAYLOAD_BYTES, body: bytes };
}

function codeOf(r: FrameDecodeResult): IcoErrorCode | 'ok' {
  return r.ok ? 'ok' : r.error.code;
}

/** Signs `frame` again after a hand edit (to reach the checks that run after the signature). */
function resign(frame: Uint8Array, who = alice): Uint8Array {
  const out = frame.slice();
  out.set(who.signer.sign(out.subarray(0, out.length - 64)), out.length - 64);
  return out;
}

const SENDER_AT = 5;
const SEQ_AT = SENDER_AT + 38;
const COUNT_AT = SEQ_AT + 16;
const FIRST_MESSAGE_AT = COUNT_AT + 2;

test('a binary frame carries n messages with consecutive seqs, one timestamp and one signature', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq: 1000 });
  const blob = Uint8Array.from([0, 1, 2, 255]);
  const sealed = sealBinaryFrame(sealer, [json('CONSENSUS', { k: 'raft', n: 1 }), raw('CONSENSUS', blob), json('HEARTBEAT', { beat: 3 })], NOW);
  assert.equal(sealed.frame[0], BINARY_FRAME_MAGIC);
  assert.equal(sealed.firstSeq, 1000);
  assert.equal(sealer.lastSeq, 1002, 'the sealer counted three seqs');
  const r = decodeFrame(sealed.frame, { now: NOW, expectedSender: alice.peerId, replay: new ReplayGuard() });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.encoding, 'binary');
  assert.deepEqual(r.messages.map((m) => [m.envelope.type, m.envelope.seq]), [['CONSENSUS', 1000], ['CONSENSUS', 1001], ['HEARTBEAT', 1002]]);
  for (const m of r.messages) {
    assert.equal(m.envelope.v, ICO_VERSION);
    assert.equal(m.envelope.sender, alice.peerId);
    assert.equal(m.envelope.timestamp, '2026-11-24T12:00:00.000Z');
    assert.match(m.envelope.signature, /^[A-Za-z0-9_-]{86}$/);
  }
  assert.deepEqual(r.messages[0]!.envelope.payload, { k: 'raft', n: 1 });
  assert.equal(r.messages[0]!.bytes, undefined);
  assert.deepEqual(r.messages[1]!.bytes, blob, 'raw bytes arrive as bytes');
  assert.deepEqual(r.messages[1]!.envelope.payload, bytesPayload(blob), 'and show as {"$bytes": …} in the JSON form');
  // Without an expected sender the PeerId is rebuilt from the key in the frame.
  const anon = decodeFrame(sealed.frame, { now: NOW });
  assert.ok(anon.ok && anon.messages[0]!.envelope.sender === alice.peerId);
});

test('a JSON frame goes through the same entry point, and its {"$bytes"} payload arrives as bytes', () => {
  const blob = Uint8Array.from([9, 8, 7]);
  const { bytes, envelope } = alice.sealer.seal('STATE_SYNC', bytesPayload(blob), NOW);
  const r = decodeFrame(bytes, { now: NOW, expectedSender: alice.peerId });
  assert.ok(r.ok);
  assert.equal(r.encoding, 'json');
  assert.deepEqual(r.messages[0]!.envelope, envelope);
  assert.deepEqual(r.messages[0]!.bytes, blob);
  assert.deepEqual(payloadBytes({ $bytes: 'AQI', other: 1 }), undefined, 'only a payload with $bytes alone stands for bytes');
});

// JSON data both encodings accept (JCS can serialize it).
const jcsJson = fc.jsonValue({ maxDepth: 4 }).filter((v) => {
  try {
    canonicalize(v);
    return true;
  } catch {
    return false;
  }
});
const message = fc.record({
  type: fc.constantFrom<IcoType>(...ICO_TYPES),
  payload: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), jcsJson, { maxKeys: 5 }), fc.uint8Array({ maxLength: 64 })),
});

test('equivalence: the binary frame and the JSON envelopes of the same messages carry the same content (300 random batches)', () => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 2 ** 40 }), (msgs, startSeq) => {
      const viaJson = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq });
      const viaBinary = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq });
      const sealed = sealBinaryFrame(viaBinary, msgs.map((m) => (m.payload instanceof Uint8Array ? raw(m.type, m.payload) : json(m.type, m.payload as JsonObject))), NOW);
      const bin = decodeFrame(sealed.frame, { now: NOW, expectedSender: alice.peerId, replay: new ReplayGuard() });
      assert.ok(bin.ok, bin.ok ? '' : bin.error.message);
      const jsonReplay = new ReplayGuard();
      msgs.forEach((m, i) => {
        const payload = m.payload instanceof Uint8Array ? bytesPayload(m.payload) : (m.payload as JsonObject);
        const j = decodeFrame(viaJson.seal(m.type, payload, NOW).bytes, { now: NOW, expectedSender: alice.peerId, replay: jsonReplay });
        assert.ok(j.ok, j.ok ? '' : j.error.message);
        const a = j.messages[0]!;
        const b = bin.messages[i]!;
        const { signature: _sa, ...contentA } = a.envelope;
        const { signature: _sb, ...contentB } = b.envelope;
        assert.deepEqual(contentB, contentA);
        assert.equal(canonicalize(contentB.payload), canonicalize(contentA.payload));
        assert.deepEqual(b.bytes, a.bytes);
      });
    }),
    { numRuns: 300 },
  );
});

test('every single-byte change anywhere in a frame is rejected with a typed error', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('CONSENSUS', { a: [1, 2, 3], s: 'x' }), raw('STATE_SYNC', Uint8Array.of(1, 2, 3, 4))], NOW);
  const seen = new Set<string>();
  for (let i = 0; i < frame.length; i++) {
    for (const flip of [0x01, 0x80, 0xff]) {
      const bad = frame.slice();
      bad[i] = (bad[i] as number) ^ flip;
      const r = decodeFrame(bad, { now: NOW, expectedSender: alice.peerId, replay: new ReplayGuard() });
      assert.equal(r.ok, false, `byte ${i} ^ ${flip} was accepted`);
      if (!r.ok) seen.add(r.error.code);
    }
  }
  // Layout bytes fail as malformed, the sender's key as a mismatch, the rest on the signature.
  for (const code of ['ICO_MALFORMED', 'ICO_SENDER_MISMATCH', 'ICO_BAD_SIGNATURE']) assert.ok(seen.has(code), `${code} among ${[...seen].join(', ')}`);
});

test('every truncation of a frame is rejected, and appended bytes too', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('CONSENSUS', { k: 'v' }), json('HEARTBEAT', { beat: 1 })], NOW);
  for (let n = 0; n < frame.length; n++) {
    const r = decodeFrame(frame.subarray(0, n), { now: NOW, expectedSender: alice.peerId });
    assert.equal(r.ok, false, `a ${n}-byte prefix was accepted`);
  }
  const longer = new Uint8Array(frame.length + 1);
  longer.set(frame);
  assert.equal(decodeFrame(longer, { now: NOW, expectedSender: alice.peerId }).ok, false);
});

test('random bytes behind the binary magic never throw and never decode (2,000 inputs)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (tail) => {
      const bytes = new Uint8Array(tail.length + 1);
      bytes[0] = BINARY_FRAME_MAGIC;
      bytes.set(tail, 1);
      const r = decodeFrame(bytes, { now: NOW, expectedSender: alice.peerId, replay: new ReplayGuard() });
      assert.equal(r.ok, false);
    }),
    { numRuns: 2000 },
  );
});

test('a frame over the size limit is ICO_FRAME_TOO_LARGE before anything else is looked at', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [raw('CONSENSUS', new Uint8Array(1000))], NOW);
  assert.equal(codeOf(decodeFrame(frame, { now: NOW, limits: { maxFrameBytes: frame.length } })), 'ok');
  assert.equal(codeOf(decodeFrame(frame, { now: NOW, limits: { maxFrameBytes: frame.length - 1 } })), 'ICO_FRAME_TOO_LARGE');
  // Even one that is garbage after the magic byte.
  assert.equal(codeOf(decodeFrame(new Uint8Array(2000).fill(BINARY_FRAME_MAGIC), { now: NOW, limits: { maxFrameBytes: 1999 } })), 'ICO_FRAME_TOO_LARGE');
});

test('sender binding, clock skew and replay are checked per frame', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('STATE_SYNC', { n: 1 }), json('STATE_SYNC', { n: 2 })], NOW);
  assert.equal(codeOf(decodeFrame(frame, { now: NOW, expectedSender: bob.peerId })), 'ICO_SENDER_MISMATCH');
  assert.equal(codeOf(decodeFrame(frame, { now: NOW + 31_000, expectedSender: alice.peerId })), 'ICO_TIMESTAMP_SKEW');
  assert.equal(codeOf(decodeFrame(frame, { now: NOW - 31_000, expectedSender: alice.peerId })), 'ICO_TIMESTAMP_SKEW');
  const replay = new ReplayGuard();
  assert.equal(codeOf(decodeFrame(frame, { now: NOW, expectedSender: alice.peerId, replay })), 'ok');
  assert.equal(codeOf(decodeFrame(frame, { now: NOW, expectedSender: alice.peerId, replay })), 'ICO_REPLAYED');
  // A frame that overlaps seqs already seen is dropped whole; the window is left as it was.
  const overlapping = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq: sealer.lastSeq! });
  const o = sealBinaryFrame(overlapping, [json('STATE_SYNC', { n: 3 }), json('STATE_SYNC', { n: 4 })], NOW);
  assert.equal(codeOf(decodeFrame(o.frame, { now: NOW, expectedSender: alice.peerId, replay })), 'ICO_REPLAYED');
  assert.ok(replay.check(alice.peerId, sealer.lastSeq! + 1), 'the fresh seq of the rejected frame was not recorded');
  // A JSON envelope sealed by bob is not alice's either.
  const { bytes } = bob.sealer.seal('STATE_SYNC', { x: 1 }, NOW);
  assert.equal(codeOf(decodeFrame(bytes, { now: NOW, expectedSender: alice.peerId })), 'ICO_SENDER_MISMATCH');
});

test('checks after the signature: an unknown type code, a bad count, a non-minimal length, a non-object payload', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('CONSENSUS', { k: 1 })], NOW);
  const typeAt = FIRST_MESSAGE_AT;
  const unknown = frame.slice();
  unknown[typeAt] = 9;
  assert.equal(codeOf(decodeFrame(unknown, { now: NOW })), 'ICO_BAD_SIGNATURE', 'unsigned: just a bad signature');
  assert.equal(codeOf(decodeFrame(resign(unknown), { now: NOW })), 'ICO_UNKNOWN_TYPE', 'signed: the type is what is wrong');
  const zero = frame.slice();
  zero[COUNT_AT + 1] = 0;
  assert.equal(codeOf(decodeFrame(resign(zero), { now: NOW })), 'ICO_MALFORMED');
  const encoding = frame.slice();
  encoding[typeAt + 1] = 7;
  assert.equal(codeOf(decodeFrame(resign(encoding), { now: NOW })), 'ICO_MALFORMED');
  // The same message with its one-byte length written as two bytes (0x8N 0x00).
  const body = encodeJsonPayload({ k: 1 });
  const longLength = new Uint8Array(frame.length + 1);
  longLength.set(frame.subarray(0, typeAt + 2));
  longLength[typeAt + 2] = 0x80 | body.length;
  longLength[typeAt + 3] = 0;
  longLength.set(frame.subarray(typeAt + 3), typeAt + 4);
  assert.equal(codeOf(decodeFrame(resign(longLength), { now: NOW })), 'ICO_MALFORMED');
  const array = sealBinaryFrame(sealer, [{ type: 'CONSENSUS', encoding: PAYLOAD_JSON, body: new TextEncoder().encode('[1,2]') }], NOW);
  assert.equal(codeOf(decodeFrame(array.frame, { now: NOW })), 'ICO_MALFORMED');
  const notUtf8 = sealBinaryFrame(sealer, [{ type: 'CONSENSUS', encoding: PAYLOAD_JSON, body: Uint8Array.of(0x7b, 0xff, 0x7d) }], NOW);
  assert.equal(codeOf(decodeFrame(notUtf8.frame, { now: NOW })), 'ICO_MALFORMED');
});

test(`the limits: 1..${MAX_MESSAGES_PER_FRAME} messages per frame, seqs and timestamps in range`, () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const full = sealBinaryFrame(sealer, Array.from({ length: MAX_MESSAGES_PER_FRAME }, (_, i) => json('CONSENSUS', { i })), NOW);
  const r = decodeFrame(full.frame, { now: NOW, replay: new ReplayGuard() });
  assert.ok(r.ok && r.messages.length === MAX_MESSAGES_PER_FRAME, 'a full frame fits the replay window');
  assert.throws(() => sealBinaryFrame(sealer, Array.from({ length: MAX_MESSAGES_PER_FRAME + 1 }, () => json('CONSENSUS', {})), NOW), RangeError);
  assert.throws(() => sealBinaryFrame(sealer, [], NOW), RangeError);
  const one = sealBinaryFrame(sealer, [json('CONSENSUS', {})], NOW);
  const over = one.frame.slice();
  new DataView(over.buffer).setUint16(COUNT_AT, MAX_MESSAGES_PER_FRAME + 1);
  assert.equal(codeOf(decodeFrame(resign(over), { now: NOW })), 'ICO_MALFORMED');
  const unsafeSeq = one.frame.slice();
  unsafeSeq.fill(0xff, SEQ_AT, SEQ_AT + 8);
  assert.equal(codeOf(decodeFrame(resign(unsafeSeq), { now: NOW })), 'ICO_MALFORMED');
  const zeroSeq = one.frame.slice();
  zeroSeq.fill(0, SEQ_AT, SEQ_AT + 8);
  assert.equal(codeOf(decodeFrame(resign(zeroSeq), { now: NOW })), 'ICO_MALFORMED');
  assert.equal(BINARY_FRAME_OVERHEAD, 5 + 38 + 18 + 64);
});

test('payloads the JSON form cannot carry are refused by the binary encoder too (ICO_MALFORMED)', () => {
  const bad: unknown[] = [{ x: Number.NaN }, { x: Infinity }, { x: undefined }, { x: new Date(0) }, { x: '\ud800' }, { ['\udc00']: 1 }, { x: [1, , 3] }, { x: 1n }];
  for (const [i, payload] of bad.entries()) {
    assert.throws(() => encodeJsonPayload(payload as JsonObject), (e: unknown) => (e as { code?: string }).code === 'ICO_MALFORMED', `case ${i}`);
    assert.throws(() => canonicalize(payload), 'JCS refuses it as well');
  }
  let deep: JsonObject = {};
  for (let i = 0; i < 200; i++) deep = { d: deep };
  assert.throws(() => encodeJsonPayload(deep));
});

test('the JSON decoder still refuses a binary frame (only decodeFrame reads both)', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('CONSENSUS', { k: 1 })], NOW);
  const r = decodeEnvelope(frame, { now: NOW });
  assert.equal(r.ok, false);
});

test('openFrame (the asynchronous signature check a browser tab uses) gives decodeFrame\'s verdict: byte flips, truncations, JSON frames, replay, types after the signature', async () => {
  const verdict = (r: FrameDecodeResult): string => (r.ok ? `ok ${r.encoding} ${JSON.stringify(r.messages.map((m) => m.envelope))}` : `${r.error.code} ${r.error.message}`);
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const { frame } = sealBinaryFrame(sealer, [json('CONSENSUS', { a: [1, 2, 3] }), raw('STATE_SYNC', Uint8Array.of(9, 8, 7))], NOW);
  const ctx = { now: NOW, expectedSender: alice.peerId };
  const cases: Uint8Array[] = [frame, alice.sealer.seal('STATE_SYNC', { k: 'v' }, NOW).bytes, resign(Uint8Array.from(frame, (b, i) => (i === FIRST_MESSAGE_AT ? 0xee : b)))];
  for (let i = 0; i < frame.length; i++) cases.push(Uint8Array.from(frame, (b, j) => (j === i ? b ^ 0x01 : b)));
  for (let n = 0; n < frame.length; n += 7) cases.push(frame.subarray(0, n));
  for (const bytes of cases) assert.equal(verdict(await openFrame(bytes, ctx)), verdict(decodeFrame(bytes, ctx)));
  const [syncGuard, asyncGuard] = [new ReplayGuard(), new ReplayGuard()];
  const frames = Array.from({ length: 4 }, (_, i) => sealBinaryFrame(sealer, [json('HEARTBEAT', { beat: i })], NOW).frame);
  for (const f of [frames[1]!, frames[0]!, frames[1]!, frames[3]!, frames[2]!, frames[3]!]) {
    assert.equal(verdict(await openFrame(f, { ...ctx, replay: asyncGuard })), verdict(decodeFrame(f, { ...ctx, replay: syncGuard })));
  }
  assert.match(verdict(await openFrame(frames[0]!, { ...ctx, replay: asyncGuard })), /^ICO_REPLAYED/);
});
