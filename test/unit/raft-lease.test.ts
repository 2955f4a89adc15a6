// Leader leases in the pure Raft core: a leader whose quorum answered a heartbeat within the
// lease answers reads from its commit index with no round of its own; past the lease, after a
// transfer began, or without a quorum it falls back to ReadIndex; a (re)started node keeps the
// vote guard a lease relies on. One shared hand-moved clock stands for every node's clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaderLease, leaseDurationMs, RaftInvariantError, RaftNode, type Message } from '../../src/consensus/raft/index.ts';
import { MemoryCluster } from '../../src/sim/harness.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';

const ELECTION_TICKS = 10;
const LEASE_MS = 300;

interface Clocked {
  c: MemoryCluster;
  clock: { now: number };
}

/** Three voters with leases; n1 is leader once every boot guard has lapsed. */
function leasedCluster(): Clocked {
  const clock = { now: 0 };
  const c = new MemoryCluster({ voters: ['n1', 'n2', 'n3'], preVote: true, checkQuorum: true, electionTicks: ELECTION_TICKS, heartbeatTicks: 1, lease: { now: () => clock.now, durationMs: LEASE_MS } });
  // The boot guard lasts one election timeout: tick the followers through it, then elect n1.
  for (let i = 0; i < ELECTION_TICKS; i++) for (const id of ['n2', 'n3']) c.node(id).tick();
  c.take();
  c.elect('n1');
  assert.equal(c.node('n1').currentRole(), 'leader');
  return { c, clock };
}

/** One heartbeat round from the leader, answered by everyone. */
function heartbeatRound(c: MemoryCluster): void {
  c.tick('n1');
  c.deliverAll();
}

/** n1 asks a read; the heartbeats it sends for it are taken (not delivered) and returned. */
function readRound(c: MemoryCluster, ctx: string): { heartbeats: Message[]; states: number } {
  const before = c.readStates.get('n1')?.length ?? 0;
  c.node('n1').readIndex(ctx);
  const heartbeats = c.take((m: Message) => m.type === 'heartbeat');
  return { heartbeats, states: (c.readStates.get('n1')?.length ?? 0) - before };
}

describe('raft: leader lease (thesis §6.4.1, etcd ReadOnlyLeaseBased with a drift bound)', () => {
  it('a leader inside its lease answers a read at once, with no heartbeat round', () => {
    const { c, clock } = leasedCluster();
    clock.now = 1_000;
    heartbeatRound(c);
    clock.now = 1_000 + LEASE_MS - 1;
    const r = readRound(c, 'in-lease');
    assert.equal(r.heartbeats.length, 0);
    assert.equal(r.states, 1);
    assert.equal(c.readStates.get('n1')?.at(-1)?.index, c.node('n1').status().commit);
  });

  it('once the lease ran out the read waits for a quorum to answer a new round', () => {
    const { c, clock } = leasedCluster();
    clock.now = 1_000;
    heartbeatRound(c);
    clock.now = 1_000 + LEASE_MS;
    const r = readRound(c, 'lapsed');
    assert.equal(r.heartbeats.length, 2);
    assert.equal(r.states, 0);
    for (const m of r.heartbeats) c.deliver(m);
    c.deliverAll();
    assert.equal(c.readStates.get('n1')?.at(-1)?.ctx, 'lapsed');
  });

  it('the lease counts from when the heartbeat was sent, not from when its answer came back', () => {
    const { c, clock } = leasedCluster();
    clock.now = 1_000;
    c.tick('n1');
    const hbs = c.take((m) => m.type === 'heartbeat');
    clock.now = 1_200;
    for (const m of hbs) c.deliver(m);
    c.deliverAll();
    clock.now = 1_000 + LEASE_MS;
    assert.equal(readRound(c, 'late-answer').states, 0);
  });

  it('answers from a minority do not make a lease', () => {
    const { c, clock } = leasedCluster();
    clock.now = 5_000;
    c.isolate('n2', 'n3');
    heartbeatRound(c);
    assert.equal(readRound(c, 'alone').states, 0);
  });

  it('a follower read is answered by the leader from its lease in one message each way', () => {
    const { c, clock } = leasedCluster();
    clock.now = 1_000;
    heartbeatRound(c);
    c.node('n3').readIndex('via-follower');
    const asked = c.take((m) => m.type === 'readIndex');
    assert.equal(asked.length, 1);
    c.deliver(asked[0] as Message);
    const sent = c.take();
    assert.deepEqual(
      sent.map((m) => m.type),
      ['readIndexResp'],
    );
    c.deliver(sent[0] as Message);
    assert.equal(c.readStates.get('n3')?.at(-1)?.ctx, 'via-follower');
  });

  it('after a leader transfer began, reads take a round again (the transferee campaigns past the guard)', () => {
    const { c, clock } = leasedCluster();
    clock.now = 1_000;
    heartbeatRound(c);
    c.node('n1').transferLeader('n2');
    c.take((m) => m.type === 'timeoutNow');
    assert.equal(readRound(c, 'transferring').states, 0);
  });

  it('a node that (re)starts ignores votes for its first election timeout (it may have fed a lease)', () => {
    const { c } = leasedCluster();
    const n3 = c.startNode('n3');
    const term = n3.currentTerm();
    // n2 campaigns (a transfer-free vote) right after n3's restart: n3 must not answer.
    n3.step({ type: 'vote', term: term + 1, from: 'n2', to: 'n3', preVote: false, lastIndex: 100, lastTerm: term + 1, transfer: false });
    c.processAll();
    assert.equal(c.take((m) => m.type === 'voteResp' && m.from === 'n3').length, 0);
    assert.equal(n3.currentTerm(), term);
    for (let i = 0; i < ELECTION_TICKS; i++) n3.tick();
    c.take();
    n3.step({ type: 'vote', term: term + 1, from: 'n2', to: 'n3', preVote: false, lastIndex: 100, lastTerm: term + 1, transfer: false });
    c.processAll();
    const answers = c.take((m) => m.type === 'voteResp' && m.from === 'n3');
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.type === 'voteResp' && answers[0].reject, false);
  });

  it('leases need CheckQuorum', () => {
    assert.throws(() => new RaftNode({ id: 'n1', random: new Xoshiro128(1), checkQuorum: false, lease: { now: () => 0, durationMs: 100 } }), RaftInvariantError);
  });
});

describe('raft: lease duration and bookkeeping', () => {
  it('the duration is the follower vote guard shrunk by the clock-rate bound', () => {
    // 8 election ticks of 50 ms: the guard lasts at least 7 ticks; a 1.5x faster clock leaves 233 ms.
    assert.equal(leaseDurationMs(8, 50, 1.5), 233);
    assert.equal(leaseDurationMs(8, 50, 1), 350);
    assert.throws(() => leaseDurationMs(8, 50, 0.9), RaftInvariantError);
  });

  it('an answer to a round older than the remembered ones extends nothing', () => {
    let now = 0;
    const lease = new LeaderLease({ now: () => now, durationMs: 100 });
    lease.sent(1);
    for (let seq = 2; seq <= 1_000; seq++) lease.sent(seq);
    now = 10;
    lease.acked('n2', 1);
    assert.equal(lease.held('n1', ['n1', 'n2', 'n3'], 2), false);
    lease.acked('n2', 1_000);
    assert.equal(lease.held('n1', ['n1', 'n2', 'n3'], 2), true);
  });
});
