// The replicated state machine: every built-in operator, schema rejections that name the
// failing path, exactly-once sessions and their bounded table, failures that change nothing,
// snapshots (round trip, determinism across replicas by a seeded property), the command codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256Digest, utf8Decode, utf8Encode } from '../../src/crypto/index.ts';
import type { Json } from '../../src/ico/types.ts';
import {
  BUILTIN_OPERATORS,
  builtinRegistry,
  decodeCommand,
  encodeCommand,
  MAX_COMMAND_BYTES,
  MAX_VALUE_BYTES,
  OperatorError,
  OperatorRegistry,
  SESSION_TTL_MS,
  StateMachine,
  StateMachineError,
  type ApplyResult,
  type Command,
} from '../../src/statemachine/index.ts';

const T0 = Date.parse('2026-11-24T12:00:00.000Z');
let clock = T0;
function cmd(operator_id: string, inputs: Json, session?: { client: string; key: string }): Command {
  clock += 1;
  return session === undefined ? { operator_id, inputs, timestamp: clock } : { operator_id, inputs, timestamp: clock, session };
}

function ok(r: ApplyResult): Json {
  assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
  return r.ok ? r.outputs : null;
}

function failure(r: ApplyResult): { code: string; message: string; path?: string } {
  assert.equal(r.ok, false, 'expected a failure');
  if (r.ok) throw new Error('unreachable');
  return r;
}

test('kv.put, kv.get, kv.delete: values round-trip, previous values and deletions are reported', () => {
  const m = new StateMachine();
  assert.deepEqual(ok(m.apply(cmd('kv.get', { key: 'a' }))), { found: false });
  assert.deepEqual(ok(m.apply(cmd('kv.put', { key: 'a', value: { x: [1, 'two'] } }))), { ok: true });
  assert.deepEqual(ok(m.apply(cmd('kv.put', { key: 'a', value: 7 }))), { ok: true, previous: { x: [1, 'two'] } });
  assert.deepEqual(ok(m.apply(cmd('kv.get', { key: 'a' }))), { found: true, value: 7 });
  assert.deepEqual(ok(m.apply(cmd('kv.delete', { key: 'a' }))), { deleted: true });
  assert.deepEqual(ok(m.apply(cmd('kv.delete', { key: 'a' }))), { deleted: false });
  assert.deepEqual(ok(m.apply(cmd('kv.get', { key: 'a' }))), { found: false });
  assert.equal(m.ordinal, 7);
});

test('kv.cas: null expects absence; a mismatch reports the current value and writes nothing', () => {
  const m = new StateMachine();
  assert.deepEqual(ok(m.apply(cmd('kv.cas', { key: 'k', expected: null, value: { v: 1 } }))), { ok: true });
  assert.deepEqual(ok(m.apply(cmd('kv.cas', { key: 'k', expected: null, value: 2 }))), { ok: false, current: { v: 1 } });
  // Key order does not matter: equality is over canonical JSON.
  assert.deepEqual(ok(m.apply(cmd('kv.cas', { key: 'k', expected: { v: 1 }, value: 'next' }))), { ok: true });
  assert.deepEqual(ok(m.apply(cmd('kv.cas', { key: 'k', expected: 'other', value: 'x' }))), { ok: false, current: 'next' });
  assert.deepEqual(ok(m.apply(cmd('kv.cas', { key: 'absent', expected: 'x', value: 'y' }))), { ok: false });
  assert.deepEqual(ok(m.query('kv.get', { key: 'k' })), { found: true, value: 'next' });
});

