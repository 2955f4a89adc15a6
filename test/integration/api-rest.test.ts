// The relay's REST API as an outside client meets it: a real HTTPS server (dev CA, HTTP/1.1 and
// HTTP/2 on one port) over the real backend and single-node engine on LevelDB, called with node:https/node:http2.
// Every bad-input case of issue 6 is its own test, and the server must keep serving after them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as http2Connect, constants as h2constants } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { crypto, hexDecode, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { verifyInclusion } from '../../src/receipts/merkle.ts';
import { LevelStore } from '../../src/store/level.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { addCertificateMapping, createApiKey, revokeApiKey } from '../../relay/api/keys-file.ts';
import { buildApi, DRAIN_TIMEOUT_MS } from '../../relay/api/server.ts';
import { DEV_CLIENT_CN, generateDevCa, type DevCaFiles } from '../../relay/api/tls.ts';
import { call, type ClientOptions, type ClientResponse } from '../harness/https-client.ts';
import { tempDir } from '../harness/processes.ts';

const TOKEN = 'test-token-0123456789abcdef';
const BODY_LIMIT = 64 * 1024;
const HEADERS_TIMEOUT_MS = 400;

interface Receipt {
  receipt_id: string;
  index: number;
  signer: string;
  operation: { operator_id: string };
}
interface ExecuteReply {
  status: string;
  outputs: unknown;
  receipt_id: string;
  execution_time_ms: number;
  receipt: Receipt;
  replayed: boolean;
}
interface ErrorReply {
  status: string;
  error: { code: string; message: string; path?: string };
}

let dir: string;
let tls: DevCaFiles;
let foreign: DevCaFiles;
let ca: Buffer;
let backend: EngineBackend;
let app: FastifyInstance;
let base: string;
let peerId: string;
let keysFile: string;
let auth: KeyStoreAuthenticator;
const secrets: { exec: string; reader: string; revoked: string } = { exec: '', reader: '', revoked: '' };

