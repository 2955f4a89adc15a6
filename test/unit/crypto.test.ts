// The crypto adapters must be interchangeable byte for byte: same digests, same
// (deterministic) ed25519 signatures in sync and async form, and each verifies what the
// others signed. The same compliance suite runs inside Chromium and Firefox (e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id';
import { browserCrypto, detectWebCryptoEd25519 } from '../../src/crypto/browser.ts';
import { runCryptoCompliance } from '../../src/crypto/compliance.ts';
import { KeyCache, MAX_CACHED_KEYS } from '../../src/crypto/key-cache.ts';
import { nodeCrypto } from '../../src/crypto/node.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';
import { ed25519KeyFromPeerId, PeerIdError } from '../../src/crypto/peer-id.ts';
import type { CryptoAdapter } from '../../src/crypto/types.ts';
import {
  base64urlDecode, base64urlEncode, crypto, digestJson, EncodingError, hexDecode, hexEncode, KeyError,
  peerIdFromPublicKeyBytes, publicKeyFromPeerId, seedFromLibp2pPrivateKey, sha256Digest, utf8Decode,
} from '../../src/crypto/index.ts';

test('the node adapter is the one picked on Node', () => {
  assert.equal(crypto.name, 'node');
});

// The browser adapter's sync forms are noble's, so node ↔ noble and webcrypto ↔ node cover every pair.
for (const [adapter, reference] of [[nodeCrypto, nobleCrypto], [browserCrypto, nodeCrypto]] as const) {
  test(`the ${adapter.name} adapter passes the compliance suite against ${reference.name} (1,000 random inputs, RFC 8032, edge cases, malformed input)`, async () => {
    const results = await runCryptoCompliance(adapter, reference, { seed: `unit-${adapter.name}-${reference.name}` });
    assert.equal(results.length, 5);
    assert.deepEqual(results.filter((r) => !r.ok), []);
  });
}