test('counter.add sums integers from 0; non-counters and overflow fail as OPERATOR_FAILED', () => {
  const m = new StateMachine();
  assert.deepEqual(ok(m.apply(cmd('counter.add', { key: 'c', delta: 5 }))), { value: 5 });
  assert.deepEqual(ok(m.apply(cmd('counter.add', { key: 'c', delta: -7 }))), { value: -2 });
  m.apply(cmd('kv.put', { key: 's', value: 'text' }));
  assert.match(failure(m.apply(cmd('counter.add', { key: 's', delta: 1 }))).message, /NOT_A_COUNTER/);
  m.apply(cmd('counter.add', { key: 'big', delta: Number.MAX_SAFE_INTEGER }));
  assert.match(failure(m.apply(cmd('counter.add', { key: 'big', delta: 1 }))).message, /COUNTER_OVERFLOW/);
  assert.equal(failure(m.apply(cmd('counter.add', { key: 'c', delta: 1.5 }))).code, 'INVALID_INPUT');
});

test('sha256 hashes UTF-8 text and strict base64; echo returns its inputs', () => {
  const m = new StateMachine();
  const abc = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  assert.deepEqual(ok(m.apply(cmd('sha256', { data: 'abc' }))), { digest: abc });
  assert.deepEqual(ok(m.apply(cmd('sha256', { data: 'abc', encoding: 'utf8' }))), { digest: abc });
  assert.deepEqual(ok(m.apply(cmd('sha256', { data: 'YWJj', encoding: 'base64' }))), { digest: abc });
  assert.deepEqual(ok(m.apply(cmd('sha256', { data: '/w==', encoding: 'base64' }))), { digest: sha256Digest(Uint8Array.of(255)) });
  assert.deepEqual(ok(m.apply(cmd('sha256', { data: '', encoding: 'base64' }))), { digest: sha256Digest(new Uint8Array()) });
  for (const bad of ['YWJ', 'YW=j', '_w==', '/x==', 'YWJj\n']) assert.match(failure(m.apply(cmd('sha256', { data: bad, encoding: 'base64' }))).message, /INVALID_BASE64/, bad);
  assert.equal(failure(m.apply(cmd('sha256', { data: 'a', encoding: 'hex' }))).path, '/inputs/encoding');
  const inputs = { any: { nested: [1, null, true] }, s: 'x' };
  assert.deepEqual(ok(m.apply(cmd('echo', inputs))), inputs);
});

test('every built-in has a description, readonly flag and schemas its outputs satisfy', () => {
  const registry = builtinRegistry();
  const ids = registry.list().map((o) => o.id);
  assert.deepEqual(ids, [...ids].sort());
  assert.deepEqual(new Set(ids), new Set(['kv.put', 'kv.get', 'kv.delete', 'kv.cas', 'counter.add', 'sha256', 'echo']));
  for (const info of registry.list()) {
    assert.ok(info.description.length > 10, info.id);
    if (info.id !== 'echo') assert.equal(info.input_schema['additionalProperties'], false, info.id);
  }
  assert.deepEqual(registry.list().filter((o) => o.readonly).map((o) => o.id), ['echo', 'kv.get', 'sha256']);
  const m = new StateMachine(registry);
  const samples: Array<[string, Json]> = [
    ['kv.put', { key: 'k', value: 1 }], ['kv.put', { key: 'k', value: 2 }], ['kv.get', { key: 'k' }], ['kv.get', { key: 'no' }],
    ['kv.cas', { key: 'k', expected: 2, value: 3 }], ['kv.cas', { key: 'k', expected: 9, value: 3 }], ['kv.delete', { key: 'k' }],
    ['counter.add', { key: 'n', delta: 3 }], ['sha256', { data: 'x' }], ['echo', { a: 1 }],
  ];
  for (const [id, inputs] of samples) assert.equal(registry.outputProblem(id, ok(m.apply(cmd(id, inputs)))), null, id);
  assert.equal(BUILTIN_OPERATORS.length, 7);
});

