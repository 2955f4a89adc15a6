// The relay API's credential rules without a server: token buckets at their limits, the keys
// file's certificate mappings and revoked serials, what a verified certificate resolves to,
// the per-source budget of failed authentications, and that `authenticate` never touches the
// file system (the keys file reaches it through the watcher).
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isPrincipal, type AuthFailure, type Principal, type VerifiedCertificate } from '../../relay/api/auth-types.ts';
import { KeyStoreAuthenticator, MAX_CACHED_DIGESTS, sourceKey } from '../../relay/api/auth.ts';
import {
  addCertificateMapping, canonicalIp, createApiKey, KeysFileError, normalizeSerial, parseCertificateMatch, parseKeysFile, readKeysFile, removeCertificateMapping, revokeApiKey,
  revokeCertificateSerial,
} from '../../relay/api/keys-file.ts';
import { TokenBuckets } from '../../relay/api/rate-limit.ts';
import { MAX_CERTIFICATE_SANS, parseSubjectAltName } from '../../relay/api/request-auth.ts';
import { tempDir } from '../harness/processes.ts';

const dir = tempDir('hypersync-auth-unit-');
after(() => rm(dir, { recursive: true, force: true }));

function cert(cn: string[], san: VerifiedCertificate['san'] = [], serial = '1A2B'): VerifiedCertificate {
  return { subjectCN: cn, san, serial };
}

function failure(r: Principal | AuthFailure): AuthFailure {
  assert.ok(!isPrincipal(r), `expected a failure, got principal ${isPrincipal(r) ? r.id : ''}`);
  return r;
}

function principal(r: Principal | AuthFailure): Principal {
  assert.ok(isPrincipal(r), `expected a principal, got ${isPrincipal(r) ? '' : `${r.code}: ${r.message}`}`);
  return r;
}

test('token buckets: the burst, then one per 1/rate seconds, with the wait as Retry-After', () => {
  const b = new TokenBuckets({ perSecond: 2, burst: 3, maxKeys: 10 });
  for (let i = 0; i < 3; i++) assert.deepEqual(b.take('a', 1000), { ok: true });
  assert.deepEqual(b.take('a', 1000), { ok: false, retryAfterSeconds: 1 });
  assert.deepEqual(b.check('a', 1000), { ok: false, retryAfterSeconds: 1 });
  assert.deepEqual(b.take('a', 1500), { ok: true }, 'half a second refills one token at 2/s');
  assert.equal(b.take('a', 1500).ok, false);
  // `check` neither takes nor creates.
  assert.deepEqual(b.check('fresh', 1500), { ok: true });
  assert.equal(b.size, 1);
  const slow = new TokenBuckets({ perSecond: 0.1, burst: 1, maxKeys: 10 });
  slow.take('x', 0);
  assert.deepEqual(slow.take('x', 0), { ok: false, retryAfterSeconds: 10 });
  assert.throws(() => new TokenBuckets({ perSecond: 0, burst: 1, maxKeys: 1 }), RangeError);
});

test(`token buckets: at most maxKeys buckets, the least recently used forgotten first`, () => {
  const b = new TokenBuckets({ perSecond: 1, burst: 1, maxKeys: 3 });
  for (const k of ['a', 'b', 'c']) b.take(k, 0);
  b.take('a', 0); // a is now the most recently used (and empty)
  b.take('d', 0); // evicts b, the least recently used
  assert.equal(b.size, 3);
  assert.equal(b.check('a', 0).ok, false, 'a was kept');
  assert.equal(b.check('b', 0).ok, true, 'b was forgotten: it comes back full');
  for (let i = 0; i < 1000; i++) b.take(`k${i}`, 0);
  assert.equal(b.size, 3);
});

test('source keys: IPv4 as is, IPv4-mapped IPv6 unwrapped, IPv6 by /64', () => {
  assert.equal(sourceKey('203.0.113.9'), '203.0.113.9');
  assert.equal(sourceKey('::ffff:203.0.113.9'), '203.0.113.9');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey(undefined), 'unknown');
});

