// "Paper tests" for the pure PBFT core (Castro & Liskov): each drives replicas message by
// message through the in-memory cluster (src/sim/pbft-harness.ts) and asserts on what a driver
// or a client would observe: messages sent, batches executed, replies, views, watermarks, and
// what was dropped and why. Crypto is the simulator's fast fake unless a test needs ed25519.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PbftAuth, bytesKey } from '../../src/consensus/pbft/auth.ts';
import { verifyCertificate } from '../../src/consensus/pbft/certificate.ts';
import { DEFAULT_MAX_RETRANSMIT_BACKOFF, DEFAULT_RETRANSMIT_TICKS, RETRANSMIT_LATENCY_FACTOR } from '../../src/consensus/pbft/client.ts';
import { PbftMembershipError, PbftSubmitError } from '../../src/consensus/pbft/errors.ts';
import { BROADCAST, type CommittedBatch, type NodeId, type PbftMessage, type PrepareMessage, type PreparedCertificate, type RequestMessage, type ViewChangeMessage } from '../../src/consensus/pbft/types.ts';
import { computeNewViewOrder, GENESIS_DIGEST } from '../../src/consensus/pbft/view-change.ts';
import { encodeKvOp } from '../../src/sim/pbft-app.ts';
import { fakeVerifier } from '../../src/sim/pbft-crypto.ts';
import { PbftMemoryCluster, type Envelope } from '../../src/sim/pbft-harness.ts';

const put = (key: string, value: string): Uint8Array => encodeKvOp({ k: 'put', key, value });
const ofType = (t: PbftMessage['type']) => (e: Envelope): boolean => e.message.type === t;

/** Batches each replica executed, in order. */
function recordExecutions(c: PbftMemoryCluster): Map<NodeId, CommittedBatch[]> {
  const out = new Map<NodeId, CommittedBatch[]>();
  for (const [id, h] of c.hosts) {
    const list: CommittedBatch[] = [];
    out.set(id, list);
    h.onExecute = (b) => list.push(b);
  }
  return out;
}

function deliverEach(c: PbftMemoryCluster, envs: readonly Envelope[]): void {
  for (const e of envs) c.deliver(e);
}

describe('pbft: normal case (Castro-Liskov §4.2)', () => {
  it('REQUEST → PRE-PREPARE → PREPARE → COMMIT → REPLY, message by message', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    const executed = recordExecutions(c);
    c.submit('c1', put('a', '1'));
    const req = c.take(ofType('request'));
    assert.deepEqual(req.map((e) => e.to), ['r0'], 'the client sends to the primary of view 0');
    c.deliver(req[0] as Envelope);
    const pps = c.take(ofType('prePrepare'));
    assert.deepEqual(pps.map((e) => e.to).sort(), ['r1', 'r2', 'r3']);
    const pp = (pps[0] as Envelope).message;
    assert.ok(pp.type === 'prePrepare' && pp.view === 0 && pp.seq === 1 && pp.batch.length === 1);
    assert.ok(pps.every((e) => e.message === pp), 'one signed PRE-PREPARE object goes to every backup');

    // r1 accepts the pre-prepare and multicasts a PREPARE, but is not prepared on its own vote.
    c.deliver(pps.find((e) => e.to === 'r1') as Envelope);
    const p1 = c.take(ofType('prepare'));
    assert.deepEqual(p1.map((e) => e.to).sort(), ['r0', 'r2', 'r3']);
    assert.equal(c.take(ofType('commit')).length, 0);

    // r2 prepares too; r1 now holds the pre-prepare and 2f = 2 prepares: prepared, so it commits.
    c.deliver(pps.find((e) => e.to === 'r2') as Envelope);
    const p2 = c.take(ofType('prepare'));
    c.deliver(p2.find((e) => e.to === 'r1') as Envelope);
    const commits1 = c.take((e) => e.message.type === 'commit' && e.message.replica === 1);
    assert.equal(commits1.length, 3);
    assert.equal((executed.get('r1') as CommittedBatch[]).length, 0, 'one commit is not 2f+1');

    // Everything else: every replica decides and executes seq 1; replies reach the client.
    deliverEach(c, [...p1, ...p2.filter((e) => e.to !== 'r1'), ...commits1, ...pps.filter((e) => e.to === 'r3')]);
    c.deliverAll();
    for (const id of c.ids) assert.deepEqual((executed.get(id) as CommittedBatch[]).map((b) => b.seq), [1], id);
    const done = c.completed.get('c1') ?? [];
    assert.equal(done.length, 1);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(done[0]?.result)).value, null);
    assert.equal(verifyCertificate(done[0]!.certificate, c.membership, fakeVerifier).ok, true);
  });

  it('the primary sends no PREPARE and needs 2f backup prepares to be prepared', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    c.submit('c1', put('a', '1'));
    c.deliverAll();
    const fromPrimary = c.host('r0').replica.stats();
    // Prepares received by r0: one from each backup; none is ever sent by r0.
    assert.equal(c.host('r0').replica.lastExecuted(), 1);
    assert.equal(fromPrimary.signaturesMade, 1 + 1 + 1, 'r0 signs the pre-prepare, its commit and its reply root');
    assert.equal(c.host('r1').replica.stats().signaturesMade, 1 + 1 + 1, 'a backup signs its prepare, commit and reply root');
  });

  it('a client accepts a result only with f+1 matching replies and a certificate of them', () => {
    const c = new PbftMemoryCluster({ n: 7 });
    c.submit('c1', put('k', 'v'));
    // Only replies from r0 and r1 reach the client: f = 2 needs 3.
    c.drop = (e) => e.message.type === 'reply' && !['r0', 'r1'].includes(e.from);
    c.deliverAll();
    assert.equal(c.completed.get('c1')?.length, 0);
    assert.equal(c.client('c1').busy(), true);
    c.heal();
    c.tickAll(25); // the client retransmits; replicas resend the cached reply
    const done = c.completed.get('c1') ?? [];
    assert.equal(done.length, 1);
    assert.equal(done[0]?.certificate.replies.length, 3);
  });
});

