// The standalone verifier (`hypersync/verify`) on Node: loaded by its package name; one
// receipt through the seed's five steps; the pipelined chain verifier against the synchronous
// one on every kind of tampering; proof bundles, consistency between signed heads, tree heads;
// the quorum-certificate extension point; hostile input never throws. The same file runs in
// real browsers, a page and a worker (e2e/verify-page.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base64urlEncode, crypto, hexEncode, peerIdFromPublicKeyBytes, publicKeyFromPeerId } from '../../src/crypto/index.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { buildReceipt, ChainVerifier, receiptHash, receiptHashBytes, verifyChain as verifyChainInternal, type Receipt, type VerifyResult } from '../../src/receipts/receipt.ts';
import { proofBundleProblem } from '../../src/receipts/proof.ts';
import type { QuorumCertificateScheme } from '../../src/verify/index.ts';

const verify = await import('hypersync/verify');
const signer = crypto.createSigner(crypto.randomBytes(32));
const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
const other = crypto.createSigner(crypto.randomBytes(32));
const otherId = peerIdFromPublicKeyBytes(other.publicKey);
const T0 = Date.parse('2026-11-24T12:00:00.000Z');
const NOW = T0 + 3_600_000;

async function makeLog(n: number, s = signer, id = peerId): Promise<{ log: ReceiptLog; receipts: Receipt[]; io: Array<{ inputs: { k: number }; outputs: { v: string } }> }> {
  const log = await ReceiptLog.open(new MemoryStore(), { signer: s, peerId: id });
  const io = Array.from({ length: n }, (_, i) => ({ inputs: { k: i }, outputs: { v: `out-${i}` } }));
  const receipts = await Promise.all(io.map((e, i) => log.append({ operator_id: 'kv.put', ...e }, T0 + i * 1000)));
  return { log, receipts, io };
}

