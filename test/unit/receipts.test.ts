// Receipts: building, the seed's five verification steps with each field altered in turn
// caught at the right step, streaming chain verification, the log on a store (group commit,
// lookups, proofs, reopen), and proof bundles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crypto, digestJson, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ChainVerifier, GENESIS_HASH, verifyChain, type Receipt } from '../../src/receipts/receipt.ts';
import { ReceiptLog, verifyTreeHead } from '../../src/receipts/log.ts';
import { verifyConsistency } from '../../src/receipts/merkle.ts';
import { proofBundleProblem } from '../../src/receipts/proof.ts';
import { hexDecode } from '../../src/crypto/index.ts';
import type { Json } from '../../src/ico/types.ts';

const signer = crypto.createSigner(crypto.randomBytes(32));
const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
const other = crypto.createSigner(crypto.randomBytes(32));
const T0 = Date.parse('2026-11-24T12:00:00.000Z');

async function makeLog(n: number): Promise<{ log: ReceiptLog; store: MemoryStore; receipts: Receipt[]; io: Array<{ inputs: { k: number }; outputs: { v: string } }> }> {
  const store = new MemoryStore();
  const log = await ReceiptLog.open(store, { signer, peerId });
  const receipts: Receipt[] = [];
  const io = [];
  for (let i = 0; i < n; i++) {
    const entry = { inputs: { k: i }, outputs: { v: `out-${i}` } };
    io.push(entry);
    receipts.push(await log.append({ operator_id: 'kv.put', ...entry }, T0 + i * 1000));
  }
  return { log, store, receipts, io };
}

test('receipts carry the seed fields plus signer and index, chained from genesis', async () => {
  const { receipts } = await makeLog(3);
  const r0 = receipts[0]!;
  assert.deepEqual(Object.keys(r0).sort(), ['index', 'operation', 'prev_receipt_hash', 'receipt_id', 'signature', 'signer', 'timestamp']);
  assert.equal(r0.prev_receipt_hash, GENESIS_HASH);
  assert.equal(r0.operation.type, 'operator_execution');
  assert.equal(r0.operation.inputs_hash, digestJson({ k: 0 }));
  assert.equal(r0.signer, peerId);
  // The link is over the receipt without its signature: exactly the bytes the signature covers.
  const { signature: _signature, ...body } = r0;
  assert.equal(receipts[1]!.prev_receipt_hash, digestJson(body));
  assert.notEqual(receipts[1]!.prev_receipt_hash, digestJson(r0));
  assert.match(r0.receipt_id, /^receipt_[0-9a-f]{64}$/);
});

test('a valid chain verifies with inputs and outputs; the streaming verifier keeps O(1) state', async () => {
  const { receipts, io } = await makeLog(20);
  const result = await verifyChain(receipts, { now: T0 + 60_000 }, (i) => io[i]!);
  assert.deepEqual(result, { ok: true, count: 20 });
});

test('each field altered in turn is caught at the right step', async () => {
  const { receipts, io } = await makeLog(3);
  const target = receipts[1]!;
  const cases: Array<[string, (r: Receipt) => unknown, number, string?]> = [
    ['receipt_id', (r) => ({ ...r, receipt_id: `receipt_${'a'.repeat(64)}` }), 1],
    ['timestamp', (r) => ({ ...r, timestamp: '2026-11-24T12:00:01.500Z' }), 1],
    ['operation.operator_id', (r) => ({ ...r, operation: { ...r.operation, operator_id: 'kv.delete' } }), 1],
    ['operation.inputs_hash', (r) => ({ ...r, operation: { ...r.operation, inputs_hash: digestJson({ k: 99 }) } }), 1],
    ['operation.outputs_hash', (r) => ({ ...r, operation: { ...r.operation, outputs_hash: digestJson({ v: 'x' }) } }), 1],
    ['prev_receipt_hash', (r) => ({ ...r, prev_receipt_hash: digestJson('elsewhere') }), 1],
    ['signer', (r) => ({ ...r, signer: peerIdFromPublicKeyBytes(other.publicKey) }), 1],
    ['index', (r) => ({ ...r, index: 5 }), 1],
    ['signature', (r) => ({ ...r, signature: `${r.signature[0] === 'A' ? 'B' : 'A'}${r.signature.slice(1)}` }), 1],
    ['extra field', (r) => ({ ...r, note: 'x' }), 1],
    ['missing field', (r) => { const { signer: _s, ...rest } = r; return rest; }, 1],
  ];
  for (const [name, alter, step] of cases) {
    const chain = [receipts[0], alter(target), receipts[2]];
    const res = await verifyChain(chain, { now: T0 + 60_000 });
    assert.equal(res.ok, false, name);
    if (!res.ok) {
      assert.equal(res.step, step, `${name}: ${res.reason}`);
      assert.equal(res.index, 1, name);
    }
  }
});