before(async () => {
  dir = tempDir('hypersync-api-');
  tls = await generateDevCa(join(dir, 'tls'));
  foreign = await generateDevCa(join(dir, 'foreign'), { commonName: 'Some other CA' });
  ca = readFileSync(tls.ca);
  keysFile = join(dir, 'api-keys.json');
  secrets.exec = (await createApiKey(keysFile, 'exec', ['execute', 'read'])).secret;
  secrets.reader = (await createApiKey(keysFile, 'reader', ['read'])).secret;
  const revoked = await createApiKey(keysFile, 'gone', ['execute', 'read']);
  secrets.revoked = revoked.secret;
  await revokeApiKey(keysFile, revoked.entry.id);
  await addCertificateMapping(keysFile, { name: 'devnet-client', match: `cn:${DEV_CLIENT_CN}`, scopes: ['execute', 'read'] });
  const signer = crypto.createSigner(crypto.randomBytes(32));
  peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  backend = new EngineBackend({ engine: await SingleEngine.open({ store: await LevelStore.open(join(dir, 'api')), signer, peerId }) });
  app = await buildApi({
    backend,
    auth: (auth = await KeyStoreAuthenticator.open({ keysFile, tokens: [{ name: 'test', token: TOKEN, scopes: ['execute', 'read'] }] })),
    tls: { key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert), ca },
    bodyLimit: BODY_LIMIT,
    timeouts: { headersMs: HEADERS_TIMEOUT_MS, requestMs: 10_000 },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  assert.ok(typeof addr === 'object' && addr !== null);
  base = `https://127.0.0.1:${addr.port}`;
});

after(async () => {
  await app?.close();
  auth?.close();
  await backend?.close();
});

const bearer = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

function get(path: string, opts: ClientOptions = {}): Promise<ClientResponse> {
  return call(`${base}${path}`, { ca, headers: bearer, ...opts });
}

function execute(body: unknown, headers: Record<string, string> = bearer): Promise<ClientResponse> {
  return call(`${base}/api/v1/operators/execute`, { ca, headers: { ...json, ...headers }, body: JSON.stringify(body) });
}

function assertError(r: ClientResponse, status: number, code: string): ErrorReply {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const body = r.json<ErrorReply>();
  assert.equal(body.status, 'error');
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.doesNotMatch(r.text, /\n\s+at |node_modules/, 'no stack trace');
  return body;
}

test('execute: kv.put answers the seed shape, with a signed receipt that the tree proves', async () => {
  const r = await execute({ operator_id: 'kv.put', inputs: { key: 'a', value: 1 }, options: {} });
  assert.equal(r.status, 200, r.text);
  const body = r.json<ExecuteReply>();
  assert.equal(body.status, 'success');
  assert.deepEqual(body.outputs, { ok: true });
  assert.match(body.receipt_id, /^receipt_[0-9a-f]{64}$/);
  assert.equal(typeof body.execution_time_ms, 'number');
  assert.equal(body.receipt.receipt_id, body.receipt_id);
  assert.equal(body.receipt.signer, peerId);
  assert.equal(body.replayed, false);

  const got = await get(`/api/v1/receipts/${body.receipt_id}`);
  assert.equal(got.status, 200, got.text);
  const { receipt, proof, tree_head } = got.json<{ receipt: Receipt; proof: { leaf_hash: string; index: number; tree_size: number; path: string[] }; tree_head: { size: number; root: string } }>();
  assert.deepEqual(receipt, body.receipt);
  assert.equal(proof.tree_size, tree_head.size);
  assert.ok(verifyInclusion(hexDecode(proof.leaf_hash), proof.index, proof.tree_size, proof.path.map(hexDecode), hexDecode(tree_head.root.replace(/^sha256:/, ''))));

  const read = await execute({ operator_id: 'kv.get', inputs: { key: 'a' } });
  assert.equal(read.status, 200, read.text);
  assert.deepEqual((read.json<ExecuteReply>().outputs as { value?: unknown }).value, 1);

  const list = await get('/api/v1/receipts?from=0&limit=10');
  assert.equal(list.status, 200, list.text);
  const page = list.json<{ receipts: Receipt[]; next: number }>();
  assert.ok(page.receipts.some((x) => x.receipt_id === body.receipt_id));
  assert.equal(page.next, page.receipts.length);

  const head = await get('/api/v1/tree-head');
  assert.equal(head.status, 200);
  assert.ok(head.json<{ size: number }>().size >= 2);
  const ops = await get('/api/v1/operators');
  const kvPut = ops.json<{ operators: Array<{ id: string; input_schema: { type?: string } }> }>().operators.find((o) => o.id === 'kv.put');
  assert.equal(kvPut?.input_schema.type, 'object');
  const cluster = await get('/api/v1/cluster');
  assert.equal(cluster.json<{ consensus: string; self: string }>().consensus, 'none');
});

test('execute over HTTP/2 on the same port', async () => {
  const session = http2Connect(base, { ca });
  try {
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/api/v1/operators/execute', ...json, ...bearer });
      let status = 0;
      let text = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => resolve({ status, text }));
      req.on('error', reject);
      req.end(JSON.stringify({ operator_id: 'echo', inputs: { hello: 'h2' } }));
    });
    assert.equal(status, 200, text);
    assert.equal((JSON.parse(text) as ExecuteReply).status, 'success');
  } finally {
    session.close();
  }
});

