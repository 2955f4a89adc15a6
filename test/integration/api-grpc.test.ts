// The gRPC API as its clients see it: the Connect client (gRPC over HTTP/2 TLS, plus Connect
// and gRPC-Web on the same port) and a stock Python gRPC client (Debian's python3-grpcio),
// with a bearer token and with mTLS. Execute, idempotent retry, the error table, deadlines,
// StreamResults replay + live + filter + cancel, and the stream limits.
// The in-process API's audit log goes to a file, not the test reporter.
import '../harness/test-logs.ts';
import { strict as assert } from 'node:assert';
import { once, EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toJson } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import type { Receipt } from '../../src/receipts/receipt.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { checkSignature } from '../../src/receipts/receipt.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { addCertificateMapping, createApiKey } from '../../relay/api/keys-file.ts';
import { ApiError, type ExecuteRequest, type ExecuteResult, type OutputViewer, type ResultRecord } from '../../relay/api/backend.ts';
import { BackendWrapper } from '../harness/backend-wrapper.ts';
import { ERROR_CODE_TRAILER, ERROR_PATH_TRAILER, MAX_GRPC_REQUEST_BYTES } from '../../relay/api/grpc.ts';
import { HyperSync, type Receipt as ReceiptMessage } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../../relay/api/schemas.ts';
import { buildApi } from '../../relay/api/server.ts';
import { DEV_CLIENT_CN, generateDevCa, type DevCaFiles } from '../../relay/api/tls.ts';
import { assertPythonGrpc, runPython as runPythonClient, writeDescriptors, type PyOutput } from '../harness/python-grpc.ts';

const STREAM_BUFFER = 8;
const EXEC_TOKEN = 'exec-token-0123456789abcdef';
const OTHER_TOKEN = 'other-token-0123456789abcdef';
const READ_TOKEN = 'read-token-0123456789abcdef';
const MAX_STREAMS = 3;

// ---------------------------------------------------------------------------------------------
// The real backend over the single-node engine (built-in operators), observed: which timeout, principal and buffer
// limit reached it, and when streams open and close. Two test-only operators inject faults
// the deterministic operators cannot: `test.slow` (never finishes before its deadline) and
// `test.boom` (a bug: a plain Error carrying internals).

class ObservedBackend extends BackendWrapper {
  readonly events = new EventEmitter();
  openStreams = 0;
  lastTimeoutMs: number | undefined;
  lastPrincipal: string | undefined;
  lastMaxBuffered: number | undefined;

  override async execute(req: ExecuteRequest): Promise<ExecuteResult> {
    this.lastTimeoutMs = req.options.timeout_ms;
    this.lastPrincipal = req.principal;
    if (req.operator_id === 'test.slow') {
      await new Promise((r) => setTimeout(r, req.options.timeout_ms ?? 5000));
      throw new ApiError('DEADLINE_EXCEEDED', 'consensus did not commit in time');
    }
    if (req.operator_id === 'test.boom') throw new Error('secret internals: /etc/hypersync/keys at line 42');
    return this.inner.execute(req);
  }

  override async *stream(from: number, filter: readonly string[], viewer: OutputViewer, signal: AbortSignal, maxBuffered?: number): AsyncIterable<ResultRecord> {
    this.lastMaxBuffered = maxBuffered;
    this.openStreams++;
    this.events.emit('stream-opened');
    try {
      yield* this.inner.stream(from, filter, viewer, signal, maxBuffered);
    } finally {
      this.openStreams--;
      this.events.emit('stream-closed');
    }
  }
}

/** Resolves when no backend stream is open (streams end asynchronously after a cancel). */
function allStreamsClosed(b: ObservedBackend): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (b.openStreams === 0) resolve();
      else b.events.once('stream-closed', check);
    };
    check();
  });
}

/** A receipt as the gRPC message carries it, back in its JSON form (to verify its signature). */
function receiptJson(m: ReceiptMessage | undefined): Receipt {
  assert.ok(m?.operation !== undefined);
  return {
    receipt_id: m.receiptId,
    timestamp: m.timestamp,
    operation: { type: 'operator_execution', operator_id: m.operation.operatorId, inputs_hash: m.operation.inputsHash, outputs_hash: m.operation.outputsHash },
    prev_receipt_hash: m.prevReceiptHash,
    signer: m.signer,
    index: Number(m.index),
    signature: m.signature,
  };
}

// ---------------------------------------------------------------------------------------------

