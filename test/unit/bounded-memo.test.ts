import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedMemo } from '../../src/util/bounded-memo.ts';

test('boundedMemo makes each value once, holds at most its limit, and forgets the oldest first', () => {
  const map = new Map<string, number>();
  const made: string[] = [];
  const make = (k: string): number => {
    made.push(k);
    return k.length;
  };
  assert.equal(boundedMemo(map, 3, 'a', make), 1);
  assert.equal(boundedMemo(map, 3, 'bb', make), 2);
  assert.equal(boundedMemo(map, 3, 'a', make), 1);
  assert.deepEqual(made, ['a', 'bb'], 'a hit makes nothing');
  boundedMemo(map, 3, 'ccc', make);
  boundedMemo(map, 3, 'dddd', make);
  assert.equal(map.size, 3);
  assert.deepEqual([...map.keys()], ['bb', 'ccc', 'dddd'], 'the oldest inserted went first');
  assert.equal(boundedMemo(map, 3, 'a', make), 1);
  assert.deepEqual(made, ['a', 'bb', 'ccc', 'dddd', 'a'], 'a forgotten key is made again');
  assert.equal(map.size, 3);
});
