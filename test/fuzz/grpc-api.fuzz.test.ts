// The gRPC service (hypersync.v1.HyperSync on Connect, on the relay's HTTPS port) fed raw HTTP/2
// requests no stock client would send: every protocol's content types and some that are none,
// compression headers that lie, deadlines, credentials, and bodies built from real request
// messages (binary or JSON) then mutated byte by byte, framed with honest or lying lengths and
// flags, compressed or not, or plain random bytes. No answer is a server fault (gRPC UNKNOWN,
// INTERNAL, UNAVAILABLE or DATA_LOSS, or an HTTP 5xx), every refusal is a gRPC status (or
// Connect error) with a message, and the server keeps serving.
//
// The backend is the real EngineBackend (single engine), except that StreamResults ends after replaying what
// exists instead of following live executions: a fuzz case must end, and what is fuzzed here
// is the service's decoding and checking, not the live follow (tested in api-grpc.test.ts).
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { create, toBinary, toJsonString, type JsonValue } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import type { OutputViewer, ResultRecord } from '../../relay/api/backend.ts';
import { OperatorRequestSchema, StreamRequestSchema } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { ERROR_CODE_TRAILER } from '../../relay/api/grpc.ts';
import { HTTP_STATUS } from '../../relay/api/errors.ts';
import { buildApi } from '../../relay/api/server.ts';
import { generateDevCa } from '../../relay/api/tls.ts';
import { grpcFrame, grpcStatusFields, h2Call, type H2Reply } from '../harness/h2-raw.ts';
import { tempDir } from '../harness/processes.ts';
import { byteMutations } from './decoder-harness.ts';
import { BackendWrapper } from '../harness/backend-wrapper.ts';
import { FUZZ_READ_TOKEN, FUZZ_TOKEN, openFuzzAuth, openMemoryBackend } from './api-fixture.ts';
import { fuzzParameters, Tally } from './fuzz-params.ts';

const TOKEN = FUZZ_TOKEN;
const READ_TOKEN = FUZZ_READ_TOKEN;
const SERVICE = '/hypersync.v1.HyperSync/';

/** Records one fuzzed StreamResults call replays at most (enough to exercise message encoding). */
const STREAM_REPLAY_LIMIT = 8;

/** An EngineBackend whose result streams replay what exists (up to a few records), then end. */
class FiniteStreams extends BackendWrapper {
  override async *stream(from: number, filter: readonly string[], _viewer: OutputViewer, signal: AbortSignal): AsyncIterable<ResultRecord> {
    const end = this.inner.treeHead().size;
    for (const receipt of await this.inner.receipts(from, Math.max(0, Math.min(STREAM_REPLAY_LIMIT, end - from)))) {
      if (signal.aborted) return;
      if (filter.length > 0 && !filter.includes(receipt.operation.operator_id)) continue;
      yield { index: receipt.index, operator_id: receipt.operation.operator_id, outputs: null, receipt };
    }
  }
}

let app: FastifyInstance;
let auth: KeyStoreAuthenticator;
let backend: FiniteStreams;
let session: ClientHttp2Session;
let base: string;

before(async () => {
  const dir = tempDir('hypersync-fuzz-grpc-');
  const tls = await generateDevCa(join(dir, 'tls'));
  auth = await openFuzzAuth();
  backend = new FiniteStreams(await openMemoryBackend());
  app = await buildApi({ backend, auth, tls: { key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert), ca: readFileSync(tls.ca) }, logger: pino({ level: 'silent' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  base = `https://127.0.0.1:${address.port}`;
  session = http2Connect(base, { ca: readFileSync(tls.ca), settings: { maxConcurrentStreams: 100 } });
});

after(async () => {
  session?.close();
  await app?.close();
  auth?.close();
  await backend?.close();
});

type Family = 'grpc' | 'grpc-web' | 'connect-stream' | 'connect-unary' | 'other';

const CONTENT_TYPES: ReadonlyArray<[string, Family, 'proto' | 'json']> = [
  ['application/grpc', 'grpc', 'proto'],
  ['application/grpc+proto', 'grpc', 'proto'],
  ['application/grpc+json', 'grpc', 'json'],
  ['application/grpc-web', 'grpc-web', 'proto'],
  ['application/grpc-web+proto', 'grpc-web', 'proto'],
  ['application/grpc-web+json', 'grpc-web', 'json'],
  ['application/grpc-web-text', 'grpc-web', 'proto'],
  ['application/connect+proto', 'connect-stream', 'proto'],
  ['application/connect+json', 'connect-stream', 'json'],
  ['application/proto', 'connect-unary', 'proto'],
  ['application/json', 'connect-unary', 'json'],
  ['application/json; charset=utf-8', 'connect-unary', 'json'],
  ['application/grpc+xml', 'other', 'proto'],
  ['text/plain', 'other', 'json'],
];

const printable = fc.array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: 24 }).map((codes) => String.fromCharCode(...codes).trim());

const jsonObject = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) as fc.Arbitrary<Record<string, JsonValue>>;

