// The linearizability checker on hand-built histories whose verdict is known, including the
// classic stale read, lost update, and unknown-outcome writes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkKvCounterHistory, checkKvHistory, type KvCounterInput, type KvCounterOperation, type KvCounterOutput, type KvInput, type KvOperation, type KvOutput } from '../../src/sim/linearizability.ts';

function op(client: string, input: KvInput, call: number, ret: number, output: KvOutput | undefined): KvOperation {
  return { client, input, call, ret, output };
}
const put = (key: string, value: string): KvInput => ({ kind: 'put', key, value });
const get = (key: string): KvInput => ({ kind: 'get', key });
const cas = (key: string, expected: string | null, value: string): KvInput => ({ kind: 'cas', key, expected, value });

describe('linearizability checker: linearizable histories', () => {
  it('accepts the empty history and sequential operations', () => {
    assert.equal(checkKvHistory([]).result, 'ok');
    const h = [op('a', put('x', '1'), 0, 1, 'ok'), op('b', get('x'), 2, 3, '1'), op('a', put('x', '2'), 4, 5, 'ok'), op('b', get('x'), 6, 7, '2')];
    assert.equal(checkKvHistory(h).result, 'ok');
  });

  it('accepts a read concurrent with a write returning either value', () => {
    for (const seen of [null, '1']) {
      const h = [op('a', put('x', '1'), 0, 10, 'ok'), op('b', get('x'), 2, 5, seen)];
      assert.equal(checkKvHistory(h).result, 'ok', String(seen));
    }
  });

  it('accepts concurrent writes ordered by a later read', () => {
    const h = [
      op('a', put('x', '1'), 0, 10, 'ok'),
      op('b', put('x', '2'), 1, 9, 'ok'),
      op('c', get('x'), 11, 12, '1'),
      op('c', get('x'), 13, 14, '1'),
    ];
    assert.equal(checkKvHistory(h).result, 'ok');
  });

  it('accepts compare-and-set successes and failures consistent with one order', () => {
    const h = [
      op('a', put('x', '0'), 0, 1, 'ok'),
      op('b', cas('x', '0', 'b'), 2, 6, true),
      op('c', cas('x', '0', 'c'), 3, 7, false),
      op('d', get('x'), 8, 9, 'b'),
    ];
    assert.equal(checkKvHistory(h).result, 'ok');
  });

  it('treats a write with an unknown outcome as maybe applied (at any point) or never', () => {
    const never = [op('a', put('x', '1'), 0, Infinity, undefined), op('b', get('x'), 5, 6, null)];
    const applied = [op('a', put('x', '1'), 0, Infinity, undefined), op('b', get('x'), 5, 6, '1')];
    assert.equal(checkKvHistory(never).result, 'ok');
    assert.equal(checkKvHistory(applied).result, 'ok');
  });

  it('checks keys independently', () => {
    const h = [op('a', put('x', '1'), 0, 1, 'ok'), op('b', put('y', '2'), 0, 1, 'ok'), op('c', get('x'), 2, 3, '1'), op('c', get('y'), 4, 5, '2')];
    assert.equal(checkKvHistory(h).result, 'ok');
  });
});