test('idempotency: the same key returns the same outputs and receipt, executed once', async () => {
  const size = (await get('/api/v1/tree-head')).json<{ size: number }>().size;
  const body = { operator_id: 'counter.add', inputs: { key: 'idem', delta: 5 }, options: { idempotency_key: 'retry-1' } };
  const [first, concurrent] = await Promise.all([execute(body), execute(body)]);
  const again = await execute(body);
  for (const r of [first, concurrent, again]) assert.equal(r.status, 200, r.text);
  const ids = new Set([first, concurrent, again].map((r) => r.json<ExecuteReply>().receipt_id));
  assert.equal(ids.size, 1, 'one receipt for all retries');
  assert.deepEqual(again.json<ExecuteReply>().outputs, first.json<ExecuteReply>().outputs);
  assert.equal(again.json<ExecuteReply>().replayed, true);
  assert.equal((await get('/api/v1/tree-head')).json<{ size: number }>().size, size + 1, 'executed once');
});

test('bad input: malformed JSON is 400 MALFORMED_JSON', async () => {
  const r = await call(`${base}/api/v1/operators/execute`, { ca, headers: { ...json, ...bearer }, body: '{"operator_id": "kv.put", "inputs": ' });
  assertError(r, 400, 'MALFORMED_JSON');
});

test('bad input: a content type other than JSON is 415', async () => {
  const r = await call(`${base}/api/v1/operators/execute`, { ca, headers: { 'content-type': 'text/plain', ...bearer }, body: 'operator_id=kv.put' });
  assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
  const form = await call(`${base}/api/v1/operators/execute`, { ca, headers: { 'content-type': 'application/x-www-form-urlencoded', ...bearer }, body: 'a=b' });
  assertError(form, 415, 'UNSUPPORTED_MEDIA_TYPE');
});

test('bad input: an unknown operator is 404 UNKNOWN_OPERATOR pointing at /operator_id', async () => {
  const body = assertError(await execute({ operator_id: 'no.such.op', inputs: {} }), 404, 'UNKNOWN_OPERATOR');
  assert.equal(body.error.path, '/operator_id');
  assert.match(body.error.message, /unknown operator 'no\.such\.op' \(GET \/api\/v1\/operators lists them\)/);
});

test("bad input: inputs that fail the operator's schema are 400 naming the path", async () => {
  const body = assertError(await execute({ operator_id: 'kv.put', inputs: { key: 42, value: 1 } }), 400, 'INVALID_INPUT');
  assert.equal(body.error.path, '/inputs/key');
  assert.match(body.error.message, /key/);
  // The request envelope itself is checked too: a wrong options type names its path.
  const env = assertError(await execute({ operator_id: 'kv.put', inputs: { key: 'k', value: 1 }, options: { timeout_ms: 'soon' } }), 400, 'INVALID_REQUEST');
  assert.equal(env.error.path, '/options/timeout_ms');
  assertError(await execute({ operator_id: 'kv.put' }), 400, 'INVALID_REQUEST');
  assertError(await get('/api/v1/receipts?limit=5000'), 400, 'INVALID_REQUEST');
  assertError(await get('/api/v1/receipts/not-a-receipt'), 400, 'INVALID_REQUEST');
  assertError(await get(`/api/v1/receipts/receipt_${'0'.repeat(64)}`), 404, 'NOT_FOUND');
});

test('bad input: a body over the limit is 413 naming the limit', async () => {
  const r = await execute({ operator_id: 'echo', inputs: { blob: 'x'.repeat(BODY_LIMIT + 1) } });
  const body = assertError(r, 413, 'PAYLOAD_TOO_LARGE');
  assert.equal(body.error.message, `request body over this API's limit of ${BODY_LIMIT} bytes (64 KiB); the README lists every limit`);
  // Exactly at the limit is not refused for its size.
  const envelope = JSON.stringify({ operator_id: 'echo', inputs: { blob: '' } });
  const atLimit = await execute({ operator_id: 'echo', inputs: { blob: 'x'.repeat(BODY_LIMIT - Buffer.byteLength(envelope)) } });
  assert.notEqual(atLimit.status, 413, atLimit.text);
});