/** A client certificate pair: PEM text for Node, paths for Python. */
interface ClientPem {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

let dir: string;
let devCa: DevCaFiles;
let caPem: string;
let clientCert: ClientPem;
let rogueCert: ClientPem;
let apiKey: string;
let apiKeyId: string;
let descriptorsPath: string;
let app: Awaited<ReturnType<typeof buildApi>>;
let port: number;
let backend: ObservedBackend;
let auth: KeyStoreAuthenticator;

function clientPem(files: DevCaFiles): ClientPem {
  return { certPath: files.clientCert, keyPath: files.clientKey, cert: readFileSync(files.clientCert, 'utf8'), key: readFileSync(files.clientKey, 'utf8') };
}

function portOf(a: typeof app): number {
  const address = a.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

function transport(opts: { cert?: ClientPem; token?: string; apiKey?: string; kind?: 'grpc' | 'connect' | 'grpc-web'; port?: number } = {}): Transport {
  const baseUrl = `https://127.0.0.1:${opts.port ?? port}`;
  const tls = { ca: caPem, ...(opts.cert === undefined ? {} : { cert: opts.cert.cert, key: opts.cert.key }) };
  const interceptors = [];
  if (opts.token !== undefined) interceptors.push(header('authorization', `Bearer ${opts.token}`));
  if (opts.apiKey !== undefined) interceptors.push(header('x-api-key', opts.apiKey));
  switch (opts.kind ?? 'grpc') {
    case 'grpc':
      return createGrpcTransport({ baseUrl, nodeOptions: tls, interceptors });
    case 'connect':
      return createConnectTransport({ baseUrl, httpVersion: '1.1', nodeOptions: tls, interceptors });
    case 'grpc-web':
      return createGrpcWebTransport({ baseUrl, httpVersion: '2', nodeOptions: tls, interceptors });
  }
}

function header(name: string, value: string): Interceptor {
  return (next) => (req) => {
    req.header.set(name, value);
    return next(req);
  };
}

function client(opts: Parameters<typeof transport>[0] = { token: EXEC_TOKEN }): Client<typeof HyperSync> {
  return createClient(HyperSync, transport(opts));
}

async function rejectsWith(p: Promise<unknown>, code: Code, check?: (e: ConnectError) => void): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConnectError, `expected a ConnectError, got ${String(e)}`);
    assert.equal(Code[e.code], Code[code], e.message);
    check?.(e);
    return;
  }
  assert.fail(`expected ${Code[code]}`);
}

function runPython(args: string[]): Promise<PyOutput> {
  return runPythonClient({ port, ca: devCa.ca, descriptors: descriptorsPath }, args);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hypersync-grpc-'));
  devCa = await generateDevCa(join(dir, 'tls'));
  caPem = readFileSync(devCa.ca, 'utf8');
  clientCert = clientPem(devCa);
  rogueCert = clientPem(await generateDevCa(join(dir, 'rogue'), { commonName: 'Rogue CA' }));
  const keysFile = join(dir, 'keys.json');
  const created = await createApiKey(keysFile, 'grpc-test', ['execute', 'read']);
  apiKey = created.secret;
  apiKeyId = created.entry.id;
  await addCertificateMapping(keysFile, { name: DEV_CLIENT_CN, match: `cn:${DEV_CLIENT_CN}`, scopes: ['execute', 'read'] });
  // The Python client builds its message classes from this (the same descriptors as the
  // generated TypeScript), so no protoc is needed on the machine.
  descriptorsPath = writeDescriptors(dir);

  const signer = crypto.createSigner(crypto.randomBytes(32));
  backend = new ObservedBackend(new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) }));
  auth = await KeyStoreAuthenticator.open({
    keysFile,
    tokens: [
      { name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] },
      { name: 'other', token: OTHER_TOKEN, scopes: ['execute', 'read'] },
      { name: 'reader', token: READ_TOKEN, scopes: ['read'] },
    ],
  });
  app = await buildApi({
    backend,
    auth,
    tls: { key: readFileSync(devCa.serverKey), cert: readFileSync(devCa.serverCert), ca: caPem },
    grpc: { maxStreamBuffer: STREAM_BUFFER, maxStreams: MAX_STREAMS },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = portOf(app);
});

