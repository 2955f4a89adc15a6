// Request bundles, with real SHA-256 and ed25519: a client signs the requests it sends in one
// turn with one signature over the Merkle root of their signed parts; each request carries its
// path, so it stays checkable on its own (in a PRE-PREPARE, in a certificate), and a replica
// checks the signature once per bundle. Anything altered, moved or signed by another key fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PbftAuth, ed25519Signer, sha256Ed25519 } from '../../src/consensus/pbft/auth.ts';
import { MAX_VERIFIED_BUNDLES, RequestVerifier, signRequests, type UnsignedRequest } from '../../src/consensus/pbft/request-bundle.ts';
import { decodeMessage, encodeMessage, MAX_BUNDLE_PATH, requestSignedPart, SIGNATURE_BYTES } from '../../src/consensus/pbft/codec.ts';
import { PbftDecodeError } from '../../src/consensus/pbft/errors.ts';
import { MAX_REQUEST_BUNDLE, PBFT_DEFAULTS, type Membership, type PbftVerifier, type RequestMessage } from '../../src/consensus/pbft/types.ts';

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const replicas = [1, 2, 3, 4].map((b) => ed25519Signer(seed(b)));
const membership: Membership = { cluster: 'bundles', replicas: replicas.map((s, i) => ({ id: `r${i}`, publicKey: s.publicKey })) };
const client = ed25519Signer(seed(9));
const other = ed25519Signer(seed(10));
const unsigned = (n: number, from = 0): UnsignedRequest[] => Array.from({ length: n }, (_, i) => ({ client: `relay/${i}`, timestamp: 1000 + from + i, op: new TextEncoder().encode(`op ${from + i}`) }));

function counting(): { verifier: PbftVerifier; calls: () => number } {
  let calls = 0;
  return { verifier: { digest: sha256Ed25519.digest, verify: (k, d, s) => (calls++, sha256Ed25519.verify(k, d, s)) }, calls: () => calls };
}