test('HTTP/2: an upload still running after an early answer (an oversized gRPC message) is drained, then reset with NO_ERROR', async () => {
  const session = http2Connect(base, { ca });
  try {
    const started = Date.now();
    const { status, grpcStatus, rstCode, closedAfter } = await new Promise<{ status: number; grpcStatus: string; rstCode: number; closedAfter: number }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/hypersync.v1.HyperSync/ExecuteOperator', 'content-type': 'application/grpc', te: 'trailers', ...bearer });
      let status = 0;
      let grpcStatus = '';
      req.on('response', (h) => {
        status = Number(h[':status']);
        grpcStatus = String(h['grpc-status'] ?? '');
      });
      req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'] ?? grpcStatus)));
      req.on('data', () => undefined);
      req.on('close', () => resolve({ status, grpcStatus, rstCode: req.rstCode ?? -1, closedAfter: Date.now() - started }));
      req.on('error', (e) => (e.message.includes('NGHTTP2') ? undefined : reject(e)));
      // A gRPC frame announcing 2 MiB, of which only a part is sent: a client that keeps going.
      const head = Buffer.alloc(5);
      head.writeUInt32BE(2 * 1024 * 1024, 1);
      req.write(Buffer.concat([head, Buffer.alloc(32 * 1024)]));
      setTimeout(() => reject(new Error('the server left the stream open for 8 s')), 8000).unref();
    });
    assert.equal(status, 200);
    assert.equal(grpcStatus, '8', 'RESOURCE_EXHAUSTED');
    assert.equal(rstCode, h2constants.NGHTTP2_NO_ERROR, 'reset without error: the answer was complete');
    assert.ok(closedAfter < DRAIN_TIMEOUT_MS + 2000, `closed after ${closedAfter} ms`);
  } finally {
    session.close();
  }
});

test('plain HTTP on the HTTPS port gets a readable 400 naming the https:// URL, and TLS still works', async () => {
  const { port } = new URL(base);
  const plain = await call(`http://127.0.0.1:${port}/healthz?x=1`);
  const body = assertError(plain, 400, 'HTTPS_REQUIRED');
  assert.equal(plain.headers['connection'], 'close');
  assert.match(body.error.message, new RegExp(`this port speaks HTTPS only: use https://127\\.0\\.0\\.1:${port}/healthz\\?x=1 `));
  const post = await call(`http://localhost:${port}/api/v1/operators/execute`, { method: 'POST', headers: json, body: '{}' });
  assert.match(assertError(post, 400, 'HTTPS_REQUIRED').error.message, new RegExp(`https://localhost:${port}/api/v1/operators/execute`));
  assert.equal((await get('/healthz')).status, 200, 'HTTPS on the same port is untouched');
});