describe('pbft: batching', () => {
  it('requests that arrive while the primary prepares one batch share the next round', () => {
    const c = new PbftMemoryCluster({ n: 4, clients: 5, limits: { maxInflightBatches: 1 } });
    const executed = recordExecutions(c);
    for (let i = 1; i <= 5; i++) c.submit(`c${i}`, put(`k${i}`, 'v'));
    // r0 receives c1 first and orders it alone; the four others queue behind it.
    c.deliverAll();
    const batches = (executed.get('r2') as CommittedBatch[]).map((b) => b.requests.length);
    assert.deepEqual(batches, [1, 4]);
    for (let i = 1; i <= 5; i++) assert.equal(c.completed.get(`c${i}`)?.length, 1);
  });

  it('one three-phase round per batch: signatures per ordered request fall with the batch size', () => {
    const perRequest = (batch: number): number => {
      const c = new PbftMemoryCluster({ n: 4, clients: batch, limits: { maxInflightBatches: 1, maxBatchRequests: batch } });
      // Hold the primary until every request is in, so one batch takes them all.
      for (let i = 1; i <= batch; i++) c.submit(`c${i}`, put(`k${i}`, 'v'));
      for (const e of c.take(ofType('request'))) c.host('r0').replica.step(e.from, e.message);
      c.deliverAll();
      let signed = 0;
      for (const h of c.hosts.values()) signed += h.replica.stats().signaturesMade;
      assert.equal(c.host('r3').replica.stats().requestsExecuted, batch);
      return signed / batch;
    };
    const one = perRequest(1);
    const sixteen = perRequest(16);
    assert.equal(one, 12, '4 replicas × (pre-prepare or prepare, commit, reply root)');
    assert.equal(sixteen, 12 / 16);
  });
});

describe('pbft: client retransmission', () => {
  it('an unanswered request is broadcast after retransmitTicks, then after twice as long each time, up to 2^DEFAULT_MAX_RETRANSMIT_BACKOFF periods', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    const client = c.client('c1');
    client.submit(put('k', 'v'));
    client.drain();
    const at: number[] = [];
    for (let t = 1; t <= 1000; t++) {
      client.tick();
      const has = client.hasOutput();
      const sent = client.drain().messages.some((m) => m.to === BROADCAST);
      assert.equal(has, sent, 'hasOutput says whether drain has anything');
      if (sent) at.push(t);
    }
    const gaps = at.map((t, i) => t - (at[i - 1] ?? 0));
    const cap = DEFAULT_RETRANSMIT_TICKS * 2 ** DEFAULT_MAX_RETRANSMIT_BACKOFF;
    assert.deepEqual(gaps.slice(0, 6), [DEFAULT_RETRANSMIT_TICKS, 2 * DEFAULT_RETRANSMIT_TICKS, 4 * DEFAULT_RETRANSMIT_TICKS, cap, cap, cap]);
    assert.ok(gaps.every((g) => g <= cap));
  });
});

