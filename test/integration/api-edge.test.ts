// The edge of the relay's one port, where a request is judged before any work is done for it:
// credentials before any body, on every protocol (a client that sends its headers and holds
// its body back is refused at once: gRPC and gRPC-Web with a trailers-only status, Connect with
// its HTTP status or end-stream message, REST with its JSON error); failed authentications
// rate limited per source address; a compressed request inflating no further than the message
// limit (a gzip bomb costs what a 1 MiB message does); and malformed request messages answered
// as the client's fault, never INTERNAL. Real clients: raw HTTP/2 and HTTP/1.1 over TLS, the
// Connect client, python3-grpcio.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { compressionGzip, createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import type { FastifyInstance } from 'fastify';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { HyperSync, OperatorRequestSchema } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { ERROR_CODE_TRAILER, MAX_GRPC_REQUEST_BYTES } from '../../relay/api/grpc.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { buildApi } from '../../relay/api/server.ts';
import { generateDevCa, type DevCaFiles } from '../../relay/api/tls.ts';
import { call } from '../harness/https-client.ts';
import { grpcFrame, grpcStatusFields, h2Call, h2Open, type H2Reply } from '../harness/h2-raw.ts';
import { tempDir } from '../harness/processes.ts';
import { assertPythonGrpc, firstExecuteCode, runPython, writeDescriptors } from '../harness/python-grpc.ts';

const EXEC_TOKEN = 'exec-token-0123456789abcdef';
const READ_TOKEN = 'read-token-0123456789abcdef';
const EXECUTE_PATH = '/hypersync.v1.HyperSync/ExecuteOperator';
const STREAM_PATH = '/hypersync.v1.HyperSync/StreamResults';
/** A held request is answered at once, or this test fails long before any server timeout. */
const HELD_TEST_TIMEOUT_MS = 15_000;

let dir: string;
let tls: DevCaFiles;
let ca: Buffer;
let backend: EngineBackend;
const servers: Array<{ app: FastifyInstance; auth: KeyStoreAuthenticator }> = [];
let base: string;
let session: ClientHttp2Session;

async function startServer(limits: { failedAuthPerSecond?: number; failedAuthBurst?: number } = {}): Promise<{ url: string; port: number }> {
  const auth = await KeyStoreAuthenticator.open({
    tokens: [
      { name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] },
      { name: 'reader', token: READ_TOKEN, scopes: ['read'] },
    ],
    ...limits,
  });
  // Request deadlines far beyond the test timeout: only an answer from the auth check can be quick.
  const app = await buildApi({ backend, auth, tls: { key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert), ca }, timeouts: { requestMs: 120_000, idleMs: 120_000 } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push({ app, auth });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { url: `https://127.0.0.1:${address.port}`, port: address.port };
}

before(async () => {
  dir = tempDir('hypersync-authfirst-');
  tls = await generateDevCa(join(dir, 'tls'));
  ca = readFileSync(tls.ca);
  const signer = crypto.createSigner(crypto.randomBytes(32));
  backend = new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
  base = (await startServer()).url;
  session = http2Connect(base, { ca });
});

after(async () => {
  session?.close();
  for (const s of servers) {
    await s.app.close();
    s.auth.close();
  }
  await backend?.close();
});

function rpcHeaders(path: string, contentType: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ':path': path, 'content-type': contentType, te: 'trailers', ...extra };
}

function assertTrailersOnly(r: H2Reply, grpcStatus: Code, hypersyncCode: string): void {
  assert.equal(r.status, 200);
  assert.equal(r.headersEndedStream, true, 'a trailers-only response: one HEADERS frame that ends the stream');
  assert.equal(r.headers['grpc-status'], String(grpcStatus), JSON.stringify(r.headers));
  assert.equal(r.headers[ERROR_CODE_TRAILER], hypersyncCode);
  assert.equal(typeof r.headers['grpc-message'], 'string');
  assert.equal(r.body.length, 0);
}

/** HTTP/1.1 over TLS by hand: sends `head` (no body) and reads until the server closes. */
function http1Held(url: string, head: string): Promise<{ statusLine: string; headers: Record<string, string>; body: string }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.write(head));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('error', reject);
    socket.on('close', () => {
      const [top = '', body = ''] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = top.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ statusLine, headers, body });
    });
  });
}