after(async () => {
  await app?.close();
  auth?.close();
  await backend?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('ExecuteOperator (Connect client, gRPC over HTTP/2 TLS)', () => {
  test('executes an operator and returns outputs, receipt id and the signed receipt', async () => {
    const res = await client().executeOperator({ operatorId: 'echo', inputs: { text: 'hello' } });
    assert.equal(res.status, 'success');
    assert.deepEqual(res.outputs === undefined ? undefined : toJson(ValueSchema, res.outputs), { text: 'hello' });
    assert.match(res.receiptId, /^receipt_[0-9a-f]{64}$/);
    assert.equal(res.receipt?.receiptId, res.receiptId);
    assert.equal(res.receipt?.operation?.operatorId, 'echo');
    assert.equal(res.receipt?.operation?.type, 'operator_execution');
    assert.match(res.receipt?.operation?.outputsHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(typeof res.executionTimeMs, 'number');
    assert.equal(res.replayed, false);
    assert.equal(backend.lastPrincipal, 'token:exec');
    // Every field survived the trip: the receipt's signature still verifies.
    const receipt = receiptJson(res.receipt);
    assert.equal(checkSignature(receipt), null);
    assert.equal(receipt.signer, backend.inner.engine.id);
  });

  test('a retry with the same idempotency key returns the same receipt and executes once', async () => {
    const c = client();
    const before = backend.size;
    const add = { operatorId: 'counter.add', inputs: { key: 'idem', delta: 1 }, options: { idempotencyKey: 'k-1' } };
    const first = await c.executeOperator(add);
    const retry = await c.executeOperator(add);
    assert.equal(retry.receiptId, first.receiptId);
    assert.equal(retry.replayed, true);
    assert.deepEqual(retry.outputs === undefined ? undefined : toJson(ValueSchema, retry.outputs), { value: 1 });
    assert.equal(backend.size, before + 1);
    // The key is scoped to the caller: another principal's same key is a new execution.
    const other = await client({ token: OTHER_TOKEN }).executeOperator(add);
    assert.notEqual(other.receiptId, first.receiptId);
    assert.deepEqual(other.outputs === undefined ? undefined : toJson(ValueSchema, other.outputs), { value: 2 });
  });

  test('inputs that fail the schema answer INVALID_ARGUMENT naming the path', async () => {
    const before = backend.size;
    await rejectsWith(client().executeOperator({ operatorId: 'counter.add', inputs: { key: 'c', delta: 'x' } }), Code.InvalidArgument, (e) => {
      assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'INVALID_INPUT');
      assert.equal(e.metadata.get(ERROR_PATH_TRAILER), '/inputs/delta');
      assert.match(e.rawMessage, /delta/);
    });
    assert.equal(backend.size, before);
  });

  test('bad options and operator ids answer INVALID_ARGUMENT before the backend runs', async () => {
    const c = client();
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { consensus: 'paxos' } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { read: 'eventually' } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { timeoutMs: 3_600_000 } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'not an id!', inputs: {} }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: {}, options: { idempotencyKey: 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH + 1) } }), Code.InvalidArgument, (e) => {
      assert.equal(e.metadata.get(ERROR_PATH_TRAILER), '/options/idempotency_key');
    });
    // At the limit it is accepted.
    await c.executeOperator({ operatorId: 'echo', inputs: {}, options: { idempotencyKey: 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH) } });
  });

  test('an unknown operator answers NOT_FOUND, pointing at /operator_id', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'no.such.op', inputs: {} }), Code.NotFound, (e) => {
      assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'UNKNOWN_OPERATOR');
      assert.equal(e.metadata.get(ERROR_PATH_TRAILER), '/operator_id');
    });
  });

  test('a request over the message limit answers RESOURCE_EXHAUSTED naming the limit', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'echo', inputs: { blob: 'x'.repeat(MAX_GRPC_REQUEST_BYTES) } }), Code.ResourceExhausted, (e) => {
      assert.match(e.rawMessage, new RegExp(`\\b${MAX_GRPC_REQUEST_BYTES}\\b`));
    });
  });

  test('an operator that refuses answers FAILED_PRECONDITION', async () => {
    const c = client();
    await c.executeOperator({ operatorId: 'kv.put', inputs: { key: 'not-a-number', value: 'x' } });
    await rejectsWith(c.executeOperator({ operatorId: 'counter.add', inputs: { key: 'not-a-number', delta: 1 } }), Code.FailedPrecondition, (e) => {
      assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'OPERATOR_FAILED');
    });
  });

  test('an unexpected failure answers INTERNAL without its message or stack', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'test.boom', inputs: {} }), Code.Internal, (e) => {
      assert.equal(e.rawMessage, 'internal error');
      assert.doesNotMatch(JSON.stringify([e.message, [...e.metadata]]), /secret|etc\/hypersync|at line/);
    });
  });

  test('the gRPC deadline bounds the execution and answers DEADLINE_EXCEEDED', async () => {
    const started = Date.now();
    await rejectsWith(client().executeOperator({ operatorId: 'test.slow', inputs: {} }, { timeoutMs: 300 }), Code.DeadlineExceeded);
    assert.ok(backend.lastTimeoutMs !== undefined && backend.lastTimeoutMs > 0 && backend.lastTimeoutMs <= 300, `timeout_ms ${backend.lastTimeoutMs}`);
    assert.ok(Date.now() - started < 3000);
    // An explicit shorter timeout_ms wins over a longer deadline.
    await rejectsWith(client().executeOperator({ operatorId: 'test.slow', inputs: {}, options: { timeoutMs: 100 } }, { timeoutMs: 5000 }), Code.DeadlineExceeded);
    assert.equal(backend.lastTimeoutMs, 100);
  });
});

