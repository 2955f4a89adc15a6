// The PBFT runtime on the engine seam: the engine compliance suite (src/consensus/compliance.ts)
// against four real runtimes in this process on real time, asked through the primary and
// through a backup; then what only PBFT promises: outcomes carry quorum certificates that
// verify against the membership, and the primary's loss leads to a new view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineCases, type EngineHarness } from '../../src/consensus/compliance.ts';
import { certificateFromText, certificateToText, verifyCertificate } from '../../src/consensus/pbft/certificate.ts';
import { membershipToJson } from '../../src/consensus/pbft/receipt-certificate.ts';
import { carriedCertificate } from '../../src/consensus/pbft/runtime/runtime.ts';
import { carriedCertificateFromJson, membershipFromJson, pbftCertificateScheme, verifyCertifiedReceipt } from '../../src/verify/index.ts';
import { PbftAuth, sha256Ed25519 } from '../../src/consensus/pbft/auth.ts';
import { decodePbftPayload, encodePbftPayloads, MAX_RECEIPTS_PER_QUERY } from '../../src/consensus/pbft/runtime/wire.ts';
import { PBFT_DEFAULTS, type PbftMessage, type RequestMessage } from '../../src/consensus/pbft/types.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { startInProcessPbft } from '../harness/pbft-inprocess.ts';
import { Adversary } from '../../src/sim/pbft-byzantine.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';

const direct = <T>(p: Promise<T>): Promise<T> => p;

async function pbftInProcess(through: 'primary' | 'backup'): Promise<EngineHarness> {
  const c = await startInProcessPbft();
  const engine = through === 'primary' ? c.members[0]! : c.members[2]!;
  return { engine, wait: direct, dispose: () => c.close() };
}

for (const c of engineCases()) {
  test(`pbft in-process, through the primary: ${c.name}`, () => c.run(() => pbftInProcess('primary')));
  test(`pbft in-process, through a backup: ${c.name}`, () => c.run(() => pbftInProcess('backup')));
}

test('a write through PBFT carries a quorum certificate that verifies offline against the membership; an altered one does not', async () => {
  const c = await startInProcessPbft();
  try {
    const e = c.members[2]!;
    const first = await e.submit({ operator_id: 'kv.put', inputs: { key: 'q', value: 1 } });
    const second = await e.submit({ operator_id: 'kv.put', inputs: { key: 'q', value: 2 } });
    const receipt = await first.receipt!;
    const carried = carriedCertificate(first);
    assert.equal(carried.scheme, 'pbft/1');
    const qc = certificateFromText(carried.certificate);
    assert.equal(qc.kind, 'replies');
    assert.ok(qc.kind === 'replies' && qc.replies.length >= 2, 'f+1 = 2 replicas signed');
    assert.deepEqual(verifyCertificate(qc, c.membership).ok, true);
    assert.deepEqual(await verifyCertifiedReceipt(receipt, carried, c.membership, pbftCertificateScheme), { ok: true });
    // Anyone can check it from JSON alone: the membership as cluster.json gives it.
    const membership = membershipFromJson(JSON.parse(JSON.stringify(membershipToJson(c.membership))));
    assert.ok(typeof membership !== 'string');
    assert.deepEqual(await verifyCertifiedReceipt(receipt, carriedCertificateFromJson(JSON.parse(JSON.stringify(carried))), membership, pbftCertificateScheme), { ok: true });

    // One replica's signature altered.
    if (qc.kind !== 'replies') throw new Error('unreachable');
    const sig = Uint8Array.from(qc.replies[0]!.signature);
    sig[5]! ^= 0x01;
    const forged = { ...carried, certificate: certificateToText({ ...qc, replies: [{ ...qc.replies[0]!, signature: sig }, ...qc.replies.slice(1)] }) };
    const v1 = await verifyCertifiedReceipt(receipt, forged, c.membership, pbftCertificateScheme);
    assert.equal(v1.ok, false);
    assert.ok(!v1.ok && v1.code === 'CERTIFICATE_INVALID' && /badSignature/.test('reason' in v1 ? v1.reason : ''), JSON.stringify(v1));
    // Too few signers.
    const thin = { ...carried, certificate: certificateToText({ ...qc, replies: qc.replies.slice(0, 1) }) };
    const v2 = await verifyCertifiedReceipt(receipt, thin, c.membership, pbftCertificateScheme);
    assert.ok(!v2.ok && v2.code === 'CERTIFICATE_INVALID' && /tooFewSigners/.test('reason' in v2 ? v2.reason : ''), JSON.stringify(v2));
    // Another execution's (valid) certificate does not vouch for this receipt.
    const v3 = await verifyCertifiedReceipt(receipt, carriedCertificate(second), c.membership, pbftCertificateScheme);
    assert.ok(!v3.ok && v3.code === 'CERTIFICATE_INVALID' && /outputs_hash|inputs_hash/.test('reason' in v3 ? v3.reason : ''), JSON.stringify(v3));
    // A result swapped for another one than the certified.
    const v4 = await verifyCertifiedReceipt(receipt, { ...carried, result: carriedCertificate(second).result }, c.membership, pbftCertificateScheme);
    assert.ok(!v4.ok && v4.code === 'CERTIFICATE_INVALID' && /not the certified/.test('reason' in v4 ? v4.reason : ''), JSON.stringify(v4));
    // Another cluster's membership (same keys, other cluster id: the signing domain differs).
    const other = { cluster: 'elsewhere', replicas: c.membership.replicas };
    const v5 = await verifyCertifiedReceipt(receipt, carried, other, pbftCertificateScheme);
    assert.ok(!v5.ok && v5.code === 'CERTIFICATE_INVALID', JSON.stringify(v5));
  } finally {
    await c.close();
  }
});