test('schema failures are INVALID_INPUT naming the JSON Pointer of the failing input', () => {
  const m = new StateMachine();
  const cases: Array<[string, Json, string, RegExp]> = [
    ['kv.put', { key: 1, value: 'v' }, '/inputs/key', /^inputs\/key must be string$/],
    ['kv.put', { value: 'v' }, '/inputs/key', /^inputs\/key is required$/],
    ['kv.put', { key: 'k', value: 'v', extra: 1 }, '/inputs/extra', /^inputs\/extra is not allowed$/],
    ['kv.put', { key: '', value: 'v' }, '/inputs/key', /^inputs\/key must NOT have fewer than 1 characters$/],
    ['kv.put', { key: 'k'.repeat(257), value: 'v' }, '/inputs/key', /^inputs\/key must NOT have more than 256 characters$/],
    ['kv.put', { key: 'k', value: null }, '/inputs/value', /^inputs\/value /],
    ['kv.put', { key: 'k', value: 'x'.repeat(MAX_VALUE_BYTES) }, '/inputs/value', /^inputs\/value must be at most 65536 bytes as canonical JSON$/],
    ['kv.put', [] as Json, '/inputs', /^inputs must be object$/],
    ['counter.add', { key: 'k', delta: '1' }, '/inputs/delta', /^inputs\/delta must be integer$/],
    ['kv.put', { 'a/b~c': 1, key: 'k', value: 1 }, '/inputs/a~1b~0c', /^inputs\/a~1b~0c is not allowed$/],
  ];
  for (const [id, inputs, path, message] of cases) {
    const f = failure(m.apply(cmd(id, inputs)));
    assert.equal(f.code, 'INVALID_INPUT', `${id} ${JSON.stringify(inputs).slice(0, 60)}`);
    assert.equal(f.path, path);
    assert.match(f.message, message);
  }
  // A value just inside the limit is accepted (the string's quotes count).
  ok(m.apply(cmd('kv.put', { key: 'k', value: 'x'.repeat(MAX_VALUE_BYTES - 2) })));
  assert.equal(m.ordinal, 1);
});

test('an unknown operator is UNKNOWN_OPERATOR and advances nothing', () => {
  const m = new StateMachine();
  const f = failure(m.apply(cmd('no.such', {})));
  assert.equal(f.code, 'UNKNOWN_OPERATOR');
  assert.equal(m.registry.validate('no.such', {})?.code, 'UNKNOWN_OPERATOR');
  // The JSON Pointer names the field at fault, never the empty (whole-document) pointer.
  assert.equal(m.registry.validate('no.such', {})?.path, '/operator_id');
  assert.equal(m.ordinal, 0);
});

test('the registry rejects duplicate ids, bad ids and schemas ajv strict mode refuses', () => {
  const r = builtinRegistry();
  const base = { description: 'd', readonly: true, input_schema: { type: 'object' }, output_schema: { type: 'object' }, run: (i: Json): Json => i };
  assert.throws(() => r.register({ ...base, id: 'echo' }), (e: unknown) => e instanceof StateMachineError && e.code === 'OPERATOR_EXISTS');
  assert.throws(() => r.register({ ...base, id: 'bad id' }), (e: unknown) => e instanceof StateMachineError && e.code === 'INVALID_OPERATOR');
  assert.throws(() => r.register({ ...base, id: 'x', input_schema: { type: 'object', unknownKeyword: 1 } }), (e: unknown) => e instanceof StateMachineError && e.code === 'INVALID_OPERATOR');
});

test('exactly once: the same session key applied twice executes once and replays the first result', () => {
  const m = new StateMachine();
  const session = { client: 'alice', key: 'req-1' };
  const first = m.apply(cmd('counter.add', { key: 'c', delta: 1 }, session));
  const again = m.apply(cmd('counter.add', { key: 'c', delta: 1 }, session));
  assert.ok(first.ok && again.ok);
  assert.equal(first.replayed, false);
  assert.equal(again.replayed, true);
  assert.equal(again.ordinal, first.ordinal);
  assert.equal(again.timestamp, first.timestamp);
  assert.deepEqual(again.outputs, first.outputs);
  assert.equal(m.ordinal, 1);
  // The same key from another client is another session.
  assert.deepEqual(ok(m.apply(cmd('counter.add', { key: 'c', delta: 1 }, { client: 'bob', key: 'req-1' }))), { value: 2 });
  assert.equal(m.ordinal, 2);
});

