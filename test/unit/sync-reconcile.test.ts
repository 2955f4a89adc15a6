// Range reconciliation between two ItemSets, driven message by message: after the exchange
// and the pushes it asks for, both sets are equal, in O(log n) rounds and with bytes that
// grow with the difference, not the set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import { ItemSet } from '../../src/sync/itemset.ts';
import { RangeReconciler, type RangeStep, type TrieNode } from '../../src/sync/reconcile.ts';

function randomId(rng: Xoshiro128): Uint8Array {
  const id = new Uint8Array(32);
  for (let i = 0; i < 32; i += 4) new DataView(id.buffer).setUint32(i, rng.nextU32());
  return id;
}

interface Outcome { rounds: number; bytes: number; pushedAB: number; pushedBA: number }

function reconcile(a: ItemSet, b: ItemSet, lanes?: number): Outcome {
  const ra = new RangeReconciler(a, lanes);
  const rb = new RangeReconciler(b, lanes);
  const toB: Uint8Array[] = [];
  const toA: Uint8Array[] = [];
  const collect = (set: ItemSet, nodes: TrieNode[], ids: Uint8Array[], out: Uint8Array[]): void => {
    for (const n of nodes) out.push(...set.idsIn(n.depth, n.prefix));
    out.push(...ids);
  };
  let msg: Uint8Array | null = ra.initiate();
  let bytes = msg.length;
  let turn: 'a' | 'b' = 'b';
  for (let i = 0; msg !== null; i++) {
    assert.ok(i < 200, 'exchange must end');
    const step: RangeStep = turn === 'b' ? rb.receive(msg) : ra.receive(msg);
    if (turn === 'b') collect(b, step.pushNodes, step.pushIds, toA);
    else collect(a, step.pushNodes, step.pushIds, toB);
    msg = step.message;
    if (msg !== null) bytes += msg.length;
    turn = turn === 'a' ? 'b' : 'a';
  }
  for (const id of toA) a.add(id);
  for (const id of toB) b.add(id);
  return { rounds: ra.rounds + rb.rounds, bytes, pushedAB: toB.length, pushedBA: toA.length };
}

function sameIds(a: ItemSet, b: ItemSet): void {
  assert.equal(a.size, b.size);
  assert.deepEqual(a.fingerprint(0, 0), b.fingerprint(0, 0));
  const bs = [...b.all()].map((x) => Buffer.from(x).toString('hex'));
  assert.deepEqual([...a.all()].map((x) => Buffer.from(x).toString('hex')), bs);
}

test('fingerprints add and subtract: removing what was added restores the root', () => {
  const rng = new Xoshiro128(7);
  const s = new ItemSet();
  const before = s.fingerprint(0, 0);
  const ids = Array.from({ length: 500 }, () => randomId(rng));
  for (const id of ids) assert.equal(s.add(id), true);
  assert.equal(s.add(ids[0]!), false);
  assert.equal(s.size, 500);
  // A deep node's fingerprint equals the sum over its two halves.
  for (const depth of [0, 3, 12, 13, 20]) {
    const prefix = (ids[1]![0]! << 24 | ids[1]![1]! << 16 | ids[1]![2]! << 8 | ids[1]![3]!) >>> 0 >>> (32 - depth) >>> 0;
    const p = depth === 0 ? 0 : prefix;
    const whole = s.fingerprint(depth, p);
    const l = s.fingerprint(depth + 1, p * 2);
    const r = s.fingerprint(depth + 1, p * 2 + 1);
    assert.equal(whole.count, l.count + r.count);
    for (let k = 0; k < 4; k++) assert.equal(whole.lanes[k], ((l.lanes[k]! + r.lanes[k]!) >>> 0));
    assert.equal(s.idsIn(depth, p).length, whole.count);
  }
  for (const id of ids) assert.equal(s.delete(id), true);
  assert.deepEqual(s.fingerprint(0, 0), before);
});

test('identical sets finish in one message each way with nothing pushed', () => {
  const rng = new Xoshiro128(1);
  const a = new ItemSet();
  const b = new ItemSet();
  for (let i = 0; i < 10_000; i++) {
    const id = randomId(rng);
    a.add(id);
    b.add(id);
  }
  const o = reconcile(a, b);
  assert.equal(o.pushedAB + o.pushedBA, 0);
  assert.ok(o.bytes < 40, `bytes ${o.bytes}`);
});

test('random sets with one-sided and two-sided differences converge (200 seeds)', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rng = new Xoshiro128(seed);
    const a = new ItemSet();
    const b = new ItemSet();
    const common = rng.nextU32() % 3000;
    for (let i = 0; i < common; i++) {
      const id = randomId(rng);
      a.add(id);
      b.add(id);
    }
    const onlyA = rng.nextU32() % (seed % 5 === 0 ? 2000 : 40);
    const onlyB = rng.nextU32() % (seed % 7 === 0 ? 2000 : 40);
    for (let i = 0; i < onlyA; i++) a.add(randomId(rng));
    for (let i = 0; i < onlyB; i++) b.add(randomId(rng));
    const o = reconcile(a, b, seed % 3 === 0 ? 1 : undefined);
    sameIds(a, b);
    assert.equal(o.pushedAB, onlyA, `seed ${seed}: pushed exactly A's extra ids`);
    assert.equal(o.pushedBA, onlyB, `seed ${seed}: pushed exactly B's extra ids`);
  }
});

test('100k ids with 1% differing: O(log n) rounds, bytes proportional to the difference', () => {
  const rng = new Xoshiro128(42);
  const a = new ItemSet();
  const b = new ItemSet();
  for (let i = 0; i < 100_000; i++) {
    const id = randomId(rng);
    a.add(id);
    b.add(id);
  }
  for (let i = 0; i < 1_000; i++) b.add(randomId(rng));
  const o = reconcile(a, b);
  sameIds(a, b);
  assert.equal(o.pushedBA, 1000);
  // SPLITK: the root's counts differ by 1,000, so the first answer opens 256 nodes 8 levels
  // down instead of splitting level by level (22 messages with binary splits only, 14 with it).
  assert.ok(o.rounds <= 16, `rounds ${o.rounds}`);
  // About 30 bytes per differing id; a full id list would be 3.2 MB.
  assert.ok(o.bytes < 1000 * 60, `bytes ${o.bytes}`);
});