const operatorRequest = fc.record({
  operatorId: fc.oneof(fc.constantFrom('echo', 'kv.put', 'kv.get', 'counter.add', 'sha256', 'no.such.op', '', 'not an id!', 'a'.repeat(200)), fc.string({ maxLength: 20 })),
  inputs: fc.oneof(jsonObject, fc.constant({ key: 'k', value: 1 }), fc.constant({ key: 'k', delta: 2 })),
  options: fc.option(
    fc.record({
      consensus: fc.constantFrom('', 'none', 'raft', 'pbft', 'paxos'),
      timeoutMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
      idempotencyKey: fc.oneof(fc.constant(''), fc.string({ maxLength: 140 })),
      read: fc.constantFrom('', 'log', 'linearizable', 'eventual'),
    }),
    { nil: undefined },
  ),
});

const streamRequest = fc.record({
  fromIndex: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  operatorIds: fc.array(fc.oneof(fc.constantFrom('echo', 'kv.put', 'bad id'), fc.string({ maxLength: 10 })), { maxLength: 70 }),
});

type Framing = { kind: 'honest' } | { kind: 'lying-length'; delta: number } | { kind: 'two-frames' } | { kind: 'flags'; flags: number } | { kind: 'trailing'; bytes: Uint8Array } | { kind: 'empty' };

const framing: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'honest' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lying-length' as const), delta: fc.oneof(fc.integer({ min: -8, max: 8 }), fc.constant(2 ** 31), fc.constant(2 ** 32 - 1)) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'two-frames' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flags' as const), flags: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trailing' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
);

