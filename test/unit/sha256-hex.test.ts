// sha256Hex / sha256Digest: the adapter's direct hex form (node:crypto) gives exactly the bytes'
// lowercase hex, for any length, and so every receipt id and digest stays what it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hexEncode, sha256Digest, sha256Hex } from '../../src/crypto/index.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';
import { nodeCrypto } from '../../src/crypto/node.ts';

test('sha256Hex is the hex of sha256, on node:crypto and against @noble, for lengths 0..300', () => {
  assert.equal(typeof nodeCrypto.sha256Hex, 'function', 'the node adapter has the direct form');
  for (let n = 0; n <= 300; n += 7) {
    const data = nodeCrypto.randomBytes(n);
    const want = hexEncode(nobleCrypto.sha256(data));
    assert.equal(nodeCrypto.sha256Hex?.(data), want, `length ${n}`);
    assert.equal(sha256Hex(data), want);
    assert.equal(sha256Digest(data), `sha256:${want}`);
  }
  assert.equal(sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