describe('pbft: client retransmission follows its latency', () => {
  it('a client whose requests took L ticks waits RETRANSMIT_LATENCY_FACTOR × L before broadcasting the next one (within the backoff cap)', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    const client = c.client('c1');
    const slow = 30;
    c.submit('c1', put('a', '1'));
    for (let t = 0; t < slow; t++) client.tick();
    c.deliverAll();
    assert.equal(c.completed.get('c1')?.length, 1);
    assert.equal(client.retransmitPeriod(0), RETRANSMIT_LATENCY_FACTOR * slow);
    client.submit(put('b', '2'));
    client.drain();
    let first = 0;
    for (let t = 1; t <= 1000 && first === 0; t++) {
      client.tick();
      if (client.drain().messages.some((m) => m.to === BROADCAST)) first = t;
    }
    assert.equal(first, RETRANSMIT_LATENCY_FACTOR * slow);
    assert.equal(client.retransmitPeriod(5), DEFAULT_RETRANSMIT_TICKS * 2 ** DEFAULT_MAX_RETRANSMIT_BACKOFF, 'never past the cap');
  });
});

describe('pbft: a client checks reply roots once per batch', () => {
  it('replies of one batch share one root signature per replica: it is verified once, a forged one never taken on trust', () => {
    const c = new PbftMemoryCluster({ n: 4, clients: 8, limits: { maxInflightBatches: 1 } });
    for (let i = 1; i <= 8; i++) c.submit(`c${i}`, put(`k${i}`, 'v'));
    for (const e of c.take(ofType('request'))) c.host('r0').replica.step(e.from, e.message);
    // Watch the replies go by, as the client (the relay) gets them.
    const sent: PbftMessage[] = [];
    c.drop = (e) => (e.message.type === 'reply' && sent.push(e.message), false);
    c.deliverAll();
    let calls = 0;
    const counting = { digest: c.verifier.digest, verify: (k: Uint8Array, d: Uint8Array, sig: Uint8Array): boolean => (calls++, c.verifier.verify(k, d, sig)) };
    const auth = new PbftAuth(c.membership, counting);
    const fromReplica = sent.filter((m) => m.type === 'reply');
    assert.equal(fromReplica.length, 32, '8 replies from each of 4 replicas');
    const roots = new Set(fromReplica.map((m) => (m.type === 'reply' ? `${m.replica}:${bytesKey(m.root)}` : '')));
    assert.equal(roots.size, 4, 'one root per replica for the batch');
    for (const m of fromReplica) if (m.type === 'reply') assert.equal(auth.verifyReplyRoot(m.view, m.seq, m.root, m.replica, m.signature), true);
    assert.equal(calls, 4, 'one verification per replica and batch, not per request');
    const m = fromReplica[0];
    assert.ok(m?.type === 'reply');
    const forged = new Uint8Array(m.signature);
    forged[0] = (forged[0] as number) ^ 1;
    assert.equal(auth.verifyReplyRoot(m.view, m.seq, m.root, m.replica, forged), false);
    assert.equal(auth.verifyReplyRoot(m.view, m.seq, m.root, m.replica, forged), false);
    assert.equal(calls, 6, 'a signature that failed is checked again each time');
    assert.equal(auth.verifyReplyRoot(m.view, m.seq + 1, m.root, m.replica, m.signature), false, 'a valid signature does not vouch for another seq');
  });
});

describe('pbft: duplicates (client id and timestamp)', () => {
  it('a retransmitted request is answered again, never executed twice', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    c.submit('c1', put('a', '1'));
    c.deliverAll();
    const req = (c.completed.get('c1') ?? [])[0]?.request as RequestMessage;
    const before = c.host('r1').app.executed;
    c.host('r1').replica.step('c1', req);
    c.process('r1');
    const again = c.take((e) => e.message.type === 'reply' && e.from === 'r1');
    assert.equal(again.length, 1, 'the cached reply is sent again');
    assert.equal(c.host('r1').app.executed, before);
    assert.equal(c.host('r1').replica.stats().dropped.duplicate, 1);
  });

  it('a request ordered twice (a faulty primary) executes once', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    const executed = recordExecutions(c);
    c.submit('c1', put('a', '1'));
    c.deliverAll();
    const req = (c.completed.get('c1') ?? [])[0]?.request as RequestMessage;
    // r0 orders the same request again at seq 2, signing it properly.
    const auth = c.auth;
    const digest = auth.batchDigest([req]);
    const primary = c.host('r0').replica;
    const forged = { type: 'prePrepare' as const, view: 0, seq: 2, digest, replica: 0, signature: new Uint8Array(64), batch: [req] };
    const signature = keySign(c, 'r0', auth.signingDigest(forged));
    for (const to of ['r1', 'r2', 'r3']) c.deliver({ from: 'r0', to, message: { ...forged, signature } });
    c.deliverAll();
    assert.equal(primary.lastExecuted(), 1, 'r0 never signed seq 2 itself');
    for (const id of ['r1', 'r2', 'r3']) {
      const b = (executed.get(id) as CommittedBatch[]).find((x) => x.seq === 2);
      assert.deepEqual(b?.execute, [false], `${id} decides seq 2 but skips the duplicate`);
      assert.equal(c.host(id).app.executed, 1);
    }
  });
});

