// The document store and the sync engine between real stores (memory and LevelDB), joined
// by an in-process bus: policies, tampered records, resumption, backpressure, vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesPayload } from '../../src/ico/frame.ts';
import type { JsonObject } from '../../src/ico/types.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store } from '../../src/store/types.ts';
import { DocStore, MAX_READ_BATCH } from '../../src/sync/docstore.ts';
import { recordBytes, recordId } from '../../src/sync/record.ts';
import { MAX_INFLIGHT_BATCHES, SyncEngine, type SyncEvent } from '../../src/sync/engine.ts';
import { identityFromSeed } from '../../src/sync/identity.ts';
import { simPolicies } from '../../src/sync/simulator.ts';
import { MAX_BATCH_RECORDS } from '../../src/sync/wire.ts';

function seed(n: number): Uint8Array {
  const s = new Uint8Array(32);
  s[0] = n;
  return s;
}

interface Node {
  id: string;
  docs: DocStore;
  engine: SyncEngine;
  events: SyncEvent[];
}

/** Peers on one bus; `filter` may drop or alter a payload in flight (return null to drop). */
class Bus {
  nodes = new Map<string, Node>();
  /** Live broadcasts off by default: the peers here were offline while the others wrote. */
  live = false;
  filter: (from: string, to: string, p: JsonObject) => JsonObject | null = (_f, _t, p) => p;
  inflight = 0;
  maxRecsInFlight = 0;
  recsInFlight = new Map<string, number>();

  async add(n: number, store: Store = new MemoryStore(), now?: () => number): Promise<Node> {
    const id = identityFromSeed(seed(n));
    const docs = await DocStore.open({ store, self: id.peerId, signer: id.signer, policies: simPolicies(), ...(now ? { now } : {}) });
    const events: SyncEvent[] = [];
    const engine = new SyncEngine({
      docs,
      transport: {
        send: async (to, payload) => this.#deliver(id.peerId, to, payload instanceof Uint8Array ? bytesPayload(payload) : payload),
        broadcast: async (payload) => {
          for (const other of this.nodes.keys()) if (other !== id.peerId) this.#deliver(id.peerId, other, payload);
        },
      },
    });
    engine.on((e) => events.push(e));
    const node = { id: id.peerId, docs, engine, events };
    this.nodes.set(id.peerId, node);
    return node;
  }

  #deliver(from: string, to: string, payload: JsonObject): void {
    if (payload['k'] === 'live' && !this.live) return;
    const p = this.filter(from, to, payload);
    if (p === null) return;
    const link = `${from}>${to}`;
    if (p['k'] === 'recs') {
      const n = (this.recsInFlight.get(link) ?? 0) + 1;
      this.recsInFlight.set(link, n);
      this.maxRecsInFlight = Math.max(this.maxRecsInFlight, n);
    }
    if (p['k'] === 'ack') this.recsInFlight.set(`${to}>${from}`, (this.recsInFlight.get(`${to}>${from}`) ?? 1) - 1);
    this.inflight++;
    setImmediate(() => {
      const node = this.nodes.get(to);
      void (node?.engine.receive(from, p) ?? Promise.resolve()).finally(() => this.inflight--);
    });
  }
}

async function values(d: DocStore): Promise<string> {
  return JSON.stringify((await d.list({ limit: 1000, withDeleted: true })).map((e) => [e.key, e.value, e.deleted, e.conflict]));
}

