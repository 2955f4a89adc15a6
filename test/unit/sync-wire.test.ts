// The STATE_SYNC decoder is the edge: every malformed or over-limit payload is a typed
// SYNC_MALFORMED error, never an exception of another kind, and limits hold at their value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../../src/ico/types.ts';
import { MalformedSyncMessageError } from '../../src/sync/errors.ts';
import { RangeReconciler } from '../../src/sync/reconcile.ts';
import { ItemSet } from '../../src/sync/itemset.ts';
import { decodeSyncMessage, encodeSyncMessage, MAX_BATCH_RECORDS, MAX_RANGE_PART_CHARS, MAX_SID_CHARS } from '../../src/sync/wire.ts';

function malformed(p: JsonObject, why: RegExp): void {
  assert.throws(() => decodeSyncMessage(p), (e: unknown) => e instanceof MalformedSyncMessageError && e.code === 'SYNC_MALFORMED' && why.test(e.message));
}

test('each message kind round-trips through its encoder and decoder', () => {
  const root = { n: 3, h: 'A'.repeat(22) };
  const msgs = [
    { k: 'open', sid: 's1', mode: 'auto', vec: { a: 1 }, root, d: new Uint8Array([0, 1, 2]), lanes: 2 },
    { k: 'vec', sid: 's1', vec: {} },
    { k: 'rng', sid: 's1', d: new Uint8Array([9, 9]), more: true },
    { k: 'ack', sid: 's1', n: 4 },
    { k: 'fin', sid: 's1', root, vec: { a: 2 } },
    { k: 'err', sid: 's1', code: 'SYNC_LIMIT', message: 'busy' },
  ] as const;
  for (const m of msgs) assert.deepEqual(decodeSyncMessage(JSON.parse(JSON.stringify(encodeSyncMessage(m))) as JsonObject), m);
});

test('limits hold at their value and one past it is refused', () => {
  const rec = { key: 'k' };
  assert.equal((decodeSyncMessage({ k: 'recs', sid: 's', n: 0, recs: Array(MAX_BATCH_RECORDS).fill(rec) }) as { recs: unknown[] }).recs.length, MAX_BATCH_RECORDS);
  malformed({ k: 'recs', sid: 's', n: 0, recs: Array(MAX_BATCH_RECORDS + 1).fill(rec) }, /1\.\.256/);
  malformed({ k: 'recs', sid: 's', n: 0, recs: [] }, /1\.\.256/);
  assert.equal(decodeSyncMessage({ k: 'ack', sid: 'x'.repeat(MAX_SID_CHARS), n: 1 }).k, 'ack');
  malformed({ k: 'ack', sid: 'x'.repeat(MAX_SID_CHARS + 1), n: 1 }, /sid/);
  assert.equal(decodeSyncMessage({ k: 'rng', sid: 's', d: 'A'.repeat(MAX_RANGE_PART_CHARS) }).k, 'rng');
  malformed({ k: 'rng', sid: 's', d: 'A'.repeat(MAX_RANGE_PART_CHARS + 4) }, /limit/);
});

test('garbage is a typed error: unknown kinds, versions, modes, numbers, base64', () => {
  malformed({ k: 'nope' }, /unknown sync message kind/);
  malformed({ k: 'open', v: 2, sid: 's', mode: 'auto', vec: {}, root: { n: 0, h: 'A'.repeat(22) }, d: '', lanes: 2 }, /version/);
  malformed({ k: 'open', v: 1, sid: 's', mode: 'fast', vec: {}, root: { n: 0, h: 'A'.repeat(22) }, d: '', lanes: 2 }, /mode/);
  malformed({ k: 'open', v: 1, sid: 's', mode: 'auto', vec: {}, root: { n: 0, h: 'A'.repeat(22) }, d: '', lanes: 5 }, /lanes/);
  malformed({ k: 'ack', sid: 's', n: -1 }, /non-negative/);
  malformed({ k: 'fin', sid: 's', root: { n: 1.5, h: 'A'.repeat(22) }, vec: {} }, /root/);
  malformed({ k: 'vec', sid: 's', vec: { a: 'x' } }, /vec/);
  malformed({ k: 'rng', sid: 's', d: 'a+b/' }, /base64url/);
});

test('a range message that does not match the open nodes is refused, not guessed at', () => {
  const r = new RangeReconciler(new ItemSet());
  r.initiate();
  // One open node (the root): two tags is a lie.
  assert.throws(() => r.receive(new Uint8Array([2, 0, 0, 0])), (e: unknown) => e instanceof MalformedSyncMessageError && /2 tags for 1 open nodes/.test(e.message));
  assert.throws(() => r.receive(new Uint8Array([1, 7, 0])), (e: unknown) => e instanceof MalformedSyncMessageError && /unknown range tag 7/.test(e.message));
  assert.throws(() => r.receive(new Uint8Array([1, 3, 2, 5])), (e: unknown) => e instanceof MalformedSyncMessageError && /truncated/.test(e.message));
  // SPLITK must skip 2..MAX_FANOUT_BITS levels, and not below the deepest level.
  assert.throws(() => r.receive(new Uint8Array([1, 5, 9, 0])), (e: unknown) => e instanceof MalformedSyncMessageError && /SPLITK of 9 levels at depth 0/.test(e.message));
  assert.throws(() => r.receive(new Uint8Array([1, 5, 1, 0])), (e: unknown) => e instanceof MalformedSyncMessageError && /SPLITK of 1 levels/.test(e.message));
  // SPLITK of 2 opens 4 nodes: a message with fingerprints for 2 is refused.
  assert.throws(() => r.receive(new Uint8Array([1, 5, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), (e: unknown) => e instanceof MalformedSyncMessageError && /2 fingerprints for 4 nodes/.test(e.message));
});