describe('authentication', () => {
  test('no credentials, or a wrong token, answer UNAUTHENTICATED and never reach the backend', async () => {
    const before = backend.size;
    await rejectsWith(client({}).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
    await rejectsWith(client({ token: 'wrong' }).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
    assert.equal(backend.size, before);
  });

  test('an API key in x-api-key metadata authenticates as that key', async () => {
    const res = await client({ apiKey }).executeOperator({ operatorId: 'echo', inputs: { text: 'key' } });
    assert.equal(res.status, 'success');
    assert.equal(backend.lastPrincipal, apiKeyId);
    await rejectsWith(client({ apiKey: 'hsk_nope_nope' }).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
  });

  test('a token without the execute scope answers PERMISSION_DENIED; StreamResults needs only read', async () => {
    await rejectsWith(client({ token: READ_TOKEN }).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.PermissionDenied);
    const abort = new AbortController();
    const isOpen = once(backend.events, 'stream-opened');
    const s = drain(client({ token: READ_TOKEN }).streamResults({}, { signal: abort.signal })).catch((e: unknown) => e);
    await isOpen;
    abort.abort();
    assert.equal(ConnectError.from(await s).code, Code.Canceled);
  });

  test('over the per-key rate limit answers RESOURCE_EXHAUSTED with retry-after', async () => {
    const limited = await buildApi({
      backend,
      auth: await KeyStoreAuthenticator.open({ tokens: [{ name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] }], ratePerSecond: 0.01, rateBurst: 1 }),
      tls: { key: readFileSync(devCa.serverKey), cert: readFileSync(devCa.serverCert), ca: caPem },
    });
    try {
      await limited.listen({ host: '127.0.0.1', port: 0 });
      const c = client({ token: EXEC_TOKEN, port: portOf(limited) });
      await c.executeOperator({ operatorId: 'echo', inputs: {} });
      await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: {} }), Code.ResourceExhausted, (e) => {
        assert.ok(Number(e.metadata.get('retry-after')) >= 1);
        assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'RATE_LIMITED');
      });
    } finally {
      await limited.close();
    }
  });

  test('a client certificate from the cluster CA authenticates (mTLS) without a token', async () => {
    const res = await client({ cert: clientCert }).executeOperator({ operatorId: 'echo', inputs: { text: 'mtls' } });
    assert.equal(res.status, 'success');
    assert.equal(backend.lastPrincipal, `cert:${DEV_CLIENT_CN}`);
  });

  test('a client certificate from another CA is refused', async () => {
    await rejectsWith(client({ cert: rogueCert }).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
  });
});

describe('one port, three protocols', () => {
  test('Connect over HTTP/1.1 and gRPC-Web over HTTP/2 reach the same service', async () => {
    const viaConnect = await client({ token: EXEC_TOKEN, kind: 'connect' }).executeOperator({ operatorId: 'echo', inputs: {} });
    const viaWeb = await client({ token: EXEC_TOKEN, kind: 'grpc-web' }).executeOperator({ operatorId: 'echo', inputs: {} });
    assert.equal(viaConnect.status, 'success');
    assert.equal(viaWeb.receipt?.index, (viaConnect.receipt?.index ?? 0n) + 1n);
    await rejectsWith(client({ kind: 'connect' }).executeOperator({ operatorId: 'echo', inputs: {} }), Code.Unauthenticated);
  });
});

