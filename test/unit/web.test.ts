// The web app's pure parts: the join parameters a tab reads from its URL (every mistake a
// person can make gets a JoinParamsError that names the field and says to run `npm start`),
// and the bounded ICO message log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base64urlEncode, crypto } from '../../src/crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam } from '../../src/ico/admission.ts';
import type { Envelope, IcoType } from '../../src/ico/types.ts';
import { JoinParamsError, MAX_RELAYS, parseJoinParams } from '../../web/join-params.ts';
import { MessageLog } from '../../web/message-log.ts';

const RELAY_ID = '12D3KooWEGrQFmxxSonuf5czHgpyLLCFRXscnHLPW7pidLxqeJtN';
const RELAY = `/ip4/127.0.0.1/tcp/9090/ws/p2p/${RELAY_ID}`;
const NOW = Date.parse('2026-11-24T12:00:00Z');
const clusterSigner = crypto.createSigner(new Uint8Array(32).fill(7));
const KEY = base64urlEncode(clusterSigner.publicKey);

function token(opts: { cluster?: string; peer?: string; expires?: number; signer?: typeof clusterSigner } = {}): string {
  const expires = opts.expires ?? NOW + 3_600_000;
  const issued = Math.min(NOW, expires - 1);
  return encodeJoinTokenParam(createJoinToken({ clusterSigner: opts.signer ?? clusterSigner, cluster: opts.cluster ?? 'devnet', peer: opts.peer ?? '*', role: 'browser', now: issued, ttlMs: expires - issued }));
}

function url(parts: { relay?: string[]; cluster?: string; key?: string; token?: string }): [string, string] {
  const q = new URLSearchParams();
  for (const r of parts.relay ?? [RELAY]) q.append('relay', r);
  if (parts.cluster !== '') q.set('cluster', parts.cluster ?? 'devnet');
  if (parts.key !== '') q.set('key', parts.key ?? KEY);
  return [`?${q.toString()}`, parts.token === '' ? '' : `#token=${parts.token ?? token()}`];
}

function rejects(parts: Parameters<typeof url>[0], field: JoinParamsError['field'], pattern: RegExp): void {
  const [search, hash] = url(parts);
  assert.throws(
    () => parseJoinParams(search, hash, NOW),
    (e: unknown) => {
      assert.ok(e instanceof JoinParamsError, String(e));
      assert.equal(e.code, 'JOIN_PARAMS');
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      assert.match(e.message, /npm start/, 'every error says how to get a good URL');
      return true;
    },
  );
}

test('a URL as the devnet prints it gives relays, their PeerIds, cluster, key and token', () => {
  const [search, hash] = url({});
  const p = parseJoinParams(search, hash, NOW);
  assert.deepEqual(p.relays, [RELAY]);
  assert.deepEqual(p.relayIds, [RELAY_ID]);
  assert.equal(p.cluster, 'devnet');
  assert.deepEqual(p.clusterPublicKey, clusterSigner.publicKey);
  assert.equal(p.joinToken.peer, '*');
  assert.equal(p.apiToken, null, 'no api= in the fragment: the API panels say so');
  assert.equal(parseJoinParams(search, `${hash}&api=${encodeURIComponent('tok/en+1')}`, NOW).apiToken, 'tok/en+1');
});

test('the relay parameter repeats, up to MAX_RELAYS', () => {
  const two = [RELAY, `/ip4/127.0.0.1/tcp/9190/ws/p2p/${RELAY_ID}`];
  const [search, hash] = url({ relay: two });
  assert.deepEqual(parseJoinParams(search, hash, NOW).relays, two);
  rejects({ relay: Array.from({ length: MAX_RELAYS + 1 }, () => RELAY) }, 'relay', /at most/);
});

test('missing parameters are all named at once', () => {
  const [search] = url({ cluster: '', key: '' });
  assert.throws(() => parseJoinParams(search, '', NOW), /lacks: cluster, key, #token/);
  assert.throws(() => parseJoinParams('', '', NOW), /lacks: relay, cluster, key, #token/);
  rejects({ token: '' }, 'token', /#token/);
});

test('a relay address that is not a multiaddr, or names no relay PeerId, is refused', () => {
  rejects({ relay: ['127.0.0.1:9090'] }, 'relay', /not a multiaddr/);
  rejects({ relay: ['/ip4/127.0.0.1/tcp/9090/ws'] }, 'relay', /\/p2p\//);
});

test('a cluster key that is not 32 base64url bytes is refused', () => {
  rejects({ key: 'abc' }, 'key', /32-byte/);
  rejects({ key: '!!!not-base64!!!' }, 'key', /32-byte/);
});

test('a token that is garbage, expired, for another cluster or not signed by the cluster key is refused', () => {
  rejects({ token: 'bm90IGpzb24' }, 'token', /cannot be read/);
  rejects({ token: token({ expires: NOW - 1 }) }, 'token', /expired/);
  rejects({ token: token({ cluster: 'other' }) }, 'token', /cluster 'other'/);
  rejects({ token: token({ signer: crypto.createSigner(new Uint8Array(32).fill(9)) }) }, 'token', /signature/);
});

function envelope(type: IcoType, seq: number): Envelope {
  return { v: '1.0', type, sender: 'A', seq, timestamp: new Date(NOW + seq).toISOString(), payload: {}, signature: '' };
}

test('the message log keeps the newest rows up to its limit and counts every message', () => {
  const log = new MessageLog(5);
  for (let i = 0; i < 12; i++) log.record(i % 2 === 0 ? 'in' : 'out', envelope('STATE_SYNC', i), 'B', NOW + i);
  const rows = log.entries(false);
  assert.deepEqual(
    rows.map((r) => r.seq),
    [11, 10, 9, 8, 7],
  );
  assert.deepEqual(log.totals(), [['STATE_SYNC', { in: 6, out: 6 }]]);
  assert.throws(() => new MessageLog(0), RangeError);
});

test('heartbeats never push other messages out of the log, and merge in arrival order when shown', () => {
  const log = new MessageLog(4);
  log.record('in', envelope('HELLO', 1), 'B', NOW);
  for (let i = 2; i < 50; i++) log.record('in', envelope('HEARTBEAT', i), 'B', NOW + i);
  log.record('in', envelope('STATE_SYNC', 50), 'B', NOW + 50);
  assert.deepEqual(
    log.entries(false).map((r) => r.type),
    ['STATE_SYNC', 'HELLO'],
  );
  assert.deepEqual(
    log.entries(true).map((r) => r.seq),
    [50, 49, 48, 47],
  );
  assert.deepEqual(Object.fromEntries(log.totals()), { HELLO: { in: 1, out: 0 }, HEARTBEAT: { in: 48, out: 0 }, STATE_SYNC: { in: 1, out: 0 } });
});
