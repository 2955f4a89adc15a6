// Admission and replay on their own: join tokens checked directly (every way one can be
// wrong), allowlist-only clusters, and the replay bitmap against a naive reference model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base64urlEncode, canonicalBytes, crypto } from '../../src/crypto/index.ts';
import { admit, createJoinToken, decodeJoinTokenParam, encodeJoinTokenParam, JoinTokenError, MAX_JOIN_TOKEN_LIFETIME_MS, verifyJoinToken, type AdmissionPolicy } from '../../src/ico/admission.ts';
import { MalformedEnvelopeError, NotAdmittedError } from '../../src/ico/errors.ts';
import { ReplayGuard } from '../../src/ico/replay.ts';
import type { JoinToken } from '../../src/ico/types.ts';
import { identity } from './ico-fixtures.ts';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const a = await identity();
const b = await identity();
const clusterKey = crypto.createSigner(crypto.randomBytes(32));
const otherKey = crypto.createSigner(crypto.randomBytes(32));
const policy: AdmissionPolicy = { cluster: 'c1', allowlist: new Set([b.peerId]), clusterPublicKey: clusterKey.publicKey };

function token(peer: string, expires: number, key = clusterKey, cluster = 'c1'): JoinToken {
  const issued = Math.min(NOW, expires - 1);
  return createJoinToken({ clusterSigner: key, cluster, peer, role: 'voter', now: issued, ttlMs: expires - issued });
}

test('allowlisted peers are admitted without a token; others need one', () => {
  assert.deepEqual(admit(policy, b.peerId, null, NOW), { ok: true, via: 'allowlist' });
  const r = admit(policy, a.peerId, null, NOW);
  assert.ok(!r.ok);
  assert.ok(r.error instanceof NotAdmittedError);
  assert.equal(r.error.code, 'ICO_NOT_ADMITTED');
});

test('verifyJoinToken: peer-bound and wildcard tokens verify; every defect is refused', () => {
  const good = token(a.peerId, NOW + 60_000);
  assert.equal(verifyJoinToken(good, clusterKey.publicKey, 'c1', a.peerId, NOW), true);
  assert.equal(verifyJoinToken(token('*', NOW + 60_000), clusterKey.publicKey, 'c1', a.peerId, NOW), true);
  const bad: Array<[string, unknown]> = [
    ['expired exactly now', token(a.peerId, NOW)],
    ['other peer', token(b.peerId, NOW + 60_000)],
    ['other cluster', token(a.peerId, NOW + 60_000, clusterKey, 'c2')],
    ['other key', token(a.peerId, NOW + 60_000, otherKey)],
    ['peer swapped to wildcard', { ...good, peer: '*' }],
    ['extra field', { ...good, extra: 1 }],
    ['missing signature', { cluster: 'c1', peer: a.peerId, expires: good.expires }],
    ['short signature', { ...good, signature: 'AAAA' }],
    ['bad date', { ...good, expires: 'tomorrow' }],
    ['not an object', 'token'],
    ['array', [good]],
    ['null', null],
  ];
  for (const [name, t] of bad) {
    assert.equal(verifyJoinToken(t, clusterKey.publicKey, 'c1', a.peerId, NOW), false, name);
    const r = admit(policy, a.peerId, t, NOW);
    assert.ok(!r.ok, name);
    assert.equal(r.error.code, 'ICO_NOT_ADMITTED', name);
  }
});

test('a cluster without a public key admits by allowlist only', () => {
  const allowOnly: AdmissionPolicy = { cluster: 'c1', allowlist: new Set() };
  const r = admit(allowOnly, a.peerId, token('*', NOW + 60_000), NOW);
  assert.ok(!r.ok);
  assert.match(r.error.message, /allowlist only/);
});

test('join token URL parameters: round trip; bad base64url, JSON or shape and oversize are typed errors', () => {
  const t = token(a.peerId, NOW + 60_000);
  assert.deepEqual(decodeJoinTokenParam(encodeJoinTokenParam(t)), t);
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  for (const param of ['!!', enc([1]), enc({ ...t, signature: 1 }), Buffer.from('not json').toString('base64url'), 'A'.repeat(5000)]) {
    assert.throws(() => decodeJoinTokenParam(param), MalformedEnvelopeError, param.slice(0, 20));
  }
});

