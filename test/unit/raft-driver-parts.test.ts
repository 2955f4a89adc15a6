// The driver's pure-ish parts: the CONSENSUS payload codec (a trust boundary), durable Raft
// storage (truncation, snapshots, reopen), and the replica's receipt bookkeeping (no
// duplicate receipts on replay, the offset after a snapshot jump).
import { strict as assert } from 'node:assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bootstrapState, type Entry, type Message } from '../../src/consensus/raft/index.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { decodeConsensusPayload, encodeConsensusPayload, MAX_ENVELOPE_MESSAGE_BYTES, MAX_MESSAGES_PER_ENVELOPE, packRaftMessages } from '../../src/consensus/raft/runtime/wire.ts';
import { RUNTIME_RAFT_LIMITS } from '../../src/consensus/raft/runtime/limits.ts';
import { RaftStorage } from '../../src/consensus/raft/runtime/storage.ts';
import { SnapshotProgress } from '../../src/consensus/raft/runtime/snapshot-progress.ts';
import { pino } from 'pino';
import { Replica } from '../../src/replica/replica.ts';
import { encodeCommand, StateMachine } from '../../src/statemachine/index.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { MAX_BATCH_BYTES, type Store } from '../../src/store/types.ts';
import { DEFAULT_CODEC_LIMITS, type JsonObject } from '../../src/ico/types.ts';

const enc = new TextEncoder();
const e = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, type: 'normal', data: enc.encode(text) });