test('the browser adapter on Node 24 finds WebCrypto Ed25519; a missing or wrong WebCrypto makes it fall back', async () => {
  assert.equal(browserCrypto.name, 'webcrypto', 'Node 24 has Ed25519 in WebCrypto, as both browsers do');
  const subtle = globalThis.crypto.subtle;
  assert.equal(await detectWebCryptoEd25519(subtle), subtle);
  assert.equal(await detectWebCryptoEd25519(undefined), null, 'no WebCrypto (an insecure context)');
  const noEd25519 = Object.create(subtle, { importKey: { value: () => Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError')) } }) as SubtleCrypto;
  assert.equal(await detectWebCryptoEd25519(noEd25519), null, 'WebCrypto without Ed25519');
  const wrongBytes = Object.create(subtle, { sign: { value: async () => new Uint8Array(64).buffer } }) as SubtleCrypto;
  assert.equal(await detectWebCryptoEd25519(wrongBytes), null, 'an implementation that signs wrongly is not used');
  const acceptsAnything = Object.create(subtle, { verify: { value: async () => true } }) as SubtleCrypto;
  assert.equal(await detectWebCryptoEd25519(acceptsAnything), null, 'an implementation that accepts a tampered signature is not used');
});

test('the compliance suite fails an adapter that signs wrongly or accepts forgeries', async () => {
  const forgiving: CryptoAdapter = { ...nodeCrypto, name: 'node', verifyAsync: async () => true };
  const failed = (await runCryptoCompliance(forgiving, nobleCrypto, { inputs: 5 })).filter((r) => !r.ok);
  assert.ok(failed.some((r) => /tampered|another message/.test(r.error ?? '')), JSON.stringify(failed));
  const wrong: CryptoAdapter = { ...nodeCrypto, createSigner: (seed) => ({ ...nodeCrypto.createSigner(seed), signAsync: async () => new Uint8Array(64) }) };
  assert.ok((await runCryptoCompliance(wrong, nobleCrypto, { inputs: 5 })).some((r) => !r.ok && /signAsync/.test(r.error ?? '')));
});

test('PeerIds without libp2p: same strings and keys as libp2p on 1,000 keys; other kinds of ids are refused', async () => {
  for (let i = 0; i < 1000; i++) {
    const raw = nodeCrypto.createSigner(nodeCrypto.randomBytes(32)).publicKey;
    const ours = peerIdFromPublicKeyBytes(raw);
    assert.equal(ours, peerIdFromPublicKey(publicKeyFromRaw(raw)).toString());
    assert.deepEqual(ed25519KeyFromPeerId(ours), raw);
  }
  const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString();
  const ed = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
  for (const bad of ['', 'not-a-peer-id', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', secp, ed.toCID().toString(), `1${ed.toString()}`.slice(0, 52), ed.toString().replace(/.$/, '0'), `${ed.toString().slice(0, 51)}l`]) {
    assert.throws(() => ed25519KeyFromPeerId(bad), PeerIdError, bad);
    assert.throws(() => publicKeyFromPeerId(bad), KeyError, bad);
  }
});

test('key caches stay within their limit, evicting the oldest entry', () => {
  const cache = new KeyCache<number>(3);
  for (let i = 0; i < 5; i++) cache.getOrCreate(`k${i}`, () => i);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('k0'), undefined);
  assert.equal(cache.get('k1'), undefined);
  assert.equal(cache.get('k4'), 4);
  assert.equal(cache.getOrCreate('k2', () => 99), 2, 'a cached value is not made again');
  assert.throws(() => new KeyCache(0), RangeError);
  assert.equal(MAX_CACHED_KEYS, 4096);
});

test('sha256 digests match the published empty-string value', () => {
  assert.equal(sha256Digest(new Uint8Array()), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(digestJson({ b: 1, a: 2 }), sha256Digest(new TextEncoder().encode('{"a":2,"b":1}')));
});

test('a libp2p key signs as its PeerId: seed bridge and PeerId ↔ public key', async () => {
  const key = await generateKeyPair('Ed25519');
  const peerId = peerIdFromPrivateKey(key).toString();
  const signer = crypto.createSigner(seedFromLibp2pPrivateKey(key));
  assert.deepEqual(signer.publicKey, key.publicKey.raw);
  assert.deepEqual(publicKeyFromPeerId(peerId), signer.publicKey);
  assert.equal(peerIdFromPublicKeyBytes(signer.publicKey), peerId);
  const message = new TextEncoder().encode('hello');
  assert.deepEqual(Uint8Array.from(await key.sign(message)), signer.sign(message));
  assert.throws(() => publicKeyFromPeerId('not-a-peer-id'), KeyError);
  assert.throws(() => publicKeyFromPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'), KeyError);
});

test('base64url and hex round-trip and reject malformed text', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = nodeCrypto.randomBytes(n);
    assert.deepEqual(base64urlDecode(base64urlEncode(bytes)), bytes);
    assert.equal(base64urlEncode(bytes), Buffer.from(bytes).toString('base64url'));
    assert.deepEqual(hexDecode(hexEncode(bytes)), bytes);
  }
  for (const bad of ['a', 'ab+c', 'ab/c', 'AQ==', 'é', 'AR']) assert.throws(() => base64urlDecode(bad), EncodingError, bad);
  for (const bad of ['0', 'zz', 'AB']) assert.throws(() => hexDecode(bad), EncodingError, bad);
  assert.throws(() => utf8Decode(new Uint8Array([0xff, 0xfe])), EncodingError);
});

test('the small-order blocklist holds exactly the encodings of the eight torsion points, either sign bit', async () => {
  const { ed25519 } = await import('@noble/curves/ed25519.js');
  const { isSmallOrderEncoding } = await import('../../src/crypto/ed25519-rules.ts');
  const P = ed25519.Point;
  const order8 = P.fromBytes(hexDecode('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'));
  assert.ok(order8.isSmallOrder() && !order8.double().double().is0(), 'a point of order 8');
  const torsion = new Set<string>();
  let q = P.ZERO;
  for (let i = 0; i < 8; i++, q = q.add(order8)) torsion.add(hexEncode(q.toBytes()));
  assert.equal(torsion.size, 8);
  for (const hex of torsion) {
    const bytes = hexDecode(hex);
    assert.ok(isSmallOrderEncoding(bytes), `torsion point ${hex}`);
    bytes[31] = (bytes[31] as number) ^ 0x80;
    assert.ok(isSmallOrderEncoding(bytes), `torsion point ${hex} with the other sign bit`);
  }
  for (let i = 0; i < 200; i++) assert.ok(!isSmallOrderEncoding(nodeCrypto.createSigner(nodeCrypto.randomBytes(32)).publicKey), 'an ordinary key');
});

test('a small-order key cannot "sign": the all-zero signature under the all-zero key fails everywhere', async () => {
  const m = new TextEncoder().encode('any message at all');
  for (const adapter of [nodeCrypto, nobleCrypto, browserCrypto]) {
    assert.equal(adapter.verify(new Uint8Array(32), m, new Uint8Array(64)), false, adapter.name);
    assert.equal(await adapter.verifyAsync(new Uint8Array(32), m, new Uint8Array(64)), false, adapter.name);
  }
});

test('the browser adapter\'s SHA-256 equals node:crypto on every length from 0 to 1,100 bytes (all padding cases) and on 1 MiB', async () => {
  const { sha256 } = await import('../../src/crypto/sha256.ts');
  for (let n = 0; n <= 1100; n++) {
    const data = nodeCrypto.randomBytes(n);
    assert.equal(hexEncode(sha256(data)), hexEncode(nodeCrypto.sha256(data)), `${n} bytes`);
  }
  const big = nodeCrypto.randomBytes(1 << 20);
  assert.equal(hexEncode(sha256(big)), hexEncode(nodeCrypto.sha256(big)));
  assert.equal(hexEncode(sha256(big.subarray(3, 1000))), hexEncode(nodeCrypto.sha256(big.subarray(3, 1000))), 'a view into a larger buffer');
});