describe('pbft: request bundles', () => {
  it('one signature covers a bundle: every request verifies on its own, and a replica checks the signature once per bundle', () => {
    const signed = signRequests(new PbftAuth(membership, sha256Ed25519), unsigned(8), client);
    assert.equal(signed.length, 8);
    assert.equal(new Set(signed.map((r) => Buffer.from(r.signature).toString('hex'))).size, 1, 'one signature');
    const c = counting();
    const auth = new RequestVerifier(new PbftAuth(membership, c.verifier));
    for (const r of signed) assert.equal(auth.verify(r, client.publicKey), true);
    assert.equal(c.calls(), 1, 'one ed25519 check for 8 requests');
    assert.equal(auth.verifications, 1);
    // A second bundle is a second check.
    for (const r of signRequests(new PbftAuth(membership, sha256Ed25519), unsigned(3, 100), client)) assert.equal(auth.verify(r, client.publicKey), true);
    assert.equal(c.calls(), 2);
  });

  it('a single request is signed the plain way (no bundle, the encoding of before)', () => {
    const [r] = signRequests(new PbftAuth(membership, sha256Ed25519), unsigned(1), client);
    assert.ok(r !== undefined && r.bundle === undefined);
    assert.equal(encodeMessage(r).byteLength, requestSignedPart(r).byteLength + SIGNATURE_BYTES);
    assert.equal(new RequestVerifier(new PbftAuth(membership, sha256Ed25519)).verify(r, client.publicKey), true);
  });

  it('an altered op, a moved leaf, another size, another key or a forged signature fails, and a failure is never remembered', () => {
    const signed = signRequests(new PbftAuth(membership, sha256Ed25519), unsigned(5), client);
    const r = signed[2] as RequestMessage & { bundle: NonNullable<RequestMessage['bundle']> };
    const c = counting();
    const auth = new RequestVerifier(new PbftAuth(membership, c.verifier));
    assert.equal(auth.verify(r, client.publicKey), true);
    const cases: Array<[string, RequestMessage, Uint8Array]> = [
      ['altered op', { ...r, op: new TextEncoder().encode('op 99') }, client.publicKey],
      ['altered timestamp', { ...r, timestamp: r.timestamp + 1 }, client.publicKey],
      ['moved leaf', { ...r, bundle: { ...r.bundle, index: 3 } }, client.publicKey],
      ['another size', { ...r, bundle: { ...r.bundle, size: 6 } }, client.publicKey],
      ['a path element altered', { ...r, bundle: { ...r.bundle, path: r.bundle.path.map((p, i) => (i === 0 ? Uint8Array.from(p, (x, j) => (j === 0 ? x ^ 1 : x)) : p)) } }, client.publicKey],
      ['another client key', r, other.publicKey],
      ['bundle proof dropped (the signature is over the root)', { type: 'request', client: r.client, timestamp: r.timestamp, op: r.op, signature: r.signature }, client.publicKey],
    ];
    for (const [what, m, key] of cases) assert.equal(auth.verify(m, key), false, what);
    const forged = Uint8Array.from(r.signature, (x, i) => (i === 0 ? x ^ 1 : x));
    const before = c.calls();
    assert.equal(auth.verify({ ...r, signature: forged }, client.publicKey), false);
    assert.equal(auth.verify({ ...r, signature: forged }, client.publicKey), false);
    assert.equal(c.calls() - before, 2, 'a signature that failed is checked again each time');
    // Another cluster's replicas do not take it (the cluster id is in the signed digest).
    const elsewhere = new RequestVerifier(new PbftAuth({ ...membership, cluster: 'elsewhere' }, sha256Ed25519));
    assert.equal(elsewhere.verify(r, client.publicKey), false);
  });

  it(`bundles hold 1..${MAX_REQUEST_BUNDLE} requests; remembered bundle signatures are bounded (${MAX_VERIFIED_BUNDLES})`, () => {
    const auth = new PbftAuth(membership, sha256Ed25519);
    assert.throws(() => signRequests(auth, [], client), RangeError);
    assert.throws(() => signRequests(auth, unsigned(MAX_REQUEST_BUNDLE + 1), client), RangeError);
    const full = signRequests(auth, unsigned(MAX_REQUEST_BUNDLE), client);
    assert.ok(full.every((r) => r.bundle !== undefined && r.bundle.path.length <= MAX_BUNDLE_PATH));
    // The bound is about the cache, not the curve: a signer and verifier that cost nothing.
    let calls = 0;
    const cheapAuth = new PbftAuth(membership, { digest: sha256Ed25519.digest, verify: () => (calls++, true) });
    const cheap = new RequestVerifier(cheapAuth);
    const zero = { sign: (): Uint8Array => new Uint8Array(64) };
    const first = signRequests(cheapAuth, unsigned(2), zero);
    assert.equal(cheap.verify(first[0]!, client.publicKey), true);
    for (let i = 0; i < MAX_VERIFIED_BUNDLES; i++) {
      const b = signRequests(cheapAuth, unsigned(2, 10 + 2 * i), zero);
      assert.equal(cheap.verify(b[0]!, client.publicKey), true);
    }
    assert.equal(calls, MAX_VERIFIED_BUNDLES + 1);
    assert.equal(cheap.verify(first[1]!, client.publicKey), true);
    assert.equal(calls, MAX_VERIFIED_BUNDLES + 2, 'the oldest bundle was forgotten and is checked again');
  });

  it('a bundled request round-trips through the codec byte for byte; a malformed proof is a PbftDecodeError', () => {
    const signed = signRequests(new PbftAuth(membership, sha256Ed25519), unsigned(7), client);
    for (const r of signed) {
      const bytes = encodeMessage(r);
      const back = decodeMessage(bytes, PBFT_DEFAULTS);
      assert.deepEqual(back, r);
      assert.deepEqual(encodeMessage(back), bytes);
    }
    const r = signed[6]!;
    const base = requestSignedPart(r).byteLength + SIGNATURE_BYTES;
    const bad = (mutate: (b: Uint8Array) => Uint8Array): Uint8Array => mutate(encodeMessage(r).slice());
    const u16At = (b: Uint8Array, at: number, v: number): Uint8Array => ((b[at] = v >> 8), (b[at + 1] = v & 0xff), b);
    const malformed: Array<[string, Uint8Array]> = [
      ['size 1', bad((b) => u16At(b, base + 2, 1))],
      [`size over ${MAX_REQUEST_BUNDLE}`, bad((b) => u16At(b, base + 2, MAX_REQUEST_BUNDLE + 1))],
      ['index not below size', bad((b) => u16At(b, base, 7))],
      [`path over ${MAX_BUNDLE_PATH}`, bad((b) => ((b[base + 4] = MAX_BUNDLE_PATH + 1), b))],
      ['truncated path', bad((b) => b.subarray(0, b.byteLength - 1))],
      ['a stray byte after the signature', bad((b) => Uint8Array.of(...b.subarray(0, base), 0))],
    ];
    for (const [what, b] of malformed) assert.throws(() => decodeMessage(b, PBFT_DEFAULTS), PbftDecodeError, what);
  });
});