test('a domain failure leaves state, ordinal and sessions unchanged, and a retry may then succeed', () => {
  const registry = builtinRegistry();
  registry.register({
    id: 'test.put-then-fail',
    description: 'writes, then fails (tests rollback)',
    readonly: false,
    input_schema: { type: 'object', properties: { fail: { type: 'boolean' } }, required: ['fail'], additionalProperties: false },
    output_schema: { type: 'object' },
    run(inputs, ctx) {
      ctx.kv.set('a', 'written');
      ctx.kv.delete('b');
      if ((inputs as { fail: boolean }).fail) throw new OperatorError('NOPE', 'asked to fail');
      return {};
    },
  });
  const m = new StateMachine(registry);
  ok(m.apply(cmd('kv.put', { key: 'b', value: 'kept' })));
  const before = m.snapshot();
  const f = failure(m.apply(cmd('test.put-then-fail', { fail: true }, { client: 'c', key: 'k' })));
  assert.equal(f.code, 'OPERATOR_FAILED');
  assert.match(f.message, /NOPE: asked to fail/);
  assert.deepEqual(m.snapshot(), before);
  // The failed attempt did not claim the session key.
  const retry = m.apply(cmd('test.put-then-fail', { fail: false }, { client: 'c', key: 'k' }));
  assert.ok(retry.ok && !retry.replayed && retry.ordinal === 1);
  assert.deepEqual(ok(m.query('kv.get', { key: 'a' })), { found: true, value: 'written' });
});

test('query serves readonly operators without a trace; writers are refused', () => {
  const m = new StateMachine();
  ok(m.apply(cmd('kv.put', { key: 'k', value: 1 })));
  const before = m.snapshot();
  const r = m.query('kv.get', { key: 'k' });
  assert.ok(r.ok);
  assert.equal(r.ordinal, -1);
  assert.equal(r.replayed, false);
  assert.deepEqual(r.outputs, { found: true, value: 1 });
  assert.equal(failure(m.query('kv.put', { key: 'k', value: 2 })).code, 'INVALID_COMMAND');
  assert.equal(failure(m.query('kv.get', { key: 5 })).code, 'INVALID_INPUT');
  assert.deepEqual(m.snapshot(), before);
});

test('outputs and stored values are copies: mutating them cannot change the state', () => {
  const m = new StateMachine();
  const inputs = { key: 'k', value: { list: [1] } };
  ok(m.apply(cmd('kv.put', inputs)));
  inputs.value.list.push(2);
  const got = ok(m.apply(cmd('kv.get', { key: 'k' }))) as { value: { list: number[] } };
  got.value.list.push(3);
  assert.deepEqual(ok(m.query('kv.get', { key: 'k' })), { found: true, value: { list: [1] } });
});

test('a session keeps its own copy of the outputs: mutating the first answer leaves the replay and the state alone', () => {
  const m = new StateMachine();
  ok(m.apply(cmd('kv.put', { key: 'k', value: { list: [1] } })));
  const session = { client: 'c', key: 'get-1' };
  const first = ok(m.apply(cmd('kv.get', { key: 'k' }, session))) as { value: { list: number[] } };
  first.value.list.push(2);
  const replay = m.apply(cmd('kv.get', { key: 'k' }, session));
  assert.ok(replay.ok && replay.replayed);
  assert.deepEqual(replay.outputs, { found: true, value: { list: [1] } });
  (replay.outputs as { value: { list: number[] } }).value.list.push(3);
  assert.deepEqual(ok(m.apply(cmd('kv.get', { key: 'k' }, session))), { found: true, value: { list: [1] } });
  assert.deepEqual(ok(m.query('kv.get', { key: 'k' })), { found: true, value: { list: [1] } });
});

