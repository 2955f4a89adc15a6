// The lifecycle state machine driven message by message: HELLO both ways, version and
// cluster checks, admission by allowlist or join token, heartbeats, peer-down/up, GOODBYE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crypto } from '../../src/crypto/index.ts';
import { createJoinToken, decodeJoinTokenParam, encodeJoinTokenParam, type AdmissionPolicy } from '../../src/ico/admission.ts';
import { IcoSession, negotiateVersion, type SessionEvent, type SessionStep, type SessionOptions } from '../../src/ico/lifecycle.ts';
import { MalformedEnvelopeError } from '../../src/ico/errors.ts';
import { ICO_VERSION, type Envelope, type JoinToken, type PeerRole } from '../../src/ico/types.ts';
import { identity, type Identity } from './ico-fixtures.ts';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const a = await identity();
const b = await identity();
const clusterKey = crypto.createSigner(crypto.randomBytes(32));
const otherKey = crypto.createSigner(crypto.randomBytes(32));

function policy(allow: string[] = [], key: Uint8Array | undefined = clusterKey.publicKey): AdmissionPolicy {
  return { cluster: 'c1', allowlist: new Set(allow), ...(key ? { clusterPublicKey: key } : {}) };
}

function session(me: Identity, remote: Identity, extra: Partial<SessionOptions> = {}): IcoSession {
  return new IcoSession({
    local: { peerId: me.peerId, cluster: 'c1', roles: ['voter'], capabilities: ['ico/1'] },
    remotePeer: remote.peerId,
    admission: policy([remote.peerId]),
    heartbeatMs: 100,
    ...extra,
  });
}

/** Seals each outbound message as `from` would, so the receiver sees real envelopes. */
function deliver(from: Identity, step: SessionStep, to: IcoSession, now = NOW): SessionEvent[] {
  const events: SessionEvent[] = [];
  for (const out of step.out) {
    const { envelope } = from.sealer.seal(out.type, out.payload, now);
    events.push(...to.receive(envelope, now).events);
  }
  return events;
}

function handshake(sa: IcoSession, sb: IcoSession): { aEvents: SessionEvent[]; bEvents: SessionEvent[] } {
  const bEvents: SessionEvent[] = [];
  const aEvents: SessionEvent[] = [];
  const helloA = sa.start(NOW);
  for (const out of helloA.out) {
    const env = a.sealer.seal(out.type, out.payload, NOW).envelope;
    const stepB = sb.receive(env, NOW);
    bEvents.push(...stepB.events);
    aEvents.push(...deliver(b, stepB, sa));
  }
  return { aEvents, bEvents };
}

test('HELLO both ways establishes the session on each side', () => {
  const sa = session(a, b);
  const sb = session(b, a);
  const { aEvents, bEvents } = handshake(sa, sb);
  assert.equal(sa.state, 'established');
  assert.equal(sb.state, 'established');
  assert.equal(aEvents[0]?.kind, 'established');
  assert.equal(bEvents[0]?.kind, 'established');
  assert.equal(sa.agreedVersion, ICO_VERSION);
});

test('version negotiation: same major interoperates at the lower minor; another major does not', () => {
  assert.equal(negotiateVersion('1.3', '1.1'), '1.1');
  assert.equal(negotiateVersion('1.0', '2.0'), null);
  const sa = session(a, b, { local: { peerId: a.peerId, cluster: 'c1', roles: ['voter'], capabilities: [], version: '2.0' } });
  const sb = session(b, a);
  const { bEvents } = handshake(sa, sb);
  assert.equal(sb.state, 'rejected');
  const rejected = bEvents.find((e) => e.kind === 'rejected');
  assert.ok(rejected && rejected.kind === 'rejected' && rejected.error.code === 'ICO_VERSION_MISMATCH');
  // A, speaking 2.0, refuses B's 1.0 HELLO as well: neither side is established.
  assert.equal(sa.state, 'rejected');
});

test('an incompatible major gets GOODBYE version-mismatch', () => {
  const sb = session(b, a);
  const hello = a.sealer.seal('HELLO', { version: '9.0', cluster: 'c1', roles: ['voter'], capabilities: [], tree_head: null, join_token: null, heartbeat_ms: 100 }, NOW).envelope;
  const step = sb.receive(hello, NOW);
  const goodbye = step.out.find((o) => o.type === 'GOODBYE');
  assert.equal(goodbye?.payload['code'], 'version-mismatch');
});

