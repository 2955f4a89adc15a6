// The CLI as a user meets it: --help everywhere, usage errors exit 2 with a hint, keys and
// join tokens round-trip, and bad files give clear errors instead of stack traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, tempDir } from '../harness/processes.ts';
import { decodeJoinTokenParam, joinTokenProblem } from '../../src/ico/admission.ts';
import { base64urlDecode } from '../../src/crypto/index.ts';

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('--help works for the command and every subcommand', () => {
  assert.match(cli('--help').out, /usage: hypersync <command>/);
  for (const sub of ['devnet', 'relay', 'node', 'keys']) {
    const r = cli(sub, '--help');
    assert.equal(r.code, 0, sub);
    assert.match(r.out, /usage: hypersync/, sub);
  }
});

test('usage errors exit 2 with a readable message', () => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['node', '--bogus'], /Unknown option '--bogus'/],
    [['node', '--data-dir', 'x'], /--relay is required/],
    [['node', '--relay', '/ip4/127.0.0.1/tcp/1/ws', '--data-dir', '/nonexistent-hs'], /--cluster-config is required \(no \/nonexistent-hs\/cluster\.json\)/],
    [['keys', 'gen'], /--out is required/],
    [['relay', '--port', 'abc', '--cluster-config', 'x'], /--port must be an integer/],
    [['keys', 'join-token', '--cluster-key', 'k', '--cluster', 'c', '--ttl', 'soon'], /invalid duration 'soon'/],
    [['relay', '--cluster-config', 'x'], /the API needs TLS: pass --tls-cert FILE --tls-key FILE/],
    [['relay', '--cluster-config', 'x', '--tls-cert', 'c'], /--tls-cert and --tls-key go together/],
    [['relay', '--cluster-config', 'x', '--insecure', '--consensus', 'paxos'], /--consensus paxos is not available/],
    [['keys', 'create', '--name', 'n'], /--keys-file is required/],
    [['keys', 'create', '--keys-file', 'k.json', '--name', 'n', '--scopes', 'admin'], /unknown scope 'admin'/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, pattern, args.join(' '));
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  }
});

test('keys: gen/show round-trip, cluster-init, and a join token that verifies', () => {
  const dir = tempDir();
  const gen = cli('keys', 'gen', '--out', join(dir, 'peer.key'));
  assert.equal(gen.code, 0);
  const peerId = gen.out.trim();
  assert.match(peerId, /^12D3KooW/);
  assert.equal(cli('keys', 'show', '--key', join(dir, 'peer.key')).out.trim(), peerId);
  const init = cli('keys', 'cluster-init', '--out', dir, '--cluster', 'demo', '--allow', peerId);
  assert.equal(init.code, 0, init.err);
  const config = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { cluster: string; clusterPublicKey: string; allowlist: string[] };
  assert.deepEqual(config.allowlist, [peerId]);
  const tok = cli('keys', 'join-token', '--cluster-key', join(dir, 'cluster.key'), '--cluster', 'demo', '--peer', peerId, '--ttl', '1h');
  assert.equal(tok.code, 0, tok.err);
  const token = decodeJoinTokenParam(tok.out.trim());
  const policy = { cluster: 'demo', allowlist: new Set<string>(), clusterPublicKey: base64urlDecode(config.clusterPublicKey) };
  assert.equal(joinTokenProblem(token, policy, peerId, Date.now()), null);
  assert.match(joinTokenProblem(token, policy, peerId, Date.now() + 2 * 3_600_000) ?? '', /expired/);
  // Without --cluster the id comes from the cluster.json beside the key; a wildcard by default.
  const wild = cli('keys', 'join-token', '--cluster-key', join(dir, 'cluster.key'));
  assert.equal(wild.code, 0, wild.err);
  const wildToken = decodeJoinTokenParam(wild.out.trim());
  assert.equal(wildToken.cluster, 'demo');
  assert.equal(wildToken.peer, '*');
  assert.equal(joinTokenProblem(wildToken, policy, peerId, Date.now()), null);
  const lone = tempDir();
  const bare = cli('keys', 'join-token', '--cluster-key', join(lone, 'cluster.key'));
  assert.equal(bare.code, 2);
  assert.match(bare.err, /--cluster is required/);
});

test('bad key and config files are clear errors (exit 1), not crashes', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'garbage.key'), 'not a key');
  const r = cli('keys', 'show', '--key', join(dir, 'garbage.key'));
  assert.equal(r.code, 1);
  assert.match(r.err, /KEY_FILE_INVALID: .*not a libp2p private key file/);
  writeFileSync(join(dir, 'cluster.json'), '{"cluster":"UPPER","clusterPublicKey":"x","allowlist":[]}');
  const n = cli('node', '--relay', '/ip4/127.0.0.1/tcp/1/ws', '--data-dir', dir, '--cluster-config', join(dir, 'cluster.json'));
  assert.equal(n.code, 1);
  assert.match(n.err, /CLUSTER_CONFIG_INVALID: .*'cluster' must match/);
  const missing = cli('keys', 'show', '--key', join(dir, 'nope.key'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /ENOENT|no such file/);
});