test('losing the primary: the backups move to a new view and commit within 2 s', async () => {
  const c = await startInProcessPbft();
  try {
    const through = c.members[2]!;
    await through.submit({ operator_id: 'kv.put', inputs: { key: 'p', value: 0 } });
    const old = through.status().leader;
    assert.equal(old, c.members[0]!.id, 'view 0: member 0 is the primary');
    c.cut(old!);
    const started = performance.now();
    const o = await through.submit({ operator_id: 'kv.put', inputs: { key: 'p', value: 1 } }, { signal: AbortSignal.timeout(20_000) });
    const elapsed = performance.now() - started;
    assert.ok(o.result.ok);
    const s = through.pbftStatus();
    assert.ok(s.view >= 1, `a new view (now ${s.view})`);
    assert.notEqual(s.primary, old);
    assert.ok(s.stats.viewsEntered >= 1);
    assert.ok(elapsed < 2_000, `new view and progress in ${elapsed.toFixed(0)} ms`);
    const read = await through.read('kv.get', { key: 'p' });
    assert.deepEqual(read.ok && read.outputs, { found: true, value: 1 }, 'a linearizable read in the new view');
  } finally {
    await c.close();
  }
});

test('bad input at the runtime boundary (non-member, stale view, outside the watermarks, bad certificate, malformed) is dropped and counted; the replicas go on', async () => {
  const c = await startInProcessPbft();
  try {
    // Move to view 1 first (a stale view needs a past one).
    await c.members[2]!.submit({ operator_id: 'kv.put', inputs: { key: 'b', value: 0 } });
    c.cut(c.members[0]!.id);
    await c.members[2]!.submit({ operator_id: 'kv.put', inputs: { key: 'b', value: 1 } }, { signal: AbortSignal.timeout(20_000) });
    const target = c.members[2]!;
    const view = target.pbftStatus().view;
    assert.ok(view >= 1);
    const auth = new PbftAuth(c.membership, sha256Ed25519);
    const signAs = <M extends Exclude<PbftMessage, RequestMessage>>(i: number, m: M): M => ({ ...m, signature: c.signers[i]!.sign(auth.signingDigest(m)) });
    const digest = new Uint8Array(32).fill(7);
    const junk = new Uint8Array(64).fill(9);
    const before = target.pbftStatus();
    const stranger = peerIdFromPublicKeyBytes(crypto.createSigner(crypto.randomBytes(32)).publicKey);
    const member3 = c.members[3]!.id;
    // A non-member's (well-formed) PREPARE.
    c.inject(stranger, target.id, encodePbftPayloads([signAs(3, { type: 'prepare', view, seq: 1, digest, replica: 3, signature: junk })])[0]!);
    // A member's PREPARE for view 0, now stale.
    c.inject(member3, target.id, encodePbftPayloads([signAs(3, { type: 'prepare', view: 0, seq: 3, digest, replica: 3, signature: junk })])[0]!);
    // A member's COMMIT far above the high watermark.
    c.inject(member3, target.id, encodePbftPayloads([signAs(3, { type: 'commit', view, seq: 100_000, digest, replica: 3, signature: junk })])[0]!);
    // A member's VIEW-CHANGE whose stable-checkpoint proof carries forged signatures.
    const proof = { seq: 64, digest, signatures: [0, 1, 2].map((replica) => ({ replica, signature: junk })) };
    c.inject(member3, target.id, encodePbftPayloads([signAs(3, { type: 'viewChange', view: view + 1, checkpoint: proof, prepared: [], replica: 3, signature: junk })])[0]!);
    // Garbage in the payload, and a REPLY for a client this runtime does not have.
    c.inject(member3, target.id, { k: 'pbft', m: ['not base64url!', 12, 'AAAA'] });
    const reply = signAs(3, { type: 'reply', view, seq: 1, root: digest, client: `${stranger}/0`, timestamp: 1, result: new Uint8Array(1), index: 0, leafCount: 1, path: [], replica: 3, signature: junk });
    c.inject(member3, target.id, encodePbftPayloads([reply])[0]!);

    // Progress after it all, through the target.
    const after = await target.submit({ operator_id: 'kv.put', inputs: { key: 'b', value: 2 } }, { signal: AbortSignal.timeout(20_000) });
    assert.ok(after.result.ok);
    const s = target.pbftStatus();
    const grew = (r: keyof typeof s.stats.dropped): number => s.stats.dropped[r] - before.stats.dropped[r];
    assert.ok(grew('nonMember') >= 1, 'non-member counted');
    assert.ok(grew('staleView') >= 1, 'stale view counted');
    assert.ok(grew('outsideWatermarks') >= 1, 'outside the watermarks counted');
    assert.ok(grew('badCertificate') >= 1, 'bad certificate counted');
    assert.equal(s.boundary.malformed - before.boundary.malformed, 3, 'three malformed entries');
    assert.equal(s.boundary.unknownClient - before.boundary.unknownClient, 1, 'a reply for no client of ours');
    assert.ok(s.droppedTotal >= before.droppedTotal + 8);
    assert.equal(s.view, view, 'no view change came of it');
  } finally {
    await c.close();
  }
});