/** Signs a digest with replica `id`'s key (the harness keeps the signers inside its replicas). */
function keySign(c: PbftMemoryCluster, id: NodeId, digest: Uint8Array): Uint8Array {
  return c.signer(id).sign(digest);
}

describe('pbft: checkpoints and watermarks (§4.3)', () => {
  it('every K batches a CHECKPOINT; 2f+1 matching ones make it stable and move the low watermark', () => {
    const c = new PbftMemoryCluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4 } });
    c.submit('c1', put('a', '1'));
    c.deliverAll();
    assert.equal(c.host('r1').replica.status().lowWatermark, 0);
    c.submit('c1', put('a', '2'));
    c.processAll();
    // Deliver everything but checkpoints: seq 2 executes, the checkpoint is not stable yet.
    const held: Envelope[] = [];
    c.drop = (e) => e.message.type === 'checkpoint' && held.push(e) > 0;
    c.deliverAll();
    assert.equal(c.host('r1').replica.lastExecuted(), 2);
    assert.equal(c.host('r1').replica.status().lowWatermark, 0);
    assert.equal(held.length, 12, 'each of 4 replicas multicasts one checkpoint');
    c.heal();
    // r1 gets r2's and r3's: with its own that is 2f+1 = 3.
    deliverEach(c, held.filter((e) => e.to === 'r1' && e.from !== 'r0'));
    const st = c.host('r1').replica.status();
    assert.equal(st.lowWatermark, 2);
    assert.equal(st.highWatermark, 6);
    assert.equal(c.host('r1').replica.stats().stableCheckpoints, 1);
  });

  it('the primary orders nothing above the high watermark until a checkpoint is stable', () => {
    const c = new PbftMemoryCluster({ n: 4, clients: 6, limits: { checkpointInterval: 2, watermarkWindow: 4, maxInflightBatches: 8, maxBatchRequests: 1 } });
    c.drop = (e) => e.message.type === 'checkpoint';
    for (let i = 1; i <= 6; i++) c.submit(`c${i}`, put(`k${i}`, 'v'));
    c.deliverAll();
    assert.equal(c.host('r0').replica.lastExecuted(), 4, 'seqs 1..4 fit in (0, 0 + L]');
    assert.equal(c.completed.get('c5')?.length, 0);
    c.heal();
    c.tickAll(12); // checkpoints are re-sent with STATUS; the window moves and 5, 6 run
    assert.equal(c.host('r0').replica.lastExecuted(), 6);
    assert.equal(c.completed.get('c6')?.length, 1);
  });

  it('messages outside (h, h + L] are dropped and counted', () => {
    const c = new PbftMemoryCluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4 } });
    const r1 = c.host('r1').replica;
    const digest = c.auth.nullDigest;
    const far: PrepareMessage = { type: 'prepare', view: 0, seq: 5, digest, replica: 2, signature: new Uint8Array(64) };
    r1.step('r2', { ...far, signature: keySign(c, 'r2', c.auth.signingDigest(far)) });
    assert.equal(r1.stats().dropped.outsideWatermarks, 1);
  });
});