describe('CONSENSUS payload codec', () => {
  const base = { term: 3, from: 'a', to: 'b' };
  const all: Message[] = [
    { ...base, type: 'vote', preVote: true, lastIndex: 9, lastTerm: 2, transfer: false },
    { ...base, type: 'voteResp', preVote: false, reject: true },
    { ...base, type: 'append', prevIndex: 4, prevTerm: 2, commit: 4, entries: [e(5, 3), { index: 6, term: 3, type: 'confChange', data: enc.encode('{}') }] },
    { ...base, type: 'appendResp', index: 6, reject: false, hintIndex: 0, hintTerm: 0 },
    { ...base, type: 'heartbeat', commit: 6, readSeq: 2 },
    { ...base, type: 'heartbeatResp', readSeq: 2 },
    { ...base, type: 'snapshot', meta: { index: 100, term: 3, conf: { voters: ['a', 'b'], learners: ['c'] } }, offset: 0, totalBytes: 3, chunk: Uint8Array.of(1, 2, 3) },
    { ...base, type: 'snapshotResp', snapIndex: 100, nextOffset: 3, reject: false },
    { ...base, type: 'timeoutNow' },
    { ...base, type: 'readIndex', ctx: 'r1' },
    { ...base, type: 'readIndexResp', ctx: 'r1', index: 6 },
  ];

  test('every Raft message type survives the JSON round trip', () => {
    const wire = JSON.parse(JSON.stringify(encodeConsensusPayload({ k: 'raft', msgs: all }))) as JsonObject;
    assert.deepEqual(decodeConsensusPayload(wire), { k: 'raft', msgs: all });
  });

  test('client proposals and answers round-trip', () => {
    const props = { k: 'propose' as const, props: [{ id: 1, operator_id: 'kv.put', inputs: { key: 'a', value: 1 }, client: 'c', key: 'k' }] };
    assert.deepEqual(decodeConsensusPayload(JSON.parse(JSON.stringify(encodeConsensusPayload(props))) as JsonObject), props);
    const answers = { k: 'proposed' as const, answers: [{ id: 1, index: 7, term: 2 }, { id: 2, error: 'notLeader' as const, leader: 'x' }] };
    assert.deepEqual(decodeConsensusPayload(JSON.parse(JSON.stringify(encodeConsensusPayload(answers))) as JsonObject), answers);
  });

  test('malformed payloads decode to null, never throw', () => {
    const good = encodeConsensusPayload({ k: 'raft', msgs: [all[0] as Message] });
    const bad: unknown[] = [
      {},
      { k: 'nope' },
      { k: 'raft', msgs: [] },
      { k: 'raft', msgs: 'x' },
      { k: 'raft', msgs: [{ ...(good['msgs'] as JsonObject[])[0], term: -1 }] },
      { k: 'raft', msgs: [{ ...(good['msgs'] as JsonObject[])[0], type: 'evil' }] },
      { k: 'raft', msgs: [{ ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: [[1, 1, 0, '***']] }] },
      { k: 'raft', msgs: [{ ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: [[1, 1, 7, '']] }] },
      { k: 'raft', msgs: Array.from({ length: MAX_MESSAGES_PER_ENVELOPE + 1 }, () => (good['msgs'] as JsonObject[])[0]) },
      { k: 'propose', props: [{ id: 1, operator_id: 'x'.repeat(500), inputs: {}, client: 'c', key: 'k' }] },
      { k: 'proposed', answers: [{ id: 1, error: 'other', leader: '' }] },
    ];
    for (const b of bad) assert.equal(decodeConsensusPayload(b as JsonObject), null, JSON.stringify(b).slice(0, 80));
  });

  test('a window of snapshot chunks or appends to one peer is packed into envelopes that each fit a frame, in order', () => {
    // One Ready to a follower: the runtime's whole window of 128 KiB chunks (it went out as one
    // 5.6 MB envelope that the transport refused, every time), then appends of 64 KiB values.
    const limits = RUNTIME_RAFT_LIMITS;
    const meta = { index: 900, term: 4, conf: { voters: ['p'.repeat(52), 'q'.repeat(52), 'r'.repeat(52)], learners: ['s'.repeat(52)] } };
    const chunks = limits.maxInflightBytes / limits.snapshotChunkBytes;
    const msgs: Message[] = Array.from({ length: chunks }, (_, i) => ({ ...base, type: 'snapshot' as const, meta, offset: i * limits.snapshotChunkBytes, totalBytes: 64 << 20, chunk: new Uint8Array(limits.snapshotChunkBytes).fill(i) }));
    msgs.push({ ...base, type: 'heartbeat', commit: 6, readSeq: 2 });
    const value = 'v'.repeat(64 * 1024);
    for (let i = 0; i < 8; i++) {
      const entries = Array.from({ length: limits.maxBytesPerMsg / value.length }, (_, j) => e(10 + i * 4 + j, 4, value));
      msgs.push({ ...base, type: 'append', prevIndex: 9 + i * 4, prevTerm: 4, commit: 9, entries });
    }
    const envelopes = packRaftMessages(msgs);
    assert.ok(envelopes.length > 1 && envelopes.length < msgs.length, `${envelopes.length} envelopes`);
    for (const env of envelopes) {
      const bytes = enc.encode(JSON.stringify(encodeConsensusPayload({ k: 'raft', msgs: env }))).length;
      assert.ok(bytes <= MAX_ENVELOPE_MESSAGE_BYTES, `an envelope of ${bytes} bytes`);
      assert.ok(bytes < DEFAULT_CODEC_LIMITS.maxFrameBytes);
    }
    assert.deepEqual(envelopes.flat(), msgs, 'every message, in order');
    assert.equal(packRaftMessages(Array.from({ length: MAX_MESSAGES_PER_ENVELOPE + 1 }, () => msgs[chunks] as Message)).length, 2, 'at most MAX_MESSAGES_PER_ENVELOPE per envelope');
  });
});

describe('snapshot transfer progress', () => {
  test('one log line per tenth of the snapshot, with chunks and resent chunks counted', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const p = new SnapshotProgress(log, 'sent');
    const meta = { index: 50, term: 2, conf: { voters: ['a', 'b'], learners: [] } };
    const chunk = (offset: number): Message => ({ term: 2, from: 'a', to: 'b', type: 'snapshot', meta, offset, totalBytes: 100, chunk: new Uint8Array(Math.min(5, 100 - offset)) });
    for (let off = 0; off < 100; off += 5) {
      p.chunk('b', chunk(off) as Extract<Message, { type: 'snapshot' }>);
      // Every chunk of the second quarter goes out twice (a stalled window sent again).
      if (off >= 25 && off < 50) p.chunk('b', chunk(off) as Extract<Message, { type: 'snapshot' }>);
    }
    assert.deepEqual(lines.map((l) => l['bytes']), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert.deepEqual(p.get('b'), { index: 50, totalBytes: 100, chunks: 25, resent: 5, reached: 100, step: 10 });
    assert.equal(lines.at(-1)?.['msg'], 'snapshot chunks sent');
  });
});