test('steps 2–5: broken link, wrong inputs, wrong outputs, time running backwards or too far ahead', async () => {
  const { receipts, io } = await makeLog(4);
  const link = await verifyChain([receipts[0], receipts[2]], { now: T0 + 60_000 });
  assert.ok(!link.ok && link.step === 2 && link.index === 2);
  const inputs = await verifyChain(receipts, { now: T0 + 60_000 }, (i) => (i === 2 ? { inputs: { k: 999 } } : io[i]!));
  assert.ok(!inputs.ok && inputs.step === 3 && inputs.index === 2, JSON.stringify(inputs));
  const outputs = await verifyChain(receipts, { now: T0 + 60_000 }, (i) => (i === 3 ? { inputs: io[3]!.inputs, outputs: { v: 'forged' } } : {}));
  assert.ok(!outputs.ok && outputs.step === 4 && outputs.index === 3);
  const future = await verifyChain(receipts, { now: T0, maxFutureSkewMs: 1500 });
  assert.ok(!future.ok && future.step === 5 && future.index === 2, JSON.stringify(future));
  // A log whose clock went backwards: signed honestly, but the timestamp order is broken.
  const store = new MemoryStore();
  const { buildReceipt, receiptHash } = await import('../../src/receipts/receipt.ts');
  const a = buildReceipt({ operator_id: 'x', inputs: 1, outputs: 1, index: 0, prevHash: GENESIS_HASH, signer, signerId: peerId, now: T0 + 5000 });
  const b = buildReceipt({ operator_id: 'x', inputs: 1, outputs: 1, index: 1, prevHash: receiptHash(a), signer, signerId: peerId, now: T0 });
  const back = await verifyChain([a, b], { now: T0 + 60_000 });
  assert.ok(!back.ok && back.step === 5 && back.index === 1);
  await store.close();
});

test('a chain exported from an offset verifies from where it starts; a first receipt 0 must link to genesis', async () => {
  const { receipts } = await makeLog(5);
  assert.ok((await verifyChain(receipts.slice(2), { now: T0 + 60_000 })).ok);
  const v = new ChainVerifier({ now: T0 + 60_000 });
  assert.ok(v.next(receipts[0]).ok);
  assert.ok(!v.next(receipts[0]).ok, 'a duplicate is a broken link');
});

test('the log group-commits concurrent appends into one durable batch, in order', async () => {
  const store = new MemoryStore();
  let batches = 0;
  const batch = store.batch.bind(store);
  store.batch = async (ops) => {
    batches++;
    return batch(ops);
  };
  const log = await ReceiptLog.open(store, { signer, peerId });
  const all = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append({ operator_id: 'echo', inputs: i, outputs: i }, T0)));
  assert.deepEqual(all.map((r) => r.index), Array.from({ length: 100 }, (_, i) => i));
  assert.ok(batches <= 3, `${batches} batches for 100 concurrent appends`);
  assert.ok((await verifyChain(log.iterate(), { now: T0 + 1000 })).ok);
});