test('a peer of another cluster is refused with cluster-mismatch', () => {
  const sa = session(a, b, { local: { peerId: a.peerId, cluster: 'other', roles: ['voter'], capabilities: [] } });
  const sb = session(b, a);
  const { bEvents } = handshake(sa, sb);
  assert.ok(bEvents.some((e) => e.kind === 'rejected' && e.error.code === 'ICO_CLUSTER_MISMATCH'));
});

test('a peer neither allowlisted nor holding a token is not admitted', () => {
  const sa = session(a, b);
  const sb = session(b, a, { admission: policy([]) });
  const { bEvents, aEvents } = handshake(sa, sb);
  assert.ok(bEvents.some((e) => e.kind === 'rejected' && e.error.code === 'ICO_NOT_ADMITTED'));
  assert.ok(aEvents.some((e) => e.kind === 'goodbye' && e.code === 'not-admitted'));
});

function token(peer: string, expires: number, key = clusterKey, cluster = 'c1', role: PeerRole = 'voter'): JoinToken {
  const issued = Math.min(NOW, expires - 1);
  return createJoinToken({ clusterSigner: key, cluster, peer, role, now: issued, ttlMs: expires - issued });
}

test('join tokens admit: for this peer, or wildcard; not expired, wrong key, other peer or cluster', () => {
  const cases: Array<[string, JoinToken, boolean]> = [
    ['for this peer', token(a.peerId, NOW + 60_000), true],
    ['wildcard', token('*', NOW + 60_000), true],
    ['expired', token(a.peerId, NOW - 1), false],
    ['signed by another key', token(a.peerId, NOW + 60_000, otherKey), false],
    ['for another peer', token(b.peerId, NOW + 60_000), false],
    ['for another cluster', token(a.peerId, NOW + 60_000, clusterKey, 'c2'), false],
    ['tampered', { ...token(a.peerId, NOW + 60_000), expires: new Date(NOW + 10 ** 9).toISOString() }, false],
  ];
  for (const [name, jt, ok] of cases) {
    const sa = session(a, b, { joinToken: jt });
    const sb = session(b, a, { admission: policy([]) });
    handshake(sa, sb);
    assert.equal(sb.state, ok ? 'established' : 'rejected', name);
  }
});

test('a join token grants one role: a HELLO claiming another is refused; the admitted peer shows the token role', () => {
  const asBrowser = token(a.peerId, NOW + 60_000, clusterKey, 'c1', 'browser');
  const sa = session(a, b, { joinToken: asBrowser });
  const sb = session(b, a, { admission: policy([]) });
  const { bEvents } = handshake(sa, sb);
  assert.equal(sb.state, 'rejected', 'a voter HELLO on a browser token');
  assert.ok(bEvents.some((e) => e.kind === 'rejected' && /grants the role 'browser', not 'voter'/.test(e.error.message)));
  const asVoter = session(a, b, { joinToken: token(a.peerId, NOW + 60_000) });
  const sb2 = session(b, a, { admission: policy([]) });
  handshake(asVoter, sb2);
  assert.equal(sb2.state, 'established');
  assert.deepEqual(sb2.remoteHello?.roles, ['voter']);
});

test('a session admitted by a join token ends when the token expires (GOODBYE token-expired); an allowlisted one does not', () => {
  const expires = NOW + 5_000;
  const sa = session(a, b, { joinToken: token(a.peerId, expires) });
  const sb = session(b, a, { admission: policy([]) });
  handshake(sa, sb);
  assert.equal(sb.state, 'established');
  assert.equal(sb.tick(expires - 1).events.some((e) => e.kind === 'rejected'), false, 'still valid a moment before');
  const step = sb.tick(expires);
  assert.equal(sb.state, 'rejected');
  assert.deepEqual(step.out.map((o) => [o.type, o.payload['code']]), [['GOODBYE', 'token-expired']]);
  assert.ok(step.events.some((e) => e.kind === 'rejected' && e.error.code === 'ICO_NOT_ADMITTED'));
  // The same token, but the peer is on the allowlist: its session outlives the token.
  const sb3 = session(b, a, { admission: policy([a.peerId]) });
  handshake(session(a, b, { joinToken: token(a.peerId, expires) }), sb3);
  sb3.tick(expires + 60_000);
  assert.equal(sb3.state, 'established');
});