test('snapshot/restore: equal bytes, and equal behaviour afterwards (including dedup)', () => {
  const m = new StateMachine();
  ok(m.apply(cmd('kv.put', { key: 'z', value: 1 }, { client: 'a', key: '1' })));
  ok(m.apply(cmd('kv.put', { key: 'a', value: [true] })));
  ok(m.apply(cmd('counter.add', { key: 'n', delta: 2 }, { client: 'b', key: '2' })));
  const bytes = m.snapshot();
  const r = StateMachine.restore(bytes);
  assert.deepEqual(r.snapshot(), bytes);
  assert.equal(r.ordinal, 3);
  const next: Command[] = [cmd('counter.add', { key: 'n', delta: 2 }, { client: 'b', key: '2' }), cmd('kv.delete', { key: 'z' }), cmd('kv.get', { key: 'a' })];
  for (const c of next) assert.deepEqual(r.apply(c), m.apply(c));
  assert.deepEqual(r.snapshot(), m.snapshot());
  // Keys are sorted in the bytes, whatever the insertion order.
  assert.ok(utf8Decode(bytes).indexOf('"a"') < utf8Decode(bytes).indexOf('"z"'));
});

test('restore rejects corrupt snapshots with SNAPSHOT_CORRUPT', () => {
  const m = new StateMachine();
  ok(m.apply(cmd('kv.put', { key: 'a', value: 1 }, { client: 'c', key: 'k' })));
  // Version 1, one JSON object (still read for older data dirs).
  const session = (JSON.parse(utf8Decode(m.snapshot()).split('\n')[2] as string) as Json[]).slice(1);
  const good: Record<string, Json> = { v: 1, ordinal: 1, kv: [['a', 1]], sessions: [session] };
  assert.deepEqual(StateMachine.restore(utf8Encode(JSON.stringify(good))).snapshot(), m.snapshot());
  const bad: unknown[] = [
    'not json', '[]', '{}',
    { ...good, v: 2 }, { ...good, ordinal: -1 }, { ...good, extra: 1 },
    { ...good, kv: [['b', 1], ['a', 1]] }, { ...good, kv: [['a', null]] }, { ...good, kv: [['a']] },
    { ...good, sessions: [['c', 'k', 5, 0, {}]] }, { ...good, ordinal: 2, sessions: [['c', 'k', 0, 0, {}], ['c', 'k', 1, 0, {}]] },
    { ...good, sessions: [['c\u0000x', 'k', 0, 0, {}]] },
  ];
  for (const b of bad) {
    const bytes = typeof b === 'string' ? utf8Encode(b) : utf8Encode(JSON.stringify(b));
    assert.throws(() => StateMachine.restore(bytes), (e: unknown) => e instanceof StateMachineError && e.code === 'SNAPSHOT_CORRUPT', JSON.stringify(b).slice(0, 80));
  }
  assert.throws(() => StateMachine.restore(Uint8Array.of(0xff, 0xfe)), (e: unknown) => e instanceof StateMachineError && e.code === 'SNAPSHOT_CORRUPT');
});