test('lookups, reopen with the same root, signed tree heads and proofs', async () => {
  const { log, store, receipts } = await makeLog(37);
  assert.equal((await log.getById(receipts[12]!.receipt_id))?.index, 12);
  assert.equal(await log.getById('receipt_nope'), undefined);
  const sth = log.signedTreeHead(T0);
  assert.ok(verifyTreeHead(sth, signer.publicKey));
  assert.ok(!verifyTreeHead({ ...sth, size: 36 }, signer.publicKey));
  const reopened = await ReceiptLog.open(store.reopen(), { signer, peerId });
  assert.equal(reopened.size, 37);
  assert.equal(reopened.signedTreeHead(T0).root, sth.root);
  for (const i of [0, 12, 36]) {
    const proof = await reopened.inclusionProof(receipts[i]!.receipt_id);
    assert.equal(proofBundleProblem({ receipt: receipts[i], proof, tree_head: sth }), null);
    assert.match(proofBundleProblem({ receipt: receipts[(i + 1) % 37], proof, tree_head: sth }) ?? '', /index|inclusion/);
  }
  const old = (await makeLog(0)).log;
  void old;
  const first = 20;
  const rootAt20 = (await (async () => {
    const l = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
    for (let i = 0; i < first; i++) await l.append({ operator_id: 'kv.put', inputs: { k: i }, outputs: { v: `out-${i}` } }, T0 + i * 1000);
    return l.root();
  })());
  const cons = await reopened.consistencyProof(first);
  assert.ok(verifyConsistency(first, 37, rootAt20, reopened.root(), cons.map(hexDecode)));
  await assert.rejects(reopened.inclusionProof('receipt_missing'), (e: unknown) => (e as { code?: string }).code === 'RECEIPT_NOT_FOUND');
});

test('the receipt fast canonical form equals RFC 8785 JCS on random receipts', async () => {
  const { canonicalBytes } = await import('../../src/crypto/index.ts');
  const { receiptCanonicalBytes } = await import('../../src/receipts/receipt.ts');
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.nat(), fc.string(), fc.string(), (op, signerId, index, id, sig) => {
      const r = { receipt_id: id, timestamp: '2026-11-24T12:00:00.000Z', operation: { type: 'operator_execution' as const, operator_id: op, inputs_hash: 'sha256:ab', outputs_hash: 'sha256:\u20ac\n"' }, prev_receipt_hash: GENESIS_HASH, signer: signerId, index, signature: sig };
      assert.deepEqual(receiptCanonicalBytes(r), canonicalBytes(r));
      const { signature: _s, ...unsigned } = r;
      assert.deepEqual(receiptCanonicalBytes(unsigned), canonicalBytes(unsigned));
      const { receipt_id: _i, ...body } = unsigned;
      assert.deepEqual(receiptCanonicalBytes(body), canonicalBytes(body));
    }),
    { numRuns: 500 },
  );
});

