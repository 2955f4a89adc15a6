// Client certificates as real TLS clients present them (curl, node:https and node:http2, the
// stock Python gRPC client), with certificates made at test time: a relay started without
// --tls-ca asks for none (so a publicly issued client certificate is no credential), and with
// a CA a verified certificate is worth exactly what the keys file maps it to: its mapping's
// scopes, no scope when unmapped, nothing once its serial is revoked.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { addCertificateMapping, createApiKey } from '../../relay/api/keys-file.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { buildApi } from '../../relay/api/server.ts';
import { DEV_CLIENT_CN, generateDevCa, issueClientCertificate, type DevCaFiles } from '../../relay/api/tls.ts';
import { call, type ClientResponse } from '../harness/https-client.ts';
import { BIN, killAll, run, tempDir } from '../harness/processes.ts';
import { assertPythonGrpc, firstExecuteCode, runPython, writeDescriptors } from '../harness/python-grpc.ts';

const TOKEN = 'mtls-test-token-0123456789';

interface CertPair {
  cert: string;
  key: string;
}

let dir: string;
let cluster: DevCaFiles;
/** Plays a public CA: its client certificate is what any publicly issued client-auth certificate is. */
let publicCa: DevCaFiles;
let keysFile: string;
let descriptors: string;
let auth: KeyStoreAuthenticator;
let backend: EngineBackend;
let app: FastifyInstance;
let base: string;
let port: number;
const certs: Record<'reporting' | 'stranger' | 'batch' | 'ipBound', CertPair & { serial: string }> = {
  reporting: { cert: '', key: '', serial: '' },
  stranger: { cert: '', key: '', serial: '' },
  batch: { cert: '', key: '', serial: '' },
  ipBound: { cert: '', key: '', serial: '' },
};