test('keys create/list/revoke: the secret is printed once, stored only as a hash, and revocation sticks', () => {
  const dir = tempDir();
  const file = join(dir, 'api-keys.json');
  const created = cli('keys', 'create', '--keys-file', file, '--name', 'ci bot', '--scopes', 'read');
  assert.equal(created.code, 0, created.err);
  const secret = created.out.trim();
  assert.match(secret, /^hsk_[a-z0-9]+_[A-Za-z0-9_-]{43}$/);
  assert.match(created.err, /shown only once/);
  const id = secret.split('_')[1]!;
  const text = readFileSync(file, 'utf8');
  assert.doesNotMatch(text, new RegExp(secret.slice(20)), 'the secret is not stored');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const json = cli('keys', 'create', '--keys-file', file, '--name', 'full', '--json');
  assert.equal(json.code, 0, json.err);
  assert.deepEqual(JSON.parse(json.out).scopes, ['execute', 'read']);

  const list = cli('keys', 'list', '--keys-file', file);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, new RegExp(`^${id}\tci bot\tread\t[^\t]+\t-$`, 'm'));
  assert.doesNotMatch(list.out, /hsk_/, 'list never prints secrets');

  const revoke = cli('keys', 'revoke', '--keys-file', file, '--id', id);
  assert.equal(revoke.code, 0, revoke.err);
  const rows = JSON.parse(cli('keys', 'list', '--keys-file', file, '--json').out) as Array<{ id: string; revoked: string | null }>;
  assert.equal(rows.length, 2);
  assert.match(rows.find((r) => r.id === id)?.revoked ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.equal(rows.find((r) => r.id !== id)?.revoked, null);

  const missing = cli('keys', 'revoke', '--keys-file', file, '--id', 'deadbeef00');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no key with id 'deadbeef00'/);
  writeFileSync(file, '{"keys": [{"id": 1}]}');
  const broken = cli('keys', 'list', '--keys-file', file);
  assert.equal(broken.code, 1);
  assert.match(broken.err, /KEYS_FILE_INVALID: .*keys\[0\]\.id is invalid/);
  assert.doesNotMatch(broken.err, /\n\s+at /);
});

test('keys cert-add / cert-list / cert-revoke / cert-remove map client certificates and refuse serials', async () => {
  const dir = tempDir();
  const file = join(dir, 'api-keys.json');
  const added = cli('keys', 'cert-add', '--keys-file', file, '--name', 'billing', '--match', 'dns:Billing.Internal', '--scopes', 'read');
  assert.equal(added.code, 0, added.err);
  assert.match(added.out, /dns:billing\.internal to cert:billing \(scopes read\)/);
  const again = cli('keys', 'cert-add', '--keys-file', file, '--name', 'billing', '--match', 'cn:x');
  assert.equal(again.code, 2);
  assert.match(again.err, /already maps a certificate named 'billing'/);
  for (const [args, message] of [
    [['--name', 'x', '--match', 'subject:x'], /certificate match 'subject:x' must be cn:<value>/],
    [['--name', 'x', '--match', 'ip:300.1.1.1'], /not an IP address/],
    [['--name', 'x', '--match', 'cn:x', '--scopes', 'admin'], /unknown scope 'admin'/],
  ] as const) {
    const r = cli('keys', 'cert-add', '--keys-file', file, ...args);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
  }
  // A serial from a PEM file: the CLI reads it with node's X509Certificate.
  const { generateDevCa } = await import('../../relay/api/tls.ts');
  const ca = await generateDevCa(join(dir, 'tls'));
  const { X509Certificate } = await import('node:crypto');
  const serial = new X509Certificate(readFileSync(ca.clientCert)).serialNumber.replace(/^0+/, '');
  const revoked = cli('keys', 'cert-revoke', '--keys-file', file, '--cert', ca.clientCert);
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, new RegExp(`revoked certificate serial ${serial} at `));
  assert.equal(cli('keys', 'cert-revoke', '--keys-file', file, '--serial', '0a:bc').code, 0);
  assert.equal(cli('keys', 'cert-revoke', '--keys-file', file).code, 2, 'one of --serial or --cert');
  assert.equal(cli('keys', 'cert-revoke', '--keys-file', file, '--serial', 'xyz').code, 2);
  const listed = JSON.parse(cli('keys', 'cert-list', '--keys-file', file, '--json').out) as { certificates: Array<{ name: string; match: string }>; revoked_serials: Array<{ serial: string }> };
  assert.deepEqual(listed.certificates.map((c) => [c.name, c.match]), [['billing', 'dns:billing.internal']]);
  assert.deepEqual(listed.revoked_serials.map((r) => r.serial), [serial, 'ABC']);
  assert.match(cli('keys', 'cert-list', '--keys-file', file).out, /^cert:billing\tdns:billing\.internal\tread\t/m);
  assert.equal(cli('keys', 'cert-remove', '--keys-file', file, '--name', 'billing').code, 0);
  const gone = cli('keys', 'cert-remove', '--keys-file', file, '--name', 'billing');
  assert.equal(gone.code, 2);
  assert.match(gone.err, /no certificate mapping named 'billing'/);
});
