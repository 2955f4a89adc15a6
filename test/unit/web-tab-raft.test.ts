// The pure edges of a Raft group of tabs (web/tab-raft.ts): form() arguments are checked once
// with typed errors; the group's transport wraps payloads with the group name and hands the
// runtime only its own group's Raft payloads. The group itself, with the browser timers, runs
// in real Chromium tabs (e2e/tab-raft.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope } from '../../src/ico/types.ts';
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
