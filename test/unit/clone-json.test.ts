// cloneJson (src/statemachine/clone.ts): a deep copy of plain JSON that shares no object with
// its source, keeps an own "__proto__" key as data, and hands anything else to structuredClone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cloneJson, MAX_CLONE_DEPTH } from '../../src/statemachine/clone.ts';
import { canonicalize } from '../../src/crypto/jcs.ts';

function objectsOf(v: unknown, out: Set<object> = new Set()): Set<object> {
  if (typeof v === 'object' && v !== null) {
    out.add(v);
    for (const x of Object.values(v)) objectsOf(x, out);
  }
  return out;
}

test('cloneJson: equal canonical form, no object shared with the source (random JSON)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const c = cloneJson(v);
      assert.equal(canonicalize(c), canonicalize(v));
      const source = objectsOf(v);
      for (const o of objectsOf(c)) assert.ok(!source.has(o), 'a copied object is shared with the source');
    }),
    { seed: 11, numRuns: 300 },
  );
});

test('cloneJson: an own "__proto__" key (as JSON.parse makes it) stays data, not a prototype', () => {
  const v = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>;
  const c = cloneJson(v);
  assert.equal(Object.getPrototypeOf(c), Object.prototype);
  assert.deepEqual(Object.keys(c), ['__proto__', 'a']);
  assert.equal(canonicalize(c), canonicalize(v));
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  // A null-prototype object becomes a plain one, as structuredClone makes it.
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { x: [1] });
  assert.deepStrictEqual(cloneJson(bare), structuredClone(bare));
  assert.equal(Object.getPrototypeOf(cloneJson(bare)), Object.prototype);
});

test('cloneJson: what is not plain JSON is copied by structuredClone (a Date stays a Date), deep nesting too', () => {
  const d = new Date(5);
  const c = cloneJson({ d });
  assert.ok(c.d instanceof Date && c.d !== d && c.d.getTime() === 5);
  let deep: unknown = 1;
  for (let i = 0; i < MAX_CLONE_DEPTH + 10; i++) deep = [deep];
  assert.deepEqual(cloneJson(deep), deep);
  assert.notEqual(cloneJson(deep), deep);
});
