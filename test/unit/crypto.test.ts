// The two crypto adapters must be interchangeable byte for byte: same digests, same
// (deterministic) ed25519 signatures, and each verifies what the other signed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { nodeCrypto } from '../../src/crypto/node.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';
import {
  base64urlDecode, base64urlEncode, crypto, digestJson, EncodingError, hexDecode, hexEncode, KeyError,
  peerIdFromPublicKeyBytes, publicKeyFromPeerId, seedFromLibp2pPrivateKey, sha256Digest, utf8Decode,
} from '../../src/crypto/index.ts';

test('the node adapter is the one picked on Node', () => {
  assert.equal(crypto.name, 'node');
});

test('adapters agree on 1,000 random inputs: sha256, signatures, cross-verification', () => {
  for (let i = 0; i < 1000; i++) {
    const seed = nodeCrypto.randomBytes(32);
    const message = nodeCrypto.randomBytes(i % 97 === 0 ? 0 : 1 + (i * 37) % 2048);
    assert.deepEqual(nodeCrypto.sha256(message), nobleCrypto.sha256(message));
    const a = nodeCrypto.createSigner(seed);
    const b = nobleCrypto.createSigner(seed);
    assert.deepEqual(a.publicKey, b.publicKey);
    const sigA = a.sign(message);
    const sigB = b.sign(message);
    assert.deepEqual(sigA, sigB);
    assert.ok(nobleCrypto.verify(a.publicKey, message, sigA));
    assert.ok(nodeCrypto.verify(b.publicKey, message, sigB));
    const tampered = Uint8Array.from(sigA);
    tampered[i % 64] = (tampered[i % 64] as number) ^ 1;
    assert.equal(nodeCrypto.verify(a.publicKey, message, tampered), false);
    assert.equal(nobleCrypto.verify(a.publicKey, message, tampered), false);
  }
});

test('verify never throws on malformed keys or signatures', () => {
  const m = new Uint8Array([1, 2, 3]);
  for (const adapter of [nodeCrypto, nobleCrypto]) {
    assert.equal(adapter.verify(new Uint8Array(31), m, new Uint8Array(64)), false);
    assert.equal(adapter.verify(new Uint8Array(32), m, new Uint8Array(63)), false);
    assert.equal(adapter.verify(new Uint8Array(32).fill(255), m, new Uint8Array(64).fill(255)), false);
  }
});

test('sha256 digests match the published empty-string value', () => {
  assert.equal(sha256Digest(new Uint8Array()), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(digestJson({ b: 1, a: 2 }), sha256Digest(new TextEncoder().encode('{"a":2,"b":1}')));
});

test('ed25519 RFC 8032 test 1: empty message', () => {
  const seed = hexDecode('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const expectedPub = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
  const expectedSig = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
  for (const adapter of [nodeCrypto, nobleCrypto]) {
    const signer = adapter.createSigner(seed);
    assert.equal(hexEncode(signer.publicKey), expectedPub);
    assert.equal(hexEncode(signer.sign(new Uint8Array())), expectedSig);
  }
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
