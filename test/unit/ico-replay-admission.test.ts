// The replay window is consulted only after admission: an admitted sender's window cannot be
// evicted by a flood of envelopes from keys that were never admitted (anyone can make keys).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionReplay, MAX_PENDING_SENDERS, MAX_TRACKED_SENDERS, ReplayGuard } from '../../src/ico/replay.ts';

const FLOOD = 2 * MAX_TRACKED_SENDERS + 100;

describe('replay windows split by admission', () => {
  it('a flood of unadmitted senders does not reopen an admitted sender’s old sequence numbers', () => {
    const admitted = new Set(['alice']);
    const r = new AdmissionReplay((s) => admitted.has(s));
    for (let seq = 1; seq <= 10; seq++) assert.equal(r.guardFor('alice').accept('alice', seq), true);
    for (let i = 0; i < FLOOD; i++) r.guardFor(`mallory-${i}`).accept(`mallory-${i}`, 1);
    assert.equal(r.guardFor('alice').accept('alice', 5), false, 'seq 5 is still a replay');
    assert.equal(r.guardFor('alice').accept('alice', 11), true);
    assert.equal(r.pending.check('mallory-0', 1), true, 'the unadmitted churned among themselves (mallory-0 was evicted)');
  });

  it('one shared window, as before, loses the admitted sender to the same flood (the hole this closes)', () => {
    const g = new ReplayGuard();
    for (let seq = 1; seq <= 10; seq++) g.accept('alice', seq);
    for (let i = 0; i < FLOOD; i++) g.accept(`mallory-${i}`, 1);
    assert.equal(g.accept('alice', 5), true, 'evicted: the replay is accepted');
  });

  it('a peer’s handshake before admission goes through the small pending window, bounded on its own', () => {
    const admitted = new Set<string>();
    const r = new AdmissionReplay((s) => admitted.has(s));
    assert.equal(r.guardFor('bob'), r.pending);
    assert.equal(r.guardFor('bob').accept('bob', 1), true);
    admitted.add('bob');
    assert.equal(r.guardFor('bob'), r.admitted);
    assert.equal(r.guardFor('bob').accept('bob', 2), true);
    assert.equal(r.guardFor('bob').accept('bob', 2), false);
    assert.equal(r.pending.maxSenders, MAX_PENDING_SENDERS);
  });
});
