// Receipt logs as a synced dataset: a peer mirrors another signer's log through the sync
// engine, verifies every receipt and the signed head (root recomputed, consistency proof
// from its last head), serves the copy on to a third peer, and refuses tampered parts whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiptLog } from '../../src/receipts/log.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { DocStore } from '../../src/sync/docstore.ts';
import { SyncEngine, type SyncEvent } from '../../src/sync/engine.ts';
import { identityFromSeed } from '../../src/sync/identity.ts';
import { ReceiptMirror, type LogPart } from '../../src/sync/receipt-mirror.ts';
import type { JsonObject } from '../../src/ico/types.ts';
import { raftGroup } from '../../src/sync/node-service.ts';

function seed(n: number): Uint8Array {
  const s = new Uint8Array(32);
  s[0] = n;
  return s;
}

async function peer(n: number, nodes: Map<string, SyncEngine>, own: ReceiptLog[] = [], sameGroup?: (peerId: string) => boolean): Promise<{ id: string; engine: SyncEngine; mirror: ReceiptMirror; events: SyncEvent[]; sent: string[] }> {
  const id = identityFromSeed(seed(n));
  const docs = await DocStore.open({ store: new MemoryStore(), self: id.peerId, signer: id.signer });
  const mirror = await ReceiptMirror.open(new MemoryStore(), own, sameGroup !== undefined ? { sameGroup } : {});
  const events: SyncEvent[] = [];
  const sent: string[] = [];
  const engine = new SyncEngine({
    docs,
    receipts: mirror,
    transport: {
      send: async (to, payload: JsonObject) => {
        sent.push(`${to} ${String(payload['k'])}`);
        setImmediate(() => void nodes.get(to)?.receive(id.peerId, payload));
      },
      broadcast: async () => undefined,
    },
  });
  engine.on((e) => events.push(e));
  nodes.set(id.peerId, engine);
  return { id: id.peerId, engine, mirror, events, sent };
}

async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 10_000 && !(await check()); i++) await new Promise((r) => setImmediate(r));
  assert.ok(await check(), 'condition reached');
}

test('a peer mirrors a signer log through sync, follows it with consistency proofs, and serves it on', async () => {
  const nodes = new Map<string, SyncEngine>();
  const sId = identityFromSeed(seed(50));
  const log = await ReceiptLog.open(new MemoryStore(), { signer: sId.signer, peerId: sId.peerId });
  const t0 = Date.now() - 60_000;
  for (let i = 0; i < 600; i++) await log.append({ operator_id: 'kv.put', inputs: { key: `k${i}` }, outputs: { ok: true } }, t0 + i);
  const s = await peer(50, nodes, [log]);
  const a = await peer(1, nodes);
  const c = await peer(3, nodes);
  await a.engine.sync(s.id);
  await until(() => a.mirror.sizeOf(sId.peerId) === 600);
  assert.deepEqual(await a.mirror.get(sId.peerId, 599), await log.get(599));
  for (let i = 600; i < 610; i++) await log.append({ operator_id: 'kv.put', inputs: { key: `k${i}` }, outputs: { ok: true } }, t0 + i);
  await a.engine.sync(s.id);
  await until(() => a.mirror.sizeOf(sId.peerId) === 610);
  // C never talks to the signer: it gets the log from A's verified copy.
  await c.engine.sync(a.id);
  await until(() => c.mirror.sizeOf(sId.peerId) === 610);
  assert.deepEqual(await c.mirror.get(sId.peerId, 609), await log.get(609));
  assert.equal(a.events.filter((e) => e.type === 'rejected').length + c.events.filter((e) => e.type === 'rejected').length, 0);
});

test('a tampered receipt, a forged proof and a head over the wrong size are refused whole', async () => {
  const sId = identityFromSeed(seed(51));
  const log = await ReceiptLog.open(new MemoryStore(), { signer: sId.signer, peerId: sId.peerId });
  for (let i = 0; i < 40; i++) await log.append({ operator_id: 'echo', inputs: { i }, outputs: { i } }, Date.now() - 1000 + i);
  const source = await ReceiptMirror.open(new MemoryStore(), [log]);
  const parts = async (from: number): Promise<LogPart[]> => {
    const out: LogPart[] = [];
    for await (const p of source.serve(sId.peerId, from)) out.push(p);
    return out;
  };
  const m = await ReceiptMirror.open(new MemoryStore());
  const [first] = await parts(0);
  const tampered: LogPart = { ...(first as LogPart), receipts: (first as LogPart).receipts.map((r, i) => (i === 7 ? ({ ...r, timestamp: new Date(0).toISOString() } as Receipt) : r)) };
  await assert.rejects(m.accept(tampered), { code: 'SYNC_BAD_RECEIPT', message: /receipt 7 .*step 1/ });
  assert.equal(m.sizeOf(sId.peerId), 0);
  assert.equal(await m.accept(first as LogPart), 40);
  for (let i = 40; i < 50; i++) await log.append({ operator_id: 'echo', inputs: { i }, outputs: { i } }, Date.now() - 100 + i);
  const [next] = await parts(40);
  assert.ok((next as LogPart).proof !== undefined && (next as LogPart).proof!.length > 0);
  const forgedProof = { ...(next as LogPart), proof: (next as LogPart).proof!.map(() => 'ab'.repeat(32)) };
  await assert.rejects(m.accept(forgedProof), { code: 'SYNC_BAD_RECEIPT', message: /not consistent/ });
  await assert.rejects(m.accept({ ...(next as LogPart), sth: { ...(next as LogPart).sth!, size: 51 } }), { code: 'SYNC_BAD_RECEIPT' });
  assert.equal(m.sizeOf(sId.peerId), 40, 'nothing of the refused parts was kept');
  assert.equal(await m.accept(next as LogPart), 10);
  assert.equal(m.sizeOf(sId.peerId), 50);
});