function storageSuite(name: string, open: () => Promise<{ store: Store; reopen: () => Promise<Store> }>): void {
  describe(`RaftStorage on ${name}`, () => {
    test('bootstrap, append, truncate on conflict, reopen', async () => {
      const { store, reopen } = await open();
      const first = await RaftStorage.open(store);
      assert.equal(first.fresh, true);
      const boot = bootstrapState(['a', 'b', 'c']);
      await first.storage.persist({ hardState: boot.hardState, entries: boot.entries });
      await first.storage.persist({ hardState: { term: 2, vote: 'a', commit: 3 }, entries: [4, 5, 6, 7].map((i) => e(i, 2)) });
      // A new leader overwrites 6.. with its own entries: 8 and up are now stale leftovers.
      await first.storage.persist({ hardState: { term: 3, vote: 'b', commit: 5 }, entries: [e(6, 3, 'new6')] });
      await first.storage.close();
      const again = await RaftStorage.open(await reopen());
      assert.equal(again.fresh, false);
      assert.deepEqual(again.state.hardState, { term: 3, vote: 'b', commit: 5 });
      assert.deepEqual(again.state.entries.map((x) => [x.index, x.term]), [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [6, 3]]);
      assert.equal(new TextDecoder().decode(again.state.entries[5]!.data), 'new6');
    });

    test('a compaction snapshot keeps the entries after it; an installed snapshot discards the log', async () => {
      const { store, reopen } = await open();
      const { storage } = await RaftStorage.open(store);
      await storage.persist({ hardState: { term: 1, vote: '', commit: 10 }, entries: Array.from({ length: 10 }, (_, i) => e(i + 1, 1)) });
      const conf = { voters: ['a', 'b', 'c'], learners: [] };
      const big = new Uint8Array(2_500_000).map((_, i) => i % 251); // spans three chunks
      await storage.saveSnapshot({ meta: { index: 6, term: 1, conf }, data: big });
      await storage.close();
      const after = await RaftStorage.open(await reopen());
      assert.equal(after.state.snapshot?.meta.index, 6);
      assert.deepEqual(after.state.snapshot?.data, big);
      assert.deepEqual(after.state.entries.map((x) => x.index), [7, 8, 9, 10]);
      // A follower installs a newer snapshot from the leader: its whole log goes.
      await after.storage.persist({ hardState: { term: 2, vote: '', commit: 50 }, entries: [], snapshot: { meta: { index: 50, term: 2, conf }, data: Uint8Array.of(9) } });
      await after.storage.persist({ entries: [e(51, 2)] });
      await after.storage.close();
      const last = await RaftStorage.open(await reopen());
      assert.equal(last.state.snapshot?.meta.index, 50);
      assert.deepEqual(last.state.entries.map((x) => x.index), [51]);
    });

    test('a snapshot over the store batch limit (32 MiB) is saved in bounded batches and loads whole', async () => {
      const { store, reopen } = await open();
      const { storage } = await RaftStorage.open(store);
      await storage.persist({ hardState: { term: 1, vote: '', commit: 4 }, entries: [1, 2, 3, 4].map((i) => e(i, 1)) });
      const conf = { voters: ['a'], learners: [] };
      const big = new Uint8Array(MAX_BATCH_BYTES + 5 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 253;
      await storage.saveSnapshot({ meta: { index: 3, term: 1, conf }, data: big });
      // A newer one replaces it (the older generation's chunks go in the background).
      big[0] = 42;
      await storage.saveSnapshot({ meta: { index: 4, term: 1, conf }, data: big });
      await storage.close();
      const after = await RaftStorage.open(await reopen());
      assert.equal(after.state.snapshot?.meta.index, 4);
      assert.equal(after.state.snapshot?.data.length, big.length);
      assert.ok(after.state.snapshot !== undefined && Buffer.from(after.state.snapshot.data).equals(Buffer.from(big)));
      // A follower installs one that large from the leader, with entries after it.
      big[1] = 43;
      await after.storage.persist({ hardState: { term: 2, vote: '', commit: 90 }, entries: [e(91, 2)], snapshot: { meta: { index: 90, term: 2, conf }, data: big } });
      await after.storage.close();
      const last = await RaftStorage.open(await reopen());
      assert.equal(last.state.snapshot?.meta.index, 90);
      assert.ok(last.state.snapshot !== undefined && Buffer.from(last.state.snapshot.data).equals(Buffer.from(big)));
      assert.deepEqual(last.state.entries.map((x) => x.index), [91]);
      await last.storage.close();
    });

    test('a Ready holding more than the store batch limit of entries is written in bounded batches', async () => {
      const { store, reopen } = await open();
      const { storage } = await RaftStorage.open(store);
      const value = 'x'.repeat(64 * 1024);
      const entries = Array.from({ length: Math.ceil(MAX_BATCH_BYTES / value.length) + 40 }, (_, i) => e(i + 1, 1, `${i}:${value}`));
      await storage.persist({ hardState: { term: 1, vote: 'a', commit: 0 }, entries });
      assert.ok(storage.stats.batches > 1, `${storage.stats.batches} batches`);
      await storage.close();
      const again = await RaftStorage.open(await reopen());
      assert.equal(again.state.entries.length, entries.length);
      assert.deepEqual(again.state.hardState, { term: 1, vote: 'a', commit: 0 });
      await again.storage.close();
    });
  });
}

storageSuite('the memory store', async () => {
  const store = new MemoryStore();
  return { store, reopen: async () => store };
});
storageSuite('LevelDB', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raft-storage-'));
  let store = await LevelStore.open(dir);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await LevelStore.open(dir);
      return store;
    },
  };
});

