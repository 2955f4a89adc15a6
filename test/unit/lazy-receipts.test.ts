// Receipts off the critical path: a replica appends receipts unsigned (chained over bodies, in
// the tree, one tree head signed per batch) and signs each when it is first read. These tests
// count signatures per committed write on a real in-process Raft cluster, hold the lazy bytes
// equal to eager signing, and read lazily signed receipts after a restart and a power cut.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { crypto, peerIdFromPublicKeyBytes, publicKeyFromPeerId } from '../../src/crypto/index.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { verifyChain, type Receipt } from '../../src/receipts/receipt.ts';
import { verifyTreeHead } from '../../src/receipts/tree-head.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { PowerLossStore } from '../../src/store/power-loss.ts';
import { startInProcessCluster } from '../harness/raft-inprocess.ts';

const WRITES = 40;
const WITHIN_MS = 20_000;

const signer = crypto.createSigner(crypto.randomBytes(32));
const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
const T0 = Date.parse('2026-11-29T12:00:00.000Z');
const entry = (i: number): { operator_id: string; inputs: { key: string; value: number }; outputs: { ok: boolean } } => ({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, outputs: { ok: true } });

async function collect(log: ReceiptLog): Promise<Receipt[]> {
  const out: Receipt[] = [];
  for await (const r of log.iterate(0)) out.push(r);
  return out;
}

/** Three voters and a learner (the relay's place); every write goes through the learner, which answers it. */
async function signaturesPerWrite(receiptSigning: 'eager' | 'lazy'): Promise<{ perWrite: number; answering: number; others: number; treeHeads: number; exported: Receipt[][] }> {
  const c = await startInProcessCluster({ voters: 3, learners: 1, receiptSigning });
  try {
    await c.leader(WITHIN_MS);
    const relay = c.members[3]!;
    for (let i = 0; i < WRITES; i++) {
      const o = await relay.submit({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i } }, { signal: AbortSignal.timeout(WITHIN_MS) });
      assert.ok(o.result.ok && o.receipt !== null, JSON.stringify(o.result));
      const r = await o.receipt;
      assert.equal(r.signer, relay.replica.log.peerId);
    }
    // Every member applies every write and makes its receipts durable.
    for (const m of c.members) {
      await waitFor(() => m.replica.ordinal >= WRITES, `${m.id} applied ${WRITES}`);
      await m.replica.flush();
    }
    const answering = relay.replica.log.receiptSignatures;
    const others = c.members.slice(0, 3).reduce((n, m) => n + m.replica.log.receiptSignatures, 0);
    const treeHeads = c.members.slice(0, 3).reduce((n, m) => n + m.replica.log.treeHeadSignatures, 0);
    // The relay signs a receipt it answers with in its batch (its caller waited for that entry
    // when it applied it, nearly always): such a batch needs no tree head. One sequential
    // caller makes a batch per write, so lazy appends there would show one per write.
    assert.ok(relay.replica.log.treeHeadSignatures <= WRITES / 4, `relay tree heads: ${relay.replica.log.treeHeadSignatures}`);
    // The export signs what is still unsigned; every member's chain verifies.
    const exported: Receipt[][] = [];
    for (const m of c.members) {
      const chain = await collect(m.replica.log);
      assert.equal(chain.length, WRITES);
      const v = await verifyChain(chain, { signer: m.replica.log.peerId });
      assert.ok(v.ok, JSON.stringify(v));
      exported.push(chain);
      const sth = m.replica.log.batchTreeHead;
      if (receiptSigning === 'lazy' && m !== relay) {
        assert.ok(sth !== undefined && sth.size === WRITES && sth.root === `sha256:${Buffer.from(m.replica.log.root()).toString('hex')}`, 'the last batch signed a tree head over the whole log');
        assert.ok(verifyTreeHead(sth, publicKeyFromPeerId(m.replica.log.peerId)), 'the batch tree head verifies');
      }
    }
    return { perWrite: (answering + others) / WRITES, answering, others, treeHeads, exported };
  } finally {
    await c.close();
  }
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WITHIN_MS;
  // Bounded: polls the event loop until the deadline; each turn lets the cluster's messages run.
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('per committed write, only the member that answers signs a receipt, in its batch (4 with eager signing, 1 lazy), and the others a tree head per batch', async () => {
  const eager = await signaturesPerWrite('eager');
  assert.equal(eager.perWrite, 4, JSON.stringify({ ...eager, exported: undefined }));
  assert.equal(eager.treeHeads, 0);
  const lazy = await signaturesPerWrite('lazy');
  assert.equal(lazy.answering, WRITES, 'the answering member signs each receipt it answers with, once');
  assert.equal(lazy.others, 0, 'voters that answered nobody signed no receipt on the write path');
  assert.ok(lazy.perWrite <= 1, `lazy: ${lazy.perWrite} receipt signatures per write`);
  assert.ok(lazy.treeHeads >= 3 && lazy.treeHeads <= 3 * WRITES, `tree heads: ${lazy.treeHeads}`);
});