test('join tokens survive the URL fragment encoding; garbage is a typed error', () => {
  const jt = token('*', NOW + 60_000);
  assert.deepEqual(decodeJoinTokenParam(encodeJoinTokenParam(jt)), jt);
  assert.throws(() => decodeJoinTokenParam('%%%'), MalformedEnvelopeError);
  assert.throws(() => decodeJoinTokenParam('e30'), MalformedEnvelopeError);
});

test('anything but HELLO before the handshake is a protocol violation', () => {
  const sb = session(b, a);
  const env = a.sealer.seal('STATE_SYNC', { x: 1 }, NOW).envelope;
  const step = sb.receive(env, NOW);
  assert.ok(step.events.some((e) => e.kind === 'rejected' && e.error.code === 'ICO_PROTOCOL_VIOLATION'));
});

test('malformed HELLO payload is a protocol violation', () => {
  const sb = session(b, a);
  const env = a.sealer.seal('HELLO', { version: '1.0' }, NOW).envelope;
  assert.ok(sb.receive(env, NOW).events.some((e) => e.kind === 'rejected' && e.error.code === 'ICO_PROTOCOL_VIOLATION'));
});

test('established sessions pass STATE_SYNC/CONSENSUS up as messages', () => {
  const sa = session(a, b);
  const sb = session(b, a);
  handshake(sa, sb);
  const env: Envelope = a.sealer.seal('CONSENSUS', { term: 1 }, NOW).envelope;
  const events = sb.receive(env, NOW).events;
  assert.deepEqual(events, [{ kind: 'message', envelope: env }]);
});

test('heartbeats are sent when due; silence for three intervals marks the peer down; traffic brings it up', () => {
  const sa = session(a, b);
  const sb = session(b, a);
  handshake(sa, sb);
  assert.deepEqual(sa.tick(NOW + 50).out, []);
  const beat = sa.tick(NOW + 100);
  assert.equal(beat.out[0]?.type, 'HEARTBEAT');
  // B hears nothing more from A.
  assert.deepEqual(sb.tick(NOW + 300).events, []);
  assert.deepEqual(sb.tick(NOW + 301).events, [{ kind: 'peer-down' }]);
  assert.deepEqual(sb.tick(NOW + 400).events, [], 'down is reported once');
  const hb = a.sealer.seal('HEARTBEAT', { beat: 2 }, NOW + 450).envelope;
  assert.deepEqual(sb.receive(hb, NOW + 450).events, [{ kind: 'peer-up' }]);
});

test('GOODBYE on graceful close, seen by the other side; closed sessions stay quiet', () => {
  const sa = session(a, b);
  const sb = session(b, a);
  handshake(sa, sb);
  const bye = sa.close('shutdown', 'node stopping');
  assert.equal(bye.out[0]?.type, 'GOODBYE');
  const events = deliver(a, bye, sb);
  assert.deepEqual(events, [{ kind: 'goodbye', code: 'shutdown', reason: 'node stopping' }]);
  assert.equal(sb.state, 'closed');
  assert.deepEqual(sa.tick(NOW + 10_000), { out: [], events: [] });
  assert.deepEqual(sa.close('shutdown', 'again').out, []);
});

test('a HEARTBEAT left over from a previous session is tolerated during the handshake', () => {
  const sb = session(b, a);
  sb.start(NOW);
  const hb = a.sealer.seal('HEARTBEAT', { beat: 9 }, NOW).envelope;
  assert.deepEqual(sb.receive(hb, NOW).events, []);
  assert.equal(sb.state, 'hello-sent');
});

test('peer-down waits for the slower of our heartbeat and the one the peer announced', () => {
  const sa = session(a, b, { heartbeatMs: 500 });
  const sb = session(b, a);
  handshake(sa, sb);
  assert.equal(sb.downAfterMs, 1500);
  assert.equal(sa.downAfterMs, 1500);
  assert.deepEqual(sb.tick(NOW + 1500).events, []);
  assert.deepEqual(sb.tick(NOW + 1501).events, [{ kind: 'peer-down' }]);
});