test('LevelDB document store: writes survive a reopen with ids, vector and clock', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hs-docs-'));
  try {
    const id = identityFromSeed(seed(9));
    let store = await LevelStore.open(dir);
    let docs = await DocStore.open({ store, self: id.peerId, signer: id.signer });
    await docs.put('a', { x: 1 });
    await docs.put('b', 2);
    const last = await docs.put('a', { x: 3 });
    await docs.delete('b');
    const root = docs.items.fingerprint(0, 0);
    await store.close();
    store = await LevelStore.open(dir);
    docs = await DocStore.open({ store, self: id.peerId, signer: id.signer });
    assert.deepEqual(docs.items.fingerprint(0, 0), root);
    assert.equal(docs.size, 2, 'one live version of a, one tombstone of b');
    assert.deepEqual((await docs.get('a'))?.value, { x: 3 });
    assert.equal((await docs.get('b'))?.deleted, true);
    assert.deepEqual(docs.vector(), { [id.peerId]: 4 });
    const next = await docs.put('a', 5);
    assert.equal(next.seq, 5);
    assert.ok(next.t[0] > last.t[0] || (next.t[0] === last.t[0] && next.t[1] > last.t[1]), 'the clock resumes above the last write');
    assert.deepEqual((await docs.list()).map((e) => e.key), ['a']);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two peers converge: LWW by HLC, max, min, union, a registered resolver, and a manual conflict resolved by a signed record', async () => {
  const bus = new Bus();
  // b's clock runs a second ahead of a's: its write is the later one by HLC.
  const a = await bus.add(1, new MemoryStore(), () => 1_000_000);
  const b = await bus.add(2, new MemoryStore(), () => 1_001_000);
  await a.docs.put('plain', 'from a');
  await b.docs.put('plain', 'from b (later)');
  await a.docs.put('x/top', 5);
  await b.docs.put('x/top', 9);
  await a.docs.put('n/low', 5);
  await b.docs.put('n/low', 9);
  await a.docs.put('u/tags', ['red']);
  await b.docs.put('u/tags', ['blue']);
  await a.docs.put('r/total', 2);
  await b.docs.put('r/total', 40);
  await a.docs.put('m/price', 10);
  await b.docs.put('m/price', 12);
  const report = await a.engine.sync(b.id);
  assert.equal(report.equal, true);
  assert.equal(await values(a.docs), await values(b.docs));
  assert.equal((await a.docs.get('plain'))?.value, 'from b (later)');
  assert.equal((await a.docs.get('x/top'))?.value, 9);
  assert.equal((await a.docs.get('n/low'))?.value, 5);
  assert.deepEqual((await a.docs.get('u/tags'))?.value, ['blue', 'red']);
  assert.equal((await a.docs.get('r/total'))?.value, 42);
  const conflict = await b.docs.get('m/price');
  assert.equal(conflict?.conflict, true);
  assert.equal(conflict?.versions.length, 2);
  assert.deepEqual(a.docs.conflictKeys(), ['m/price']);
  await assert.rejects(a.docs.resolve('plain', 1), { code: 'SYNC_NOT_IN_CONFLICT' });
  const resolution = await a.docs.resolve('m/price', 11);
  assert.equal(resolution.op, 'resolve');
  await b.engine.sync(a.id);
  assert.deepEqual(b.docs.conflictKeys(), []);
  assert.equal((await b.docs.get('m/price'))?.value, 11);
  assert.equal(await values(a.docs), await values(b.docs));
});

test('LWW ties (same HLC) go to the larger PeerId on both sides', async () => {
  const bus = new Bus();
  const a = await bus.add(1, new MemoryStore(), () => 5_000);
  const b = await bus.add(2, new MemoryStore(), () => 5_000);
  await a.docs.put('tie', 'a');
  await b.docs.put('tie', 'b');
  await a.engine.sync(b.id);
  const winner = a.id > b.id ? 'a' : 'b';
  assert.equal((await a.docs.get('tie'))?.value, winner);
  assert.equal((await b.docs.get('tie'))?.value, winner);
});

test('a tampered record is rejected with a typed code and the session still converges on the rest', async () => {
  const bus = new Bus();
  const a = await bus.add(1);
  const b = await bus.add(2);
  for (let i = 0; i < 20; i++) await b.docs.put(`k${i}`, i);
  let tampered = 0;
  bus.filter = (_f, _t, p) => {
    if (p['k'] !== 'recs' || tampered > 0) return p;
    tampered++;
    const recs = (p['recs'] as JsonObject[]).map((r, i) => (i === 0 ? { ...r, value: 999 } : r));
    return { ...p, recs };
  };
  const report = await a.engine.sync(b.id);
  const rejected = a.events.filter((e) => e.type === 'rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]?.type === 'rejected' ? rejected[0].code : '', 'SYNC_BAD_SIGNATURE');
  assert.equal(rejected[0]?.type === 'rejected' ? rejected[0].peer : '', b.id);
  // The first pass ends with unequal roots; the second (ranges, all lanes) fetches the genuine record.
  assert.equal(report.equal, true);
  assert.equal(report.passes, 2);
  assert.equal(report.received, 20, '19 verified records, then the genuine one that was refused');
  for (const e of await a.docs.list({ limit: 100 })) assert.notEqual(e.value, 999);
  assert.equal(await values(a.docs), await values(b.docs));
});

test('an interrupted sync resumes where it stopped; at most MAX_INFLIGHT_BATCHES batches await acks', async () => {
  const bus = new Bus();
  const a = await bus.add(1);
  const b = await bus.add(2);
  const total = MAX_BATCH_RECORDS * 6 + 17;
  for (let i = 0; i < total; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, total - i) }, (_, j) => b.docs.put(`doc/${String(i + j).padStart(5, '0')}`, { n: i + j })));
  }
  let batches = 0;
  bus.filter = (_f, _t, p) => {
    if (p['k'] === 'recs' && ++batches > 3) return null;
    return p;
  };
  const first = a.engine.sync(b.id, { mode: 'range' });
  // The link dies after three batches: the peer is gone, its session ends.
  while (a.docs.size < MAX_BATCH_RECORDS * 3 || bus.inflight > 0) await new Promise((r) => setImmediate(r));
  a.engine.peerGone(b.id);
  b.engine.peerGone(a.id);
  await assert.rejects(first, { code: 'SYNC_ABORTED' });
  assert.equal(a.docs.size, MAX_BATCH_RECORDS * 3, 'three acknowledged batches were applied');
  bus.filter = (_f, _t, p) => p;
  const second = await a.engine.sync(b.id);
  assert.equal(second.equal, true);
  assert.equal(second.received, total - MAX_BATCH_RECORDS * 3, 'only the remainder travels');
  assert.ok(bus.maxRecsInFlight <= MAX_INFLIGHT_BATCHES && bus.maxRecsInFlight >= 2, `max in flight ${bus.maxRecsInFlight}`);
  assert.equal(await values(a.docs), await values(b.docs));
});