describe('pbft: view change (TOCS 2002 §4.4)', () => {
  it('a silent primary is replaced: backups time out, VIEW-CHANGE, NEW-VIEW, the request executes in view 1', () => {
    const c = new PbftMemoryCluster({ n: 4, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5 } });
    c.isolate('r0');
    c.submit('c1', put('a', '1'));
    c.deliverAll();
    let vcs = 0;
    const drop = c.drop;
    c.drop = (e) => {
      if (e.message.type === 'viewChange') vcs++;
      return drop(e);
    };
    for (let i = 0; i < 30 && (c.completed.get('c1')?.length ?? 0) === 0; i++) c.tickAll();
    assert.equal(c.completed.get('c1')?.length, 1);
    for (const id of ['r1', 'r2', 'r3']) {
      assert.equal(c.host(id).replica.currentView(), 1, id);
      assert.equal(c.host(id).replica.isActive(), true);
    }
    assert.equal(c.host('r1').replica.isPrimary(), true);
    assert.ok(vcs >= 3, 'each backup multicasts a VIEW-CHANGE');
    assert.equal(c.client('c1').currentView(), 1, 'the client learns the view from the replies');
  });

  it('a batch prepared before the view change is re-proposed with the same digest in the new view', () => {
    const c = new PbftMemoryCluster({ n: 4, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5 } });
    const executed = recordExecutions(c);
    c.submit('c1', put('a', '1'));
    // Everyone prepares seq 1, but no COMMIT arrives anywhere; then r0 falls silent.
    let prepared: Uint8Array = new Uint8Array(0);
    c.drop = (e) => {
      if (e.message.type === 'prePrepare') prepared = e.message.digest;
      return e.message.type === 'commit';
    };
    c.deliverAll();
    const digestBefore = bytesKey((c.host('r0').replica.commitProof(1) ?? { digest: new Uint8Array(0) }).digest);
    assert.equal(digestBefore, bytesKey(new Uint8Array(0)), 'nothing decided yet');
    c.isolate('r0');
    const seen: PbftMessage[] = [];
    const cut = c.drop;
    c.drop = (e) => {
      if (e.message.type === 'viewChange' || e.message.type === 'newView') seen.push(e.message);
      return cut(e);
    };
    for (let i = 0; i < 40 && (c.completed.get('c1')?.length ?? 0) === 0; i++) c.tickAll();
    assert.equal(c.completed.get('c1')?.length, 1);
    // Each backup's VIEW-CHANGE carries its prepared certificate for seq 1 ...
    const vcs = seen.filter((m) => m.type === 'viewChange');
    assert.ok(vcs.length >= 3);
    for (const vc of vcs) assert.ok(vc.type === 'viewChange' && vc.prepared.some((p) => p.seq === 1 && bytesKey(p.digest) === bytesKey(prepared)), 'prepared certificate in the VIEW-CHANGE');
    // ... and the NEW-VIEW orders that same digest at seq 1 (not a fresh batch of the same request).
    const nv = seen.find((m) => m.type === 'newView');
    assert.ok(nv?.type === 'newView');
    assert.deepEqual(nv.prePrepares.map((p) => [p.seq, bytesKey(p.digest)]), [[1, bytesKey(prepared)]]);
    const b = (executed.get('r1') as CommittedBatch[])[0] as CommittedBatch;
    assert.equal(b.seq, 1);
    assert.equal(b.view, 1, 'decided in view 1');
    assert.equal(bytesKey(b.digest), bytesKey(prepared));
  });

  it('NEW-VIEW order: the highest-view prepared digest per seq, null requests in the gaps', () => {
    const auth = new PbftAuth(new PbftMemoryCluster({ n: 4 }).membership, fakeVerifier);
    const d = (x: number): Uint8Array => new Uint8Array(32).fill(x);
    const cert = (view: number, seq: number, digest: Uint8Array): PreparedCertificate => ({ view, seq, digest, prePrepare: new Uint8Array(64), prepares: [] });
    const vc = (replica: number, prepared: PreparedCertificate[]): ViewChangeMessage => ({
      type: 'viewChange',
      view: 3,
      checkpoint: { seq: 0, digest: GENESIS_DIGEST, signatures: [] },
      prepared,
      replica,
      signature: new Uint8Array(64),
    });
    const o = computeNewViewOrder([vc(0, [cert(0, 1, d(1)), cert(1, 3, d(3))]), vc(1, [cert(2, 1, d(9))]), vc(2, [])], auth.nullDigest);
    assert.equal(o.checkpoint.seq, 0);
    assert.equal(o.maxSeq, 3);
    assert.deepEqual(
      o.order.map((e) => [e.seq, bytesKey(e.digest)]),
      [
        [1, bytesKey(d(9))],
        [2, bytesKey(auth.nullDigest)],
        [3, bytesKey(d(3))],
      ],
    );
  });

  it('a PRE-PREPARE that overtakes its NEW-VIEW is held and acted on once the view starts', () => {
    // n = 7: view 1 runs on r1..r5 (2f+1) while r6 still waits for the NEW-VIEW.
    const c = new PbftMemoryCluster({ n: 7, clients: 2, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5 } });
    c.isolate('r0');
    c.submit('c1', put('a', '1'));
    let newView: Envelope | undefined;
    c.drop = (e) => {
      if (e.message.type === 'newView' && e.to === 'r6') {
        newView = e;
        return true;
      }
      return e.from === 'r0' || e.to === 'r0';
    };
    for (let i = 0; i < 30 && (c.completed.get('c1')?.length ?? 0) === 0; i++) c.tickAll();
    assert.equal(c.completed.get('c1')?.length, 1);
    assert.ok(newView !== undefined);
    const r6 = c.host('r6').replica;
    assert.equal(r6.isActive(), false);
    assert.equal(r6.currentView(), 1, `r6 waits in view 1 (dropped: ${JSON.stringify(r6.stats().dropped)})`);
    // View 1 orders a new request; its PRE-PREPARE reaches r6 before the NEW-VIEW does.
    c.submit('c2', put('b', '2'));
    const [req] = c.take((e) => e.message.type === 'request' && e.from === 'c2');
    c.deliver({ ...(req as Envelope), to: 'r1' });
    const pp = c.take((e) => e.message.type === 'prePrepare' && e.to === 'r6');
    assert.equal(pp.length, 1);
    const seq = (pp[0]?.message as { seq: number }).seq;
    c.deliver(pp[0] as Envelope);
    assert.equal(c.take((e) => e.from === 'r6' && e.message.type === 'prepare').length, 0, 'held while waiting for the NEW-VIEW');
    c.isolate('r0');
    c.deliver(newView);
    const prepares = c.take((e) => e.from === 'r6' && e.message.type === 'prepare' && e.message.seq === seq);
    assert.equal(prepares.length, 6, 'r6 prepares the held pre-prepare as soon as view 1 starts');
    assert.equal(r6.stats().dropped.inactive, 0);
  });

  it('two signed PRE-PREPAREs for one (view, seq) expose the primary: the backup starts a view change', () => {
    const c = new PbftMemoryCluster({ n: 4, clients: 2 });
    c.submit('c1', put('a', '1'));
    c.submit('c2', put('b', '1'));
    const reqs = c.take(ofType('request')).map((e) => e.message as RequestMessage);
    const r1 = c.host('r1').replica;
    for (const [i, r] of reqs.entries()) {
      const digest = c.auth.batchDigest([r]);
      const unsigned = { type: 'prePrepare' as const, view: 0, seq: 1, digest, replica: 0, signature: new Uint8Array(64), batch: [r] };
      r1.step('r0', { ...unsigned, signature: keySign(c, 'r0', c.auth.signingDigest(unsigned)) });
      assert.equal(r1.currentView(), i === 0 ? 0 : 1);
    }
    assert.equal(r1.isActive(), false);
    assert.equal(r1.stats().dropped.conflict, 1);
    assert.ok(c.take((e) => e.message.type === 'viewChange' && e.from === 'r1').length === 3);
  });
});