/** How long the server takes to close `socket`, and what it sent first; fails after 5 s. */
function closedBy(socket: Socket, what: string): Promise<{ closedAfter: number; data: string }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('close', () => resolve({ closedAfter: Date.now() - started, data }));
    socket.on('error', (e) => (e.message.includes('ECONNRESET') ? undefined : reject(e)));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept ${what} open for 5 s`));
    }, 5000).unref();
  });
}

test('a connection that never sends a byte is closed within the headers timeout', async () => {
  const { port } = new URL(base);
  const { closedAfter, data } = await closedBy(netConnect({ host: '127.0.0.1', port: Number(port) }), 'a silent connection');
  assert.ok(closedAfter < HEADERS_TIMEOUT_MS + 1500, `closed after ${closedAfter} ms`);
  assert.equal(data, '');
});

test('auth: missing credentials are 401, before the body is read', async () => {
  const r = await call(`${base}/api/v1/operators/execute`, { ca, headers: json, body: JSON.stringify({ operator_id: 'kv.put', inputs: { key: 'x', value: 1 } }) });
  assertError(r, 401, 'UNAUTHENTICATED');
  assert.match(String(r.headers['www-authenticate']), /^Bearer/);
  // Rejected in onRequest: even an oversized body gets 401, not 413.
  assertError(await call(`${base}/api/v1/operators/execute`, { ca, headers: json, body: 'x'.repeat(BODY_LIMIT * 2) }), 401, 'UNAUTHENTICATED');
  assertError(await get('/api/v1/tree-head', { headers: {} }), 401, 'UNAUTHENTICATED');
});

test('auth: a wrong token or API key is 401', async () => {
  assertError(await execute({ operator_id: 'echo', inputs: { n: 1 } }, { authorization: 'Bearer not-the-token-at-all' }), 401, 'UNAUTHENTICATED');
  assertError(await execute({ operator_id: 'echo', inputs: { n: 1 } }, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'UNAUTHENTICATED');
  const forged = secrets.exec.slice(0, -4) + (secrets.exec.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  assertError(await execute({ operator_id: 'echo', inputs: { n: 1 } }, { 'x-api-key': forged }), 401, 'UNAUTHENTICATED');
});

test('auth: API keys work as X-API-Key and as a bearer token; scopes are enforced (403)', async () => {
  assert.equal((await execute({ operator_id: 'echo', inputs: { n: 1 } }, { 'x-api-key': secrets.exec })).status, 200);
  assert.equal((await execute({ operator_id: 'echo', inputs: { n: 1 } }, { authorization: `Bearer ${secrets.exec}` })).status, 200);
  assert.equal((await get('/api/v1/tree-head', { headers: { 'x-api-key': secrets.reader } })).status, 200);
  assertError(await execute({ operator_id: 'echo', inputs: { n: 1 } }, { 'x-api-key': secrets.reader }), 403, 'PERMISSION_DENIED');
});

test('auth: a revoked key is 403, and revoking reaches the running server', async () => {
  assertError(await execute({ operator_id: 'echo', inputs: { n: 1 } }, { 'x-api-key': secrets.revoked }), 403, 'PERMISSION_DENIED');
  const { entry, secret } = await createApiKey(keysFile, 'short-lived', ['execute', 'read']);
  const deadline = Date.now() + 5000;
  // The server re-reads the keys file at most once a second: poll until it sees each change.
  let r = await get('/api/v1/tree-head', { headers: { 'x-api-key': secret } });
  while (r.status !== 200 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    r = await get('/api/v1/tree-head', { headers: { 'x-api-key': secret } });
  }
  assert.equal(r.status, 200, 'a new key is accepted without a restart');
  await revokeApiKey(keysFile, entry.id);
  while (r.status !== 403 && Date.now() < deadline + 5000) {
    await new Promise((res) => setTimeout(res, 100));
    r = await get('/api/v1/tree-head', { headers: { 'x-api-key': secret } });
  }
  assertError(r, 403, 'PERMISSION_DENIED');
});

test('bad input: a wrong method on a known path is 405 with Allow', async () => {
  const r = await get('/api/v1/operators/execute');
  assertError(r, 405, 'METHOD_NOT_ALLOWED');
  assert.match(String(r.headers['allow']), /POST/);
  const del = await get(`/api/v1/receipts/receipt_${'0'.repeat(64)}`, { method: 'DELETE' });
  assertError(del, 405, 'METHOD_NOT_ALLOWED');
  assertError(await get('/api/v1/nothing-here'), 404, 'ROUTE_NOT_FOUND');
});

test('slow headers: a client that stops mid-headers is cut off within the timeout', async () => {
  const { port } = new URL(base);
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
    socket.write('POST /api/v1/operators/execute HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
  });
  const { closedAfter, data } = await closedBy(socket, 'a stalled connection');
  assert.ok(closedAfter < HEADERS_TIMEOUT_MS + 1500, `closed after ${closedAfter} ms`);
  if (data !== '') assert.match(data, /^HTTP\/1\.1 408/);
});

test('rate limit: over the per-key budget is 429 with Retry-After', async () => {
  const limited = await buildApi({
    backend,
    auth: await KeyStoreAuthenticator.open({ tokens: [{ name: 'slow', token: TOKEN, scopes: ['read'] }], ratePerSecond: 1, rateBurst: 3 }),
    tls: { key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert), ca },
  });
  await limited.listen({ host: '127.0.0.1', port: 0 });
  try {
    const addr = limited.server.address();
    assert.ok(typeof addr === 'object' && addr !== null);
    const statuses: number[] = [];
    let last: ClientResponse | undefined;
    for (let i = 0; i < 5; i++) {
      last = await call(`https://127.0.0.1:${addr.port}/api/v1/tree-head`, { ca, headers: bearer });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.ok(last !== undefined);
    assertError(last, 429, 'RATE_LIMITED');
    assert.match(String(last.headers['retry-after']), /^[1-9][0-9]*$/);
  } finally {
    await limited.close();
  }
});