describe('Replica', () => {
  const seed = crypto.randomBytes(32);
  const signer = crypto.createSigner(seed);
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const put = (key: string, value: number, ts = 1_700_000_000_000 + value) => encodeCommand({ operator_id: 'kv.put', inputs: { key, value }, timestamp: ts, session: { client: 'c', key } });

  test('one receipt per execution, none for a deduplicated retry, none twice after a restart replay', async () => {
    const store = new MemoryStore();
    const r = await Replica.open({ store, signer, peerId });
    const a = r.apply(put('a', 1));
    const b = r.apply(put('b', 2));
    const retry = r.apply(put('a', 1));
    assert.equal(retry.result.ok && retry.result.replayed, true);
    assert.equal((await retry.receipt!).receipt_id, (await a.receipt!).receipt_id);
    assert.equal((await b.receipt!).index, 1);
    await r.flush();
    // Restart: the state machine starts empty and the log is re-applied; receipts exist already.
    const again = await Replica.open({ store, signer, peerId });
    again.apply(put('a', 1));
    const b2 = again.apply(put('b', 2));
    assert.equal((await b2.receipt!).receipt_id, (await b.receipt!).receipt_id);
    const c = again.apply(put('c', 3));
    assert.equal((await c.receipt!).index, 2);
    await again.flush();
    assert.equal(again.log.size, 3);
  });

  test('installing a snapshot that jumps ahead shifts receipt indices by the executions it skipped', async () => {
    const leader = new StateMachine();
    for (let i = 0; i < 5; i++) leader.apply({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, timestamp: 1 });
    const r = await Replica.open({ store: new MemoryStore(), signer, peerId });
    r.apply(put('x', 1));
    await r.restore(leader.snapshot());
    assert.equal(r.ordinal, 5);
    const next = r.apply(put('y', 9));
    const receipt = await next.receipt!;
    assert.equal(receipt.index, 1, 'the second receipt in this replica log');
    assert.equal(r.ordinalOf(receipt.index), 5);
    assert.equal((await r.receiptFor(5)).receipt_id, receipt.receipt_id);
  });
});