/** A memory store whose batches wait for the test to release them (or fail on demand). */
class GatedStore extends MemoryStore {
  gates: Array<{ release: () => void; fail: (e: Error) => void; ops: number }> = [];
  #waiters: Array<() => void> = [];
  override async batch(ops: Parameters<MemoryStore['batch']>[0]): Promise<void> {
    await new Promise<void>((release, fail) => {
      this.gates.push({ release, fail, ops: ops.length });
      for (const w of this.#waiters.splice(0)) w();
    });
    return super.batch(ops);
  }
  /** Resolves when `n` batches have reached the store. */
  async reached(n: number): Promise<void> {
    while (this.gates.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }
}

test('bad input fails only its own append; the rest of its group is written', async () => {
  const log = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const results = await Promise.allSettled([
    log.append({ operator_id: 'ok.1', inputs: 1, outputs: 1 }, T0),
    log.append({ operator_id: 'not an id!', inputs: 1, outputs: 1 }, T0),
    log.append({ operator_id: 'ok.2', inputs: { f: (() => 1) as unknown as number }, outputs: 1 }, T0),
    log.append({ operator_id: 'ok.3', inputs: 3, outputs: 3 }, T0),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
  assert.equal(results[3]!.status === 'fulfilled' && results[3]!.value.index, 1);
  assert.equal(log.size, 2);
  assert.deepEqual(await verifyChain(log.iterate(), { now: T0 + 1000 }), { ok: true, count: 2 });
});

test('a group\'s signatures are made up to MAX_GROUP_SIGNATURES_IN_FLIGHT at once; the receipts equal eager signing', async () => {
  const { MAX_GROUP_SIGNATURES_IN_FLIGHT } = await import('../../src/receipts/log.ts');
  // signAsync answers only when the test lets it: how many are asked for before any answers?
  const asked: Array<{ message: Uint8Array; answer: () => void }> = [];
  let waiter: (() => void) | undefined;
  const held = {
    publicKey: signer.publicKey,
    sign: (m: Uint8Array): Uint8Array => signer.sign(m),
    signAsync: (m: Uint8Array): Promise<Uint8Array> =>
      new Promise<Uint8Array>((resolve) => {
        asked.push({ message: m, answer: () => resolve(signer.sign(m)) });
        waiter?.();
      }),
  };
  const log = await ReceiptLog.open(new MemoryStore(), { signer: held, peerId, maxAppendsPerBatch: 200 });
  const n = 150;
  const appends = Array.from({ length: n }, (_, i) => log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: i } }, T0 + i));
  // Everything the log asks for before an answer it asks within a few turns (bounded wait).
  for (let turn = 0; turn < 50 && asked.length < MAX_GROUP_SIGNATURES_IN_FLIGHT; turn++) await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(asked.length, MAX_GROUP_SIGNATURES_IN_FLIGHT, 'the window is full and no wider');
  // Answer every signature as it is asked for, newest first within what is asked.
  let answered = 0;
  while (answered < n) {
    const pending = asked.slice(answered);
    answered = asked.length;
    for (const a of pending.reverse()) a.answer();
    if (answered < n) await new Promise<void>((r) => (waiter = r));
  }
  const receipts = await Promise.all(appends);
  assert.deepEqual(receipts.map((r) => r.index), Array.from({ length: n }, (_, i) => i));
  assert.deepEqual(await verifyChain(log.iterate(), { now: T0 + n * 1000, signer: peerId }), { ok: true, count: n });
  // The same appends signed one at a time by the plain signer give the same bytes.
  const eager = await makeLogOf(n, (i) => ({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: i } }));
  assert.deepEqual(receipts, eager);
});

test('a signature that fails fails its own append; the receipts built after it are built again and written', async () => {
  let calls = 0;
  const flaky = {
    publicKey: signer.publicKey,
    sign: (m: Uint8Array): Uint8Array => signer.sign(m),
    signAsync: async (m: Uint8Array): Promise<Uint8Array> => {
      if (++calls === 5) throw new Error('signing device unplugged');
      return signer.sign(m);
    },
  };
  const log = await ReceiptLog.open(new MemoryStore(), { signer: flaky, peerId });
  const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append({ operator_id: 'kv.put', inputs: i, outputs: i }, T0)));
  assert.deepEqual(settled.map((r) => r.status), settled.map((_, i) => (i === 4 ? 'rejected' : 'fulfilled')));
  assert.match(String((settled[4] as PromiseRejectedResult).reason), /unplugged/);
  const indexes = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.index] : []));
  assert.deepEqual(indexes, Array.from({ length: 19 }, (_, i) => i), 'the log has no gap where the failed receipt was built');
  assert.equal(log.size, 19);
  assert.deepEqual(await verifyChain(log.iterate(), { now: T0 + 1000, signer: peerId }), { ok: true, count: 19 });
  // The counter counts the signatures in the log, not the ones thrown away with the rebuild.
  assert.equal(log.receiptSignatures, 19);
});

