// The envelope codec rejects every kind of bad input with its own typed error and never
// throws: each field tampered in turn, size, replay, clock skew, sender binding, garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { base64urlEncode, canonicalBytes, crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';
import { decodeEnvelope, openEnvelope, validateEnvelope, EnvelopeSealer, signingBytes } from '../../src/ico/envelope.ts';
import { ReplayGuard } from '../../src/ico/replay.ts';
import { ICO_VERSION, type Envelope, type IcoErrorCode } from '../../src/ico/types.ts';
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
  assert.equal(envelope.v, ICO_VERSION);
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

function tamperedCases(): Array<[string, Record<string, unknown>, IcoErrorCode]> {
  const { envelope } = alice.sealer.seal('STATE_SYNC', { k: 'v' }, NOW);
  const cases: Array<[string, Record<string, unknown>, IcoErrorCode]> = [
    ['v changed', { ...envelope, v: '1.9' }, 'ICO_BAD_SIGNATURE'],
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
  return cases;
}

test('every field tampered is rejected with the right error', () => {
  for (const [name, value, code] of tamperedCases()) assert.equal(codeOf(bytesOf(value)), code, name);
});

test('openEnvelope (the asynchronous signature check a browser tab uses) gives decodeEnvelope\'s verdict on tampering, flipped bytes, replay and unknown types', async () => {
  const verdict = (r: Awaited<ReturnType<typeof openEnvelope>>): string => (r.ok ? `ok ${JSON.stringify(r.envelope)}` : `${r.error.code} ${r.error.message}`);
  const ctx = { now: NOW, expectedSender: alice.peerId };
  for (const [name, value] of tamperedCases()) assert.equal(verdict(await openEnvelope(bytesOf(value), ctx)), verdict(decodeEnvelope(bytesOf(value), ctx)), name);
  const unknown = bytesOf(resign({ v: '1.0', type: 'GOSSIP' as Envelope['type'], sender: alice.peerId, seq: 5, timestamp: '2026-11-24T12:00:00.000Z', payload: {} }));
  assert.equal(verdict(await openEnvelope(unknown, ctx)), verdict(decodeEnvelope(unknown, ctx)));
  assert.match(verdict(await openEnvelope(unknown, ctx)), /^ICO_UNKNOWN_TYPE/);
  const [syncGuard, asyncGuard] = [new ReplayGuard(), new ReplayGuard()];
  const frames = Array.from({ length: 5 }, (_, i) => alice.sealer.seal('HEARTBEAT', { i }, NOW).bytes);
  for (const frame of [frames[1]!, frames[0]!, frames[1]!, frames[4]!, frames[2]!, frames[4]!]) {
    assert.equal(verdict(await openEnvelope(frame, { ...ctx, replay: asyncGuard })), verdict(decodeEnvelope(frame, { ...ctx, replay: syncGuard })));
  }
  await fc.assert(
    fc.asyncProperty(fc.nat(), async (pos) => {
      const { bytes } = alice.sealer.seal('CONSENSUS', { pos }, NOW);
      const flipped = Uint8Array.from(bytes);
      flipped[pos % flipped.length] = (flipped[pos % flipped.length] as number) ^ 0x01;
      assert.equal(verdict(await openEnvelope(flipped, { now: NOW })), verdict(decodeEnvelope(flipped, { now: NOW })));
    }),
    { numRuns: 300 },
  );
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

test('signing input and wire bytes are exactly JCS (without and with the signature)', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 6, unit: 'grapheme' }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 20 }), (raw) => {
      // fc.jsonValue may produce -0, which JSON (and JCS) cannot tell from 0.
      const payload = JSON.parse(JSON.stringify(raw)) as Envelope['payload'];
      const { envelope, bytes } = alice.sealer.seal('STATE_SYNC', payload, NOW);
      const { signature: _s, ...unsigned } = envelope;
      assert.deepEqual(signingBytes(envelope), canonicalBytes(unsigned));
      assert.deepEqual(bytes, canonicalBytes(envelope));
    }),
    { numRuns: 200 },
  );
});

