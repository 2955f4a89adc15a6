// The gRPC API as its clients see it: the Connect client (gRPC over HTTP/2 TLS, plus Connect
// and gRPC-Web on the same port) and a stock Python gRPC client (Debian's python3-grpcio),
// with a bearer token and with mTLS. Execute, idempotent retry, the error table, deadlines,
// StreamResults replay + live + filter + cancel, and the stream limits.
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { once, EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { create, toBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema, ValueSchema, file_google_protobuf_struct } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import type { Json } from '../../src/ico/types.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import type { OperatorInfo } from '../../src/statemachine/types.ts';
import { createApiKey, KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { ApiError, type ApiBackend, type ClusterStatus, type ExecuteRequest, type ExecuteResult, type ResultRecord } from '../../relay/api/backend.ts';
import { ERROR_CODE_TRAILER, registerGrpc } from '../../relay/api/grpc.ts';
import { HyperSync, file_hypersync_v1_hypersync } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { buildApi } from '../../relay/api/server.ts';
import { DEV_CLIENT_CN, generateDevCa, type DevCaFiles } from '../../relay/api/tls.ts';

const PYTHON = '/usr/bin/python3';
const PY_CLIENT = new URL('../interop/grpc_client.py', import.meta.url).pathname;
const STREAM_BUFFER = 8;
const EXEC_TOKEN = 'exec-token-0123456789abcdef';
const OTHER_TOKEN = 'other-token-0123456789abcdef';
const READ_TOKEN = 'read-token-0123456789abcdef';
const MAX_STREAMS = 3;

// ---------------------------------------------------------------------------------------------
// A backend with the ApiBackend contract's observable behaviour (LocalBackend replaces it once
// src/statemachine lands): operators `echo` (inputs {text: string}), `count`, `slow`, `fail`,
// `boom`; idempotency per (principal, key); stream() replays then follows appends.

class TestBackend implements ApiBackend {
  readonly consensus = 'none' as const;
  readonly records: ResultRecord[] = [];
  readonly events = new EventEmitter();
  executions = 0;
  openStreams = 0;
  lastTimeoutMs: number | undefined;
  lastPrincipal: string | undefined;
  lastMaxBuffered: number | undefined;
  private readonly idempotent = new Map<string, ExecuteResult>();

  operators(): OperatorInfo[] {
    return [];
  }

  async execute(req: ExecuteRequest): Promise<ExecuteResult> {
    this.lastTimeoutMs = req.options.timeout_ms;
    this.lastPrincipal = req.principal;
    const key = req.options.idempotency_key === undefined ? undefined : `${req.principal}\0${req.options.idempotency_key}`;
    const stored = key === undefined ? undefined : this.idempotent.get(key);
    if (stored !== undefined) return { ...stored, replayed: true };
    const inputs = req.inputs;
    let outputs: Json;
    switch (req.operator_id) {
      case 'echo': {
        const text = typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs) ? inputs['text'] : undefined;
        if (typeof text !== 'string') throw new ApiError('INVALID_INPUT', 'inputs/text must be a string', { path: '/text' });
        outputs = { text, length: text.length };
        break;
      }
      case 'count':
        outputs = this.records.length;
        break;
      case 'slow':
        await new Promise((r) => setTimeout(r, req.options.timeout_ms ?? 5000));
        throw new ApiError('DEADLINE_EXCEEDED', 'consensus did not commit in time');
      case 'fail':
        throw new ApiError('OPERATOR_FAILED', 'the operator refused');
      case 'boom':
        throw new Error('secret internals: /etc/hypersync/keys at line 42');
      default:
        throw new ApiError('UNKNOWN_OPERATOR', `no operator ${req.operator_id}`);
    }
    this.executions++;
    const record = this.append(req.operator_id, outputs);
    const result: ExecuteResult = { outputs, receipt: record.receipt, execution_time_ms: 1.5, replayed: false };
    if (key !== undefined) this.idempotent.set(key, result);
    return result;
  }

  append(operator_id: string, outputs: Json): ResultRecord {
    const index = this.records.length;
    const digest = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;
    const receipt: Receipt = {
      receipt_id: `receipt_${createHash('sha256').update(`r${index}`).digest('hex')}`,
      timestamp: new Date(1_700_000_000_000 + index).toISOString(),
      operation: { type: 'operator_execution', operator_id, inputs_hash: digest(`in${index}`), outputs_hash: digest(JSON.stringify(outputs)) },
      prev_receipt_hash: index === 0 ? `sha256:${'0'.repeat(64)}` : digest(`r${index - 1}`),
      signer: '12D3KooWTestSigner',
      index,
      signature: 'c2ln',
    };
    const record: ResultRecord = { index, operator_id, outputs, receipt };
    this.records.push(record);
    this.events.emit('append');
    return record;
  }

  async receipt(): Promise<undefined> {
    return undefined;
  }
  async receipts(): Promise<Receipt[]> {
    return [];
  }
  treeHead(): never {
    throw new Error('not used by the gRPC API');
  }
  cluster(): ClusterStatus {
    return { consensus: 'none', self: 'test', leader: 'test', term: 0, commit_index: 0, applied_index: 0, members: [], peers: 0 };
  }

  async *stream(from: number, filter: readonly string[], signal: AbortSignal, maxBuffered?: number): AsyncIterable<ResultRecord> {
    this.lastMaxBuffered = maxBuffered;
    this.openStreams++;
    this.events.emit('stream-opened');
    try {
      let next = from;
      while (!signal.aborted) {
        while (next < this.records.length) {
          const r = this.records[next++]!;
          if (filter.length === 0 || filter.includes(r.operator_id)) yield r;
        }
        try {
          await once(this.events, 'append', { signal });
        } catch {
          return;
        }
      }
    } finally {
      this.openStreams--;
      this.events.emit('stream-closed');
    }
  }

  async close(): Promise<void> {}
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
let backend: TestBackend;

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

interface PyError {
  error: { code: string; message: string; hypersync_code: string | null };
}
type PyExecute = { status: string; outputs: Json; receipt_id: string; receipt: { receipt_id: string; index?: string; operation: { operator_id: string } }; replayed?: boolean } | PyError;
interface PyOutput {
  execute: PyExecute[];
  stream: Array<{ index?: string; operator_id: string; outputs?: Json }> | PyError | null;
}

function runPython(args: string[]): Promise<PyOutput> {
  const base = ['--target', `127.0.0.1:${port}`, '--ca', devCa.ca, '--descriptors', descriptorsPath];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [PY_CLIENT, ...base, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`python client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as PyOutput);
    });
  });
}

/** The interop tests need Debian's python3-grpcio and python3-protobuf (.ci/run installs them). */
function assertPythonGrpc(): void {
  const ok = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status === 0;
  assert.ok(ok, `${PYTHON} with grpc and google.protobuf is required: apt-get install -y python3-grpcio python3-protobuf`);
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
  // The Python client builds its message classes from this (the same descriptors as the
  // generated TypeScript), so no protoc is needed on the machine.
  descriptorsPath = join(dir, 'hypersync.binpb');
  const fds = create(FileDescriptorSetSchema, { file: [file_google_protobuf_struct.proto, file_hypersync_v1_hypersync.proto] });
  writeFileSync(descriptorsPath, toBinary(FileDescriptorSetSchema, fds));

  backend = new TestBackend();
  const auth = new KeyStoreAuthenticator({
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
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('ExecuteOperator (Connect client, gRPC over HTTP/2 TLS)', () => {
  test('executes an operator and returns outputs, receipt id and the signed receipt', async () => {
    const res = await client().executeOperator({ operatorId: 'echo', inputs: { text: 'hello' } });
    assert.equal(res.status, 'success');
    assert.deepEqual(res.outputs === undefined ? undefined : toJson(ValueSchema, res.outputs), { text: 'hello', length: 5 });
    assert.match(res.receiptId, /^receipt_[0-9a-f]{64}$/);
    assert.equal(res.receipt?.receiptId, res.receiptId);
    assert.equal(res.receipt?.operation?.operatorId, 'echo');
    assert.equal(res.receipt?.operation?.type, 'operator_execution');
    assert.match(res.receipt?.operation?.outputsHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(typeof res.executionTimeMs, 'number');
    assert.equal(res.replayed, false);
    assert.equal(backend.lastPrincipal, 'token:exec');
  });

  test('a retry with the same idempotency key returns the same receipt and executes once', async () => {
    const c = client();
    const before = backend.executions;
    const first = await c.executeOperator({ operatorId: 'echo', inputs: { text: 'once' }, options: { idempotencyKey: 'k-1' } });
    const retry = await c.executeOperator({ operatorId: 'echo', inputs: { text: 'once' }, options: { idempotencyKey: 'k-1' } });
    assert.equal(retry.receiptId, first.receiptId);
    assert.equal(retry.replayed, true);
    assert.equal(backend.executions, before + 1);
    // The key is scoped to the caller: another principal's same key is a new execution.
    const other = await client({ token: OTHER_TOKEN }).executeOperator({ operatorId: 'echo', inputs: { text: 'once' }, options: { idempotencyKey: 'k-1' } });
    assert.notEqual(other.receiptId, first.receiptId);
  });

  test('inputs that fail the schema answer INVALID_ARGUMENT naming the path', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'echo', inputs: { text: 5 } }), Code.InvalidArgument, (e) => {
      assert.match(e.rawMessage, /text/);
      assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'INVALID_INPUT');
    });
  });

  test('bad options and operator ids answer INVALID_ARGUMENT before the backend runs', async () => {
    const c = client();
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { consensus: 'paxos' } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { read: 'eventually' } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'echo', inputs: { text: 'x' }, options: { timeoutMs: 3_600_000 } }), Code.InvalidArgument);
    await rejectsWith(c.executeOperator({ operatorId: 'not an id!', inputs: {} }), Code.InvalidArgument);
  });

  test('an unknown operator answers NOT_FOUND', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'no.such.op', inputs: {} }), Code.NotFound, (e) => {
      assert.equal(e.metadata.get(ERROR_CODE_TRAILER), 'UNKNOWN_OPERATOR');
    });
  });

  test('an operator that refuses answers FAILED_PRECONDITION', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'fail', inputs: {} }), Code.FailedPrecondition);
  });

  test('an unexpected failure answers INTERNAL without its message or stack', async () => {
    await rejectsWith(client().executeOperator({ operatorId: 'boom', inputs: {} }), Code.Internal, (e) => {
      assert.equal(e.rawMessage, 'internal error');
      assert.doesNotMatch(JSON.stringify([e.message, [...e.metadata]]), /secret|etc\/hypersync|at line/);
    });
  });

  test('the gRPC deadline bounds the execution and answers DEADLINE_EXCEEDED', async () => {
    const started = Date.now();
    await rejectsWith(client().executeOperator({ operatorId: 'slow', inputs: {} }, { timeoutMs: 300 }), Code.DeadlineExceeded);
    assert.ok(backend.lastTimeoutMs !== undefined && backend.lastTimeoutMs > 0 && backend.lastTimeoutMs <= 300, `timeout_ms ${backend.lastTimeoutMs}`);
    assert.ok(Date.now() - started < 3000);
    // An explicit shorter timeout_ms wins over a longer deadline.
    await rejectsWith(client().executeOperator({ operatorId: 'slow', inputs: {}, options: { timeoutMs: 100 } }, { timeoutMs: 5000 }), Code.DeadlineExceeded);
    assert.equal(backend.lastTimeoutMs, 100);
  });
});

describe('authentication', () => {
  test('no credentials, or a wrong token, answer UNAUTHENTICATED and never reach the backend', async () => {
    const before = backend.executions;
    await rejectsWith(client({}).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
    await rejectsWith(client({ token: 'wrong' }).executeOperator({ operatorId: 'echo', inputs: { text: 'x' } }), Code.Unauthenticated);
    assert.equal(backend.executions, before);
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
      auth: new KeyStoreAuthenticator({ tokens: [{ name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] }], ratePerSecond: 0.01, rateBurst: 1 }),
      tls: { key: readFileSync(devCa.serverKey), cert: readFileSync(devCa.serverCert), ca: caPem },
    });
    try {
      await limited.listen({ host: '127.0.0.1', port: 0 });
      const c = client({ token: EXEC_TOKEN, port: portOf(limited) });
      await c.executeOperator({ operatorId: 'count', inputs: {} });
      await rejectsWith(c.executeOperator({ operatorId: 'count', inputs: {} }), Code.ResourceExhausted, (e) => {
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
    const viaConnect = await client({ token: EXEC_TOKEN, kind: 'connect' }).executeOperator({ operatorId: 'count', inputs: {} });
    const viaWeb = await client({ token: EXEC_TOKEN, kind: 'grpc-web' }).executeOperator({ operatorId: 'count', inputs: {} });
    assert.equal(viaConnect.status, 'success');
    assert.equal(viaWeb.receipt?.index, (viaConnect.receipt?.index ?? 0n) + 1n);
    await rejectsWith(client({ kind: 'connect' }).executeOperator({ operatorId: 'count', inputs: {} }), Code.Unauthenticated);
  });
});

describe('StreamResults', () => {
  test('replays from the requested index, then streams live results, filtered by operator', async () => {
    const c = client();
    for (const text of ['a', 'b']) await c.executeOperator({ operatorId: 'echo', inputs: { text } });
    await c.executeOperator({ operatorId: 'count', inputs: {} });
    const from = backend.records.length - 3;
    const expectedReplay = backend.records.slice(from).filter((r) => r.operator_id === 'echo').map((r) => r.index);

    const abort = new AbortController();
    const closed = once(backend.events, 'stream-closed');
    const seen: Array<{ index: number; operatorId: string; outputs: unknown }> = [];
    const it = c.streamResults({ operatorIds: ['echo'], fromIndex: BigInt(from) }, { signal: abort.signal })[Symbol.asyncIterator]();
    for (let i = 0; i < expectedReplay.length; i++) {
      const { value } = await it.next();
      assert.ok(value !== undefined);
      seen.push({ index: Number(value.index), operatorId: value.operatorId, outputs: value.outputs === undefined ? undefined : toJson(ValueSchema, value.outputs) });
    }
    assert.deepEqual(seen.map((s) => s.index), expectedReplay);
    assert.deepEqual(seen.map((s) => s.outputs), [{ text: 'a', length: 1 }, { text: 'b', length: 1 }]);

    // Live: a filtered-out execution is skipped, the next echo arrives.
    const nextLive = it.next();
    await c.executeOperator({ operatorId: 'count', inputs: {} });
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
      opened.push(drain(c.streamResults({ fromIndex: BigInt(backend.records.length) }, { signal: abort.signal })).catch(() => undefined));
      await isOpen;
    }
    await rejectsWith(drain(c.streamResults({})), Code.ResourceExhausted);
    const allClosed = new Promise<void>((resolve) => {
      const check = (): void => {
        if (backend.openStreams === 0) resolve();
        else backend.events.once('stream-closed', check);
      };
      check();
    });
    abort.abort();
    await Promise.all(opened);
    await allClosed;
    // The slots are free again.
    const again = new AbortController();
    const isOpen = once(backend.events, 'stream-opened');
    const s = drain(client().streamResults({ fromIndex: BigInt(backend.records.length) }, { signal: again.signal })).catch(() => undefined);
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
      auth: new KeyStoreAuthenticator({ tokens: [{ name: 'exec', token: EXEC_TOKEN, scopes: ['execute', 'read'] }] }),
      tls: { key: readFileSync(devCa.serverKey), cert: readFileSync(devCa.serverCert), ca: caPem },
      timeouts: { idleMs: IDLE_MS },
    });
    const abort = new AbortController();
    try {
      await quiet.listen({ host: '127.0.0.1', port: 0 });
      const from = BigInt(backend.records.length);
      const firsts = [];
      for (const kind of ['grpc', 'connect'] as const) {
        const isOpen = once(backend.events, 'stream-opened');
        const it = client({ token: EXEC_TOKEN, port: portOf(quiet), kind }).streamResults({ fromIndex: from }, { signal: abort.signal })[Symbol.asyncIterator]();
        firsts.push(it.next());
        await isOpen;
      }
      // Nothing happens for several idle periods: this test is about time passing.
      await new Promise((r) => setTimeout(r, 4 * IDLE_MS));
      const done = await client().executeOperator({ operatorId: 'count', inputs: {} });
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
    const from = backend.records.length;
    const out = await runPython(['--token', EXEC_TOKEN, '--execute', 'echo', '{"text":"py1"}', '--execute', 'echo', '{"text":"py2"}', '--stream', '2', '--from-index', String(from), '--filter', 'echo']);
    const [first, second] = out.execute;
    assert.ok(first !== undefined && !('error' in first), JSON.stringify(first));
    assert.equal(first.status, 'success');
    assert.deepEqual(first.outputs, { text: 'py1', length: 3 });
    assert.equal(first.receipt.receipt_id, first.receipt_id);
    assert.ok(second !== undefined && !('error' in second));
    assert.ok(Array.isArray(out.stream), JSON.stringify(out.stream));
    assert.deepEqual(out.stream.map((r) => [Number(r.index ?? 0), r.operator_id, r.outputs]), [
      [from, 'echo', { text: 'py1', length: 3 }],
      [from + 1, 'echo', { text: 'py2', length: 3 }],
    ]);
  });

  test('gets INVALID_ARGUMENT, NOT_FOUND and UNAUTHENTICATED as gRPC status codes', async () => {
    const out = await runPython(['--token', EXEC_TOKEN, '--execute', 'echo', '{"text":1}', '--execute', 'nope', '{}']);
    assert.deepEqual(out.execute.map((r) => ('error' in r ? [r.error.code, r.error.hypersync_code] : 'ok')), [
      ['INVALID_ARGUMENT', 'INVALID_INPUT'],
      ['NOT_FOUND', 'UNKNOWN_OPERATOR'],
    ]);
    const anon = await runPython(['--execute', 'echo', '{"text":"x"}', '--stream', '1']);
    assert.equal(anon.execute[0] !== undefined && 'error' in anon.execute[0] ? anon.execute[0].error.code : 'ok', 'UNAUTHENTICATED');
    assert.ok(anon.stream !== null && 'error' in anon.stream && anon.stream.error.code === 'UNAUTHENTICATED');
  });

  test('authenticates with a client certificate from the cluster CA (mTLS)', async () => {
    const from = backend.records.length;
    const out = await runPython(['--cert', clientCert.certPath, '--key', clientCert.keyPath, '--execute', 'echo', '{"text":"mtls"}', '--stream', '1', '--from-index', String(from)]);
    const [r] = out.execute;
    assert.ok(r !== undefined && !('error' in r), JSON.stringify(r));
    assert.deepEqual(r.outputs, { text: 'mtls', length: 4 });
    assert.equal(backend.lastPrincipal, `cert:${DEV_CLIENT_CN}`);
    assert.ok(Array.isArray(out.stream) && out.stream[0]?.operator_id === 'echo');
  });

  test('refuses a client certificate from another CA', async () => {
    const out = await runPython(['--cert', rogueCert.certPath, '--key', rogueCert.keyPath, '--execute', 'echo', '{"text":"x"}']);
    assert.equal(out.execute[0] !== undefined && 'error' in out.execute[0] ? out.execute[0].error.code : 'ok', 'UNAUTHENTICATED');
  });
});