describe('refused before the body: the client holds its body back and still gets its answer', () => {
  test('gRPC over HTTP/2: UNAUTHENTICATED, wrong token too, trailers-only', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const none = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto'), 'hold');
    assertTrailersOnly(none, Code.Unauthenticated, 'UNAUTHENTICATED');
    assert.equal(none.bodyBytesSentBeforeResponse, 0);
    const wrong = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc', { authorization: 'Bearer not-a-token-we-know' }), 'hold');
    assertTrailersOnly(wrong, Code.Unauthenticated, 'UNAUTHENTICATED');
  });

  test('gRPC over HTTP/2: a token without the RPC\'s scope is PERMISSION_DENIED, before the body', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const r = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', { authorization: `Bearer ${READ_TOKEN}` }), 'hold');
    assertTrailersOnly(r, Code.PermissionDenied, 'PERMISSION_DENIED');
  });

  test('gRPC-Web over HTTP/2: UNAUTHENTICATED, trailers-only', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const r = await h2Call(session, rpcHeaders(STREAM_PATH, 'application/grpc-web+proto'), 'hold');
    assertTrailersOnly(r, Code.Unauthenticated, 'UNAUTHENTICATED');
    assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  });

  test('Connect streaming over HTTP/2: 200 with an end-stream message carrying the error', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const r = await h2Call(session, rpcHeaders(STREAM_PATH, 'application/connect+proto', { 'connect-protocol-version': '1' }), 'hold');
    assert.equal(r.status, 200);
    assert.equal(r.bodyBytesSentBeforeResponse, 0);
    assert.equal(r.body[0], 0b10, 'the end-stream flag');
    const length = r.body.readUInt32BE(1);
    const end = JSON.parse(r.body.subarray(5, 5 + length).toString('utf8')) as { error: { code: string; message: string }; metadata: Record<string, string[]> };
    assert.equal(end.error.code, 'unauthenticated');
    assert.deepEqual(end.metadata[ERROR_CODE_TRAILER], ['UNAUTHENTICATED']);
  });

  test('Connect unary over HTTP/1.1: 401 JSON, and the server closes instead of reading the body', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const r = await http1Held(base, `POST ${EXECUTE_PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\nContent-Length: 100000\r\n\r\n`);
    assert.match(r.statusLine, /^HTTP\/1\.1 401 /);
    assert.equal(r.headers['connection'], 'close');
    assert.equal(r.headers[ERROR_CODE_TRAILER], 'UNAUTHENTICATED');
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'unauthenticated');
  });

  test('REST over HTTP/1.1 and HTTP/2: 401 before the body', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const h1 = await http1Held(base, 'POST /api/v1/operators/execute HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n');
    assert.match(h1.statusLine, /^HTTP\/1\.1 401 /);
    assert.equal(h1.headers['connection'], 'close');
    assert.equal((JSON.parse(h1.body) as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
    const h2 = await h2Call(session, { ':path': '/api/v1/operators/execute', 'content-type': 'application/json', 'content-length': '100000' }, 'hold');
    assert.equal(h2.status, 401);
    assert.equal(h2.bodyBytesSentBeforeResponse, 0);
  });

  test('with credentials the same held call waits for its body, then succeeds', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const held = h2Open(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', { authorization: `Bearer ${EXEC_TOKEN}` }));
    // A later stream on the same connection is answered first: the server has seen the held
    // call's headers and is waiting for its body, not refusing it.
    const later = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto'), 'hold');
    assertTrailersOnly(later, Code.Unauthenticated, 'UNAUTHENTICATED');
    assert.equal(held.answered, false);
    held.send(grpcFrame(toBinary(OperatorRequestSchema, create(OperatorRequestSchema, { operatorId: 'echo', inputs: { held: true } }))));
    const r = await held.reply;
    assert.equal(r.status, 200);
    assert.equal(r.headersEndedStream, false);
    assert.equal(r.trailers?.['grpc-status'], '0');
  });

  test('stock clients read these refusals as typed errors (Connect client over Connect and gRPC)', async () => {
    for (const transport of [createConnectTransport({ baseUrl: base, httpVersion: '1.1', nodeOptions: { ca } }), createGrpcTransport({ baseUrl: base, nodeOptions: { ca } })]) {
      const client = createClient(HyperSync, transport);
      await assert.rejects(client.executeOperator({ operatorId: 'echo', inputs: {} }), (e: unknown) => {
        assert.ok(e instanceof ConnectError);
        assert.equal(e.code, Code.Unauthenticated);
        assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'UNAUTHENTICATED');
        return true;
      });
      await assert.rejects(
        (async () => {
          for await (const _ of client.streamResults({})) break;
        })(),
        (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated,
      );
    }
  });
});