test('with version vectors a sync of a few new writes is one round trip; a malformed message is rejected and the engine goes on', async () => {
  const bus = new Bus();
  const a = await bus.add(1);
  const b = await bus.add(2);
  for (let i = 0; i < 500; i++) await b.docs.put(`k${i}`, i);
  await a.engine.sync(b.id);
  for (let i = 0; i < 30; i++) await b.docs.put(`new${i}`, i);
  const r = await a.engine.sync(b.id);
  assert.equal(r.mode, 'vector');
  assert.equal(r.received, 30);
  assert.equal(r.sent, 0);
  // open out, vec + fin in, our fin out: one round trip, then our FIN (no reply awaited).
  assert.equal(r.rounds, 4);
  await b.engine.receive(a.id, { k: 'rng', sid: 'nope', d: '!!' });
  await b.engine.receive(a.id, { k: 'bogus' });
  const rejected = b.events.filter((e) => e.type === 'rejected');
  assert.equal(rejected.length, 2);
  assert.ok(rejected.every((e) => e.type === 'rejected' && e.code === 'SYNC_MALFORMED'));
  await b.docs.put('after', true);
  assert.equal((await a.engine.sync(b.id)).received, 1);
});

test('a CHECK queued behind the FIN that closes the responder\'s session is still answered', { timeout: 10_000 }, async () => {
  const bus = new Bus();
  const a = await bus.add(1);
  const b = await bus.add(2);
  // Both sides push, so the responder's FIN predates the initiator's records: the initiator asks CHECK.
  for (let i = 0; i < 3; i++) await a.docs.put(`a${i}`, i);
  for (let i = 0; i < 2; i++) await b.docs.put(`b${i}`, i);
  let fin: JsonObject | undefined;
  let checks = 0;
  bus.filter = (from, _to, p) => {
    if (from !== a.id) return p;
    if (p['k'] === 'fin') {
      fin = p;
      return null;
    }
    if (p['k'] === 'check' && fin !== undefined) {
      // FIN and CHECK reach the responder together: the CHECK waits behind the FIN's handling,
      // which ends the session (the roots are equal by then).
      checks++;
      void b.engine.receive(a.id, fin);
      void b.engine.receive(a.id, p);
      return null;
    }
    return p;
  };
  const r = await a.engine.sync(b.id);
  assert.equal(checks, 1, 'the initiator asked once');
  assert.equal(r.equal, true);
  assert.equal(await values(a.docs), await values(b.docs));
});

test('live: a write reaches the other peer by broadcast without a session', async () => {
  const bus = new Bus();
  bus.live = true;
  const a = await bus.add(1);
  const b = await bus.add(2);
  await b.docs.put('live/1', 'hello');
  while ((await a.docs.get('live/1')) === undefined) await new Promise((r) => setImmediate(r));
  assert.equal((await a.docs.get('live/1'))?.value, 'hello');
});

test('recordBytesOf reads up to MAX_READ_BATCH ids at once, in order, skipping missing ones; one more is refused', async () => {
  const bus = new Bus();
  const a = await bus.add(1);
  const held = [await a.docs.put('r1', 1), await a.docs.put('r2', 2)];
  const ids = held.map((r) => recordId(recordBytes(r)));
  const missing = new Uint8Array(32).fill(7);
  const got = await a.docs.recordBytesOf([ids[1]!, missing, ids[0]!]);
  assert.deepEqual(got, [recordBytes(held[1]!), recordBytes(held[0]!)]);
  assert.equal((await a.docs.recordBytesOf(Array(MAX_READ_BATCH).fill(missing))).length, 0);
  await assert.rejects(a.docs.recordBytesOf(Array(MAX_READ_BATCH + 1).fill(missing)), (e: unknown) => (e as { code?: string }).code === 'SYNC_LIMIT');
});
