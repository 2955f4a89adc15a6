// The relay's API backend over the single-node engine (`consensus: none`): execute with
// validation, limits and idempotency, one signed receipt per execution at index == ordinal,
// proofs, restarts (memory and LevelDB) that keep state and idempotency, storage failures,
// and stream replay + live + filter + abort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto, hexDecode, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import type { Json } from '../../src/ico/types.ts';
import { verifyTreeHead } from '../../src/receipts/log.ts';
import { leafHash, verifyInclusion } from '../../src/receipts/merkle.ts';
import { receiptHashBytes, verifyChain } from '../../src/receipts/receipt.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { BatchOp, RangeOptions, Store } from '../../src/store/types.ts';
import { ApiError, type ExecuteOptions, type OutputViewer, type ResultRecord } from '../../relay/api/backend.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { singleKeys, SingleEngine } from '../../src/consensus/single/engine.ts';

/** Streams in these tests see every output (the audit scope). */
const AUDIT: OutputViewer = { principal: 'test', allOutputs: true };

const signer = crypto.createSigner(crypto.randomBytes(32));
const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
const T0 = Date.parse('2026-11-24T12:00:00.000Z');

function clock(): () => number {
  let t = T0;
  return () => (t += 1000);
}

async function open(store: Store, extra: { snapshotEvery?: number } = {}): Promise<EngineBackend> {
  return new EngineBackend({ engine: await SingleEngine.open({ store, signer, peerId, now: clock(), ...extra }) });
}

function exec(b: EngineBackend, operator_id: string, inputs: Json, options: ExecuteOptions = {}, principal = 'alice'): ReturnType<EngineBackend['execute']> {
  return b.execute({ operator_id, inputs, options, principal });
}