test('snapshot lines: one record per line; a version-1 snapshot (one JSON object) still restores; corrupt lines are SNAPSHOT_CORRUPT', () => {
  const m = new StateMachine();
  ok(m.apply(cmd('kv.put', { key: 'b', value: 'x\ny' }, { client: 'c', key: 'k' })));
  ok(m.apply(cmd('kv.put', { key: 'a', value: 2 })));
  const lines = utf8Decode(m.snapshot()).split('\n');
  assert.deepEqual(lines.slice(0, 3), ['{"kv":2,"ordinal":2,"sessions":1,"v":2}', '["a",2]', '["b","x\\ny"]']);
  assert.match(lines[3] as string, /^\["key","c","k",0,\d+,\{"ok":true\}\]$/);
  assert.equal(lines[4], '');
  const v1 = utf8Encode(JSON.stringify({ v: 1, ordinal: 2, kv: [['a', 2], ['b', 'x\ny']], sessions: [(JSON.parse(lines[3] as string) as Json[]).slice(1)] }));
  assert.deepEqual(StateMachine.restore(v1).snapshot(), m.snapshot());
  const bad = [
    lines.slice(0, 3).join('\n') + '\n', // fewer records than counted
    lines.join('\n') + '["z",1]\n', // more
    lines.join('\n').slice(0, -1), // the last record unterminated
    [lines[0], lines[2], lines[1], lines[3], ''].join('\n'), // keys out of order
    ['{"kv":2,"ordinal":2,"sessions":1,"v":3}', ...lines.slice(1)].join('\n'),
    ['{"kv":-1,"ordinal":2,"sessions":1,"v":2}', ...lines.slice(1)].join('\n'),
    [lines[0], '["a",null]', ...lines.slice(2)].join('\n'),
    [lines[0], lines[1], lines[2], (lines[3] as string).replace('"key"', '"other"'), ''].join('\n'),
    [lines[0], lines[1], lines[2], '["key","c","k",5,0,{}]', ''].join('\n'),
  ];
  for (const b of bad) assert.throws(() => StateMachine.restore(utf8Encode(b)), (e: unknown) => e instanceof StateMachineError && e.code === 'SNAPSHOT_CORRUPT', b.slice(0, 120));
});

test('a keyed session is kept for SESSION_TTL_MS of entry time (leader-stamped, no local clock), then forgotten', () => {
  const m = new StateMachine();
  const at = (t: number, key: string, session?: { client: string; key: string; retry?: true }): Command => ({ operator_id: 'counter.add', inputs: { key, delta: 1 }, timestamp: t, ...(session !== undefined ? { session } : {}) });
  ok(m.apply(at(T0, 'c', { client: 'x', key: 'k' })));
  // Just under the TTL later (by the entries' stamps), a retry still replays.
  const retry = m.apply(at(T0 + SESSION_TTL_MS - 1, 'c', { client: 'x', key: 'k' }));
  assert.ok(retry.ok && retry.replayed);
  // Any entry at or past the TTL forgets it, on every replica at the same entry.
  ok(m.apply(at(T0 + SESSION_TTL_MS, 'other')));
  assert.deepEqual(m.sessions, { keyed: 0, keyedBytes: 0, retry: 0 });
  const late = m.apply(at(T0 + SESSION_TTL_MS + 1, 'c', { client: 'x', key: 'k' }));
  assert.ok(late.ok && !late.replayed);
});

test('requests without a key (retry sessions) never evict a client key, however many there are', () => {
  const m = new StateMachine(undefined, { maxRetrySessions: 3 });
  ok(m.apply(cmd('counter.add', { key: 'c', delta: 1 }, { client: 'x', key: 'idem:mine' })));
  for (let i = 0; i < 1000; i++) ok(m.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'node', key: `req:${i}`, retry: true } }));
  assert.equal(m.sessions.keyed, 1);
  assert.equal(m.sessions.retry, 3);
  const mine = m.apply(cmd('counter.add', { key: 'c', delta: 1 }, { client: 'x', key: 'idem:mine' }));
  assert.ok(mine.ok && mine.replayed, 'the client key survives 1000 requests without a key');
  // The newest retry sessions still deduplicate; the oldest went.
  const newest = m.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'node', key: 'req:999', retry: true } });
  assert.ok(newest.ok && newest.replayed);
  const oldest = m.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'node', key: 'req:0', retry: true } });
  assert.ok(oldest.ok && !oldest.replayed);
  // A retry session and a keyed one with the same client and key are different sessions.
  const sameName = m.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'x', key: 'idem:mine', retry: true } });
  assert.ok(sameName.ok && !sameName.replayed);
});