describe('pbft: state transfer', () => {
  it('a replica behind the stable checkpoint fetches the state in chunks and catches up', () => {
    const c = new PbftMemoryCluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4, stateChunkBytes: 16, statusTicks: 2 } });
    c.isolate('r3');
    for (let i = 0; i < 7; i++) {
      c.submit('c1', put('a', `${i}`));
      c.deliverAll();
    }
    assert.equal(c.host('r0').replica.lastExecuted(), 7);
    assert.equal(c.host('r3').replica.lastExecuted(), 0);
    c.heal();
    let chunks = 0;
    c.drop = (e) => {
      if (e.message.type === 'stateChunk' && e.message.data.byteLength > 0) chunks++;
      return false;
    };
    c.tickAll(10);
    const r3 = c.host('r3').replica;
    assert.equal(r3.stats().stateTransfers, 1);
    assert.equal(r3.lastExecuted(), 7, 'the state at the checkpoint, then the rest by commit certificates');
    assert.ok(chunks > 3, `state came in ${chunks} chunks of 16 bytes`);
    assert.deepEqual(c.host('r3').app.snapshot(), c.host('r0').app.snapshot());
  });

  it('state bytes that do not hash to the proven digest are refused', () => {
    const c = new PbftMemoryCluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4, stateChunkBytes: 4096, statusTicks: 2 } });
    c.isolate('r3');
    for (let i = 0; i < 6; i++) {
      c.submit('c1', put('a', `${i}`));
      c.deliverAll();
    }
    c.heal();
    // Whatever r0 sends r3 is corrupted (re-signed by r0, so only the digest check can catch it).
    c.drop = (e) => {
      if (e.message.type !== 'stateChunk' || e.from !== 'r0' || e.message.data.byteLength === 0) return false;
      const data = e.message.data.slice();
      data[0] = (data[0] as number) ^ 1;
      const bad = { ...e.message, data };
      c.host('r3').replica.step('r0', { ...bad, signature: keySign(c, 'r0', c.auth.signingDigest(bad)) });
      return true;
    };
    c.tickAll(20);
    const r3 = c.host('r3').replica;
    assert.ok(r3.stats().dropped.badState >= 1);
    assert.equal(r3.lastExecuted(), 6, 'another replica supplied the real state');
    assert.deepEqual(c.host('r3').app.snapshot(), c.host('r1').app.snapshot());
  });
});