function flip(text: string, at = 10): string {
  return `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
}

test('hypersync/verify is a subpath export of the package: Node loads it by name, with the node:crypto adapter', async () => {
  assert.equal(verify.cryptoBackend, 'node');
  for (const name of ['verifyReceipt', 'verifyChain', 'verifyProofBundle', 'verifyConsistencyBundle', 'verifySignedTreeHead', 'verifyCertifiedReceipt', 'verifyInclusion', 'verifyConsistency']) {
    assert.equal(typeof (verify as Record<string, unknown>)[name], 'function', name);
  }
  assert.equal(verify.verifyChain, verifyChainInternal, 'the package entry is the same code the node uses');
});

test('one receipt, the seed five steps: signature, link to the previous receipt, inputs, outputs, timestamp', async () => {
  const { receipts, io } = await makeLog(3);
  const [r0, r1, r2] = receipts as [Receipt, Receipt, Receipt];
  assert.deepEqual(await verify.verifyReceipt(r0, { now: NOW, ...io[0] }), { ok: true });
  assert.deepEqual(await verify.verifyReceipt(r1, { now: NOW, previous: r0, ...io[1] }), { ok: true });
  const expect = async (value: unknown, opts: Parameters<typeof verify.verifyReceipt>[1], code: string, step: number): Promise<void> => {
    const v = await verify.verifyReceipt(value, opts);
    assert.ok(!v.ok, `${code} expected`);
    assert.equal(v.code, code, v.reason);
    assert.equal(v.step, step, v.reason);
  };
  await expect({ ...r1, signature: flip(r1.signature) }, { now: NOW, previous: r0 }, 'RECEIPT_SIGNATURE_INVALID', 1);
  await expect({ ...r1, index: 7 }, { now: NOW }, 'RECEIPT_SIGNATURE_INVALID', 1);
  await expect(r1, { now: NOW, signer: otherId }, 'RECEIPT_SIGNATURE_INVALID', 1);
  await expect(r2, { now: NOW, previous: r0 }, 'RECEIPT_LINK_BROKEN', 2);
  await expect({ ...r1, prev_receipt_hash: undefined }, { now: NOW }, 'RECEIPT_MALFORMED', 1);
  await expect(r1, { now: NOW, previous: r0, inputs: { k: 9 } }, 'RECEIPT_INPUTS_MISMATCH', 3);
  await expect(r1, { now: NOW, previous: r0, outputs: { v: 'forged' } }, 'RECEIPT_OUTPUTS_MISMATCH', 4);
  await expect(r2, { now: T0, maxFutureSkewMs: 1000, previous: r1 }, 'RECEIPT_TIMESTAMP_INVALID', 5);
  // Honestly signed, but its clock ran backwards against the receipt it follows.
  const early = buildReceipt({ operator_id: 'kv.put', inputs: 1, outputs: 1, index: 2, prevHash: receiptHash(r1), signer, signerId: peerId, now: T0 });
  await expect(early, { now: NOW, previous: r1 }, 'RECEIPT_TIMESTAMP_INVALID', 5);
  // Index 0 must link to genesis even without a previous receipt.
  const rootless = buildReceipt({ operator_id: 'kv.put', inputs: 1, outputs: 1, index: 0, prevHash: receiptHash(r1), signer, signerId: peerId, now: T0 });
  await expect(rootless, { now: NOW }, 'RECEIPT_LINK_BROKEN', 2);
  await expect(r1, { now: NOW, previous: { not: 'a receipt' } }, 'RECEIPT_MALFORMED', 2);
});

test('hostile input resolves to a typed verdict and never throws', async () => {
  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < 10_000; i++) cursor = cursor['a'] = {};
  const hostile: unknown[] = [null, undefined, 0, 'receipt', [], [1, 2], deep, JSON.parse('{"__proto__":{"x":1}}'), { receipt: null, proof: 'x', tree_head: 1 }, { first: {}, second: [], proof: {} }, Object.create(null)];
  for (const value of hostile) {
    const r = await verify.verifyReceipt(value);
    assert.ok(!r.ok && r.code === 'RECEIPT_MALFORMED');
    const c = await verify.verifyChain([value, value]);
    assert.ok(!c.ok && c.code === 'RECEIPT_MALFORMED' && c.count === 0);
    const b = await verify.verifyProofBundle(value);
    assert.ok(!b.ok && typeof b.code === 'string' && b.reason.length > 0);
    const h = await verify.verifyConsistencyBundle(value);
    assert.ok(!h.ok && typeof h.code === 'string');
    assert.ok(!(await verify.verifySignedTreeHead(value)).ok);
  }
});

/** The synchronous verifier's verdict, with the count of receipts verified before a failure. */
function syncVerdict(chain: unknown[], now: number): VerifyResult & { count: number } {
  const v = new ChainVerifier({ now });
  for (let i = 0; i < chain.length; i++) {
    const r = v.next(chain[i], {}, i);
    if (!r.ok) return { ...r, count: i };
  }
  return { ok: true, count: chain.length };
}

test('the pipelined chain verifier (64 signatures in flight) gives the synchronous verdict on every kind of tampering, from an array or an async source', async () => {
  const { receipts } = await makeLog(200);
  assert.deepEqual(await verify.verifyChain(receipts, { now: NOW }), { ok: true, count: 200 });
  const forgedBy = (r: Receipt): Receipt => buildReceipt({ operator_id: r.operation.operator_id, inputs: 0, outputs: 0, index: r.index, prevHash: r.prev_receipt_hash, signer: other, signerId: otherId, now: Date.parse(r.timestamp) });
  const mutations: Array<(chain: unknown[], i: number) => void> = [
    (c, i) => void (c[i] = { ...(c[i] as Receipt), signature: flip((c[i] as Receipt).signature, i % 80) }),
    (c, i) => void (c[i] = { ...(c[i] as Receipt), prev_receipt_hash: receiptHash(c[0] as Receipt) }),
    (c, i) => void c.splice(i, 1),
    (c, i) => void c.splice(i, 0, c[i]),
    (c, i) => void ([c[i], c[i - 1]] = [c[i - 1], c[i]]),
    (c, i) => void (c[i] = forgedBy(c[i] as Receipt)),
    (c, i) => void (c[i] = { ...(c[i] as Receipt), extra: true }),
    (c, i) => void (c[i] = 'garbage'),
  ];
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(mutations.length - 1), fc.integer({ min: 1, max: 199 })), { minLength: 1, maxLength: 3 }), async (edits) => {
      const chain: unknown[] = [...receipts];
      for (const [m, i] of edits) {
        const at = Math.min(i, chain.length - 1);
        // Field edits need a receipt there (an earlier edit may have put garbage in its place).
        if (typeof chain[at] === 'object') mutations[m]!(chain, at);
      }
      const expected = syncVerdict(chain, NOW);
      assert.deepEqual(await verify.verifyChain(chain, { now: NOW }), expected);
      // The same from an asynchronous source (a log, a stream), which is read the other way.
      assert.deepEqual(await verify.verifyChain((async function* () { yield* chain; })(), { now: NOW }), expected);
    }),
    { numRuns: 150 },
  );
});

test('a forged signature early in the window is reported before a broken link found later', async () => {
  const { receipts } = await makeLog(200);
  const chain: unknown[] = [...receipts];
  chain[150] = { ...receipts[150]!, signature: flip(receipts[150]!.signature) };
  chain.splice(170, 1);
  const v = await verify.verifyChain(chain, { now: NOW });
  assert.ok(!v.ok);
  assert.deepEqual([v.code, v.index, v.count], ['RECEIPT_SIGNATURE_INVALID', 150, 150]);
  // A source that fails a receipt while 63 signatures are still in flight waits for them.
  const late = [...receipts];
  late[199] = buildReceipt({ operator_id: 'kv.put', inputs: 0, outputs: 0, index: 199, prevHash: receiptHash(receipts[0]!), signer, signerId: peerId, now: T0 + 199_000 });
  const w = await verify.verifyChain(late, { now: NOW });
  assert.ok(!w.ok && w.code === 'RECEIPT_LINK_BROKEN' && w.index === 199 && w.count === 199);
});

test('proof bundles: a receipt in its signed tree verifies; every part altered fails with its code', async () => {
  const { log, receipts } = await makeLog(37);
  const sth = log.signedTreeHead(T0 + 60_000);
  const bundle = { receipt: receipts[12]!, proof: await log.inclusionProof(receipts[12]!.receipt_id), tree_head: sth };
  assert.deepEqual(await verify.verifyProofBundle(bundle), { ok: true });
  assert.deepEqual(await verify.verifyProofBundle(bundle, { signer: peerId }), { ok: true });
  const cases: Array<[string, unknown, string]> = [
    ['path altered', { ...bundle, proof: { ...bundle.proof, path: bundle.proof.path.map((h, i) => (i === 1 ? `${h[0] === 'a' ? 'b' : 'a'}${h.slice(1)}` : h)) } }, 'INCLUSION_PROOF_INVALID'],
    ['another receipt', { ...bundle, receipt: receipts[13] }, 'PROOF_MISMATCH'],
    ['another tree size', { ...bundle, proof: { ...bundle.proof, tree_size: 36 } }, 'PROOF_MISMATCH'],
    // The path still leads to the root (12 sits in the first 32 leaves either way): the signature catches it.
    ['tree head size altered', { ...bundle, tree_head: { ...sth, size: 36 }, proof: { ...bundle.proof, tree_size: 36 } }, 'TREE_HEAD_SIGNATURE_INVALID'],
    ['tree head root altered', { ...bundle, tree_head: { ...sth, root: `sha256:${'0'.repeat(64)}` } }, 'INCLUSION_PROOF_INVALID'],
    ['tree head signature altered', { ...bundle, tree_head: { ...sth, signature: flip(sth.signature) } }, 'TREE_HEAD_SIGNATURE_INVALID'],
    ['tree head timestamp altered', { ...bundle, tree_head: { ...sth, timestamp: '2030-01-01T00:00:00.000Z' } }, 'TREE_HEAD_SIGNATURE_INVALID'],
    // The leaf hash covers the receipt without its signature (the chain links bodies), so the
    // proof still matches and the receipt's own step 1 catches the altered signature.
    ['receipt signature altered', { ...bundle, receipt: { ...bundle.receipt, signature: flip(bundle.receipt.signature) } }, 'RECEIPT_SIGNATURE_INVALID'],
    ['receipt field altered', { ...bundle, receipt: { ...bundle.receipt, timestamp: '2030-01-01T00:00:00.000Z' } }, 'RECEIPT_SIGNATURE_INVALID'],
    ['path too long', { ...bundle, proof: { ...bundle.proof, path: Array(65).fill('0'.repeat(64)) } }, 'PROOF_MALFORMED'],
    ['path not hex', { ...bundle, proof: { ...bundle.proof, path: ['zz'] } }, 'PROOF_MALFORMED'],
    ['tree head with an extra field', { ...bundle, tree_head: { ...sth, extra: 1 } }, 'TREE_HEAD_MALFORMED'],
  ];
  for (const [what, value, code] of cases) {
    const v = await verify.verifyProofBundle(value);
    assert.ok(!v.ok, what);
    assert.equal(v.code, code, `${what}: ${v.reason}`);
    assert.equal(proofBundleProblem(value), v.reason, `${what}: the synchronous check gives the same reason`);
  }
  const pinned = await verify.verifyProofBundle(bundle, { signer: otherId });
  assert.ok(!pinned.ok && pinned.code === 'RECEIPT_SIGNATURE_INVALID', 'a bundle from another signer than the one expected');
  // The head signed by someone else: a bundle that mixes logs fails.
  const foreign = (await makeLog(37, other, otherId)).log.signedTreeHead(T0);
  const mixed = await verify.verifyProofBundle({ ...bundle, tree_head: foreign }, { signer: peerId });
  assert.ok(!mixed.ok && mixed.code === 'TREE_HEAD_SIGNER_MISMATCH');
});

test('a tree head verified once is remembered (bounded): the next bundle against it checks one signature; a forged copy still fails', async () => {
  const { MAX_VERIFIED_TREE_HEADS } = await import('../../src/receipts/proof.ts');
  const { log, receipts } = await makeLog(9);
  const sth = log.signedTreeHead(T0 + 77_000);
  const bundles = await Promise.all(receipts.map(async (r) => ({ receipt: r, proof: await log.inclusionProof(r.receipt_id), tree_head: sth })));
  const real = crypto.verifyAsync;
  let checks = 0;
  crypto.verifyAsync = (k, m, s) => (checks++, real(k, m, s));
  try {
    assert.deepEqual(await verify.verifyProofBundle(bundles[0]), { ok: true });
    assert.equal(checks, 2, 'the first bundle checks the receipt and the head');
    for (const b of bundles.slice(1)) assert.deepEqual(await verify.verifyProofBundle(b), { ok: true });
    assert.equal(checks, 2 + 8, 'later bundles against the same head check only their receipt');
    // Same signed fields, another signature (by a different key over the same body): not the remembered head.
    const forged = { ...sth, signature: base64urlEncode(other.sign(new TextEncoder().encode(JSON.stringify({ root: sth.root, signer: sth.signer, size: sth.size, timestamp: sth.timestamp })))) };
    const v = await verify.verifyProofBundle({ ...bundles[1]!, tree_head: forged });
    assert.ok(!v.ok && v.code === 'TREE_HEAD_SIGNATURE_INVALID', JSON.stringify(v));
    // The memory is bounded: after MAX_VERIFIED_TREE_HEADS other heads, the first is checked again.
    for (let i = 0; i < MAX_VERIFIED_TREE_HEADS; i++) assert.deepEqual(await verify.verifySignedTreeHead(log.signedTreeHead(T0 + 100_000 + i)), { ok: true });
    checks = 0;
    assert.deepEqual(await verify.verifyProofBundle(bundles[2]), { ok: true });
    assert.equal(checks, 2, 'the oldest head was forgotten');
  } finally {
    crypto.verifyAsync = real;
  }
});

test('consistency between two signed heads of one log; heads of other logs, swapped heads and altered proofs fail', async () => {
  const { log } = await makeLog(20);
  const first = log.signedTreeHead(T0);
  for (let i = 20; i < 37; i++) await log.append({ operator_id: 'kv.put', inputs: i, outputs: i }, T0 + i * 1000);
  const second = log.signedTreeHead(T0 + 60_000);
  const proof = await log.consistencyProof(20);
  assert.deepEqual(await verify.verifyConsistencyBundle({ first, second, proof }), { ok: true });
  assert.deepEqual(await verify.verifyConsistencyBundle({ first, second, proof }, { signer: peerId }), { ok: true });
  assert.deepEqual(await verify.verifyConsistencyBundle({ first: second, second, proof: [] }), { ok: true }, 'a head is consistent with itself');
  const empty = (await ReceiptLog.open(new MemoryStore(), { signer, peerId })).signedTreeHead(T0);
  assert.deepEqual(await verify.verifyConsistencyBundle({ first: empty, second, proof: [] }), { ok: true }, 'every tree extends the empty one');
  const code = async (value: unknown, opts = {}): Promise<string | undefined> => {
    const v = await verify.verifyConsistencyBundle(value, opts);
    return v.ok ? undefined : v.code;
  };
  assert.equal(await code({ first: second, second: first, proof }), 'PROOF_MISMATCH');
  assert.equal(await code({ first, second, proof: proof.slice(1) }), 'CONSISTENCY_PROOF_INVALID');
  assert.equal(await code({ first, second, proof: [...proof].reverse() }), 'CONSISTENCY_PROOF_INVALID');
  assert.equal(await code({ first: { ...first, size: 21 }, second, proof }), 'CONSISTENCY_PROOF_INVALID', 'a head whose size was altered');
  assert.equal(await code({ first: { ...first, timestamp: second.timestamp }, second, proof }), 'TREE_HEAD_SIGNATURE_INVALID', 'a head whose time was altered');
  assert.equal(await code({ first, second: { ...second, signature: flip(second.signature) }, proof }), 'TREE_HEAD_SIGNATURE_INVALID');
  const foreign = (await makeLog(37, other, otherId)).log.signedTreeHead(T0);
  assert.equal(await code({ first, second: foreign, proof }), 'TREE_HEAD_SIGNER_MISMATCH');
  assert.equal(await code({ first, second, proof }, { signer: otherId }), 'TREE_HEAD_SIGNER_MISMATCH');
  assert.deepEqual(await verify.verifySignedTreeHead(second, { signer: peerId }), { ok: true });
  assert.ok(!(await verify.verifySignedTreeHead({ ...second, root: first.root })).ok);
});

// A quorum-certificate scheme defined here, as PBFT will define its own: k-of-n members sign
// the receipt hash. It shows the extension point carries a real check end to end.
interface Membership {
  members: string[];
  quorum: number;
}
interface Certificate {
  signatures: Array<{ signer: string; signature: string }>;
}
const thresholdScheme: QuorumCertificateScheme<Certificate, Membership> = {
  id: 'test-threshold/1',
  async verify(cert, membership, receipt, verifySignature) {
    const message = receiptHashBytes(receipt);
    const agreed = new Set<string>();
    for (const s of cert.signatures) {
      if (!membership.members.includes(s.signer) || agreed.has(s.signer)) continue;
      if (await verifySignature(publicKeyFromPeerId(s.signer), message, Buffer.from(s.signature, 'base64url'))) agreed.add(s.signer);
    }
    return agreed.size >= membership.quorum ? { ok: true } : { ok: false, reason: `${agreed.size} of ${membership.quorum} members certified it` };
  },
};

test('quorum certificates plug in as a scheme: a quorum of members passes, too few, outsiders, duplicates or a bad receipt fail', async () => {
  const { receipts } = await makeLog(2);
  const r = receipts[1]!;
  const replicas = Array.from({ length: 4 }, () => crypto.createSigner(crypto.randomBytes(32)));
  const membership = { members: replicas.map((k) => peerIdFromPublicKeyBytes(k.publicKey)), quorum: 3 };
  const sig = (k: typeof signer, receipt: Receipt): { signer: string; signature: string } => ({ signer: peerIdFromPublicKeyBytes(k.publicKey), signature: base64urlEncode(k.sign(receiptHashBytes(receipt))) });
  const certify = (...keys: Array<typeof signer>): Certificate => ({ signatures: keys.map((k) => sig(k, r)) });
  const [a, b, c, d] = replicas as [typeof signer, typeof signer, typeof signer, typeof signer];
  assert.deepEqual(await verify.verifyCertifiedReceipt(r, certify(a, b, c), membership, thresholdScheme, { now: NOW }), { ok: true });
  assert.deepEqual(await verify.verifyCertifiedReceipt(r, certify(a, b, c, d), membership, thresholdScheme, { now: NOW }), { ok: true });
  const failed = async (cert: Certificate, receipt: unknown = r): Promise<string> => {
    const v = await verify.verifyCertifiedReceipt(receipt, cert, membership, thresholdScheme, { now: NOW });
    assert.ok(!v.ok);
    return `${v.code}${'scheme' in v ? ` ${v.scheme}: ${v.reason}` : ''}`;
  };
  assert.equal(await failed(certify(a, b)), 'CERTIFICATE_INVALID test-threshold/1: 2 of 3 members certified it');
  assert.equal(await failed(certify(a, a, a)), 'CERTIFICATE_INVALID test-threshold/1: 1 of 3 members certified it');
  assert.equal(await failed(certify(a, b, other)), 'CERTIFICATE_INVALID test-threshold/1: 2 of 3 members certified it');
  assert.equal(await failed({ signatures: [sig(a, r), sig(b, r), sig(c, receipts[0]!)] }), 'CERTIFICATE_INVALID test-threshold/1: 2 of 3 members certified it');
  assert.equal(await failed(certify(a, b, c), { ...r, signature: flip(r.signature) }), 'RECEIPT_SIGNATURE_INVALID', 'the receipt itself is checked first');
  const throwing: QuorumCertificateScheme<Certificate, Membership> = { id: 'throws/1', verify: async () => { throw new TypeError('bad certificate'); } };
  const v = await verify.verifyCertifiedReceipt(r, certify(a, b, c), membership, throwing, { now: NOW });
  assert.ok(!v.ok && v.code === 'CERTIFICATE_INVALID' && /scheme threw: bad certificate/.test(v.reason));
});

test('the verifier checks the RFC 9162 inclusion of a receipt leaf directly too', async () => {
  const { log, receipts } = await makeLog(5);
  const p = await log.inclusionProof(receipts[3]!.receipt_id);
  const leaf = verify.leafHash(receiptHashBytes(receipts[3]!));
  assert.equal(hexEncode(leaf), p.leaf_hash);
  assert.ok(verify.verifyInclusion(leaf, 3, 5, p.path.map((h) => Buffer.from(h, 'hex')), log.root()));
  assert.ok(!verify.verifyInclusion(leaf, 2, 5, p.path.map((h) => Buffer.from(h, 'hex')), log.root()));
});