test('seq starts at ms × 1024 (or startSeq) and then counts by one', () => {
  const a = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId });
  assert.equal(a.lastSeq, undefined);
  const seqs = [NOW, NOW + 5, NOW + 5000].map((t) => a.seal('HEARTBEAT', { beat: 1 }, t).envelope.seq);
  assert.deepEqual(seqs, [NOW * 1024, NOW * 1024 + 1, NOW * 1024 + 2]);
  assert.equal(a.lastSeq, NOW * 1024 + 2);
  const b = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq: 7 });
  assert.equal(b.seal('HEARTBEAT', { beat: 1 }, NOW).envelope.seq, 7);
  assert.equal(b.seal('HEARTBEAT', { beat: 1 }, NOW).envelope.seq, 8);
  const bad = new EnvelopeSealer({ signer: alice.signer, sender: alice.peerId, startSeq: 0 });
  assert.throws(() => bad.seal('HEARTBEAT', { beat: 1 }, NOW), RangeError);
});

test('timestamps must be real calendar instants in strict RFC 3339 UTC', () => {
  const { envelope } = alice.sealer.seal('HEARTBEAT', { beat: 1 }, NOW);
  const at = (timestamp: string): IcoErrorCode | 'ok' => codeOf(bytesOf(resign({ ...envelope, timestamp })));
  assert.equal(at('2026-11-24T12:00:00Z'), 'ok');
  assert.equal(at('2026-11-24T12:00:00.123456789Z'), 'ok');
  for (const bad of ['2026-11-31T12:00:00Z', '2026-02-29T12:00:00Z', '2026-11-24 12:00:00Z', '2026-11-24T12:00:00z', '2026-11-24T12:00Z', '2026-11-24T24:00:00Z', '+002026-11-24T12:00:00Z', '2026-11-24T12:00:00.Z']) {
    assert.equal(at(bad), 'ICO_MALFORMED', bad);
  }
});

test('an envelope signed with the noble adapter decodes on the node adapter, byte for byte the same', async () => {
  const key = await generateKeyPair('Ed25519');
  const sender = peerIdFromPrivateKey(key).toString();
  const seed = seedFromLibp2pPrivateKey(key);
  const viaNoble = new EnvelopeSealer({ signer: nobleCrypto.createSigner(seed), sender, startSeq: 1 }).seal('CONSENSUS', { term: 3 }, NOW);
  const viaNode = new EnvelopeSealer({ signer: crypto.createSigner(seed), sender, startSeq: 1 }).seal('CONSENSUS', { term: 3 }, NOW);
  assert.deepEqual(viaNoble.bytes, viaNode.bytes);
  assert.ok(decodeEnvelope(viaNoble.bytes, { now: NOW, expectedSender: sender }).ok);
});

test('property: the replay guard matches a model (set of seen seqs + highest + window)', () => {
  const width = 64;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: 1, max: 400 })), { maxLength: 300 }), (events) => {
      const guard = new ReplayGuard(width);
      const seen = new Map<string, Set<number>>();
      const highest = new Map<string, number>();
      for (const [sender, seq] of events) {
        const s = seen.get(sender) ?? new Set<number>();
        const h = highest.get(sender);
        const expected = h === undefined || seq > h || (h - seq < width && !s.has(seq));
        assert.equal(guard.check(sender, seq), expected);
        assert.equal(guard.accept(sender, seq), expected);
        if (expected) {
          s.add(seq);
          seen.set(sender, s);
          highest.set(sender, Math.max(h ?? seq, seq));
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('the replay guard tracks a bounded number of senders, forgetting the least recently active', () => {
  const guard = new ReplayGuard(32, 2);
  assert.ok(guard.accept('a', 10));
  assert.ok(guard.accept('b', 10));
  assert.ok(guard.accept('a', 11)); // a is now the most recent
  assert.ok(guard.accept('c', 10)); // evicts b
  assert.equal(guard.accept('a', 10), false, 'a is still tracked');
  assert.ok(guard.accept('b', 10), 'b was forgotten');
  assert.throws(() => new ReplayGuard(8), RangeError);
});

test('payload keys with escapes survive decoding even after V8 mis-caches an escaped key', () => {
  JSON.parse('{"h":[],"\\\\":0}'); // the trigger of nodejs/node#63785 (any code in the process may run it)
  const payload = { h: 1, '"': 2 };
  const { envelope } = alice.sealer.seal('STATE_SYNC', payload, NOW);
  // A sender may write any JSON; this key order is the one V8 then mis-decodes.
  const text = JSON.stringify(envelope);
  const native = (JSON.parse(text) as { payload: Record<string, number> }).payload;
  const r = decodeEnvelope(enc.encode(text), { now: NOW, expectedSender: alice.peerId });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.deepEqual(r.envelope.payload, payload);
  // Documents the engine bug this guards against, while the engine has it.
  if (!Object.hasOwn(native, '"')) assert.deepEqual(Object.keys(native), ['h', '\\']);
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
