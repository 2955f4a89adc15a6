// The PBFT wire format and quorum certificates, with real SHA-256 and ed25519: every message
// type round-trips byte for byte, the byte layout matches PROTOCOL.md, the signing digest is
// SHA-256(domain ‖ signed part), anything malformed is a PbftDecodeError (never another throw),
// batch/reply Merkle proofs agree with the receipts' RFC 9162 verifier, and a certificate
// verifies offline against the membership and fails, with its reason, when anything is altered.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { PbftAuth, sha256Ed25519 } from '../../src/consensus/pbft/auth.ts';
import {
  certificateFromText,
  certificateToText,
  commitCertificate,
  decodeCertificate,
  encodeCertificate,
  verifyCertificate,
  type CommitCertificate,
  type ReplyCertificate,
} from '../../src/consensus/pbft/certificate.ts';
import { decodeMessage, encodeMessage, signedPart, TYPE_CODES } from '../../src/consensus/pbft/codec.ts';
import { PbftDecodeError } from '../../src/consensus/pbft/errors.ts';
import { inclusionPath, leafHash, merkleRoot, rootFromPath } from '../../src/consensus/pbft/merkle.ts';
import { PBFT_DEFAULTS, type Membership, type PbftMessage, type RequestMessage } from '../../src/consensus/pbft/types.ts';
import { verifyInclusion } from '../../src/receipts/merkle.ts';
import { encodeKvOp } from '../../src/sim/pbft-app.ts';
import { PbftMemoryCluster } from '../../src/sim/pbft-harness.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';

const rng = new Xoshiro128(2024);
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.nextInt(256));
const d32 = (): Uint8Array => bytes(32);
const sig = (): Uint8Array => bytes(64);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

const request: RequestMessage = { type: 'request', client: '12D3KooWclient/3', timestamp: 1_838_631_053_485_058, op: bytes(40), signature: sig() };
const endorse = (k: number) => Array.from({ length: k }, (_, i) => ({ replica: i, signature: sig() }));

const samples: PbftMessage[] = [
  request,
  { type: 'prePrepare', view: 7, seq: 123, digest: d32(), replica: 3, signature: sig(), batch: [request, { ...request, timestamp: 2, op: bytes(3) }] },
  { type: 'prepare', view: 7, seq: 123, digest: d32(), replica: 1, signature: sig() },
  { type: 'commit', view: 2 ** 40, seq: Number.MAX_SAFE_INTEGER, digest: d32(), replica: 63, signature: sig() },
  { type: 'checkpoint', seq: 128, digest: d32(), replica: 2, signature: sig() },
  {
    type: 'viewChange',
    view: 8,
    checkpoint: { seq: 128, digest: d32(), signatures: endorse(3) },
    prepared: [{ view: 7, seq: 129, digest: d32(), prePrepare: sig(), prepares: endorse(2) }],
    replica: 1,
    signature: sig(),
  },
  { type: 'status', view: 8, active: false, stableSeq: 128, lastExecuted: 130, replica: 0, signature: sig() },
  { type: 'fetchState', seq: 128, offset: 65536, replica: 3, signature: sig() },
  { type: 'stateChunk', proof: { seq: 128, digest: d32(), signatures: endorse(3) }, totalBytes: 1000, offset: 900, data: bytes(100), replica: 2, signature: sig() },
  { type: 'fetchBatch', digest: d32(), replica: 1, signature: sig() },
  { type: 'batch', digest: d32(), batch: [request], replica: 2, signature: sig() },
  { type: 'commitCertificate', view: 3, seq: 44, digest: d32(), commits: endorse(3), batch: [request], replica: 0, signature: sig() },
  { type: 'reply', view: 3, seq: 44, root: d32(), replica: 2, signature: sig(), client: 'c1', timestamp: 9, result: bytes(17), index: 2, leafCount: 5, path: [d32(), d32(), d32()] },
];
const vc = samples.find((m) => m.type === 'viewChange');
if (vc?.type === 'viewChange') samples.push({ type: 'newView', view: 8, viewChanges: [vc, { ...vc, replica: 2 }], prePrepares: [{ seq: 129, digest: d32(), signature: sig() }], replica: 0, signature: sig() });