test('keyed sessions are capped by bytes: beyond the cap the oldest go first; snapshots keep both tables', () => {
  const m = new StateMachine(undefined, { maxSessionBytes: 3 * 200 });
  const big = 'v'.repeat(100);
  for (let i = 0; i < 5; i++) ok(m.apply(cmd('echo', { v: big }, { client: 'x', key: `k${i}` })));
  // Each session costs its outputs (~110 bytes), client, key and 64 bytes: three fit.
  assert.equal(m.sessions.keyed, 3);
  assert.ok(m.sessions.keyedBytes <= 600 && m.sessions.keyedBytes > 400, String(m.sessions.keyedBytes));
  const k4 = m.apply(cmd('echo', { v: big }, { client: 'x', key: 'k4' }));
  assert.ok(k4.ok && k4.replayed);
  const k0 = m.apply(cmd('echo', { v: big }, { client: 'x', key: 'k0' }));
  assert.ok(k0.ok && !k0.replayed);
  ok(m.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'node', key: 'req:1', retry: true } }));
  const restored = StateMachine.restore(m.snapshot(), undefined, { maxSessionBytes: 3 * 200 });
  assert.deepEqual(restored.snapshot(), m.snapshot());
  assert.deepEqual(restored.sessions, m.sessions);
  const again = restored.apply({ ...cmd('counter.add', { key: 'c', delta: 1 }), session: { client: 'node', key: 'req:1', retry: true } });
  assert.ok(again.ok && again.replayed, 'a retry session survives the snapshot as a retry session');
});

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'é', 'z');
const valueArb: fc.Arbitrary<Json> = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.string({ maxLength: 4 }), fc.constant(true), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.constantFrom('x', 'y'), fc.integer()));
const commandArb: fc.Arbitrary<{ operator_id: string; inputs: Json; session: { client: string; key: string } | null }> = fc.record({
  operator_id: fc.constantFrom('kv.put', 'kv.get', 'kv.delete', 'kv.cas', 'counter.add', 'sha256', 'echo', 'nope'),
  inputs: fc.record({ key: keyArb, value: valueArb, expected: fc.option(valueArb), delta: fc.integer({ min: -3, max: 3 }), data: fc.string() }),
  session: fc.option(fc.record({ client: fc.constantFrom('p', 'q'), key: fc.constantFrom('1', '2', '3', '4', '5', '6') })),
}).map((c) => {
  const i = c.inputs as { key: string; value: Json; expected: Json | null; delta: number; data: string };
  const inputs: Json = ({
    'kv.put': { key: i.key, value: i.value },
    'kv.get': { key: i.key },
    'kv.delete': { key: i.key },
    'kv.cas': { key: i.key, expected: i.expected, value: i.value },
    'counter.add': { key: i.key, delta: i.delta },
    sha256: { data: i.data },
    echo: { v: i.value },
    nope: {},
  } as Record<string, Json>)[c.operator_id] ?? {};
  return { operator_id: c.operator_id, inputs, session: c.session };
});

test('property: two replicas fed the same commands reach byte-identical snapshots and outputs', () => {
  // Registries hold no state between commands; compiling schemas once keeps 200 runs fast.
  const registry = builtinRegistry();
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 100, max: 2000 }), (commands, maxRetrySessions, maxSessionBytes) => {
      const limits = { maxRetrySessions, maxSessionBytes, sessionTtlMs: 20 };
      const a = new StateMachine(registry, limits);
      const b = new StateMachine(registry, limits);
      commands.forEach((c, i) => {
        // Sessions of client q are retry sessions; the TTL (20 ms of entry time) expires some.
        const session = c.session === null ? undefined : c.session.client === 'q' ? { ...c.session, retry: true as const } : c.session;
        const command: Command = session === undefined ? { operator_id: c.operator_id, inputs: c.inputs, timestamp: T0 + i } : { operator_id: c.operator_id, inputs: c.inputs, timestamp: T0 + i, session };
        // Replica b receives the command through the codec, as from a log entry.
        const decoded = decodeCommand(encodeCommand(command));
        assert.ok(!(decoded instanceof StateMachineError));
        assert.deepEqual(b.apply(decoded), a.apply(command));
        if (i % 17 === 16) assert.deepEqual(StateMachine.restore(a.snapshot(), registry, limits).snapshot(), a.snapshot());
      });
      assert.deepEqual(a.snapshot(), b.snapshot());
    }),
    { seed: 20261124, numRuns: 200 },
  );
});