async function makeLogOf(n: number, entry: (i: number) => { operator_id: string; inputs: Json; outputs: Json }): Promise<Receipt[]> {
  const log = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const out: Receipt[] = [];
  for (let i = 0; i < n; i++) out.push(await log.append(entry(i), T0 + i));
  return out;
}

test('sizes, roots and tree heads show only durable receipts; the next group is signed while one is written', async () => {
  const store = new GatedStore();
  // Records how many batches had reached the store when each receipt was signed.
  const batchesAtSign: number[] = [];
  const sign = (m: Uint8Array): Uint8Array => (batchesAtSign.push(store.gates.length), signer.sign(m));
  const watched = { publicKey: signer.publicKey, sign, signAsync: async (m: Uint8Array): Promise<Uint8Array> => sign(m) };
  const log = await ReceiptLog.open(store, { signer: watched, peerId });
  const first = Array.from({ length: 80 }, (_, i) => log.append({ operator_id: 'kv.put', inputs: i, outputs: i }, T0));
  // Nothing was being written, so the 80 queued appends are split in two groups, both built
  // (signed) before either is durable; the second waits for the first.
  await store.reached(1);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(store.gates.length, 1, 'the second batch waits for the first to be durable');
  assert.deepEqual(batchesAtSign, [...Array<number>(40).fill(0), ...Array<number>(40).fill(1)], 'the second group is signed after the first batch went to the store');
  assert.equal(log.size, 0);
  assert.equal(log.signedTreeHead(T0).size, 0);
  store.gates[0]!.release();
  await store.reached(2);
  assert.equal(log.size, 40);
  store.gates[1]!.release();
  const receipts = await Promise.all(first);
  assert.deepEqual(receipts.map((r) => r.index), Array.from({ length: 80 }, (_, i) => i));
  assert.equal(log.size, 80);
  const proof = await log.inclusionProof(receipts[79]!.receipt_id);
  assert.equal(proofBundleProblem({ receipt: receipts[79], proof, tree_head: log.signedTreeHead(T0) }), null);
});

test('a batch the store fails rejects its appends and those built on it; later appends carry on from the durable prefix', async () => {
  const store = new GatedStore();
  const log = await ReceiptLog.open(store, { signer, peerId });
  const ok = log.append({ operator_id: 'a', inputs: 0, outputs: 0 }, T0);
  await store.reached(1);
  store.gates[0]!.release();
  assert.equal((await ok).index, 0);
  const doomed = Array.from({ length: 80 }, (_, i) => log.append({ operator_id: 'b', inputs: i, outputs: i }, T0));
  await store.reached(2);
  store.gates[1]!.fail(new Error('disk full'));
  const settled = await Promise.allSettled(doomed);
  assert.ok(settled.every((r) => r.status === 'rejected'), 'the failed batch and the one built on it are rejected');
  assert.match(String((settled[0] as PromiseRejectedResult).reason), /disk full/);
  assert.match(String((settled[79] as PromiseRejectedResult).reason), /earlier batch/);
  assert.equal(log.size, 1);
  const after = log.append({ operator_id: 'c', inputs: 1, outputs: 1 }, T0);
  await store.reached(3);
  store.gates[2]!.release();
  const r = await after;
  assert.equal(r.index, 1, 'the log continues after its durable prefix');
  assert.deepEqual(await verifyChain(log.iterate(), { now: T0 + 1000 }), { ok: true, count: 2 });
  await log.close();
});

test('appends beyond the queue limit are refused with a typed error', async () => {
  const { MAX_QUEUED_APPENDS } = await import('../../src/receipts/log.ts');
  const store = new GatedStore();
  const log = await ReceiptLog.open(store, { signer, peerId });
  const cheap = { operator_id: 'q', inputs: null, outputs: null };
  void log.append(cheap, T0).catch(() => undefined);
  // The first batch stays in the store (its gate is never opened): everything else queues.
  await store.reached(1);
  for (let i = 0; i < MAX_QUEUED_APPENDS; i++) void log.append(cheap, T0).catch(() => undefined);
  await assert.rejects(log.append(cheap, T0), (e: unknown) => (e as { code?: string }).code === 'RECEIPT_LOG_BUSY');
});

