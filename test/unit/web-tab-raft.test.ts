// The pure edges of a Raft group of tabs (web/tab-raft.ts): form() arguments are checked once
// with typed errors; the group's transport wraps payloads with the group name and hands the
// runtime only its own group's Raft payloads; the group's key-value replica. The group itself, with the browser timers, runs
// in real Chromium tabs (e2e/tab-raft.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Json } from '../../src/ico/types.ts';
import { encodeCommand } from '../../src/statemachine/command.ts';
import { TabReplica } from '../../web/tab-replica.ts';
import { groupTransport, MAX_GROUP_NAME_CHARS, MAX_TAB_GROUP_MEMBERS, TAB_RAFT_KIND, TabRaftError, validateForm, type TabPeerPort } from '../../web/tab-raft.ts';

const ME = '12D3KooWme';

function code(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TabRaftError, String(e));
    return e.code;
  }
  return 'no error';
}

test('form() arguments: a bad group name, duplicates, too many members or a list without this tab get TAB_RAFT_INVALID', () => {
  assert.equal(code(() => validateForm(ME, { group: 'tabs', members: [ME, 'b', 'c'] })), 'no error');
  assert.equal(code(() => validateForm(ME, { group: '', members: [ME] })), 'TAB_RAFT_INVALID');
  assert.equal(code(() => validateForm(ME, { group: 'a b', members: [ME] })), 'TAB_RAFT_INVALID');
  assert.equal(code(() => validateForm(ME, { group: 'x'.repeat(MAX_GROUP_NAME_CHARS), members: [ME] })), 'no error');
  assert.equal(code(() => validateForm(ME, { group: 'x'.repeat(MAX_GROUP_NAME_CHARS + 1), members: [ME] })), 'TAB_RAFT_INVALID');
  assert.equal(code(() => validateForm(ME, { group: 'tabs', members: [ME, ME] })), 'TAB_RAFT_INVALID');
  assert.equal(code(() => validateForm(ME, { group: 'tabs', members: ['a', 'b'] })), 'TAB_RAFT_INVALID');
  const most = [ME, ...Array.from({ length: MAX_TAB_GROUP_MEMBERS - 1 }, (_, i) => `p${i}`)];
  assert.equal(code(() => validateForm(ME, { group: 'tabs', members: most })), 'no error');
  assert.equal(code(() => validateForm(ME, { group: 'tabs', members: [...most, 'one-more'] })), 'TAB_RAFT_INVALID');
});

test("the group transport wraps payloads with the group's name and passes on only its own group's Raft payloads", async () => {
  const sent: Array<[string, unknown]> = [];
  let deliver: (e: Envelope) => void = () => undefined;
  const port: TabPeerPort = {
    send: async (to, payload) => {
      sent.push([to, payload]);
    },
    onEnvelope: (h) => {
      deliver = h;
      return () => undefined;
    },
  };
  const t = groupTransport('g1', port);
  await t.send('peer', { k: 'raft', msgs: [] });
  assert.deepEqual(sent, [['peer', { k: TAB_RAFT_KIND, g: 'g1', p: { k: 'raft', msgs: [] } }]]);
  const got: Array<[string, unknown]> = [];
  t.onMessage((from, p) => got.push([from, p]));
  const env = (type: Envelope['type'], payload: Envelope['payload']): Envelope => ({ v: 1, type, sender: 'A', seq: 1, timestamp: '2026-11-29T00:00:00Z', payload, signature: '' }) as unknown as Envelope;
  deliver(env('CONSENSUS', { k: TAB_RAFT_KIND, g: 'g1', p: { k: 'raft', msgs: [] } }));
  deliver(env('CONSENSUS', { k: TAB_RAFT_KIND, g: 'g2', p: { k: 'raft', msgs: [] } }));
  deliver(env('CONSENSUS', { k: 'raft', msgs: [] }));
  deliver(env('CONSENSUS', { k: TAB_RAFT_KIND, g: 'g1', p: [1] }));
  deliver(env('CONSENSUS', { k: TAB_RAFT_KIND, g: 'g1', p: null }));
  deliver(env('STATE_SYNC', { k: TAB_RAFT_KIND, g: 'g1', p: { k: 'raft', msgs: [] } }));
  assert.deepEqual(got, [['A', { k: 'raft', msgs: [] }]]);
});

test('the tab group replica: kv.put/kv.delete applied from encoded commands, kv.get reads, bad input is a typed result, equal states snapshot to equal bytes', async () => {
  const cmd = (operator_id: string, inputs: Json): Uint8Array => encodeCommand({ operator_id, inputs, timestamp: 1 });
  const a = new TabReplica();
  assert.deepEqual(a.apply(cmd('kv.put', { key: 'x', value: 1 })).result.ok, true);
  const again = a.apply(cmd('kv.put', { key: 'x', value: 2 })).result;
  assert.deepEqual(again.ok ? again.outputs : again, { ok: true, previous: 1 });
  const read = a.query('kv.get', { key: 'x' });
  assert.deepEqual(read.ok ? read.outputs : read, { found: true, value: 2 });
  const bad = a.apply(cmd('kv.put', { key: '', value: 1 })).result;
  assert.equal(bad.ok ? 'ok' : bad.code, 'INVALID_INPUT');
  const unknown = a.apply(cmd('counter.add', { key: 'x', delta: 1 })).result;
  assert.equal(unknown.ok ? 'ok' : unknown.code, 'UNKNOWN_OPERATOR');
  const garbage = a.apply(new Uint8Array([1, 2, 3])).result;
  assert.equal(garbage.ok ? 'ok' : garbage.code, 'INVALID_COMMAND');
  a.apply(cmd('kv.put', { key: 'y', value: { deep: [1] } }));
  const del = a.apply(cmd('kv.delete', { key: 'x' })).result;
  assert.deepEqual(del.ok ? del.outputs : del, { deleted: true });
  const b = new TabReplica();
  await b.restore(a.snapshot());
  assert.deepEqual(b.snapshot(), a.snapshot());
  const y = b.query('kv.get', { key: 'y' });
  assert.deepEqual(y.ok ? y.outputs : y, { found: true, value: { deep: [1] } });
  const x = b.query('kv.get', { key: 'x' });
  assert.deepEqual(x.ok ? x.outputs : x, { found: false });
});