function exec(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** curl over TLS with the cluster's server CA trusted; `-v` output lands in stderr. */
async function curl(url: string, opts: { cert?: CertPair; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string; verbose: string }> {
  const args = ['-sS', '-v', '--cacert', cluster.ca, '-o', '-', '-w', '\n%{http_code}'];
  if (opts.cert !== undefined) args.push('--cert', opts.cert.cert, '--key', opts.cert.key);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', opts.body);
  args.push(url);
  const r = await exec('curl', args);
  assert.equal(r.code, 0, `curl failed: ${r.stderr.slice(-500)}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut), verbose: r.stderr };
}

function errorCode(body: string): string {
  return (JSON.parse(body) as { error: { code: string } }).error.code;
}

function pemPair(p: CertPair): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(p.cert), key: readFileSync(p.key) };
}

async function issue(name: keyof typeof certs, commonName: string, san?: Parameters<typeof issueClientCertificate>[1]['san']): Promise<void> {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  const { serial } = await issueClientCertificate(join(dir, 'cluster'), { commonName, certPath: pair.cert, keyPath: pair.key, ...(san === undefined ? {} : { san }) });
  certs[name] = { ...pair, serial };
}

before(async () => {
  dir = tempDir('hypersync-mtls-');
  cluster = await generateDevCa(join(dir, 'cluster'));
  publicCa = await generateDevCa(join(dir, 'public'), { commonName: 'Public Root CA' });
  await issue('reporting', 'reporting', [{ type: 'dns', value: 'reporting.svc.example' }]);
  await issue('stranger', 'stranger');
  await issue('batch', 'batch-job');
  await issue('ipBound', 'edge', [{ type: 'ip', value: '10.1.2.3' }]);
  keysFile = join(dir, 'api-keys.json');
  await addCertificateMapping(keysFile, { name: 'reporting', match: 'dns:reporting.svc.example', scopes: ['read'] });
  await addCertificateMapping(keysFile, { name: 'batch', match: 'cn:batch-job', scopes: ['execute', 'read'] });
  await addCertificateMapping(keysFile, { name: 'edge', match: 'ip:10.1.2.3', scopes: ['read'] });
  descriptors = writeDescriptors(dir);
  auth = await KeyStoreAuthenticator.open({ keysFile, tokens: [{ name: 'ops', token: TOKEN, scopes: ['execute', 'read'] }] });
  const signer = crypto.createSigner(crypto.randomBytes(32));
  backend = new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
  app = await buildApi({ backend, auth, tls: { key: readFileSync(cluster.serverKey), cert: readFileSync(cluster.serverCert), ca: readFileSync(cluster.ca) } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  port = address.port;
  base = `https://127.0.0.1:${port}`;
});

after(async () => {
  await killAll();
  await app?.close();
  auth?.close();
  await backend?.close();
});

test('without --tls-ca the relay asks for no client certificate: a publicly issued one gets no scope (curl)', async () => {
  // A real relay process whose Node trusts the "public" CA, as Node trusts the public roots.
  const configDir = join(dir, 'relay-cluster');
  const init = await exec(process.execPath, [BIN, 'keys', 'cluster-init', '--out', configDir, '--cluster', 'mtls']);
  assert.equal(init.code, 0, init.stderr);
  // Even a mapping for the very CN the public certificate carries does not make it a credential.
  const relayKeys = join(dir, 'relay-keys.json');
  await addCertificateMapping(relayKeys, { name: 'devnet', match: `cn:${DEV_CLIENT_CN}`, scopes: ['execute', 'read'] });
  const { secret } = await createApiKey(relayKeys, 'ops', ['read']);
  const relay = run('relay', ['relay', '--cluster-config', join(configDir, 'cluster.json'), '--port', '0', '--http-port', '0', '--tls-cert', cluster.serverCert, '--tls-key', cluster.serverKey, '--keys-file', relayKeys, '--json-events'], { NODE_EXTRA_CA_CERTS: publicCa.ca });
  const ready = await relay.ready();
  const url = `${ready['http'] as string}/api/v1/tree-head`;
  const publicCert = { cert: publicCa.clientCert, key: publicCa.clientKey };
  const r = await curl(url, { cert: publicCert });
  assert.equal(r.status, 401, r.body);
  assert.equal(errorCode(r.body), 'UNAUTHENTICATED');
  assert.doesNotMatch(r.verbose, /Request CERT/, 'the server must not ask for a client certificate');
  // The relay does serve a caller with a credential it knows.
  const ok = await curl(url, { cert: publicCert, headers: { 'x-api-key': secret } });
  assert.equal(ok.status, 200, ok.body);
});

test('with a CA: a certificate mapped by a SAN gets exactly its mapping\'s scopes (curl)', async () => {
  const read = await curl(`${base}/api/v1/tree-head`, { cert: certs.reporting });
  assert.match(read.verbose, /Request CERT/, 'a server with a CA asks for a client certificate');
  assert.equal(read.status, 200, read.body);
  const exec = await curl(`${base}/api/v1/operators/execute`, { cert: certs.reporting, body: JSON.stringify({ operator_id: 'echo', inputs: {} }) });
  assert.equal(exec.status, 403, exec.body);
  assert.equal(errorCode(exec.body), 'PERMISSION_DENIED');
  // A mapping by IP SAN works the same way.
  assert.equal((await curl(`${base}/api/v1/tree-head`, { cert: certs.ipBound })).status, 200);
});

test('with a CA: a mapped certificate\'s principal is cert:<name> (node:https)', async () => {
  const before = backend.treeHead().size;
  const r = await call(`${base}/api/v1/operators/execute`, { ca: readFileSync(cluster.ca), ...pemPair(certs.batch), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operator_id: 'counter.add', inputs: { key: 'mtls', delta: 1 }, options: { idempotency_key: 'once' } }) });
  assert.equal(r.status, 200, r.text);
  assert.equal(backend.treeHead().size, before + 1);
  // The idempotency key is scoped to the principal `cert:batch`: a retry replays.
  const again = await call(`${base}/api/v1/operators/execute`, { ca: readFileSync(cluster.ca), ...pemPair(certs.batch), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operator_id: 'counter.add', inputs: { key: 'mtls', delta: 1 }, options: { idempotency_key: 'once' } }) });
  assert.equal(again.json<{ replayed: boolean }>().replayed, true);
});