test('a non-member client (the relay’s side) gets f+1 certified results and a replica’s receipt the certificate vouches for', async () => {
  const c = await startInProcessPbft();
  try {
    const g = c.gateway();
    const o = await g.submit({ operator_id: 'counter.add', inputs: { key: 'g', delta: 3 }, idempotency: { client: 'alice', key: 'g1' } }, { signal: AbortSignal.timeout(20_000) });
    assert.deepEqual(o.result.ok && o.result.outputs, { value: 3 });
    assert.ok(o.receipt !== null, 'a receipt');
    assert.ok(c.membership.replicas.some((r) => r.id === o.receipt!.signer), 'signed by a member');
    assert.deepEqual(await verifyCertifiedReceipt(o.receipt, o.certificate, c.membership, pbftCertificateScheme), { ok: true });
    const again = await g.submit({ operator_id: 'counter.add', inputs: { key: 'g', delta: 3 }, idempotency: { client: 'alice', key: 'g1' } });
    assert.ok(again.result.ok && again.result.replayed, 'an idempotent retry is replayed');
    const read = await g.read('kv.get', { key: 'g' });
    assert.deepEqual(read.result.ok && read.result.outputs, { found: true, value: 3 });
    assert.equal(read.receipt, null, 'a read has no receipt');
    // The replicas' status reaches the gateway's cluster view.
    const deadline = Date.now() + 10_000;
    while (g.view().replicas.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const v = g.view();
    assert.equal(v.replicas.length, 4);
    assert.equal(v.view, 0);
    assert.equal(v.primary, c.members[0]!.id);
    assert.ok(v.replicas.every((s) => s.high_watermark > s.low_watermark));
  } finally {
    await c.close();
  }
});

test('the gateway asks each replica for the receipts of a burst of certified writes in one query (at most MAX_RECEIPTS_PER_QUERY), and bad queries are counted', async () => {
  const queries: Array<{ from: string; to: string; refs: number }> = [];
  const c = await startInProcessPbft({ tap: (from, to, p) => void (p['k'] === 'pbft-q' && p['q'] === 'receipts' && Array.isArray(p['r']) && queries.push({ from, to, refs: p['r'].length })) });
  try {
    const g = c.gateway();
    const writes = 40;
    const outcomes = await Promise.all(Array.from({ length: writes }, (_, i) => g.submit({ operator_id: 'kv.put', inputs: { key: `b${i}`, value: i } }, { signal: AbortSignal.timeout(30_000) })));
    for (const o of outcomes) {
      assert.ok(o.receipt !== null, 'every write got a receipt');
      assert.deepEqual(await verifyCertifiedReceipt(o.receipt, o.certificate, c.membership, pbftCertificateScheme), { ok: true });
    }
    const asked = queries.reduce((a, q) => a + q.refs, 0);
    assert.ok(asked >= writes, `every write's receipt was asked for (${asked})`);
    assert.ok(queries.length < writes / 2, `${queries.length} queries for ${writes} writes: asks share queries`);
    assert.ok(queries.every((q) => q.refs <= MAX_RECEIPTS_PER_QUERY));
    // A query over the bound is malformed; one naming another peer's client gets no answer and is counted.
    const m = c.members[1]!;
    const before = m.pbftStatus().boundary;
    const ref = { c: `${g.id}/0`, t: 1 };
    c.inject(g.id, m.id, { k: 'pbft-q', q: 'receipts', r: Array.from({ length: MAX_RECEIPTS_PER_QUERY + 1 }, () => ref) });
    c.inject(c.members[2]!.id, m.id, { k: 'pbft-q', q: 'receipts', r: [ref] });
    const deadline = Date.now() + 10_000;
    while (m.pbftStatus().boundary.unknownClient === before.unknownClient && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const after = m.pbftStatus().boundary;
    assert.equal(after.malformed - before.malformed, 1, 'the oversized query');
    assert.equal(after.unknownClient - before.unknownClient, 1, 'the ask for another peer’s client');
  } finally {
    await c.close();
  }
});

test('the gateway signs the requests it sends in one turn as one bundle; the replicas check one signature per bundle, not per request', async () => {
  const requests: RequestMessage[] = [];
  let gatewayId = '';
  const c = await startInProcessPbft({ tap: (from, _to, p) => void (from === gatewayId && p['k'] === 'pbft' && requests.push(...decodePbftPayload(p, PBFT_DEFAULTS).messages.filter((m): m is RequestMessage => m.type === 'request'))) });
  const g = c.gateway();
  gatewayId = g.id;
  try {
    const verifiedBefore = c.members.reduce((a, m) => a + m.pbftStatus().stats.clientSignaturesVerified, 0);
    const writes = 40;
    const outcomes = await Promise.all(Array.from({ length: writes }, (_, i) => g.submit({ operator_id: 'kv.put', inputs: { key: `u${i}`, value: i } }, { signal: AbortSignal.timeout(30_000) })));
    for (const o of outcomes) assert.deepEqual(await verifyCertifiedReceipt(o.receipt, o.certificate, c.membership, pbftCertificateScheme), { ok: true });
    const signatures = new Set(requests.map((r) => Buffer.from(r.signature).toString('hex')));
    assert.ok(requests.length >= writes, `${requests.length} requests sent`);
    assert.ok(requests.every((r) => r.bundle !== undefined && r.bundle.size === writes), 'the 40 writes of one turn went as one bundle of 40');
    assert.equal(signatures.size, 1, `${signatures.size} request signatures for ${writes} writes`);
    const verified = c.members.reduce((a, m) => a + m.pbftStatus().stats.clientSignaturesVerified, 0) - verifiedBefore;
    assert.ok(verified >= 1 && verified <= c.members.length, `${verified} client signatures checked by ${c.members.length} replicas for ${writes} writes`);
  } finally {
    await c.close();
  }
});

for (const behaviour of ['equivocate', 'forge', 'silent'] as const) {
  test(`a Byzantine primary (${behaviour}, the simulator's Adversary around a real runtime): writes still execute once and their certificates verify`, async () => {
    const c = await startInProcessPbft({ adversary: (i, membership, s) => (i === 0 ? new Adversary(behaviour, 0, { sign: (d) => s.sign(d) }, new PbftAuth(membership, sha256Ed25519), new Xoshiro128(7), 'nobody') : undefined) });
    try {
      const g = c.gateway();
      for (let i = 1; i <= 3; i++) {
        const o = await g.submit({ operator_id: 'counter.add', inputs: { key: 'z', delta: 1 } }, { signal: AbortSignal.timeout(30_000) });
        assert.deepEqual(o.result.ok && o.result.outputs, { value: i });
        assert.ok(o.receipt !== null);
        assert.deepEqual(await verifyCertifiedReceipt(o.receipt, o.certificate, c.membership, pbftCertificateScheme), { ok: true });
      }
      const honest = c.members.slice(1).map((m) => m.pbftStatus());
      assert.ok(honest.some((s) => s.view >= 1 || s.droppedTotal > 0), 'the honest replicas noticed: a new view, or drops counted');
    } finally {
      await c.close();
    }
  });
}