describe('pbft codec', () => {
  it('every message type round-trips byte for byte', () => {
    assert.equal(new Set(samples.map((m) => m.type)).size, Object.keys(TYPE_CODES).length);
    for (const m of samples) {
      const wire = encodeMessage(m);
      const back = decodeMessage(wire, PBFT_DEFAULTS);
      assert.deepEqual(back, m, m.type);
      assert.deepEqual(encodeMessage(back), wire, m.type);
      // The signature sits right after the signed part, which starts with version and type.
      const part = signedPart(m);
      assert.deepEqual(wire.subarray(0, part.byteLength), part);
      assert.deepEqual([wire[0], wire[1]], [1, TYPE_CODES[m.type]]);
    }
  });

  it('PREPARE is exactly the PROTOCOL.md byte table (116 bytes)', () => {
    const m: PbftMessage = { type: 'prepare', view: 1, seq: 2, digest: new Uint8Array(32).fill(0x11), replica: 3, signature: new Uint8Array(64).fill(0x22) };
    const want = '0103' + '0000000000000001' + '0000000000000002' + '11'.repeat(32) + '0003' + '22'.repeat(64);
    assert.equal(hex(encodeMessage(m)), want);
  });

  it('the signing digest is SHA-256("hypersync/pbft/1" ‖ 0x00 ‖ len ‖ cluster ‖ signed part)', () => {
    const membership: Membership = { cluster: 'devnet', replicas: [1, 2, 3, 4].map((i) => ({ id: `r${i}`, publicKey: new Uint8Array(32).fill(i) })) };
    const auth = new PbftAuth(membership, sha256Ed25519);
    const m = samples[2] as PbftMessage;
    const input = Buffer.concat([Buffer.from('hypersync/pbft/1'), Buffer.from([0, 6]), Buffer.from('devnet'), signedPart(m)]);
    assert.equal(hex(auth.signingDigest(m)), hex(sha256(input)));
  });

  it('every truncation, a trailing byte, and each broken field is a PbftDecodeError', () => {
    for (const m of samples) {
      const wire = encodeMessage(m);
      for (let len = 0; len < wire.byteLength; len++) assert.throws(() => decodeMessage(wire.subarray(0, len), PBFT_DEFAULTS), PbftDecodeError, `${m.type} cut at ${len}`);
      assert.throws(() => decodeMessage(Uint8Array.from([...wire, 0]), PBFT_DEFAULTS), PbftDecodeError);
    }
    const prepare = encodeMessage(samples[2] as PbftMessage);
    const mutate = (at: number, v: number): Uint8Array => {
      const b = prepare.slice();
      b[at] = v;
      return b;
    };
    assert.throws(() => decodeMessage(mutate(0, 2), PBFT_DEFAULTS), /unknown version/);
    assert.throws(() => decodeMessage(mutate(1, 99), PBFT_DEFAULTS), /unknown message type/);
    assert.throws(() => decodeMessage(mutate(2, 0x40), PBFT_DEFAULTS), /not a safe integer/);
    assert.throws(() => decodeMessage(mutate(50, 0x01), PBFT_DEFAULTS), /replica index/);
    const status = encodeMessage(samples.find((m) => m.type === 'status') as PbftMessage);
    status[10] = 2;
    assert.throws(() => decodeMessage(status, PBFT_DEFAULTS), /active flag/);
    const small = { ...PBFT_DEFAULTS, maxBatchRequests: 1 };
    assert.throws(() => decodeMessage(encodeMessage(samples[1] as PbftMessage), small), /requests in a batch over the limit/);
    assert.throws(() => decodeMessage(encodeMessage({ ...request, op: bytes(70_000) }), PBFT_DEFAULTS), /op of 70000 bytes/);
  });

  it('random bytes never throw anything but PbftDecodeError', () => {
    const r = new Xoshiro128(7);
    for (let i = 0; i < 3000; i++) {
      const len = r.nextInt(200);
      const b = Uint8Array.from({ length: len }, () => r.nextInt(256));
      if (len > 1) {
        b[0] = 1;
        b[1] = 1 + r.nextInt(14);
      }
      try {
        decodeMessage(b, PBFT_DEFAULTS);
      } catch (err) {
        assert.ok(err instanceof PbftDecodeError, String(err));
      }
    }
  });
});

