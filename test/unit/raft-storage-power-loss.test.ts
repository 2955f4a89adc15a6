// The fsync rules of the Raft storage and runtime, checked against power cuts (SIGKILL cannot
// show a missing fsync): a cut at every sync of a large snapshot write keeps the old snapshot
// or the new one whole; a cut at every sync of a Ready split into several batches leaves a
// loadable log whose terms never go down; and no message of a new term leaves before that
// term is durable, a single voter (which elects itself and sends in one Ready) included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../../src/consensus/raft/index.ts';
import { RaftRuntime } from '../../src/consensus/raft/runtime/runtime.ts';
import { MAX_PERSIST_BATCH_BYTES, RaftStorage, SNAPSHOT_CHUNK_BYTES } from '../../src/consensus/raft/runtime/storage.ts';
import { decodeConsensusPayload } from '../../src/consensus/raft/runtime/wire.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import type { JsonObject } from '../../src/ico/types.ts';
import { Replica } from '../../src/replica/replica.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { PowerLossStore } from '../../src/store/power-loss.ts';

const conf = { voters: ['a', 'b', 'c'], learners: [] };
const entry = (index: number, term: number, bytes = 16): Entry => ({ index, term, type: 'normal', data: new Uint8Array(bytes).fill(index % 251) });

function pattern(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 1024) b[i] = (seed + i / 1024) % 251;
  return b;
}

/** A store that cuts the power at its `k`-th sync once armed; `cut` resolves when it did. */
function cuttingStore(k: number): { store: PowerLossStore; arm: () => void; cut: Promise<void> } {
  let armed = false;
  let syncs = 0;
  let onCut = (): void => undefined;
  const cut = new Promise<void>((resolve) => (onCut = resolve));
  const store = new PowerLossStore({ failSync: () => armed && ++syncs === k, onCut: () => onCut() });
  return { store, arm: () => (armed = true), cut };
}

test('a power cut at any sync of a snapshot larger than one batch keeps the old snapshot or the new one, whole', async () => {
  const old = pattern(3 * 1024 * 1024, 1);
  const next = pattern(2 * MAX_PERSIST_BATCH_BYTES + 5 * 1024 * 1024, 2);
  const seen = new Set<number>();
  for (let k = 1; k <= 6; k++) {
    const { store, arm, cut } = cuttingStore(k);
    const { storage } = await RaftStorage.open(store);
    await storage.persist({ hardState: { term: 1, vote: 'a', commit: 10 }, entries: Array.from({ length: 10 }, (_, i) => entry(i + 1, 1)) });
    await storage.saveSnapshot({ meta: { index: 5, term: 1, conf }, data: old });
    arm();
    const saved = storage.saveSnapshot({ meta: { index: 8, term: 1, conf }, data: next });
    const finished = await Promise.race([saved.then(() => true), cut.then(() => false)]);
    const disk = await store.powerLoss();
    const after = await RaftStorage.open(disk);
    const snap = after.state.snapshot;
    assert.ok(snap !== undefined, `cut at sync ${k}: a snapshot survives`);
    seen.add(snap.meta.index);
    const want = snap.meta.index === 8 ? next : old;
    assert.ok(snap.meta.index === 8 || snap.meta.index === 5, `cut at sync ${k}: snapshot ${snap.meta.index}`);
    assert.ok(Buffer.from(snap.data).equals(Buffer.from(want)), `cut at sync ${k}: snapshot ${snap.meta.index} is whole`);
    assert.deepEqual(after.state.entries.map((e) => e.index), Array.from({ length: 10 - snap.meta.index }, (_, i) => snap.meta.index + 1 + i), `cut at sync ${k}`);
    if (finished) assert.equal(snap.meta.index, 8, 'a completed save is durable');
    // Chunks of a write cut short, or of the replaced generation, do not stay behind.
    await after.storage.close();
    let chunks = 0;
    for await (const _ of disk.range({ gte: Uint8Array.of(0x64), lt: Uint8Array.of(0x65) })) chunks++;
    assert.equal(chunks, Math.ceil(snap.data.length / SNAPSHOT_CHUNK_BYTES), `cut at sync ${k}: chunks left on disk`);
  }
  assert.deepEqual([...seen].sort(), [5, 8], 'the cuts fell both before and after the switch');
});

test('a power cut at any sync of a Ready split into several batches leaves a loadable log whose terms never go down', async () => {
  const big = 64 * 1024;
  const count = Math.ceil((2.5 * MAX_PERSIST_BATCH_BYTES) / big);
  for (let k = 1; k <= 4; k++) {
    const { store, arm, cut } = cuttingStore(k);
    const { storage } = await RaftStorage.open(store);
    // An old leader's term-1 suffix (101..300, uncommitted) that the term-2 leader overwrites.
    await storage.persist({ hardState: { term: 1, vote: 'a', commit: 100 }, entries: Array.from({ length: 300 }, (_, i) => entry(i + 1, 1)) });
    arm();
    const written = storage.persist({ hardState: { term: 2, vote: 'b', commit: 100 }, entries: Array.from({ length: count }, (_, i) => entry(101 + i, 2, big)) });
    const finished = await Promise.race([written.then(() => true), cut.then(() => false)]);
    const after = await RaftStorage.open(await store.powerLoss());
    const terms = after.state.entries.map((e) => e.term);
    for (let i = 1; i < terms.length; i++) assert.ok((terms[i] as number) >= (terms[i - 1] as number), `cut at sync ${k}: entry ${i + 1} has term ${terms[i]} after term ${terms[i - 1]}`);
    assert.ok(after.state.entries.length >= 100, `cut at sync ${k}: the committed prefix stays`);
    if (terms.includes(2)) assert.equal(after.state.hardState.term, 2, `cut at sync ${k}: term-2 entries come with term 2`);
    if (finished) assert.equal(after.state.entries.length, 100 + count);
  }
});

test('no message of a new term leaves before the term is durable, a single voter included', async () => {
  const store = new PowerLossStore();
  const seed = crypto.randomBytes(32);
  const signer = crypto.createSigner(seed);
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const replica = await Replica.open({ store: new MemoryStore(), signer, peerId });
  let onCheck = (_: { sent: number; durable: number }): void => undefined;
  const checked = new Promise<{ sent: number; durable: number }>((resolve) => (onCheck = resolve));
  let first = true;
  const transport = {
    async send(_to: string, payload: JsonObject): Promise<void> {
      const p = decodeConsensusPayload(payload);
      if (!first || p === null || p.k !== 'raft') return;
      first = false;
      const sent = Math.max(...p.msgs.map((m) => m.term));
      // The power fails the instant the first message leaves: what term did the disk keep?
      const reopened = await RaftStorage.open(await store.powerLoss());
      onCheck({ sent, durable: reopened.state.hardState.term });
    },
    onMessage: () => () => undefined,
  };
  const runtime = await RaftRuntime.open({ id: peerId, transport, store, bootstrap: { voters: [peerId], learners: ['learner'] }, replica, tickMs: 5, onFatal: () => undefined });
  await runtime.start();
  const { sent, durable } = await checked;
  assert.ok(sent >= 1, `a message of term ${sent} was sent`);
  assert.ok(durable >= sent, `a message of term ${sent} left while the disk kept term ${durable}`);
  await Promise.race([runtime.close(), new Promise((r) => setTimeout(r, 100))]);
});