test('mTLS: a client certificate from the cluster CA authenticates; one from another CA does not', async () => {
  const mine = { cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) };
  const ok = await call(`${base}/api/v1/operators/execute`, { ca, ...mine, headers: json, body: JSON.stringify({ operator_id: 'echo', inputs: { via: 'mtls' } }) });
  assert.equal(ok.status, 200, ok.text);
  const other = { cert: readFileSync(foreign.clientCert), key: readFileSync(foreign.clientKey) };
  assertError(await call(`${base}/api/v1/tree-head`, { ca, ...other }), 401, 'UNAUTHENTICATED');
});

test('/metrics has request, latency and consensus series', async () => {
  assertError(await get('/metrics', { headers: {} }), 401, 'UNAUTHENTICATED');
  const r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  for (const series of [
    /^hypersync_http_requests_total\{method="POST",route="\/api\/v1\/operators\/execute",status="200"\} \d+$/m,
    /^hypersync_http_requests_total\{method="POST",route="\/api\/v1\/operators\/execute",status="401"\} \d+$/m,
    /^hypersync_http_request_duration_seconds_bucket\{route="\/api\/v1\/operators\/execute",le="\+Inf"\} \d+$/m,
    /^hypersync_http_request_duration_seconds_count\{route="\/api\/v1\/operators\/execute"\} \d+$/m,
    /^hypersync_consensus_term\{consensus="none"\} \d+$/m,
    /^hypersync_consensus_commit_index \d+$/m,
    /^hypersync_consensus_applied_index \d+$/m,
    /^hypersync_peers \d+$/m,
    /^hypersync_receipts_tree_size [1-9]\d*$/m,
  ]) {
    assert.match(r.text, series);
  }
});

test('/docs/json is OpenAPI 3 listing every route; /docs needs no credentials', async () => {
  const r = await call(`${base}/docs/json`, { ca });
  assert.equal(r.status, 200);
  const doc = r.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
  assert.match(doc.openapi, /^3\./);
  for (const [path, method] of [
    ['/api/v1/operators/execute', 'post'],
    ['/api/v1/receipts/{id}', 'get'],
    ['/api/v1/receipts', 'get'],
    ['/api/v1/tree-head', 'get'],
    ['/api/v1/operators', 'get'],
    ['/api/v1/cluster', 'get'],
    ['/healthz', 'get'],
    ['/api/v1/status', 'get'],
    ['/metrics', 'get'],
  ] as const) {
    assert.ok(doc.paths[path]?.[method] !== undefined, `${method.toUpperCase()} ${path} in the OpenAPI document`);
  }
  const ui = await call(`${base}/docs/`, { ca });
  assert.equal(ui.status, 200);
  assert.match(ui.text, /swagger/i);
});

test('the server keeps serving after all of the above', async () => {
  const health = await call(`${base}/healthz`, { ca });
  assert.equal(health.status, 200);
  assert.equal(health.json<{ status: string }>().status, 'ok');
  const r = await execute({ operator_id: 'kv.put', inputs: { key: 'after', value: true } });
  assert.equal(r.status, 200, r.text);
});