const caseArb = fc.record({
  /** A well-formed call (so the success paths are fuzzed too), its inputs still random. */
  clean: fc.nat({ max: 9 }).map((n) => n < 3),
  method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('ExecuteOperator', 'ExecuteOperator', 'StreamResults') }, { weight: 1, arbitrary: fc.constantFrom('Nope', 'executeoperator', 'ExecuteOperator/x', '') }),
  otherService: fc.nat({ max: 19 }).map((n) => n === 0),
  contentType: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: printable.map((ct): [string, Family, 'proto' | 'json'] => [ct, 'other', 'proto']) }),
  encoding: fc.constantFrom(undefined, undefined, undefined, 'identity', 'gzip', 'br', 'deflate', 'zstd'),
  compress: fc.constantFrom('none', 'none', 'as-declared', 'gzip', 'br', 'flag-only'),
  timeout: fc.constantFrom(undefined, undefined, '10S', '30000m', '1H', 'abc', '-1S', '999999999S', '1n'),
  connectTimeout: fc.constantFrom(undefined, undefined, '30000', 'abc', '-5', '99999999999999'),
  connectVersion: fc.constantFrom('1', '1', '1', undefined, '2'),
  te: fc.constantFrom('trailers', 'trailers', undefined),
  credentials: fc.constantFrom('token', 'token', 'token', 'reader', 'none', 'garbage'),
  execute: operatorRequest,
  stream: streamRequest,
  mutate: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: byteMutations(1) }),
  framing,
  random: fc.option(fc.uint8Array({ maxLength: 200 }), { freq: 8, nil: undefined }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer C> ? C : never;

function messageBytes(c: Case, codec: 'proto' | 'json'): Uint8Array {
  if (c.method.startsWith('StreamResults')) {
    const m = create(StreamRequestSchema, c.stream);
    return codec === 'json' ? new TextEncoder().encode(toJsonString(StreamRequestSchema, m)) : toBinary(StreamRequestSchema, m);
  }
  const m = create(OperatorRequestSchema, { operatorId: c.execute.operatorId, inputs: c.execute.inputs, ...(c.execute.options === undefined ? {} : { options: c.execute.options }) });
  return codec === 'json' ? new TextEncoder().encode(toJsonString(OperatorRequestSchema, m)) : toBinary(OperatorRequestSchema, m);
}

function compressed(bytes: Uint8Array, c: Case): { bytes: Uint8Array; flagged: boolean } {
  switch (c.compress) {
    case 'none':
      return { bytes, flagged: false };
    case 'as-declared':
      if (c.encoding === 'gzip') return { bytes: gzipSync(bytes), flagged: true };
      if (c.encoding === 'br') return { bytes: brotliCompressSync(bytes), flagged: true };
      return { bytes, flagged: false };
    case 'gzip':
      return { bytes: gzipSync(bytes), flagged: true };
    case 'br':
      return { bytes: brotliCompressSync(bytes), flagged: true };
    case 'flag-only':
      return { bytes, flagged: true };
  }
}

/** The case with every fuzzed dimension but the inputs set to what a stock client sends. */
function cleaned(c: Case): Case {
  const method = c.method.startsWith('Stream') ? 'StreamResults' : 'ExecuteOperator';
  const contentType = c.contentType[1] === 'other' || c.contentType[0] === 'application/grpc-web-text' ? CONTENT_TYPES[0]! : c.contentType;
  const execute = { ...c.execute, operatorId: ['echo', 'sha256', 'kv.get', 'kv.put', 'counter.add', 'no.such.op'].includes(c.execute.operatorId) ? c.execute.operatorId : 'echo', options: undefined };
  const stream = { fromIndex: c.stream.fromIndex % 64n, operatorIds: c.stream.operatorIds.filter((id) => /^[a-z.]+$/.test(id)).slice(0, 8) };
  return { ...c, method, otherService: false, contentType, encoding: undefined, compress: 'none', timeout: undefined, connectTimeout: undefined, connectVersion: '1', te: 'trailers', credentials: 'token', execute, stream, mutate: undefined, framing: { kind: 'honest' }, random: undefined };
}

function request(fuzzed: Case): { headers: Record<string, string>; body: Buffer; family: Family } {
  const c = fuzzed.clean ? cleaned(fuzzed) : fuzzed;
  const [contentType, family, codec] = c.contentType;
  const path = c.otherService ? `/hypersync.v1.Other/${c.method}` : `${SERVICE}${c.method}`;
  const headers: Record<string, string> = { ':path': path, 'content-type': contentType };
  if (c.te !== undefined) headers['te'] = c.te;
  if (c.credentials === 'token') headers['authorization'] = `Bearer ${TOKEN}`;
  if (c.credentials === 'reader') headers['authorization'] = `Bearer ${READ_TOKEN}`;
  if (c.credentials === 'garbage') headers['authorization'] = 'Bearer garbage-garbage-garbage';
  const enveloped = family === 'grpc' || family === 'grpc-web' || family === 'connect-stream' || family === 'other';
  if (c.encoding !== undefined) headers[family === 'connect-unary' ? 'content-encoding' : family === 'connect-stream' ? 'connect-content-encoding' : 'grpc-encoding'] = c.encoding;
  if (family === 'grpc' || family === 'grpc-web') {
    if (c.timeout !== undefined) headers['grpc-timeout'] = c.timeout;
  } else if (c.connectTimeout !== undefined) headers['connect-timeout-ms'] = c.connectTimeout;
  if (family.startsWith('connect') && c.connectVersion !== undefined) headers['connect-protocol-version'] = c.connectVersion;
  if (c.random !== undefined) return { headers, body: Buffer.from(c.random), family };
  let message = messageBytes(c, codec);
  const packed = compressed(message, c);
  message = packed.bytes;
  if (c.mutate !== undefined) message = c.mutate(message);
  if (!enveloped) return { headers, body: Buffer.from(message), family };
  const flags = packed.flagged ? 1 : 0;
  switch (c.framing.kind) {
    case 'honest':
      return { headers, body: grpcFrame(message, flags), family };
    case 'lying-length':
      return { headers, body: grpcFrame(message, flags, Math.max(0, message.length + c.framing.delta)), family };
    case 'two-frames':
      return { headers, body: Buffer.concat([grpcFrame(message, flags), grpcFrame(message, flags)]), family };
    case 'flags':
      return { headers, body: grpcFrame(message, c.framing.flags), family };
    case 'trailing':
      return { headers, body: Buffer.concat([grpcFrame(message, flags), Buffer.from(c.framing.bytes)]), family };
    case 'empty':
      return { headers, body: Buffer.alloc(0), family };
  }
}

const GRPC_OK = 0;
/** gRPC statuses that would mean the server failed, not the request. */
const SERVER_FAULTS = new Set<number>([Code.Unknown, Code.Internal, Code.Unavailable, Code.DataLoss]);
const CONNECT_FAULTS = new Set(['unknown', 'internal', 'unavailable', 'data_loss']);
const HYPERSYNC_CODES = new Set(Object.keys(HTTP_STATUS));

function statusOf(r: H2Reply): { grpc: number | null; message: string | undefined; hypersync: string | undefined } {
  const f = grpcStatusFields(r);
  return f === null ? { grpc: null, message: undefined, hypersync: undefined } : { grpc: Number(f['grpc-status']), message: f['grpc-message'] as string | undefined, hypersync: f[ERROR_CODE_TRAILER] as string | undefined };
}

function checkReply(c: Case, family: Family, r: H2Reply, tally: Tally): void {
  assert.ok(r.status >= 200 && r.status < 500, `HTTP ${r.status} for ${c.contentType[0]} ${c.method}`);
  if (family === 'grpc' || family === 'grpc-web') {
    if (r.status !== 200) {
      tally.add(`http:${r.status}`);
      return;
    }
    const s = statusOf(r);
    assert.ok(s.grpc !== null, `no grpc-status in a 200 answer to ${c.contentType[0]}`);
    assert.ok(s.grpc === GRPC_OK || s.grpc in Code, `grpc-status ${s.grpc} is not a gRPC code`);
    assert.ok(!SERVER_FAULTS.has(s.grpc), `server fault ${Code[s.grpc]}: ${decodeURIComponent(s.message ?? '')}`);
    if (s.grpc !== GRPC_OK) assert.ok(s.message !== undefined && s.message !== '', `status ${Code[s.grpc]} without a message`);
    if (s.hypersync !== undefined) assert.ok(HYPERSYNC_CODES.has(s.hypersync), `unknown ${ERROR_CODE_TRAILER} ${s.hypersync}`);
    tally.add(`grpc:${s.grpc === GRPC_OK ? 'OK' : Code[s.grpc]}`);
    return;
  }
  if (r.status !== 200 && r.body.length > 0 && /json/.test(String(r.headers['content-type']))) {
    const e = JSON.parse(r.body.toString('utf8')) as { code?: unknown; message?: unknown; status?: unknown; error?: { code?: unknown } };
    if (e.status === 'error') {
      // Not one of the service's routes: the REST error shape (e.g. ROUTE_NOT_FOUND).
      assert.ok(typeof e.error?.code === 'string' && HYPERSYNC_CODES.has(e.error.code), `REST error ${String(e.error?.code)}`);
      tally.add(`rest:${e.error.code}`);
      return;
    }
    assert.ok(typeof e.code === 'string' && !CONNECT_FAULTS.has(e.code), `connect error ${String(e.code)}: ${String(e.message)}`);
    assert.ok(typeof e.message === 'string' && e.message !== '', `connect error ${e.code} without a message`);
    tally.add(`connect:${e.code}`);
    return;
  }
  if (family === 'connect-stream' && r.status === 200 && r.body.length >= 5) {
    // The last enveloped message is the end-stream one (flag 0x02).
    let at = 0;
    let end: { error?: { code?: string } } | null = null;
    while (at + 5 <= r.body.length) {
      const length = r.body.readUInt32BE(at + 1);
      if ((r.body[at]! & 0b10) !== 0) end = JSON.parse(r.body.subarray(at + 5, at + 5 + length).toString('utf8')) as { error?: { code?: string } };
      at += 5 + length;
    }
    assert.ok(end !== null, 'a Connect stream without its end-stream message');
    const code = end.error?.code;
    assert.ok(code === undefined || !CONNECT_FAULTS.has(code), `connect stream error ${String(code)}`);
    tally.add(`connect-stream:${code ?? 'ok'}`);
    return;
  }
  tally.add(`http:${r.status}`);
}

test('gRPC service: raw HTTP/2 requests of every protocol, mutated, never get a server fault', async (t) => {
  const tally = new Tally();
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      assert.ok(!session.closed && !session.destroyed, 'the server closed the connection');
      const { headers, body, family } = request(c);
      const r = await h2Call(session, headers, body);
      checkReply(c, family, r, tally);
    }),
    fuzzParameters(),
  );
  t.diagnostic(`answers: ${tally.toString()}`);
  for (const key of ['grpc:OK', 'grpc:InvalidArgument', 'grpc:Unauthenticated', 'grpc:PermissionDenied', 'grpc:NotFound', 'grpc:ResourceExhausted', 'grpc:Unimplemented', 'connect:invalid_argument', 'connect-stream:ok']) {
    assert.ok(tally.get(key) > 0, `no case reached ${key}`);
  }
  // The server still serves a plain, valid call.
  const ok = await h2Call(session, { ':path': `${SERVICE}ExecuteOperator`, 'content-type': 'application/grpc+proto', te: 'trailers', authorization: `Bearer ${TOKEN}` }, grpcFrame(toBinary(OperatorRequestSchema, create(OperatorRequestSchema, { operatorId: 'echo', inputs: { after: true } }))));
  assert.equal(ok.trailers?.['grpc-status'], '0');
});