describe('failed authentications are rate limited per source address', () => {
  const BURST = 3;
  let limited: { url: string; port: number };
  let descriptors: string;

  before(async () => {
    // One failure refills per 100 s: nothing refills while this test runs.
    limited = await startServer({ failedAuthBurst: BURST, failedAuthPerSecond: 0.01 });
    descriptors = writeDescriptors(dir);
  });

  test(`after ${BURST} failures an address gets 429 / RESOURCE_EXHAUSTED with Retry-After, valid credentials included; other addresses do not`, async () => {
    for (let i = 0; i < BURST; i++) {
      const r = await call(`${limited.url}/api/v1/tree-head`, { ca, headers: { authorization: 'Bearer wrong-token-guess-0000' } });
      assert.equal(r.status, 401, r.text);
    }
    const refused = await call(`${limited.url}/api/v1/tree-head`, { ca, headers: { authorization: 'Bearer wrong-token-guess-0001' } });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
    assert.match(String(refused.headers['retry-after']), /^[1-9]\d*$/);
    // Guessing stays bounded: a right token from this address waits too.
    const valid = await call(`${limited.url}/api/v1/tree-head`, { ca, headers: { authorization: `Bearer ${EXEC_TOKEN}` } });
    assert.equal(valid.status, 429);
    // gRPC answers RESOURCE_EXHAUSTED with retry-after, before the body.
    const s = http2Connect(limited.url, { ca });
    try {
      const r = await h2Call(s, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', { authorization: `Bearer ${EXEC_TOKEN}` }), 'hold');
      assertTrailersOnly(r, Code.ResourceExhausted, 'RATE_LIMITED');
      assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    } finally {
      s.close();
    }
    assertPythonGrpc();
    const py = await runPython({ port: limited.port, ca: tls.ca, descriptors }, ['--token', EXEC_TOKEN, '--execute', 'echo', '{}']);
    assert.equal(firstExecuteCode(py), 'RESOURCE_EXHAUSTED');
    // Another source address (127.0.0.2 is loopback too) is not held to 127.0.0.1's failures.
    const other = await new Promise<number>((resolve, reject) => {
      import('node:https').then(({ request }) => {
        const req = request(`${limited.url}/api/v1/tree-head`, { ca, localAddress: '127.0.0.2', agent: false, headers: { authorization: `Bearer ${EXEC_TOKEN}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      }, reject);
    });
    assert.equal(other, 200);
  });
});

describe('compressed requests inflate no further than the message limit', () => {
  const BOMB_MEMBERS = 512;
  /** 512 gzip members of 1 MiB of zeros each: ~0.5 MB on the wire, 512 MiB inflated. */
  let bomb: Buffer;

  before(() => {
    const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
    bomb = Buffer.concat(Array.from({ length: BOMB_MEMBERS }, () => member));
    assert.ok(bomb.length < MAX_GRPC_REQUEST_BYTES, 'the compressed bomb itself fits the read limit');
  });

  test('a gzip bomb over gRPC is RESOURCE_EXHAUSTED after inflating at most the limit', async () => {
    const cpu = process.cpuUsage();
    const r = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', { authorization: `Bearer ${EXEC_TOKEN}`, 'grpc-encoding': 'gzip' }), grpcFrame(bomb, 1));
    const used = process.cpuUsage(cpu);
    const status = r.trailers?.['grpc-status'] ?? r.headers['grpc-status'];
    assert.equal(status, String(Code.ResourceExhausted), JSON.stringify([r.headers, r.trailers]));
    assert.equal(r.trailers?.[ERROR_CODE_TRAILER] ?? r.headers[ERROR_CODE_TRAILER], 'PAYLOAD_TOO_LARGE');
    // Inflating all 512 MiB costs seconds of CPU here (and 512 MiB of memory); stopping at the
    // 1 MiB limit costs milliseconds. CPU time, not wall time: other load does not move it.
    const cpuMs = (used.user + used.system) / 1000;
    assert.ok(cpuMs < 400, `the bomb cost ${cpuMs} ms of CPU`);
  });

  test('a gzip bomb over Connect is 429 resource_exhausted; a truncated gzip body is invalid_argument, not internal', async () => {
    const unary = { ':path': EXECUTE_PATH, 'content-type': 'application/proto', 'connect-protocol-version': '1', 'content-encoding': 'gzip', authorization: `Bearer ${EXEC_TOKEN}` };
    const cpu = process.cpuUsage();
    const r = await h2Call(session, unary, bomb);
    const used = process.cpuUsage(cpu);
    assert.ok((used.user + used.system) / 1000 < 400, `the bomb cost ${(used.user + used.system) / 1000} ms of CPU`);
    assert.equal(r.status, 429);
    assert.equal((JSON.parse(r.body.toString('utf8')) as { code: string }).code, 'resource_exhausted');
    const message = toBinary(OperatorRequestSchema, create(OperatorRequestSchema, { operatorId: 'echo', inputs: { a: 1 } }));
    const truncated = gzipSync(message).subarray(0, 12);
    const t = await h2Call(session, unary, truncated);
    assert.equal(t.status, 400, t.body.toString('utf8'));
    assert.equal((JSON.parse(t.body.toString('utf8')) as { code: string }).code, 'invalid_argument');
    const g = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', { authorization: `Bearer ${EXEC_TOKEN}`, 'grpc-encoding': 'gzip' }), grpcFrame(truncated, 1));
    assert.equal(g.trailers?.['grpc-status'] ?? g.headers['grpc-status'], String(Code.InvalidArgument));
  });

  test('a genuinely compressed request is served', async () => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', `Bearer ${EXEC_TOKEN}`);
      return next(req);
    };
    const client = createClient(HyperSync, createGrpcTransport({ baseUrl: base, nodeOptions: { ca }, sendCompression: compressionGzip, compressMinBytes: 1, interceptors: [auth] }));
    const res = await client.executeOperator({ operatorId: 'echo', inputs: { pad: 'z'.repeat(10_000) } });
    assert.equal(res.status, 'success');
  });
});

describe('malformed request messages are the client\'s fault', () => {
  const auth = { authorization: `Bearer ${EXEC_TOKEN}` };
  /** Field 0 does not exist: no protobuf parser accepts this. */
  const garbage = Buffer.from([0x00, 0x01, 0x02]);

  test('a message that is not an OperatorRequest is INVALID_ARGUMENT on gRPC and gRPC-Web, 400 on Connect', async () => {
    for (const contentType of ['application/grpc+proto', 'application/grpc-web+proto']) {
      const r = await h2Call(session, rpcHeaders(EXECUTE_PATH, contentType, auth), grpcFrame(garbage));
      const fields = grpcStatusFields(r);
      assert.equal(fields?.['grpc-status'], String(Code.InvalidArgument), `${contentType}: ${JSON.stringify([r.headers, r.trailers])}`);
      assert.equal(fields?.[ERROR_CODE_TRAILER], 'INVALID_REQUEST');
    }
    const unary = await h2Call(session, { ':path': EXECUTE_PATH, 'content-type': 'application/proto', 'connect-protocol-version': '1', ...auth }, garbage);
    assert.equal(unary.status, 400);
    const body = JSON.parse(unary.body.toString('utf8')) as { code: string; message: string };
    assert.equal(body.code, 'invalid_argument');
    assert.match(body.message, /not a valid hypersync\.v1\.OperatorRequest/);
  });

  test('a message flagged compressed without an encoding is INVALID_ARGUMENT', async () => {
    const message = toBinary(OperatorRequestSchema, create(OperatorRequestSchema, { operatorId: 'echo', inputs: {} }));
    const r = await h2Call(session, rpcHeaders(EXECUTE_PATH, 'application/grpc+proto', auth), grpcFrame(message, 1));
    assert.equal(r.trailers?.['grpc-status'] ?? r.headers['grpc-status'], String(Code.InvalidArgument));
  });

  test('a Connect body in an encoding the server does not accept is 415 unimplemented, before the body', { timeout: HELD_TEST_TIMEOUT_MS }, async () => {
    const r = await h2Call(session, { ':path': EXECUTE_PATH, 'content-type': 'application/proto', 'connect-protocol-version': '1', 'content-encoding': 'deflate', ...auth }, 'hold');
    assert.equal(r.status, 415);
    assert.equal((JSON.parse(r.body.toString('utf8')) as { code: string }).code, 'unimplemented');
  });
});