async function rejectsWith(p: Promise<unknown>, code: string, path?: string): Promise<ApiError> {
  let caught: unknown;
  await p.then(() => assert.fail(`expected ${code}`), (e: unknown) => (caught = e));
  assert.ok(caught instanceof ApiError, `expected ApiError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (path !== undefined) assert.equal(caught.path, path);
  return caught;
}

/** A store whose batches can be held back or made to fail, to test deadlines and storage faults. */
class ControlledStore implements Store {
  readonly inner: MemoryStore;
  gate: Promise<void> | null = null;
  failBatches = false;
  constructor(inner = new MemoryStore()) {
    this.inner = inner;
  }
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.inner.get(key);
  }
  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.inner.put(key, value);
  }
  delete(key: Uint8Array): Promise<void> {
    return this.inner.delete(key);
  }
  range(options?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.inner.range(options);
  }
  async batch(ops: BatchOp[]): Promise<void> {
    if (this.gate !== null) await this.gate;
    if (this.failBatches) throw new Error('disk full');
    return this.inner.batch(ops);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

test('execute returns outputs and a signed receipt that verifies against its inputs and outputs', async () => {
  const b = await open(new MemoryStore());
  const t0 = performance.now();
  const r = await exec(b, 'kv.put', { key: 'a', value: { n: 1 } });
  const wallMs = performance.now() - t0;
  assert.deepEqual(r.outputs, { ok: true });
  assert.equal(r.replayed, false);
  assert.ok(r.receipt !== null);
  assert.equal(r.receipt.index, 0);
  assert.equal(r.receipt.signer, peerId);
  assert.equal(r.receipt.operation.operator_id, 'kv.put');
  assert.equal(r.receipt.timestamp, new Date(T0 + 1000).toISOString());
  // Measured by the backend around the execution: more than nothing, no more than the call took.
  assert.ok(r.execution_time_ms > 0 && r.execution_time_ms <= wallMs + 0.001, `execution_time_ms ${r.execution_time_ms}, call ${wallMs} ms`);
  const g = await exec(b, 'kv.get', { key: 'a' });
  assert.deepEqual(g.outputs, { found: true, value: { n: 1 } });
  const io: Array<{ inputs: Json; outputs: Json }> = [{ inputs: { key: 'a', value: { n: 1 } }, outputs: r.outputs }, { inputs: { key: 'a' }, outputs: g.outputs }];
  assert.deepEqual(await verifyChain(await b.receipts(0, 10), { now: T0 + 60_000, signer: peerId }, (i) => io[i]!), { ok: true, count: 2 });
  assert.equal(b.operators().length, 7);
  await b.close();
});

test('bad requests are refused before anything runs: INVALID_INPUT with path, UNKNOWN_OPERATOR, limits, UNSUPPORTED', async () => {
  const b = await open(new MemoryStore());
  const e = await rejectsWith(exec(b, 'kv.put', { key: 5, value: 1 }), 'INVALID_INPUT', '/inputs/key');
  assert.match(e.message, /inputs\/key must be string/);
  await rejectsWith(exec(b, 'nope', {}), 'UNKNOWN_OPERATOR');
  for (const timeout_ms of [0, 60_001, 1.5, -1]) await rejectsWith(exec(b, 'echo', {}, { timeout_ms }), 'INVALID_REQUEST');
  await exec(b, 'echo', {}, { timeout_ms: 60_000 });
  await rejectsWith(exec(b, 'echo', {}, { consensus: 'raft' }), 'UNSUPPORTED');
  await rejectsWith(exec(b, 'echo', {}, { consensus: 'pbft' }), 'UNSUPPORTED');
  await exec(b, 'echo', {}, { consensus: 'none' });
  await rejectsWith(exec(b, 'echo', {}, { idempotency_key: '' }), 'INVALID_REQUEST');
  await rejectsWith(exec(b, 'echo', {}, { idempotency_key: 'k'.repeat(257) }), 'INVALID_REQUEST');
  await rejectsWith(exec(b, 'kv.put', { key: 'k', value: 1 }, { read: 'linearizable' }), 'INVALID_REQUEST');
  assert.equal(b.treeHead().size, 2);
  await b.close();
});

test('a domain failure is OPERATOR_FAILED and leaves no receipt and no state change', async () => {
  const b = await open(new MemoryStore());
  await exec(b, 'kv.put', { key: 's', value: 'text' });
  await rejectsWith(exec(b, 'counter.add', { key: 's', delta: 1 }), 'OPERATOR_FAILED');
  assert.equal(b.treeHead().size, 1);
  assert.equal(b.cluster().applied_index, 1);
  assert.deepEqual((await exec(b, 'kv.get', { key: 's' })).outputs, { found: true, value: 'text' });
  await b.close();
});

test('idempotency: a retry with the same key and principal returns the stored result and receipt', async () => {
  const b = await open(new MemoryStore());
  const first = await exec(b, 'counter.add', { key: 'c', delta: 1 }, { idempotency_key: 'k1' });
  const again = await exec(b, 'counter.add', { key: 'c', delta: 1 }, { idempotency_key: 'k1' });
  assert.equal(again.replayed, true);
  assert.deepEqual(again.outputs, first.outputs);
  assert.deepEqual(again.receipt, first.receipt);
  // Another principal's key of the same name is its own.
  const bob = await exec(b, 'counter.add', { key: 'c', delta: 1 }, { idempotency_key: 'k1' }, 'bob');
  assert.equal(bob.replayed, false);
  assert.deepEqual(bob.outputs, { value: 2 });
  // Concurrent duplicates execute once and share one receipt (the second waits for the first's append).
  const [x, y] = await Promise.all([exec(b, 'counter.add', { key: 'c', delta: 10 }, { idempotency_key: 'k2' }), exec(b, 'counter.add', { key: 'c', delta: 10 }, { idempotency_key: 'k2' })]);
  assert.deepEqual(x.receipt, y.receipt);
  assert.deepEqual([x.replayed, y.replayed], [false, true]);
  assert.equal(b.treeHead().size, 3);
  await b.close();
});

test('concurrent executions get receipts at index == ordinal, chained in that order', async () => {
  const b = await open(new MemoryStore());
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => exec(b, 'counter.add', { key: 'n', delta: 1 }, i % 3 === 0 ? { idempotency_key: `k${i}` } : {})));
  results.forEach((r, i) => {
    assert.equal(r.receipt?.index, i);
    assert.deepEqual(r.outputs, { value: i + 1 });
  });
  const receipts = await b.receipts(0, 100);
  assert.equal(receipts.length, 60);
  assert.equal((await verifyChain(receipts, { now: T0 + 3_600_000 })).ok, true);
  assert.deepEqual((await b.receipts(58, 5)).map((r) => r.index), [58, 59]);
  await rejectsWith(b.receipts(0, 0), 'INVALID_REQUEST');
  await rejectsWith(b.receipts(-1, 5), 'INVALID_REQUEST');
  await b.close();
});

test('receipt(id) returns the receipt with an inclusion proof against a signed tree head', async () => {
  const b = await open(new MemoryStore());
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await exec(b, 'echo', { i })).receipt!.receipt_id);
  const got = await b.receipt(ids[2]!);
  assert.ok(got !== undefined);
  assert.equal(got.receipt.index, 2);
  assert.equal(got.tree_head.size, 5);
  assert.ok(verifyTreeHead(got.tree_head, signer.publicKey));
  const root = hexDecode(got.tree_head.root.slice('sha256:'.length));
  assert.ok(verifyInclusion(leafHash(receiptHashBytes(got.receipt)), got.proof.index, got.proof.tree_size, got.proof.path.map(hexDecode), root));
  assert.equal(await b.receipt(`receipt_${'0'.repeat(64)}`), undefined);
  await b.close();
});

test('cluster() describes a single voter that leads itself; a linearizable read has no receipt', async () => {
  const b = await open(new MemoryStore());
  await exec(b, 'kv.put', { key: 'k', value: 1 });
  assert.deepEqual(b.cluster(), { consensus: 'none', self: peerId, leader: peerId, term: 0, commit_index: 1, applied_index: 1, members: [{ peerId, role: 'voter' }], peers: 0 });
  const r = await exec(b, 'kv.get', { key: 'k' }, { read: 'linearizable' });
  assert.equal(r.receipt, null);
  assert.deepEqual(r.outputs, { found: true, value: 1 });
  assert.equal(b.cluster().applied_index, 1);
  assert.equal(b.consensus, 'none');
  await b.close();
});

test('reopen (memory): state, receipts and idempotency survive, from snapshot plus replayed commands', async () => {
  const store = new MemoryStore();
  const b = await open(store, { snapshotEvery: 4 });
  let first;
  for (let i = 0; i < 10; i++) {
    const r = await exec(b, 'counter.add', { key: 'n', delta: 1 }, { idempotency_key: `k${i}` });
    if (i === 1) first = r;
  }
  await b.close();
  const reopened = store.reopen();
  // A snapshot at 8 exists; only commands 8 and 9 are kept beside it.
  assert.ok((await reopened.get(singleKeys.snapshotHeader())) !== undefined);
  assert.equal(await reopened.get(singleKeys.command(7)), undefined);
  assert.ok((await reopened.get(singleKeys.command(9))) !== undefined);
  const b2 = await open(reopened, { snapshotEvery: 4 });
  assert.equal(b2.cluster().applied_index, 10);
  const retry = await exec(b2, 'counter.add', { key: 'n', delta: 1 }, { idempotency_key: 'k1' });
  assert.equal(retry.replayed, true);
  assert.deepEqual(retry.receipt, first!.receipt);
  const next = await exec(b2, 'counter.add', { key: 'n', delta: 1 });
  assert.deepEqual(next.outputs, { value: 11 });
  assert.equal(next.receipt?.index, 10);
  assert.equal((await verifyChain(await b2.receipts(0, 100), { now: T0 + 3_600_000 })).ok, true);
  await b2.close();
});

test('snapshots of a growing state come no more often than every (state bytes / SNAPSHOT_BYTES_PER_EXECUTION) executions, and a reopen still rebuilds it', async () => {
  const store = new MemoryStore();
  let headers = 0;
  const header = Buffer.from(singleKeys.snapshotHeader());
  const counting: Store = {
    get: (k) => store.get(k),
    put: (k, v) => {
      if (header.equals(k)) headers++;
      return store.put(k, v);
    },
    delete: (k) => store.delete(k),
    range: (o) => store.range(o),
    batch: (ops) => store.batch(ops),
    close: () => store.close(),
  };
  const b = await open(counting, { snapshotEvery: 4 });
  const value = 'x'.repeat(1024);
  const WRITES = 200;
  for (let i = 0; i < WRITES; i++) await exec(b, 'kv.put', { key: `k${i}`, value });
  await b.close();
  // A fixed cadence of 4 would write 50 snapshots; the state grows by ~1 KiB per write, so the
  // interval doubles from one snapshot to the next: 4, 8, 16, ... (7 or so).
  assert.ok(headers >= 3 && headers <= 12, `${headers} snapshots for ${WRITES} writes`);
  const b2 = await open(store.reopen(), { snapshotEvery: 4 });
  assert.equal(b2.cluster().applied_index, WRITES);
  assert.deepEqual((await exec(b2, 'kv.get', { key: `k${WRITES - 1}` }, { read: 'linearizable' })).outputs, { found: true, value });
  await b2.close();
});

test('reopen (LevelDB on disk): state and idempotency survive a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-local-backend-'));
  try {
    const b = await open(await LevelStore.open(dir), { snapshotEvery: 3 });
    await exec(b, 'kv.put', { key: 'doc', value: { v: 1 } });
    const once = await exec(b, 'counter.add', { key: 'n', delta: 5 }, { idempotency_key: 'pay-1' });
    for (let i = 0; i < 5; i++) await exec(b, 'counter.add', { key: 'n', delta: 1 });
    await b.close();
    const b2 = await open(await LevelStore.open(dir), { snapshotEvery: 3 });
    assert.deepEqual((await exec(b2, 'kv.get', { key: 'doc' }, { read: 'linearizable' })).outputs, { found: true, value: { v: 1 } });
    const retry = await exec(b2, 'counter.add', { key: 'n', delta: 5 }, { idempotency_key: 'pay-1' });
    assert.equal(retry.replayed, true);
    assert.deepEqual(retry.receipt, once.receipt);
    assert.deepEqual(retry.outputs, { value: 5 });
    assert.deepEqual((await exec(b2, 'counter.add', { key: 'n', delta: 0 })).outputs, { value: 10 });
    assert.equal(b2.treeHead().size, 8);
    await b2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('timeout_ms bounds the wait: DEADLINE_EXCEEDED, and a retry with the key gets the late result', async () => {
  const store = new ControlledStore();
  const b = await open(store);
  let release!: () => void;
  store.gate = new Promise((resolve) => (release = resolve));
  await rejectsWith(exec(b, 'kv.put', { key: 'k', value: 1 }, { timeout_ms: 20, idempotency_key: 'slow' }), 'DEADLINE_EXCEEDED');
  const retry = exec(b, 'kv.put', { key: 'k', value: 1 }, { idempotency_key: 'slow' });
  store.gate = null;
  release();
  const r = await retry;
  assert.equal(r.replayed, true);
  assert.equal(r.receipt?.index, 0);
  await b.close();
});

test('a storage failure stops the backend (UNAVAILABLE); reopening recovers the acknowledged prefix', async () => {
  const store = new ControlledStore();
  const b = await open(store);
  await exec(b, 'kv.put', { key: 'k', value: 'kept' });
  store.failBatches = true;
  await rejectsWith(exec(b, 'kv.put', { key: 'k', value: 'lost' }), 'UNAVAILABLE');
  store.failBatches = false;
  await rejectsWith(exec(b, 'echo', {}), 'UNAVAILABLE');
  await b.close();
  const b2 = await open(store.inner.reopen());
  assert.deepEqual((await exec(b2, 'kv.get', { key: 'k' })).outputs, { found: true, value: 'kept' });
  assert.equal(b2.treeHead().size, 2);
  await b2.close();
});

async function take(it: AsyncIterator<ResultRecord>, n: number): Promise<ResultRecord[]> {
  const out: ResultRecord[] = [];
  while (out.length < n) {
    const next = await it.next();
    if (next.done === true) break;
    out.push(next.value);
  }
  return out;
}

test('stream replays from an index, then delivers live executions in order, filtered, until aborted', async () => {
  const b = await open(new MemoryStore());
  for (let i = 0; i < 4; i++) await exec(b, i % 2 === 0 ? 'echo' : 'counter.add', i % 2 === 0 ? { i } : { key: 'n', delta: 1 });
  const ac = new AbortController();
  const it = b.stream(1, ['echo'], AUDIT, ac.signal)[Symbol.asyncIterator]();
  const replayed = await take(it, 1);
  assert.deepEqual(replayed.map((r) => [r.index, r.operator_id, r.outputs]), [[2, 'echo', { i: 2 }]]);
  const pending = take(it, 2);
  await exec(b, 'counter.add', { key: 'n', delta: 1 });
  await exec(b, 'echo', { i: 5 });
  await exec(b, 'echo', { i: 6 });
  const live = await pending;
  assert.deepEqual(live.map((r) => [r.index, r.outputs]), [[5, { i: 5 }], [6, { i: 6 }]]);
  assert.equal(live[0]!.receipt.index, 5);
  const waiting = it.next();
  ac.abort();
  assert.equal((await waiting).done, true);
  // Unfiltered from 0 sees everything.
  const all = await take(b.stream(0, [], AUDIT, new AbortController().signal)[Symbol.asyncIterator](), 7);
  assert.deepEqual(all.map((r) => r.index), [0, 1, 2, 3, 4, 5, 6]);
  await b.close();
});

test('a slow stream consumer overflows its bounded buffer and is caught up from storage, losing nothing', async () => {
  const b = await open(new MemoryStore());
  const ac = new AbortController();
  const it = b.stream(0, [], AUDIT, ac.signal, 2)[Symbol.asyncIterator]();
  const firstPull = it.next();
  await exec(b, 'echo', { i: 0 });
  assert.equal((await firstPull).value?.index, 0);
  // The consumer pauses while 20 more executions land (its buffer holds 2).
  for (let i = 1; i <= 20; i++) await exec(b, 'echo', { i });
  const rest = await take(it, 20);
  assert.deepEqual(rest.map((r) => r.index), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(rest.map((r) => r.outputs), Array.from({ length: 20 }, (_, i) => ({ i: i + 1 })));
  ac.abort();
  assert.equal((await it.next()).done, true);
  await b.close();
});

test('close ends live streams', async () => {
  const b = await open(new MemoryStore());
  const it = b.stream(0, [], AUDIT, new AbortController().signal)[Symbol.asyncIterator]();
  const waiting = it.next();
  await b.close();
  assert.equal((await waiting).done, true);
  await rejectsWith(exec(b, 'echo', {}), 'UNAVAILABLE');
});