test('serials and match values are normalized; garbage is a typed KEY_INVALID error', () => {
  assert.equal(normalizeSerial('00:0a:1B:ff'), 'A1BFF');
  assert.equal(normalizeSerial('0'), '0');
  for (const bad of ['', 'xyz', '1'.repeat(41), '12 34 zz']) {
    assert.throws(() => normalizeSerial(bad), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_INVALID', bad);
  }
  assert.deepEqual(parseCertificateMatch('cn:Billing Service'), { kind: 'cn', value: 'Billing Service' });
  assert.deepEqual(parseCertificateMatch('dns:API.Example.COM'), { kind: 'dns', value: 'api.example.com' });
  assert.deepEqual(parseCertificateMatch('ip:2001:DB8:0:0:0:0:0:1'), { kind: 'ip', value: '2001:db8::1' });
  assert.deepEqual(parseCertificateMatch('uri:spiffe://cluster/ns/a'), { kind: 'uri', value: 'spiffe://cluster/ns/a' });
  for (const bad of ['cn', 'cn:', 'subject:x', 'ip:999.1.1.1', 'ip:not-an-ip', `cn:${'x'.repeat(300)}`, 'cn:a\u0000b']) {
    assert.throws(() => parseCertificateMatch(bad), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_INVALID', bad);
  }
  assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
  assert.equal(canonicalIp('010.0.0.1'), null);
  assert.equal(canonicalIp('::FFFF:10.0.0.1'), '::ffff:a00:1');
});

test('subjectaltname text: kinds, quoted values with commas, garbage refused', () => {
  assert.deepEqual(parseSubjectAltName('DNS:a.example, IP Address:10.0.0.1, email:x@y.z, URI:spiffe://c/a, othername:<unsupported>'), [
    { kind: 'dns', value: 'a.example' },
    { kind: 'ip', value: '10.0.0.1' },
    { kind: 'email', value: 'x@y.z' },
    { kind: 'uri', value: 'spiffe://c/a' },
  ]);
  assert.deepEqual(parseSubjectAltName('DNS:"evil.example, DNS:admin.example"'), [{ kind: 'dns', value: 'evil.example, DNS:admin.example' }]);
  assert.deepEqual(parseSubjectAltName(undefined), []);
  assert.equal(parseSubjectAltName('DNS:"unterminated'), null);
  assert.equal(parseSubjectAltName('no-colon-here'), null);
  assert.equal(parseSubjectAltName(Array.from({ length: MAX_CERTIFICATE_SANS + 2 }, (_, i) => `DNS:h${i}`).join(', ')), null);
});

test('keys file: certificate mappings and revoked serials round-trip; bad entries are KEYS_FILE_INVALID', async () => {
  const path = join(dir, 'roundtrip.json');
  await addCertificateMapping(path, { name: 'billing', match: 'dns:Billing.Internal', scopes: ['execute'] });
  await assert.rejects(addCertificateMapping(path, { name: 'billing', match: 'cn:x', scopes: ['read'] }), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_INVALID');
  await assert.rejects(addCertificateMapping(path, { name: 'bad name!', match: 'cn:x', scopes: ['read'] }), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_INVALID');
  const first = await revokeCertificateSerial(path, '00:AB:cd');
  assert.equal(first.serial, 'ABCD');
  assert.deepEqual(await revokeCertificateSerial(path, 'abcd'), first, 'idempotent');
  const file = await readKeysFile(path);
  assert.deepEqual(file.certificates.map((c) => [c.name, c.match, c.scopes]), [['billing', 'dns:billing.internal', ['execute']]]);
  assert.deepEqual(file.revoked_serials.map((r) => r.serial), ['ABCD']);
  assert.equal((fs.statSync(path).mode & 0o777).toString(8), '600');
  await removeCertificateMapping(path, 'billing');
  await assert.rejects(removeCertificateMapping(path, 'billing'), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_NOT_FOUND');
  const bad: Array<[unknown, RegExp]> = [
    [{ keys: [], certificates: {} }, /certificates must be an array/],
    [{ keys: [], certificates: [{ name: 'a', match: 'serial:1', scopes: ['read'], created: '2026-01-01T00:00:00Z' }] }, /certificates\[0\]\.match/],
    [{ keys: [], certificates: [{ name: 'a', match: 'cn:a', scopes: ['admin'], created: '2026-01-01T00:00:00Z' }] }, /scopes/],
    [{ keys: [], certificates: [{ name: 'a', match: 'cn:a', scopes: ['read'], created: '2026-01-01T00:00:00Z' }, { name: 'a', match: 'cn:b', scopes: ['read'], created: '2026-01-01T00:00:00Z' }] }, /two certificate mappings/],
    [{ keys: [], revoked_serials: [{ serial: '0A', revoked: '2026-01-01T00:00:00Z' }] }, /without leading zeros/],
    [{ keys: [], revoked_serials: [{ serial: 'AB', revoked: 'yesterday' }] }, /revoked must be a timestamp/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => parseKeysFile(JSON.stringify(value), 'f.json'), (e: unknown) => e instanceof KeysFileError && e.code === 'KEYS_FILE_INVALID' && message.test(e.message), JSON.stringify(value));
  }
  // A file written before certificates existed still parses.
  assert.deepEqual(parseKeysFile('{"version":1,"keys":[]}', 'old.json'), { version: 1, keys: [], certificates: [], revoked_serials: [] });
});

test('a verified certificate is worth its mapping: CN, DNS and IP SANs; unmapped, several CNs or revoked: refused', async () => {
  const path = join(dir, 'certs.json');
  await addCertificateMapping(path, { name: 'reporting', match: 'cn:reporting', scopes: ['read'] });
  await addCertificateMapping(path, { name: 'api', match: 'dns:api.example', scopes: ['execute', 'read'] });
  await addCertificateMapping(path, { name: 'edge', match: 'ip:2001:db8::7', scopes: ['read'] });
  await revokeCertificateSerial(path, 'DEAD');
  const auth = await KeyStoreAuthenticator.open({ keysFile: path, tokens: [{ name: 'ops', token: 'ops-token-0123456789', scopes: ['execute', 'read'] }] });
  try {
    const reporting = principal(auth.authenticate({ certificate: cert(['reporting']) }));
    assert.equal(reporting.id, 'cert:reporting');
    assert.deepEqual([...reporting.scopes], ['read']);
    assert.equal(principal(auth.authenticate({ certificate: cert(['whatever'], [{ kind: 'dns', value: 'API.example' }]) })).id, 'cert:api');
    assert.equal(principal(auth.authenticate({ certificate: cert([], [{ kind: 'ip', value: '2001:0db8:0:0:0:0:0:7' }]) })).id, 'cert:edge');
    const unmapped = failure(auth.authenticate({ certificate: cert(['stranger']) }));
    assert.equal(unmapped.code, 'PERMISSION_DENIED');
    assert.match(unmapped.message, /not mapped/);
    assert.equal(failure(auth.authenticate({ certificate: cert(['reporting', 'admin']) })).code, 'PERMISSION_DENIED', 'two CNs match no CN mapping');
    // A revoked serial refuses the request even next to a valid token; the serial's case and leading zeros do not matter.
    const revoked = failure(auth.authenticate({ certificate: cert(['reporting'], [], '00dead'), authorization: 'Bearer ops-token-0123456789' }));
    assert.equal(revoked.code, 'PERMISSION_DENIED');
    assert.match(revoked.message, /revoked/);
    // Headers come first: a mapped certificate with a token is the token's principal.
    assert.equal(principal(auth.authenticate({ certificate: cert(['reporting']), authorization: 'Bearer ops-token-0123456789' })).id, 'token:ops');
  } finally {
    auth.close();
  }
});

test('failed authentications: a budget per source address, refused before the credentials are looked at', async () => {
  const auth = await KeyStoreAuthenticator.open({ tokens: [{ name: 'ops', token: 'ops-token-0123456789', scopes: ['read'] }], failedAuthPerSecond: 1, failedAuthBurst: 2 });
  try {
    const at = 10_000;
    assert.equal(failure(auth.authenticate({ authorization: 'Bearer guess-1', source: '198.51.100.7' }, at)).code, 'UNAUTHENTICATED');
    assert.equal(failure(auth.authenticate({ source: '198.51.100.7' }, at)).code, 'UNAUTHENTICATED');
    const limited = failure(auth.authenticate({ authorization: 'Bearer ops-token-0123456789', source: '198.51.100.7' }, at));
    assert.equal(limited.code, 'RATE_LIMITED');
    assert.equal(limited.retryAfterSeconds, 1);
    // Another address, and the same address's IPv4-mapped form for a different host, are separate budgets.
    assert.equal(principal(auth.authenticate({ authorization: 'Bearer ops-token-0123456789', source: '198.51.100.8' }, at)).id, 'token:ops');
    // Successes cost no failure budget; after a second the address may try again.
    assert.equal(principal(auth.authenticate({ authorization: 'Bearer ops-token-0123456789', source: '::ffff:198.51.100.7' }, at + 1000)).id, 'token:ops');
    // An IPv6 client cannot escape its budget by changing the low 64 bits.
    auth.authenticate({ source: '2001:db8:1:1::1' }, at);
    auth.authenticate({ source: '2001:db8:1:1::2' }, at);
    assert.equal(failure(auth.authenticate({ authorization: 'Bearer ops-token-0123456789', source: '2001:db8:1:1:ffff::9' }, at)).code, 'RATE_LIMITED');
  } finally {
    auth.close();
  }
});

test('authenticate does no file I/O: the watcher applies keys-file changes, and a broken file keeps the last good keys', async () => {
  const path = join(dir, 'watched.json');
  const reader = await createApiKey(path, 'reader', ['read']);
  const auth = await KeyStoreAuthenticator.open({ keysFile: path });
  const patched = ['readFileSync', 'statSync', 'openSync', 'readSync', 'fstatSync', 'existsSync', 'accessSync'] as const;
  const saved = patched.map((name) => [name, fs[name]] as const);
  const syncCalls: string[] = [];
  const forbid = (): void => {
    for (const name of patched) {
      (fs as unknown as Record<string, unknown>)[name] = (...args: unknown[]): never => {
        syncCalls.push(`${name}(${String(args[0])})`);
        throw new Error(`synchronous fs.${name} on the request path`);
      };
    }
    syncBuiltinESMExports();
  };
  const restore = (): void => {
    for (const [name, fn] of saved) (fs as unknown as Record<string, unknown>)[name] = fn;
    syncBuiltinESMExports();
  };
  /** Authenticates (with sync fs forbidden) until `done` holds or 10 s pass; the watcher works meanwhile. */
  const until = async (creds: Parameters<KeyStoreAuthenticator['authenticate']>[0], done: (r: Principal | AuthFailure) => boolean): Promise<Principal | AuthFailure> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      forbid();
      let r: Principal | AuthFailure;
      try {
        r = auth.authenticate(creds);
      } finally {
        restore();
      }
      if (done(r) || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  try {
    assert.equal(principal(await until({ apiKey: reader.secret }, isPrincipal)).id, reader.entry.id);
    await revokeApiKey(path, reader.entry.id);
    assert.equal(failure(await until({ apiKey: reader.secret }, (r) => !isPrincipal(r))).code, 'PERMISSION_DENIED');
    const writer = await createApiKey(path, 'writer', ['execute']);
    assert.equal(principal(await until({ apiKey: writer.secret }, isPrincipal)).id, writer.entry.id);
    // A half-written file: the relay keeps serving with the keys it had.
    const kept = new Promise<void>((resolve) => {
      const off = auth.onReload((outcome) => {
        if (outcome !== 'kept') return;
        off();
        resolve();
      });
    });
    fs.writeFileSync(path, '{"version":1,"keys":[');
    await kept;
    forbid();
    try {
      assert.equal(principal(auth.authenticate({ apiKey: writer.secret })).id, writer.entry.id);
    } finally {
      restore();
    }
    assert.deepEqual(syncCalls, []);
  } finally {
    restore();
    auth.close();
  }
});

test('a broken keys file at start is an error the operator sees', async () => {
  const path = join(dir, 'broken.json');
  fs.writeFileSync(path, '{"keys": "nope"}');
  await assert.rejects(KeyStoreAuthenticator.open({ keysFile: path }), (e: unknown) => e instanceof KeysFileError && e.code === 'KEYS_FILE_INVALID');
  await assert.rejects(KeyStoreAuthenticator.open({ tokens: [{ name: 'short', token: 'short', scopes: ['read'] }] }), (e: unknown) => e instanceof KeysFileError && e.code === 'KEY_INVALID');
});

test(`digests of credentials that authenticated are cached, at most ${MAX_CACHED_DIGESTS}; a wrong secret is neither cached nor let in`, async () => {
  const tokens = Array.from({ length: MAX_CACHED_DIGESTS + 5 }, (_, i) => ({ name: `t${i}`, token: `bench-token-${String(i).padStart(8, '0')}`, scopes: ['read'] as const }));
  const auth = await KeyStoreAuthenticator.open({ tokens });
  try {
    assert.equal(failure(auth.authenticate({ authorization: 'Bearer not-a-token-0123456789' })).code, 'UNAUTHENTICATED');
    assert.equal(auth.cachedDigests, 0);
    assert.equal(principal(auth.authenticate({ authorization: `Bearer ${tokens[0]!.token}` })).id, 'token:t0');
    assert.equal(auth.cachedDigests, 1);
    // A cached credential still authenticates, and a near miss of it does not.
    assert.equal(principal(auth.authenticate({ authorization: `Bearer ${tokens[0]!.token}` })).id, 'token:t0');
    assert.equal(failure(auth.authenticate({ authorization: `Bearer ${tokens[0]!.token}x` })).code, 'UNAUTHENTICATED');
    for (const t of tokens) assert.equal(principal(auth.authenticate({ authorization: `Bearer ${t.token}` })).id, `token:${t.name}`);
    assert.equal(auth.cachedDigests, MAX_CACHED_DIGESTS);
    assert.equal(principal(auth.authenticate({ authorization: `Bearer ${tokens[0]!.token}` })).id, 'token:t0', 'an evicted credential is hashed again');
  } finally {
    auth.close();
  }
});