test('property: the replay bitmap agrees with a naive set-based model', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 32, max: 200 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 600 })), { maxLength: 300 }),
      (width, ops) => {
        const guard = new ReplayGuard(width);
        const seen = new Map<number, Set<number>>();
        const highest = new Map<number, number>();
        for (const [who, seq] of ops) {
          const sender = `p${who}`;
          const s = seen.get(who) ?? new Set<number>();
          const h = highest.get(who);
          const expected = h === undefined || seq > h || (h - seq < width && !s.has(seq));
          assert.equal(guard.check(sender, seq), expected);
          assert.equal(guard.accept(sender, seq), expected, `${sender} seq ${seq} (highest ${h}, width ${width})`);
          if (expected) {
            s.add(seq);
            seen.set(who, s);
            highest.set(who, Math.max(h ?? seq, seq));
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('replay guard tracks a bounded number of senders, evicting the least recently active', () => {
  const guard = new ReplayGuard(64, 2);
  assert.ok(guard.accept('x', 10));
  assert.ok(guard.accept('y', 10));
  assert.ok(guard.accept('x', 11)); // x is now the most recent
  assert.ok(guard.accept('z', 10)); // evicts y
  assert.equal(guard.check('x', 10), false, 'x still remembered');
  assert.equal(guard.check('y', 10), true, 'y was forgotten');
  assert.throws(() => new ReplayGuard(8), RangeError);
});

test('join tokens carry a role, a revocable id and a bounded lifetime', () => {
  const t = createJoinToken({ clusterSigner: clusterKey, cluster: 'c1', peer: a.peerId, role: 'browser', now: NOW, ttlMs: 3_600_000 });
  const r = admit(policy, a.peerId, t, NOW);
  assert.ok(r.ok && r.via === 'token');
  assert.equal(r.role, 'browser');
  assert.equal(r.expiresAt, NOW + 3_600_000);
  assert.equal(r.tokenId, t.id);
  // Revoked by id.
  const revoked = admit({ ...policy, revokedTokens: new Set([t.id]) }, a.peerId, t, NOW);
  assert.ok(!revoked.ok && /revoked/.test(revoked.error.message));
  // The maximum lifetime: createJoinToken refuses to make a longer one, and a re-signed longer one is refused.
  assert.throws(() => createJoinToken({ clusterSigner: clusterKey, cluster: 'c1', peer: '*', role: 'voter', ttlMs: MAX_JOIN_TOKEN_LIFETIME_MS + 1 }), JoinTokenError);
  const body = { cluster: 'c1', peer: a.peerId, role: 'voter', id: 'abcdefgh12', issued: new Date(NOW - 1000).toISOString(), expires: new Date(NOW - 1000 + MAX_JOIN_TOKEN_LIFETIME_MS + 1).toISOString() };
  const long = { ...body, signature: base64urlEncode(clusterKey.sign(canonicalBytes(body))) };
  const refused = admit(policy, a.peerId, long, NOW);
  assert.ok(!refused.ok && /lives longer/.test(refused.error.message));
  // Issued in the future (beyond the skew allowance) and a role no token may grant.
  const future = { ...body, issued: new Date(NOW + 3_600_000).toISOString(), expires: new Date(NOW + 7_200_000).toISOString() };
  assert.ok(!admit(policy, a.peerId, { ...future, signature: base64urlEncode(clusterKey.sign(canonicalBytes(future))) }, NOW).ok);
  const relayRole = { ...body, role: 'relay', expires: new Date(NOW + 60_000).toISOString() };
  assert.ok(!admit(policy, a.peerId, { ...relayRole, signature: base64urlEncode(clusterKey.sign(canonicalBytes(relayRole))) }, NOW).ok);
  assert.throws(() => createJoinToken({ clusterSigner: clusterKey, cluster: 'c1', peer: '*', role: 'relay', ttlMs: 60_000 }), JoinTokenError);
  // Every signed field is covered: changing the role breaks the signature.
  assert.ok(!admit(policy, a.peerId, { ...t, role: 'voter' }, NOW).ok);
});
