// The envelope codec rejects every kind of bad input with its own typed error and never
// throws: each field tampered in turn, size, replay, clock skew, sender binding, garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base64urlEncode, canonicalBytes } from '../../src/crypto/index.ts';
import { decodeEnvelope, validateEnvelope, EnvelopeSealer } from '../../src/ico/envelope.ts';
import { ReplayGuard } from '../../src/ico/replay.ts';
import type { Envelope, IcoErrorCode } from '../../src/ico/types.ts';
import { identity } from './ico-fixtures.ts';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const alice = await identity();
const bob = await identity();
const enc = new TextEncoder();

function codeOf(bytes: Uint8Array, ctx: Parameters<typeof decodeEnvelope>[1] = { now: NOW }): IcoErrorCode | 'ok' {
  const r = decodeEnvelope(bytes, ctx);
  return r.ok ? 'ok' : r.error.code;
}

function bytesOf(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** Re-signs a hand-made envelope with `who`'s key (to test checks that come after the signature). */
function resign(value: Omit<Envelope, 'signature'> & Record<string, unknown>, who = alice): Record<string, unknown> {
  const { signature: _s, ...unsigned } = value as Record<string, unknown>;
  return { ...unsigned, signature: base64urlEncode(who.signer.sign(canonicalBytes(unsigned))) };
}

test('a sealed envelope decodes and verifies', () => {
  const { envelope, bytes } = alice.sealer.seal('STATE_SYNC', { hello: 'world', n: 1 }, NOW);
  const r = decodeEnvelope(bytes, { now: NOW, expectedSender: alice.peerId, replay: new ReplayGuard() });
  assert.ok(r.ok);
  assert.deepEqual(r.envelope, envelope);
  assert.equal(envelope.v, '1.0');
  assert.equal(envelope.timestamp, '2026-11-24T12:00:00.000Z');
});

test('seq rises monotonically, also across a restarted sealer', () => {
  const a = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const s1 = a.seal('HEARTBEAT', { beat: 1 }, NOW).envelope.seq;
  const s2 = a.seal('HEARTBEAT', { beat: 2 }, NOW).envelope.seq;
  const restarted = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const s3 = restarted.seal('HEARTBEAT', { beat: 1 }, NOW + 1).envelope.seq;
  assert.ok(s1 < s2 && s2 < s3);
});

test('every field tampered is rejected with the right error', () => {
  const { envelope } = alice.sealer.seal('STATE_SYNC', { k: 'v' }, NOW);
  const cases: Array<[string, Record<string, unknown>, IcoErrorCode]> = [
    ['v changed', { ...envelope, v: '1.1' }, 'ICO_BAD_SIGNATURE'],
    ['v malformed', { ...envelope, v: 'one' }, 'ICO_MALFORMED'],
    ['type changed', { ...envelope, type: 'CONSENSUS' }, 'ICO_BAD_SIGNATURE'],
    ['type not a string', { ...envelope, type: 7 }, 'ICO_MALFORMED'],
    ['sender swapped', { ...envelope, sender: bob.peerId }, 'ICO_BAD_SIGNATURE'],
    ['sender garbage', { ...envelope, sender: 'node_123' }, 'ICO_MALFORMED'],
    ['seq changed', { ...envelope, seq: envelope.seq + 1 }, 'ICO_BAD_SIGNATURE'],
    ['seq negative', { ...envelope, seq: -1 }, 'ICO_MALFORMED'],
    ['seq fractional', { ...envelope, seq: 1.5 }, 'ICO_MALFORMED'],
    ['timestamp changed', { ...envelope, timestamp: '2026-11-24T12:00:01.000Z' }, 'ICO_BAD_SIGNATURE'],
    ['timestamp not UTC', { ...envelope, timestamp: '2026-11-24T12:00:00+01:00' }, 'ICO_MALFORMED'],
    ['payload changed', { ...envelope, payload: { k: 'w' } }, 'ICO_BAD_SIGNATURE'],
    ['payload not an object', { ...envelope, payload: [1] }, 'ICO_MALFORMED'],
    ['signature flipped', { ...envelope, signature: (envelope.signature[0] === 'A' ? 'B' : 'A') + envelope.signature.slice(1) }, 'ICO_BAD_SIGNATURE'],
    ['signature short', { ...envelope, signature: envelope.signature.slice(2) }, 'ICO_MALFORMED'],
    ['extra field', { ...envelope, extra: 1 }, 'ICO_MALFORMED'],
  ];
  for (const field of ['v', 'type', 'sender', 'seq', 'timestamp', 'payload', 'signature']) {
    const copy: Record<string, unknown> = { ...envelope };
    delete copy[field];
    cases.push([`missing ${field}`, copy, 'ICO_MALFORMED']);
  }
  for (const [name, value, code] of cases) assert.equal(codeOf(bytesOf(value)), code, name);
});

test('garbage, non-JSON, wrong JSON shapes and invalid UTF-8 are malformed', () => {
  for (const bytes of [new Uint8Array([0xff, 0xfe, 0x00]), enc.encode('not json'), enc.encode('[1,2]'), enc.encode('null'), enc.encode('"x"'), new Uint8Array()]) {
    assert.equal(codeOf(bytes), 'ICO_MALFORMED');
  }
  assert.equal(validateEnvelope(undefined, { now: NOW }).ok, false);
});

test('an unknown type is reported as such only when genuinely signed', () => {
  const { envelope } = alice.sealer.seal('STATE_SYNC', {}, NOW);
  assert.equal(codeOf(bytesOf(resign({ ...envelope, type: 'GOSSIP' as never }))), 'ICO_UNKNOWN_TYPE');
  assert.equal(codeOf(bytesOf({ ...envelope, type: 'GOSSIP' })), 'ICO_BAD_SIGNATURE');
});

test('frames over the limit are rejected before parsing (default 1 MiB, configurable)', () => {
  const big = alice.sealer.seal('STATE_SYNC', { blob: 'x'.repeat(1024 * 1024) }, NOW).bytes;
  assert.equal(codeOf(big), 'ICO_FRAME_TOO_LARGE');
  const small = alice.sealer.seal('STATE_SYNC', { blob: 'x'.repeat(600) }, NOW).bytes;
  assert.equal(codeOf(small, { now: NOW, limits: { maxFrameBytes: 512 } }), 'ICO_FRAME_TOO_LARGE');
  assert.equal(codeOf(small), 'ok');
});

test('timestamps outside ±30 s are rejected (configurable)', () => {
  const old = alice.sealer.seal('HEARTBEAT', { beat: 1 }, NOW - 31_000).bytes;
  const future = alice.sealer.seal('HEARTBEAT', { beat: 1 }, NOW + 31_000).bytes;
  const edge = alice.sealer.seal('HEARTBEAT', { beat: 1 }, NOW - 29_000).bytes;
  assert.equal(codeOf(old), 'ICO_TIMESTAMP_SKEW');
  assert.equal(codeOf(future), 'ICO_TIMESTAMP_SKEW');
  assert.equal(codeOf(edge), 'ok');
  assert.equal(codeOf(edge, { now: NOW, limits: { maxSkewMs: 5_000 } }), 'ICO_TIMESTAMP_SKEW');
});

test('the sender must be the Noise-authenticated peer', () => {
  const { bytes } = alice.sealer.seal('STATE_SYNC', {}, NOW);
  assert.equal(codeOf(bytes, { now: NOW, expectedSender: bob.peerId }), 'ICO_SENDER_MISMATCH');
});

test('replayed seq is rejected; reordering inside the window is accepted once', () => {
  const replay = new ReplayGuard();
  const base = alice.sealer.seal('HEARTBEAT', { beat: 0 }, NOW).envelope;
  const at = (seq: number): Uint8Array => bytesOf(resign({ ...base, seq }));
  const ctx = { now: NOW, replay };
  assert.equal(codeOf(at(1000), ctx), 'ok');
  assert.equal(codeOf(at(1002), ctx), 'ok');
  assert.equal(codeOf(at(1001), ctx), 'ok', 'reordered inside the window');
  assert.equal(codeOf(at(1001), ctx), 'ICO_REPLAYED');
  assert.equal(codeOf(at(1002), ctx), 'ICO_REPLAYED');
  assert.equal(codeOf(at(1000 + 5000), ctx), 'ok');
  assert.equal(codeOf(at(1003), ctx), 'ICO_REPLAYED', 'older than the window');
});

test('a forged seq cannot poison the replay window', () => {
  const replay = new ReplayGuard();
  const { envelope } = alice.sealer.seal('HEARTBEAT', { beat: 1 }, NOW);
  assert.equal(codeOf(bytesOf({ ...envelope, seq: envelope.seq + 10_000 }), { now: NOW, replay }), 'ICO_BAD_SIGNATURE');
  assert.equal(codeOf(bytesOf(envelope), { now: NOW, replay }), 'ok');
});

test('property: payloads round-trip, and any single flipped byte is rejected without throwing', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 6 }), fc.nat(), (payload, pos) => {
      const { bytes, envelope } = alice.sealer.seal('CONSENSUS', payload, NOW);
      const ok = decodeEnvelope(bytes, { now: NOW });
      assert.ok(ok.ok);
      assert.deepEqual(ok.envelope.payload, JSON.parse(JSON.stringify(envelope.payload)));
      const flipped = Uint8Array.from(bytes);
      const i = pos % flipped.length;
      flipped[i] = (flipped[i] as number) ^ 0x01;
      const r = decodeEnvelope(flipped, { now: NOW });
      // A flip inside insignificant JSON (e.g. turning a space) can't happen: JSON.stringify emits none.
      if (r.ok) assert.deepEqual(r.envelope, JSON.parse(JSON.stringify(envelope)));
    }),
    { numRuns: 300 },
  );
});

test('envelopes sealed milliseconds apart stay within one replay window, so reordering is accepted', () => {
  const sealer = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  const first = sealer.seal('STATE_SYNC', { n: 1 }, NOW);
  const second = sealer.seal('STATE_SYNC', { n: 2 }, NOW + 5);
  assert.equal(second.envelope.seq, first.envelope.seq + 1);
  const replay = new ReplayGuard();
  assert.equal(codeOf(second.bytes, { now: NOW, replay }), 'ok');
  assert.equal(codeOf(first.bytes, { now: NOW, replay }), 'ok', 'the earlier envelope arriving second is not a replay');
});