test('fields altered and re-signed by the signer itself are caught by steps 2–5', async () => {
  const { receiptCanonicalBytes } = await import('../../src/receipts/receipt.ts');
  const { base64urlEncode, hexEncode } = await import('../../src/crypto/index.ts');
  const { receipts, io } = await makeLog(3);
  const resign = (r: Receipt, by = signer, byId = peerId): Receipt => {
    const { receipt_id: _i, signature: _s, ...body } = { ...r, signer: byId };
    const receipt_id = `receipt_${hexEncode(crypto.sha256(receiptCanonicalBytes(body)))}`;
    return { ...body, receipt_id, signature: base64urlEncode(by.sign(receiptCanonicalBytes({ ...body, receipt_id }))) };
  };
  const target = receipts[1]!;
  const cases: Array<[string, Receipt, number]> = [
    ['prev_receipt_hash', resign({ ...target, prev_receipt_hash: digestJson('elsewhere') }), 2],
    ['index', resign({ ...target, index: 2 }), 2],
    ['inputs_hash', resign({ ...target, operation: { ...target.operation, inputs_hash: digestJson({ k: 99 }) } }), 3],
    ['outputs_hash', resign({ ...target, operation: { ...target.operation, outputs_hash: digestJson({ v: 'forged' }) } }), 4],
    ['timestamp before the previous receipt', resign({ ...target, timestamp: '2026-11-24T11:59:59.000Z' }), 5],
    ['timestamp far in the future', resign({ ...target, timestamp: '2027-01-01T00:00:00.000Z' }), 5],
    ['signer (another key re-signs)', resign(target, other, peerIdFromPublicKeyBytes(other.publicKey)), 1],
  ];
  for (const [name, forged, step] of cases) {
    const res = await verifyChain([receipts[0], forged, receipts[2]], { now: T0 + 60_000, signer: peerId }, (i) => io[i]!);
    assert.equal(res.ok, false, name);
    if (!res.ok) {
      assert.equal(res.step, step, `${name}: ${res.reason}`);
      // Past step 1 the receipt's own (authentic) index is reported: 2 for the re-indexed one.
      assert.equal(res.index, step === 1 ? 1 : forged.index, name);
    }
  }
});

test('evidence that JCS cannot canonicalize (nested too deep) fails step 3 or 4 instead of throwing', async () => {
  const { receipts, io } = await makeLog(2);
  let deep: unknown = 1;
  for (let i = 0; i < 200; i++) deep = [deep];
  const v = new ChainVerifier({ now: T0 + 60_000 });
  const r = v.next(receipts[0], { inputs: deep as never, outputs: io[0]!.outputs });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.stepName === 'inputs' && /not canonical JSON/.test(r.reason), JSON.stringify(r));
  const w = new ChainVerifier({ now: T0 + 60_000 });
  const o = w.next(receipts[0], { outputs: deep as never });
  assert.ok(!o.ok && o.stepName === 'outputs', JSON.stringify(o));
});

test('a proof bundle whose own receipt_id or leaf_hash is not the receipt\'s does not prove', async () => {
  const { log, receipts } = await makeLog(5);
  const receipt = receipts[2]!;
  const proof = await log.inclusionProof(receipt.receipt_id);
  const tree_head = log.signedTreeHead(T0);
  assert.equal(proofBundleProblem({ receipt, proof, tree_head }), null);
  assert.match(proofBundleProblem({ receipt, proof: { ...proof, receipt_id: receipts[3]!.receipt_id }, tree_head }) ?? '', /receipt_id/);
  assert.match(proofBundleProblem({ receipt, proof: { ...proof, leaf_hash: '00'.repeat(32) }, tree_head }) ?? '', /leaf_hash/);
});