test('with a CA: a certificate of the CA that no mapping names has no scope (403, node:https and grpcio)', async () => {
  const r: ClientResponse = await call(`${base}/api/v1/tree-head`, { ca: readFileSync(cluster.ca), ...pemPair(certs.stranger) });
  assert.equal(r.status, 403, r.text);
  const body = r.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, 'PERMISSION_DENIED');
  assert.match(body.error.message, /CN=stranger.*not mapped/);
  assertPythonGrpc();
  const py = await runPython({ port, ca: cluster.ca, descriptors }, ['--cert', certs.stranger.cert, '--key', certs.stranger.key, '--execute', 'echo', '{}']);
  assert.equal(firstExecuteCode(py), 'PERMISSION_DENIED');
});

test('with a CA: a certificate from another CA is no credential (401, curl and grpcio)', async () => {
  const r = await curl(`${base}/api/v1/tree-head`, { cert: { cert: publicCa.clientCert, key: publicCa.clientKey } });
  assert.equal(r.status, 401, r.body);
  assert.equal(errorCode(r.body), 'UNAUTHENTICATED');
  assertPythonGrpc();
  const py = await runPython({ port, ca: cluster.ca, descriptors }, ['--cert', publicCa.clientCert, '--key', publicCa.clientKey, '--execute', 'echo', '{}']);
  assert.equal(firstExecuteCode(py), 'UNAUTHENTICATED');
});

function h2Get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, ...headers });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

test('revoking a serial reaches the running server, even on a connection opened before (CLI, http2, curl, grpcio)', async () => {
  assertPythonGrpc();
  const ok = await runPython({ port, ca: cluster.ca, descriptors }, ['--cert', certs.batch.cert, '--key', certs.batch.key, '--execute', 'echo', '{}']);
  assert.equal(firstExecuteCode(ok), 'ok');
  const session = http2Connect(base, { ca: readFileSync(cluster.ca), ...pemPair(certs.batch) });
  try {
    assert.equal((await h2Get(session, '/api/v1/tree-head')).status, 200);
    const revoke = await exec(process.execPath, [BIN, 'keys', 'cert-revoke', '--keys-file', keysFile, '--cert', certs.batch.cert]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, new RegExp(`revoked certificate serial ${certs.batch.serial.toUpperCase().replace(/^0+/, '')}`));
    // The relay's watcher applies the change within about a second: ask until it has.
    const deadline = Date.now() + 10_000;
    let r = await h2Get(session, '/api/v1/tree-head');
    while (r.status === 200 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
      r = await h2Get(session, '/api/v1/tree-head');
    }
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /revoked/);
    // A revoked certificate refuses the request even next to a valid token.
    const withToken = await h2Get(session, '/api/v1/tree-head', { authorization: `Bearer ${TOKEN}` });
    assert.equal(withToken.status, 403, withToken.body);
  } finally {
    session.close();
  }
  const viaCurl = await curl(`${base}/api/v1/tree-head`, { cert: certs.batch });
  assert.equal(viaCurl.status, 403, viaCurl.body);
  const py = await runPython({ port, ca: cluster.ca, descriptors }, ['--cert', certs.batch.cert, '--key', certs.batch.key, '--execute', 'echo', '{}']);
  assert.equal(firstExecuteCode(py), 'PERMISSION_DENIED');
  // Other certificates of the CA are untouched.
  assert.equal((await curl(`${base}/api/v1/tree-head`, { cert: certs.reporting })).status, 200);
});