describe('linearizability checker: non-linearizable histories', () => {
  it('rejects a stale read after a completed write', () => {
    const h = [op('a', put('x', '1'), 0, 1, 'ok'), op('b', get('x'), 2, 3, null)];
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  it('rejects a read of a value never written', () => {
    assert.equal(checkKvHistory([op('a', get('x'), 0, 1, 'ghost')]).result, 'illegal');
  });

  it('rejects reads that see two writes in opposite orders', () => {
    const h = [
      op('a', put('x', '1'), 0, 10, 'ok'),
      op('b', put('x', '2'), 0, 10, 'ok'),
      op('c', get('x'), 11, 12, '1'),
      op('d', get('x'), 13, 14, '2'),
      op('c', get('x'), 15, 16, '1'),
    ];
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  it('rejects two successful compare-and-sets from the same expected value (lost update)', () => {
    const h = [op('a', put('x', '0'), 0, 1, 'ok'), op('b', cas('x', '0', 'b'), 2, 5, true), op('c', cas('x', '0', 'c'), 3, 6, true)];
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  it('rejects a write applied twice (a retried request re-applied after a later write)', () => {
    const h = [
      op('a', put('x', '1'), 0, 3, 'ok'),
      op('b', put('x', '2'), 4, 5, 'ok'),
      op('c', get('x'), 6, 7, '2'),
      op('c', get('x'), 8, 9, '1'),
    ];
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  it('finds the violation in one key among linearizable others', () => {
    const h = [op('a', put('y', '1'), 0, 1, 'ok'), op('a', put('x', '1'), 0, 1, 'ok'), op('b', get('y'), 2, 3, '1'), op('b', get('x'), 2, 3, null)];
    const r = checkKvHistory(h);
    assert.equal(r.result, 'illegal');
    assert.equal(r.failedPartition, 0);
  });

  it('reports unknown, never ok, when the search limit is hit', () => {
    const h: KvOperation[] = [];
    for (let i = 0; i < 12; i++) h.push(op(`c${i}`, put('x', String(i)), 0, 100, 'ok'));
    h.push(op('r', get('x'), 101, 102, 'nope'));
    assert.equal(checkKvHistory(h, 50).result, 'unknown');
    assert.equal(checkKvHistory(h).result, 'illegal');
  });
});

describe('linearizability checker: scale', () => {
  it('checks a long, highly concurrent linearizable history quickly', () => {
    // 5 clients, 400 operations on one key; each write happens in the middle of its interval
    // and reads return the value at their own midpoint.
    const h: KvOperation[] = [];
    const events: { t: number; v: string }[] = [];
    let t = 0;
    for (let i = 0; i < 400; i++) {
      const call = t;
      const ret = t + 7;
      const mid = call + 3.5 + (i % 5) * 0.01;
      if (i % 3 === 0) {
        const before = events.filter((e) => e.t < mid).pop();
        h.push(op(`c${i % 5}`, get('x'), call, ret, before?.v ?? null));
      } else {
        events.push({ t: mid, v: `v${i}` });
        h.push(op(`c${i % 5}`, put('x', `v${i}`), call, ret, 'ok'));
      }
      t += 2;
    }
    const start = performance.now();
    assert.equal(checkKvHistory(h).result, 'ok');
    assert.ok(performance.now() - start < 2000);
  });
});

describe('linearizability checker: counters beside registers (the nemesis model)', () => {
  const add = (key: string, delta: number): KvCounterInput => ({ kind: 'add', key, delta });
  const cget = (key: string): KvCounterInput => ({ kind: 'get', key });
  const cop = (client: string, input: KvCounterInput, call: number, ret: number, output: KvCounterOutput | undefined): KvCounterOperation => ({ client, input, call, ret, output });

  it('accepts concurrent adds whose sums fit one order, and an unknown add that may or may not have applied', () => {
    const h = [
      cop('a', add('c', 2), 0, 10, 4),
      cop('b', add('c', 2), 1, 9, 2),
      cop('c', add('c', 5), 2, Infinity, undefined),
      cop('d', cget('c'), 11, 12, 4),
      cop('d', cget('c'), 13, 14, 9),
    ];
    assert.equal(checkKvCounterHistory(h).result, 'ok');
  });

  it('rejects a lost add: a later read below the acknowledged sum', () => {
    const h = [cop('a', add('c', 3), 0, 1, 3), cop('b', add('c', 4), 2, 3, 7), cop('c', cget('c'), 4, 5, 3)];
    assert.equal(checkKvCounterHistory(h).result, 'illegal');
  });

  it('rejects an add applied twice (a retry executed again)', () => {
    const h = [cop('a', add('c', 1), 0, 1, 1), cop('c', cget('c'), 2, 3, 2)];
    assert.equal(checkKvCounterHistory(h).result, 'illegal');
  });

  it('keeps registers and counters apart per key and checks strings as before', () => {
    const h = [
      cop('a', { kind: 'put', key: 'r', value: '1' }, 0, 1, 'ok'),
      cop('b', add('c', 1), 0, 1, 1),
      cop('a', { kind: 'cas', key: 'r', expected: '1', value: '2' }, 2, 3, true),
      cop('b', cget('r'), 4, 5, '1'),
    ];
    assert.equal(checkKvCounterHistory(h).result, 'illegal');
    assert.equal(checkKvCounterHistory(h.slice(0, 3)).result, 'ok');
  });
});