describe('StreamResults', () => {
  test('replays from the requested index, then streams live results, filtered by operator', async () => {
    const c = client();
    const from = backend.size;
    await c.executeOperator({ operatorId: 'echo', inputs: { text: 'a' } });
    await c.executeOperator({ operatorId: 'counter.add', inputs: { key: 'stream', delta: 1 } });
    await c.executeOperator({ operatorId: 'echo', inputs: { text: 'b' } });

    const abort = new AbortController();
    const closed = once(backend.events, 'stream-closed');
    const it = c.streamResults({ operatorIds: ['echo'], fromIndex: BigInt(from) }, { signal: abort.signal })[Symbol.asyncIterator]();
    const seen = [];
    for (let i = 0; i < 2; i++) {
      const { value } = await it.next();
      assert.ok(value !== undefined);
      seen.push([Number(value.index), value.operatorId, value.outputs === undefined ? undefined : toJson(ValueSchema, value.outputs)]);
      assert.equal(checkSignature(receiptJson(value.receipt)), null);
    }
    assert.deepEqual(seen, [
      [from, 'echo', { text: 'a' }],
      [from + 2, 'echo', { text: 'b' }],
    ]);

    // Live: a filtered-out execution is skipped, the next echo arrives.
    const nextLive = it.next();
    await c.executeOperator({ operatorId: 'counter.add', inputs: { key: 'stream', delta: 1 } });
    const live = await c.executeOperator({ operatorId: 'echo', inputs: { text: 'live' } });
    const { value } = await nextLive;
    assert.equal(value?.operatorId, 'echo');
    assert.equal(value?.receipt?.receiptId, live.receiptId);
    assert.equal(backend.lastMaxBuffered, STREAM_BUFFER);

    // Cancel: the server-side stream ends and releases its backend iterator.
    abort.abort();
    await closed;
    assert.equal(backend.openStreams, 0);
  });

  test(`a reader that falls more than the buffer limit (${STREAM_BUFFER}) behind loses nothing and sees order kept`, async () => {
    const c = client();
    const from = backend.size;
    const abort = new AbortController();
    const it = c.streamResults({ fromIndex: BigInt(from) }, { signal: abort.signal })[Symbol.asyncIterator]();
    const first = it.next();
    // Large results fill HTTP/2 flow control, so the server's writes stall and the
    // backend's live buffer overflows while the reader is not reading.
    const pad = 'x'.repeat(32 * 1024);
    const WRITES = 12 * STREAM_BUFFER;
    for (let i = 0; i < WRITES; i++) await c.executeOperator({ operatorId: 'echo', inputs: { i, pad } });
    const indexes = [Number((await first).value?.index)];
    while (indexes.length < WRITES) {
      const { value } = await it.next();
      assert.ok(value !== undefined);
      assert.equal((value.outputs === undefined ? undefined : toJson(ValueSchema, value.outputs) as { i: number })?.i, indexes.length);
      indexes.push(Number(value.index));
    }
    assert.deepEqual(indexes, Array.from({ length: WRITES }, (_, k) => from + k));
    abort.abort();
    await allStreamsClosed(backend);
  });

  test('needs the read scope and valid filters', async () => {
    await rejectsWith(drain(client({}).streamResults({})), Code.Unauthenticated);
    await rejectsWith(drain(client().streamResults({ operatorIds: ['bad id'] })), Code.InvalidArgument);
    await rejectsWith(drain(client().streamResults({ fromIndex: 2n ** 60n })), Code.InvalidArgument);
  });

  test(`at most ${MAX_STREAMS} streams are open at once; one more answers RESOURCE_EXHAUSTED`, async () => {
    const abort = new AbortController();
    const c = client();
    const opened: Array<Promise<unknown>> = [];
    for (let i = 0; i < MAX_STREAMS; i++) {
      const isOpen = once(backend.events, 'stream-opened');
      opened.push(drain(c.streamResults({ fromIndex: BigInt(backend.size) }, { signal: abort.signal })).catch(() => undefined));
      await isOpen;
    }
    await rejectsWith(drain(c.streamResults({})), Code.ResourceExhausted);
    const allClosed = allStreamsClosed(backend);
    abort.abort();
    await Promise.all(opened);
    await allClosed;
    // The slots are free again.
    const again = new AbortController();
    const isOpen = once(backend.events, 'stream-opened');
    const s = drain(client().streamResults({ fromIndex: BigInt(backend.size) }, { signal: again.signal })).catch(() => undefined);
    await isOpen;
    again.abort();
    await s;
  });
});