describe('pbft: bad input is dropped, counted, and stalls nobody', () => {
  it('non-member, bad signature, stale view, bad certificates: each has its reason; requests still commit', () => {
    const c = new PbftMemoryCluster({ n: 4, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5 } });
    const r2 = c.host('r2').replica;
    const digest = c.auth.nullDigest;
    const prep = (view: number, seq: number, replica: number): PrepareMessage => {
      const m: PrepareMessage = { type: 'prepare', view, seq, digest, replica, signature: new Uint8Array(64) };
      return { ...m, signature: keySign(c, `r${replica}`, c.auth.signingDigest(m)) };
    };
    r2.step('x9', prep(0, 1, 1));
    assert.equal(r2.stats().dropped.nonMember, 1);
    r2.step('r1', { ...prep(0, 1, 1), signature: new Uint8Array(64) });
    assert.equal(r2.stats().dropped.badSignature, 1);
    r2.step('r1', prep(0, 1, 0));
    assert.equal(r2.stats().dropped.notPrimary, 1);

    // A VIEW-CHANGE carrying a prepared certificate with forged prepares.
    const forged: ViewChangeMessage = {
      type: 'viewChange',
      view: 1,
      checkpoint: { seq: 0, digest: GENESIS_DIGEST, signatures: [] },
      prepared: [{ view: 0, seq: 1, digest, prePrepare: keySign(c, 'r0', c.auth.agreementDigest('prePrepare', 0, 1, digest, 0)), prepares: [{ replica: 1, signature: new Uint8Array(64) }, { replica: 3, signature: new Uint8Array(64) }] }],
      replica: 1,
      signature: new Uint8Array(64),
    };
    r2.step('r1', { ...forged, signature: keySign(c, 'r1', c.auth.signingDigest(forged)) });
    assert.equal(r2.stats().dropped.badCertificate, 1);
    assert.equal(r2.currentView(), 0);

    // Move everyone to view 1 (r0 silent), then replay a view-0 prepare: stale.
    c.isolate('r0');
    c.submit('c1', put('a', '1'));
    for (let i = 0; i < 30 && (c.completed.get('c1')?.length ?? 0) === 0; i++) c.tickAll();
    assert.equal(r2.currentView(), 1);
    r2.step('r1', prep(0, 1, 1));
    assert.ok(r2.stats().dropped.staleView >= 1);
    // After all that, the cluster still orders requests.
    c.heal();
    c.submit('c1', put('a', '2'));
    c.deliverAll();
    assert.equal(c.completed.get('c1')?.length, 2);
  });

  it('a NEW-VIEW whose order is not the one its view changes imply is refused', () => {
    const c = new PbftMemoryCluster({ n: 4, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5 } });
    c.isolate('r0');
    c.submit('c1', put('a', '1'));
    let newView: Envelope | undefined;
    c.drop = (e) => {
      if (e.message.type === 'newView' && e.to === 'r3') {
        newView = e;
        return true;
      }
      return e.from === 'r0' || e.to === 'r0';
    };
    for (let i = 0; i < 30 && newView === undefined; i++) c.tickAll();
    assert.ok(newView !== undefined && newView.message.type === 'newView');
    const nv = newView.message;
    // r1 (the new primary) adds a pre-prepare for a batch nobody prepared, signing everything.
    const extraDigest = c.auth.nullDigest.map((b) => b ^ 0xff);
    const extra = { seq: 9, digest: extraDigest, signature: keySign(c, 'r1', c.auth.agreementDigest('prePrepare', 1, 9, extraDigest, 1)) };
    const tampered = { ...nv, prePrepares: [...nv.prePrepares, extra] };
    const r3 = c.host('r3').replica;
    r3.step('r1', { ...tampered, signature: keySign(c, 'r1', c.auth.signingDigest(tampered)) });
    assert.equal(r3.stats().dropped.badCertificate, 1);
    assert.equal(r3.isActive(), false);
    r3.step('r1', nv);
    assert.equal(r3.isActive(), true);
  });

  it('a primary cannot make a replica check NEW-VIEWs for its view without end (maxNewViewChecks)', () => {
    const c = new PbftMemoryCluster({ n: 4, clientRetransmitTicks: 3, limits: { requestTimeoutTicks: 5, maxNewViewChecks: 3 } });
    c.isolate('r0');
    c.submit('c1', put('a', '1'));
    let nv: PbftMessage | undefined;
    const cut = c.drop;
    c.drop = (e) => {
      if (e.message.type === 'newView' && e.to === 'r3') {
        nv = e.message;
        return true;
      }
      return cut(e);
    };
    for (let i = 0; i < 30 && nv === undefined; i++) c.tickAll();
    assert.ok(nv?.type === 'newView');
    const r3 = c.host('r3').replica;
    const digest = c.auth.nullDigest.map((b) => b ^ 0xff);
    const bad = { ...nv, prePrepares: [...nv.prePrepares, { seq: 9, digest, signature: keySign(c, 'r1', c.auth.agreementDigest('prePrepare', 1, 9, digest, 1)) }] };
    const signedBad = { ...bad, signature: keySign(c, 'r1', c.auth.signingDigest(bad)) };
    for (let i = 0; i < 5; i++) r3.step('r1', signedBad);
    const d = r3.stats().dropped;
    assert.deepEqual([d.badCertificate, d.queueFull], [3, 2]);
  });

  it('a full request queue refuses more (queueFull) and keeps working', () => {
    const c = new PbftMemoryCluster({ n: 4, clients: 3, clientRetransmitTicks: 5, limits: { maxPendingRequests: 2, maxInflightBatches: 1 } });
    c.isolate('r1', 'r2', 'r3');
    for (let i = 1; i <= 3; i++) c.submit(`c${i}`, put('a', `${i}`));
    c.deliverAll();
    assert.equal(c.host('r0').replica.stats().dropped.queueFull, 1);
    c.heal();
    // The pre-prepare r0 sent while cut off is resent on the backups' STATUS; c3 retransmits.
    for (let i = 0; i < 60 && (c.completed.get('c3')?.length ?? 0) === 0; i++) c.tickAll();
    for (let i = 1; i <= 3; i++) assert.equal(c.completed.get(`c${i}`)?.length, 1, `c${i}`);
  });
});