/** Counts turns of the timer queue, the one the mirror yields to (bounded: stops after `max`). */
function turnCounter(max = 100_000): { readonly turns: number; stop(): void } {
  let turns = 0;
  let stopped = false;
  const spin = (): void => {
    if (stopped || turns >= max) return;
    turns++;
    setTimeout(spin, 0);
  };
  setTimeout(spin, 0);
  return {
    get turns() {
      return turns;
    },
    stop() {
      stopped = true;
    },
  };
}

test('parts that arrive while the one before them still awaits the store are accepted in order, between other work', async () => {
  const sId = identityFromSeed(seed(52));
  const log = await ReceiptLog.open(new MemoryStore(), { signer: sId.signer, peerId: sId.peerId });
  const t0 = Date.now() - 60_000;
  for (let i = 0; i < 40; i++) await log.append({ operator_id: 'echo', inputs: { i }, outputs: { i } }, t0 + i);
  const source = await ReceiptMirror.open(new MemoryStore(), [log]);
  const m = await ReceiptMirror.open(new MemoryStore());
  const parts: LogPart[] = [];
  for await (const p of source.serve(sId.peerId, 0)) parts.push(p);
  assert.equal(await m.accept(parts[0] as LogPart), 40);
  for (let i = 40; i < 1000; i++) await log.append({ operator_id: 'echo', inputs: { i }, outputs: { i } }, t0 + i);
  // Other work (a Raft leader's heartbeats) gets a turn of the event loop between two parts
  // of a backlog, served or accepted: back to back in microtasks they held it for seconds.
  parts.length = 0;
  const served = turnCounter();
  const servedAt: number[] = [];
  for await (const p of source.serve(sId.peerId, 40)) {
    servedAt.push(served.turns);
    parts.push(p);
  }
  served.stop();
  assert.equal(parts.length, 4);
  for (let i = 1; i < servedAt.length; i++) assert.ok((servedAt[i] as number) > (servedAt[i - 1] as number), `a turn between served parts: ${servedAt.join(', ')}`);
  // All four arrive at once (LevelDB reads take real time, so the next frame lands meanwhile).
  const accepting = turnCounter();
  const acceptedAt: number[] = [];
  const accepted = await Promise.all(parts.map(async (p, i) => {
    const n = await m.accept(p);
    acceptedAt[i] = accepting.turns;
    return n;
  }));
  accepting.stop();
  assert.deepEqual(accepted, [0, 0, 0, 960]);
  assert.equal(m.sizeOf(sId.peerId), 1000);
  assert.deepEqual(await m.get(sId.peerId, 999), await log.get(999));
  for (let i = 1; i < acceptedAt.length; i++) assert.ok((acceptedAt[i] as number) > (acceptedAt[i - 1] as number), `a turn between accepted parts: ${acceptedAt.join(', ')}`);
});

test('members of one consensus group neither mirror nor serve each other their receipt logs; a peer outside mirrors both', async () => {
  const nodes = new Map<string, SyncEngine>();
  const ids = [60, 61].map((n) => identityFromSeed(seed(n)));
  const group = new Set(ids.map((i) => i.peerId));
  const logs = await Promise.all(ids.map((i) => ReceiptLog.open(new MemoryStore(), { signer: i.signer, peerId: i.peerId })));
  const t0 = Date.now() - 60_000;
  for (const log of logs) for (let i = 0; i < 300; i++) await log.append({ operator_id: 'kv.put', inputs: { key: `k${i}` }, outputs: { ok: true } }, t0 + i);
  const a = await peer(60, nodes, [logs[0] as ReceiptLog], (p) => group.has(p));
  const b = await peer(61, nodes, [logs[1] as ReceiptLog], (p) => group.has(p));
  const outside = await peer(62, nodes);
  await a.engine.sync(b.id);
  await b.engine.sync(a.id);
  await outside.engine.sync(a.id);
  await outside.engine.sync(b.id);
  await until(() => outside.mirror.sizeOf(a.id) === 300 && outside.mirror.sizeOf(b.id) === 300);
  assert.equal(a.mirror.sizeOf(b.id), 0);
  assert.equal(b.mirror.sizeOf(a.id), 0);
  const logMessages = (from: { sent: string[] }, to: string): string[] => from.sent.filter((m) => m.startsWith(`${to} rlog`) || m.startsWith(`${to} rheads`));
  assert.deepEqual([...logMessages(a, b.id), ...logMessages(b, a.id)], [], 'no heads or log parts between members');
  assert.ok(logMessages(a, outside.id).some((m) => m.endsWith('rlog')), 'a serves its log to the peer outside');
  // A part pushed at a member anyway is ignored, not stored.
  const parts: LogPart[] = [];
  for await (const p of b.mirror.serve(b.id, 0)) parts.push(p);
  for (const p of parts) assert.equal(await a.mirror.accept(p), 0);
  assert.equal(a.mirror.sizeOf(b.id), 0);
});

test('raftGroup: the members of the Raft engine, read live; no engine, no group', () => {
  let members = [{ peerId: 'a', role: 'voter' as const }, { peerId: 'r', role: 'learner' as const }];
  const group = raftGroup({ members: () => members }).sameGroup;
  assert.ok(group !== undefined);
  assert.deepEqual(['a', 'r', 'x'].map(group), [true, true, false]);
  members = [...members, { peerId: 'x', role: 'voter' as const }];
  assert.equal(group('x'), true, 'a member added later is in the group');
  assert.deepEqual(raftGroup(undefined), {});
});