test('decodeCommand accepts what encodeCommand makes and rejects wrong shapes with INVALID_COMMAND', () => {
  const good: Command = { operator_id: 'kv.put', inputs: { key: 'k', value: 1 }, timestamp: T0, session: { client: 'c', key: 'k' } };
  assert.deepEqual(decodeCommand(encodeCommand(good)), good);
  const noSession: Command = { operator_id: 'echo', inputs: {}, timestamp: 0 };
  assert.deepEqual(decodeCommand(encodeCommand(noSession)), noSession);
  const bad: Array<string | Uint8Array> = [
    '', 'null', '[]', '"x"', '{', '{"operator_id":"kv.put","timestamp":1}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"extra":1}',
    '{"operator_id":"bad id","inputs":{},"timestamp":1}',
    '{"operator_id":7,"inputs":{},"timestamp":1}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":-1}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1.5}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":"1"}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"session":null}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"session":{"client":"c"}}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"session":{"client":"c","key":""}}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"session":{"client":"c\\u0000","key":"k"}}',
    '{"operator_id":"kv.put","inputs":{},"timestamp":1,"session":{"client":"c","key":"k","x":1}}',
    '{"operator_id":"kv.put","inputs":"\\ud800","timestamp":1}',
    '{"__proto__":{},"operator_id":"kv.put","inputs":{},"timestamp":1}',
    Uint8Array.of(0xc3, 0x28),
    new Uint8Array(MAX_COMMAND_BYTES + 1).fill(0x20),
  ];
  for (const b of bad) {
    const r = decodeCommand(typeof b === 'string' ? utf8Encode(b) : b);
    assert.ok(r instanceof StateMachineError && r.code === 'INVALID_COMMAND', typeof b === 'string' ? b : `bytes(${b.length})`);
  }
  assert.ok(decodeCommand('text' as unknown as Uint8Array) instanceof StateMachineError);
  assert.throws(() => encodeCommand({ ...good, timestamp: Number.NaN }), StateMachineError);
  // Inputs that cannot be canonicalized are refused as INVALID_COMMAND, whatever is wrong in them.
  let deep: Json = 1;
  for (let i = 0; i < 200; i++) deep = [deep];
  for (const inputs of [{ n: Number.NaN }, { s: '\ud800' }, deep, { u: undefined } as unknown as Json]) {
    assert.throws(() => encodeCommand({ ...good, inputs }), (e: unknown) => e instanceof StateMachineError && e.code === 'INVALID_COMMAND' && e.message === 'inputs must be plain JSON');
  }
});

test('inputs that cannot be hashed into a receipt (too deep) are INVALID_INPUT', () => {
  let deep: Json = 1;
  for (let i = 0; i < 200; i++) deep = { d: deep };
  const f = failure(new StateMachine().apply(cmd('echo', deep as Json)));
  assert.equal(f.code, 'INVALID_INPUT');
  assert.equal(f.path, '/inputs');
});

test('a registry is independent of others (operators registered on one are unknown to another)', () => {
  const a = new OperatorRegistry();
  assert.deepEqual(a.list(), []);
  assert.equal(new StateMachine(a).apply(cmd('echo', {})).ok, false);
});