describe('pbft: per-client and per-replica bounds', () => {
  it('a newer request of a client replaces its older pending one (one pending request per client)', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    const r1 = c.host('r1').replica;
    c.submit('c1', put('a', '1'));
    const [first] = c.take((e) => e.message.type === 'request');
    const older = first?.message as RequestMessage;
    r1.step('c1', older);
    assert.equal(r1.status().pendingRequests, 1);
    // The client gives up and sends timestamp + 1 (a new PbftClient state would; forge it with the client key).
    const client = c.client('c1');
    assert.equal(client.busy(), true);
    const newer = { ...older, timestamp: older.timestamp + 1 };
    const signedNewer = { ...newer, signature: c.clientSigner('c1').sign(c.auth.signingDigest(newer)) };
    r1.step('c1', signedNewer);
    assert.equal(r1.status().pendingRequests, 1, 'the older one is forgotten');
    r1.step('c1', older);
    assert.equal(r1.stats().dropped.duplicate, 1, 'and refused when it comes again');
  });

  it('a replica that floods FETCH-STATE gets at most maxStateChunksPerTick chunks a tick', () => {
    const c = new PbftMemoryCluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4, stateChunkBytes: 8, maxStateChunksPerTick: 3 } });
    for (let i = 0; i < 3; i++) {
      c.submit('c1', put('a', `${i}`));
      c.deliverAll();
    }
    const r0 = c.host('r0').replica;
    assert.equal(r0.status().lowWatermark, 2);
    const fetch = { type: 'fetchState' as const, seq: 2, offset: 0, replica: 3, signature: new Uint8Array(64) };
    const signed = { ...fetch, signature: keySign(c, 'r3', c.auth.signingDigest(fetch)) };
    for (let i = 0; i < 10; i++) r0.step('r3', signed);
    assert.equal(c.take((e) => e.message.type === 'stateChunk' && e.from === 'r0').length, 3);
    assert.equal(r0.stats().dropped.queueFull, 7);
    c.tick('r0');
    r0.step('r3', signed);
    assert.equal(c.take((e) => e.message.type === 'stateChunk' && e.from === 'r0').length, 1, 'a new tick, a new budget');
  });
});

describe('pbft: configuration errors', () => {
  it('a membership that is not 3f+1 distinct replicas is refused with a typed error', () => {
    const key = (x: number): Uint8Array => new Uint8Array(32).fill(x);
    assert.throws(() => new PbftAuth({ cluster: 'x', replicas: [1, 2, 3, 4, 5].map((i) => ({ id: `r${i}`, publicKey: key(i) })) }, fakeVerifier), PbftMembershipError);
    assert.throws(() => new PbftAuth({ cluster: 'x', replicas: [1, 2, 3, 3].map((i) => ({ id: `r${i}`, publicKey: key(i) })) }, fakeVerifier), (e: unknown) => e instanceof PbftMembershipError && e.code === 'PBFT_MEMBERSHIP_INVALID');
  });

  it('a client has one request outstanding at a time', () => {
    const c = new PbftMemoryCluster({ n: 4 });
    c.submit('c1', put('a', '1'));
    assert.throws(() => c.submit('c1', put('a', '2')), (e: unknown) => e instanceof PbftSubmitError && e.reason === 'outstanding');
  });
});