describe('pbft merkle (RFC 9162 shape)', () => {
  it('paths from inclusionPath verify against merkleRoot and against the receipts RFC 9162 verifier', () => {
    const digest = (b: Uint8Array): Uint8Array => sha256(b);
    assert.equal(hex(merkleRoot(digest, [])), hex(sha256(new Uint8Array(0))), 'the empty tree is SHA-256 of nothing');
    for (let size = 1; size <= 33; size++) {
      const leaves = Array.from({ length: size }, (_, i) => leafHash(digest, Uint8Array.of(i, size)));
      const root = merkleRoot(digest, leaves);
      for (let i = 0; i < size; i++) {
        const path = inclusionPath(digest, leaves, i);
        assert.deepEqual(rootFromPath(digest, leaves[i] as Uint8Array, i, size, path), root, `size ${size} leaf ${i}`);
        assert.equal(verifyInclusion(leaves[i] as Uint8Array, i, size, path, root), true, `receipts verifier, size ${size} leaf ${i}`);
        if (size > 1) assert.notDeepEqual(rootFromPath(digest, leaves[(i + 1) % size] as Uint8Array, i, size, path), root);
      }
    }
  });
});

describe('pbft quorum certificates (ed25519, offline)', () => {
  const c = new PbftMemoryCluster({ n: 4, crypto: 'ed25519', clients: 2 });
  c.submit('c1', encodeKvOp({ k: 'put', key: 'a', value: '1' }));
  c.submit('c2', encodeKvOp({ k: 'put', key: 'b', value: '2' }));
  c.deliverAll();
  const done = c.completed.get('c2')?.[0];
  assert.ok(done !== undefined);
  const replies = done.certificate;
  const proof = c.host('r1').replica.commitProof(done.seq);
  assert.ok(proof !== undefined);
  const commits = commitCertificate(c.auth, { ...proof, seq: done.seq }, proof.batch.findIndex((r) => r.client === 'c2'));

  it('f+1 matching replies and 2f+1 commits verify against the membership alone', () => {
    assert.deepEqual(verifyCertificate(replies, c.membership), { ok: true, kind: 'replies', seq: done.seq, client: 'c2', timestamp: done.request.timestamp });
    assert.equal(replies.replies.length, 2);
    assert.deepEqual(verifyCertificate(commits, c.membership), { ok: true, kind: 'commits', seq: done.seq, client: 'c2', timestamp: done.request.timestamp });
    assert.deepEqual(replies.resultDigest, sha256(done.result));
  });

  it('binary and text forms round-trip', () => {
    for (const cert of [replies, commits]) {
      assert.deepEqual(decodeCertificate(encodeCertificate(cert)), cert);
      assert.deepEqual(certificateFromText(certificateToText(cert)), cert);
      assert.equal(verifyCertificate(certificateFromText(certificateToText(cert)), c.membership).ok, true);
    }
    assert.throws(() => certificateFromText('not base64url!'), PbftDecodeError);
    assert.throws(() => decodeCertificate(encodeCertificate(replies).subarray(0, 20)), PbftDecodeError);
  });

  it('anything altered fails with its reason', () => {
    const problem = (cert: ReplyCertificate | CommitCertificate, m: Membership = c.membership): string => {
      const v = verifyCertificate(cert, m);
      return v.ok ? 'ok' : v.problem;
    };
    const r0 = replies.replies[0]!;
    assert.equal(problem({ ...replies, resultDigest: d32() }), 'badProof');
    assert.equal(problem({ ...replies, timestamp: replies.timestamp + 1 }), 'badProof');
    assert.equal(problem({ ...replies, seq: replies.seq + 1 }), 'badSignature');
    assert.equal(problem({ ...replies, replies: [r0, { ...r0 }] }), 'duplicateSigner');
    assert.equal(problem({ ...replies, replies: [r0] }), 'tooFewSigners');
    assert.equal(problem({ ...replies, replies: [r0, { ...replies.replies[1]!, replica: 9 }] }), 'nonMember');
    assert.equal(problem({ ...replies, replies: [r0, { ...replies.replies[1]!, signature: sig() }] }), 'badSignature');
    assert.equal(problem({ ...commits, request: { ...commits.request, op: bytes(3) } }), 'badProof');
    assert.equal(problem({ ...commits, commits: commits.commits.slice(0, 2) }), 'tooFewSigners');
    assert.equal(problem({ ...commits, view: commits.view + 1 }), 'badSignature');
    // Another cluster id: the same keys, another signing domain.
    assert.equal(problem(replies, { ...c.membership, cluster: 'other' }), 'badSignature');
    assert.equal(problem(replies, { ...c.membership, replicas: c.membership.replicas.slice(0, 3) }), 'membership');
  });
});