test('a lazy append commits the same bytes, chain and tree as eager signing, and signs each receipt once however often it is read', async () => {
  const eager = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const lazy = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const a: Array<Promise<unknown>> = [];
  for (let i = 0; i < 100; i++) {
    a.push(eager.append(entry(i), T0 + i));
    a.push(lazy.appendLazy(entry(i), T0 + i));
  }
  await Promise.all(a);
  assert.equal(lazy.receiptSignatures, 0, 'nothing signed before a read');
  assert.ok(lazy.treeHeadSignatures >= 1 && lazy.treeHeadSignatures <= 100);
  assert.deepEqual(lazy.root(), eager.root());
  const [got, again] = await Promise.all([lazy.get(7), lazy.get(7)]);
  assert.deepEqual(got, await eager.get(7));
  assert.equal(got, again);
  assert.equal(lazy.receiptSignatures, 1, 'two concurrent reads of one receipt make one signature');
  assert.deepEqual(await collect(lazy), await collect(eager));
  assert.equal(lazy.receiptSignatures, 100);
  const id = (await eager.get(42))!.receipt_id;
  assert.deepEqual(await lazy.inclusionProof(id), await eager.inclusionProof(id));
});

test('a lazily signed receipt read after a restart (LevelDB) is the eagerly signed one; its signature is written back and made once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hs-lazy-'));
  try {
    const eager = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
    let log = await ReceiptLog.open(await LevelStore.open(dir), { signer, peerId, sync: false });
    for (let i = 0; i < 20; i++) await Promise.all([eager.append(entry(i), T0 + i), log.appendLazy(entry(i), T0 + i)]);
    await log.close();
    log = await ReceiptLog.open(await LevelStore.open(dir), { signer, peerId });
    assert.equal(log.size, 20);
    assert.equal(log.batchTreeHead?.size, 20);
    const r = await log.getById((await eager.get(5))!.receipt_id);
    assert.deepEqual(r, await eager.get(5));
    assert.equal(log.receiptSignatures, 1);
    const chain = await collect(log);
    assert.ok((await verifyChain(chain, { signer: peerId })).ok);
    assert.deepEqual(chain, await collect(eager));
    assert.equal(log.receiptSignatures, 20);
    await log.close();
    // Written back: the next process reads them signed and signs nothing.
    log = await ReceiptLog.open(await LevelStore.open(dir), { signer, peerId });
    assert.deepEqual(await collect(log), chain);
    assert.equal(log.receiptSignatures, 0);
    await log.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an acknowledged lazy receipt survives a power cut (its unsigned body was synced), and its signature made before the cut but not synced is made again, the same', async () => {
  const store = new PowerLossStore();
  const log = await ReceiptLog.open(store, { signer, peerId });
  const indexes = await Promise.all(Array.from({ length: 30 }, (_, i) => log.appendLazy(entry(i), T0 + i)));
  const before = await collect(log);
  assert.ok(store.unsynced > 0, 'signatures written back without fsync');
  const after = await ReceiptLog.open(await store.powerLoss(), { signer, peerId });
  assert.equal(after.size, 30);
  for (const i of indexes) assert.deepEqual(await after.get(i), before[i]);
  assert.equal(after.receiptSignatures, 30);
});