describe('StreamResults and idle timeouts', () => {
  test('a quiet stream outlives the server idle timeout (gRPC on HTTP/2, Connect on HTTP/1.1)', async () => {
    const IDLE_MS = 300;
    const quiet = await buildApi({
      backend,
      auth: await KeyStoreAuthenticator.open({ tokens: [{ name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] }] }),
      tls: { key: readFileSync(devCa.serverKey), cert: readFileSync(devCa.serverCert), ca: caPem },
      timeouts: { idleMs: IDLE_MS },
    });
    const abort = new AbortController();
    try {
      await quiet.listen({ host: '127.0.0.1', port: 0 });
      const from = BigInt(backend.size);
      const firsts = [];
      for (const kind of ['grpc', 'connect'] as const) {
        const isOpen = once(backend.events, 'stream-opened');
        const it = client({ token: EXEC_TOKEN, port: portOf(quiet), kind }).streamResults({ fromIndex: from }, { signal: abort.signal })[Symbol.asyncIterator]();
        firsts.push(it.next());
        await isOpen;
      }
      // Nothing happens for several idle periods: this test is about time passing.
      await new Promise((r) => setTimeout(r, 4 * IDLE_MS));
      const done = await client().executeOperator({ operatorId: 'echo', inputs: {} });
      for (const first of firsts) assert.equal((await first).value?.receipt?.receiptId, done.receiptId);
    } finally {
      abort.abort();
      await quiet.close();
    }
  });
});

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it);
}

describe('stock gRPC client (python3-grpcio)', () => {
  before(assertPythonGrpc);

  test('executes and reads streamed results with a bearer token', async () => {
    const from = backend.size;
    const out = await runPython(['--token', EXEC_TOKEN, '--execute', 'echo', '{"text":"py1"}', '--execute', 'echo', '{"text":"py2"}', '--stream', '2', '--from-index', String(from), '--filter', 'echo']);
    const [first, second] = out.execute;
    assert.ok(first !== undefined && !('error' in first), JSON.stringify(first));
    assert.equal(first.status, 'success');
    assert.deepEqual(first.outputs, { text: 'py1' });
    assert.equal(first.receipt.receipt_id, first.receipt_id);
    assert.ok(second !== undefined && !('error' in second));
    assert.ok(Array.isArray(out.stream), JSON.stringify(out.stream));
    assert.deepEqual(out.stream.map((r) => [Number(r.index ?? 0), r.operator_id, r.outputs]), [
      [from, 'echo', { text: 'py1' }],
      [from + 1, 'echo', { text: 'py2' }],
    ]);
  });

  test('gets INVALID_ARGUMENT, NOT_FOUND and UNAUTHENTICATED as gRPC status codes', async () => {
    const out = await runPython(['--token', EXEC_TOKEN, '--execute', 'counter.add', '{"key":"k","delta":"x"}', '--execute', 'nope', '{}']);
    assert.deepEqual(out.execute.map((r) => ('error' in r ? [r.error.code, r.error.hypersync_code] : 'ok')), [
      ['INVALID_ARGUMENT', 'INVALID_INPUT'],
      ['NOT_FOUND', 'UNKNOWN_OPERATOR'],
    ]);
    const anon = await runPython(['--execute', 'echo', '{"text":"x"}', '--stream', '1']);
    assert.equal(anon.execute[0] !== undefined && 'error' in anon.execute[0] ? anon.execute[0].error.code : 'ok', 'UNAUTHENTICATED');
    assert.ok(anon.stream !== null && 'error' in anon.stream && anon.stream.error.code === 'UNAUTHENTICATED');
  });

  test('authenticates with a client certificate from the cluster CA (mTLS)', async () => {
    const from = backend.size;
    const out = await runPython(['--cert', clientCert.certPath, '--key', clientCert.keyPath, '--execute', 'echo', '{"text":"mtls"}', '--stream', '1', '--from-index', String(from)]);
    const [r] = out.execute;
    assert.ok(r !== undefined && !('error' in r), JSON.stringify(r));
    assert.deepEqual(r.outputs, { text: 'mtls' });
    assert.equal(backend.lastPrincipal, `cert:${DEV_CLIENT_CN}`);
    assert.ok(Array.isArray(out.stream) && out.stream[0]?.operator_id === 'echo');
  });

  test('refuses a client certificate from another CA', async () => {
    const out = await runPython(['--cert', rogueCert.certPath, '--key', rogueCert.keyPath, '--execute', 'echo', '{"text":"x"}']);
    assert.equal(out.execute[0] !== undefined && 'error' in out.execute[0] ? out.execute[0].error.code : 'ok', 'UNAUTHENTICATED');
  });
});
