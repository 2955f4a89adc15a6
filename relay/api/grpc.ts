// The gRPC front end of the relay API: service hypersync.v1.HyperSync served by Connect on the
// Fastify app's HTTPS port, so gRPC, gRPC-Web and Connect clients share the REST port. Every
// call is authenticated once, in onRequest from its headers and TLS session (Bearer token, API
// key, or a mapped client certificate), before Connect reads a byte of its body; a refusal is
// answered in the caller's protocol (relay/api/rpc-reject.ts). Request messages are capped
// after decompression. ApiError and auth failure codes map to gRPC codes in one table, and no
// stack or internal message ever reaches a client.
import { create, fromJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type ConnectRouter, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import type { Compression } from '@connectrpc/connect/protocol';
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, FastifyTypeProvider, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerBase } from 'fastify';
import { Http2ServerRequest, type Http2Session } from 'node:http2';
import { brotliDecompress, gunzip, type InputType } from 'node:zlib';
import type { Json } from '../../src/ico/types.ts';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import { OPERATOR_ID_PATTERN, type Receipt } from '../../src/receipts/receipt.ts';
import { isPrincipal, type AuthFailure, type Authenticator, type Principal, type Scope } from './auth-types.ts';
import { ERROR_CODE_TRAILER, ERROR_PATH_TRAILER, ERROR_RETRYABLE_TRAILER } from './errors.ts';
import { withCheckedMessages } from './grpc-messages.ts';
import { authorize } from './request-auth.ts';
import { rejectRpc, rpcProtocolOf } from './rpc-reject.ts';
// The option limits are the REST schema's, so both front ends accept exactly the same requests.
import { MAX_IDEMPOTENCY_KEY_LENGTH, MAX_TIMEOUT_MS } from './schemas.ts';
import { ApiError, type ApiBackend, type ApiErrorCode, type ConsensusKind, type ExecuteOptions, type ResultRecord } from './backend.ts';
import {
  HyperSync,
  OperatorResponseSchema,
  ReceiptSchema,
  ResultSchema,
  type OperatorRequest,
  type OperatorResponse,
  type Receipt as ReceiptMessage,
  type Result,
  type StreamRequest,
} from './gen/hypersync/v1/hypersync_pb.ts';

/**
 * Largest request message accepted (bytes), compressed as read and again after decompression;
 * larger: RESOURCE_EXHAUSTED. A gzip bomb stops inflating at this size.
 */
export const MAX_GRPC_REQUEST_BYTES = 1024 * 1024;
/** Default per-stream buffer handed to backend.stream (records); a slower reader is caught up from storage. */
export const DEFAULT_STREAM_BUFFER = 256;
/** Concurrent StreamResults calls per server; one more answers RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_STREAMS = 256;
/** Operator ids one StreamResults call may filter on. */
export const MAX_STREAM_FILTER = 64;

/** Which scope each RPC needs. */
const REQUIRED_SCOPE: Readonly<Record<string, Scope>> = {
  ExecuteOperator: 'execute',
  StreamResults: 'read',
};

/** The one error table of the gRPC side: HyperSync codes → gRPC status codes. */
export const GRPC_CODE_OF: Readonly<Record<ApiErrorCode | AuthFailure['code'], Code>> = {
  INVALID_INPUT: Code.InvalidArgument,
  INVALID_REQUEST: Code.InvalidArgument,
  UNSUPPORTED: Code.InvalidArgument,
  UNKNOWN_OPERATOR: Code.NotFound,
  NOT_FOUND: Code.NotFound,
  OPERATOR_FAILED: Code.FailedPrecondition,
  UNAVAILABLE: Code.Unavailable,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  UNAUTHENTICATED: Code.Unauthenticated,
  PERMISSION_DENIED: Code.PermissionDenied,
  RATE_LIMITED: Code.ResourceExhausted,
};

export { ERROR_CODE_TRAILER, ERROR_PATH_TRAILER, ERROR_RETRYABLE_TRAILER };

export interface GrpcLimits {
  /** Per-stream buffer limit passed to backend.stream (records). */
  maxStreamBuffer?: number;
  /** Concurrent StreamResults calls. */
  maxStreams?: number;
}

export interface GrpcOptions extends GrpcLimits {
  backend: ApiBackend;
  auth: Authenticator;
  logger?: Logger;
}

const kPrincipal = createContextKey<Principal | null>(null, { description: 'hypersync principal' });

/** Exempts one call from the server's idle timeouts until the returned release runs. */
type HoldOpen = () => () => void;
const kHoldOpen = createContextKey<HoldOpen>(() => () => undefined, { description: 'exempt a long-lived call from idle timeouts' });

/** HTTP/2 sessions with live result streams, and the idle timeout each had before. */
const heldSessions = new WeakMap<Http2Session, { streams: number; timeoutMs: number }>();

/**
 * The server's idle timeouts (Fastify `connectionTimeout` on each HTTP/2 stream or HTTP/1
 * socket, `http2SessionTimeout` on each session) would cut a result stream that is quiet for
 * a while though its client still listens; HTTP/2 PINGs do not count as activity. A live
 * StreamResults call is not idle: its stream's timeout is off, and its session's is off
 * until the session's last live stream ends, then restored.
 */
function holdOpenOf(raw: FastifyRequest['raw']): HoldOpen {
  return () => {
    if (raw instanceof Http2ServerRequest) {
      raw.stream.setTimeout(0);
      const session = raw.stream.session;
      if (session === undefined) return () => undefined;
      const held = heldSessions.get(session);
      if (held !== undefined) held.streams++;
      else {
        // `timeout` is what the last setTimeout set (node's stream_base_commons); untyped.
        const timeoutMs = (session as Http2Session & { timeout?: number }).timeout ?? 0;
        heldSessions.set(session, { streams: 1, timeoutMs });
        session.setTimeout(0);
      }
      return () => {
        const h = heldSessions.get(session);
        if (h === undefined || --h.streams > 0) return;
        heldSessions.delete(session);
        if (!session.closed && !session.destroyed && h.timeoutMs > 0) session.setTimeout(h.timeoutMs);
      };
    }
    const socket = raw.socket;
    const before = socket.timeout ?? 0;
    socket.setTimeout(0);
    return () => {
      if (!socket.destroyed && before > 0) socket.setTimeout(before);
    };
  };
}

function hyperSyncError(code: ApiErrorCode | AuthFailure['code'], message: string, extra: { retryable?: boolean; path?: string; retryAfterSeconds?: number } = {}): ConnectError {
  const meta = new Headers({ [ERROR_CODE_TRAILER]: code });
  if (extra.retryable === true) meta.set(ERROR_RETRYABLE_TRAILER, 'true');
  if (extra.path !== undefined) meta.set(ERROR_PATH_TRAILER, extra.path);
  if (extra.retryAfterSeconds !== undefined) meta.set('retry-after', String(extra.retryAfterSeconds));
  return new ConnectError(message, GRPC_CODE_OF[code], meta);
}

function invalid(message: string, path?: string): ConnectError {
  return hyperSyncError('INVALID_REQUEST', message, path === undefined ? {} : { path });
}

/**
 * Turns whatever a handler threw into what the client may see. ApiError and ConnectError
 * pass with their code; anything else is a bug: logged here, and answered INTERNAL with a
 * fixed message (its text could hold internals).
 */
function toClientError(e: unknown, log: Logger, rpc: string, signal: AbortSignal): ConnectError {
  if (e instanceof ConnectError) return e;
  // The client cancelled or its deadline passed: whatever the backend threw after that is moot.
  if (signal.aborted) return ConnectError.from(signal.reason, Code.Canceled);
  if (e instanceof ApiError) {
    const extra: { retryable: boolean; path?: string } = { retryable: e.retryable };
    if (e.path !== undefined) extra.path = e.path;
    return hyperSyncError(e.code, e.message, extra);
  }
  log.error({ err: e, rpc }, 'grpc handler failed');
  return new ConnectError('internal error', Code.Internal);
}

/** The scope the RPC at this route path needs (`/hypersync.v1.HyperSync/<Method>`), if it is one of ours. */
function scopeOfPath(path: string | undefined): Scope | undefined {
  const method = path?.slice(path.lastIndexOf('/') + 1);
  return method === undefined ? undefined : REQUIRED_SCOPE[method];
}

/**
 * The onRequest check of every RPC: credentials from headers and the TLS session, then the
 * RPC's scope. A refusal is answered here, in the caller's protocol, so Connect never reads
 * (or inflates) the body of an unauthenticated call.
 */
function authenticateCall(auth: Authenticator) {
  return async (req: FastifyRequest, reply: Parameters<typeof rejectRpc>[1]): Promise<unknown> => {
    const scope = scopeOfPath(req.routeOptions.url);
    const result: Principal | AuthFailure = scope === undefined ? { code: 'PERMISSION_DENIED', message: 'no such RPC' } : authorize(auth, req, scope);
    if (isPrincipal(result)) return undefined;
    const metadata: Record<string, string> = { [ERROR_CODE_TRAILER]: result.code };
    if (result.retryAfterSeconds !== undefined) {
      metadata['retry-after'] = String(result.retryAfterSeconds);
      metadata[ERROR_RETRYABLE_TRAILER] = 'true';
    }
    if (result.code === 'UNAUTHENTICATED') metadata['www-authenticate'] = 'Bearer realm="hypersync"';
    return rejectRpc(req, reply, GRPC_CODE_OF[result.code], result.message, metadata);
  };
}

/**
 * A Connect unary body in an encoding this server does not accept is refused here, 415 with
 * code `unimplemented`: Connect itself would answer 501, a server error for a client's choice.
 * (gRPC and the streaming protocols carry UNIMPLEMENTED in a 200 response; Connect answers those.)
 */
function refuseUnknownEncoding(accepted: readonly Compression[]) {
  const names = new Set(['identity', ...accepted.map((c) => c.name)]);
  return async (req: FastifyRequest, reply: Parameters<typeof rejectRpc>[1]): Promise<unknown> => {
    const encoding = req.headers['content-encoding'];
    if (encoding === undefined || rpcProtocolOf(req.headers['content-type']) !== 'connect-unary') return undefined;
    const name = (Array.isArray(encoding) ? encoding.join(',') : encoding).trim().toLowerCase();
    if (names.has(name)) return undefined;
    return rejectRpc(req, reply, Code.Unimplemented, `content-encoding ${name.slice(0, 40)} is not accepted (use ${[...names].join(', ')})`, { [ERROR_CODE_TRAILER]: 'UNSUPPORTED_MEDIA_TYPE' });
  };
}

/** Defence in depth: a call reaches its handler only with a principal holding the RPC's scope. */
function scopeInterceptor(): Interceptor {
  return (next) => async (req) => {
    const principal = req.contextValues.get(kPrincipal);
    const scope = REQUIRED_SCOPE[req.method.name];
    if (principal === null) throw hyperSyncError('UNAUTHENTICATED', 'no credentials');
    if (scope === undefined || !principal.scopes.has(scope)) throw hyperSyncError('PERMISSION_DENIED', `credentials lack the '${scope ?? 'unknown'}' scope`);
    return next(req);
  };
}

function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(kPrincipal);
  // The onRequest hook and the interceptor ran first; reaching here without one is a bug.
  if (principal === null) throw new Error('grpc handler reached without a principal');
  return principal;
}

type Inflate = (buf: InputType, options: { maxOutputLength: number }, callback: (error: Error | null, result: Buffer) => void) => void;

/**
 * Connect's gzip and br, but inflating request messages through zlib with `maxOutputLength`
 * = `readMaxBytes` (zlib stops there, so a bomb costs no more than a message at the limit) and
 * every failure put on the client: over the limit RESOURCE_EXHAUSTED, corrupt input
 * INVALID_ARGUMENT (Connect's own answers INTERNAL to a truncated stream).
 */
function boundedCompression(base: Compression, inflate: Inflate): Compression {
  return {
    name: base.name,
    compress: (bytes) => base.compress(bytes),
    decompress(bytes: Uint8Array, readMaxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
      if (bytes.length === 0) return Promise.resolve(new Uint8Array(0));
      return new Promise((resolve, reject) => {
        inflate(bytes, { maxOutputLength: readMaxBytes }, (err, out) => {
          if (err === null) return resolve(new Uint8Array(out.buffer as ArrayBuffer, out.byteOffset, out.byteLength));
          if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
            reject(new ConnectError(`request message inflates beyond ${readMaxBytes} bytes`, Code.ResourceExhausted, { [ERROR_CODE_TRAILER]: 'PAYLOAD_TOO_LARGE' }));
          } else {
            reject(new ConnectError(`request message is not valid ${base.name} data`, Code.InvalidArgument, { [ERROR_CODE_TRAILER]: 'INVALID_REQUEST' }));
          }
        });
      });
    },
  };
}

const ACCEPT_COMPRESSION: Compression[] = [boundedCompression(compressionGzip, gunzip), boundedCompression(compressionBrotli, brotliDecompress)];

const CONSENSUS_VALUES: ReadonlySet<string> = new Set<ConsensusKind>(['none', 'raft', 'pbft']);
const READ_VALUES: ReadonlySet<string> = new Set(['log', 'linearizable']);

/** The edge check of ExecuteOperator: proto message → backend options, or INVALID_ARGUMENT. */
function executeOptionsOf(req: OperatorRequest, ctx: HandlerContext): ExecuteOptions {
  const o = req.options;
  const options: ExecuteOptions = {};
  if (o?.consensus) {
    if (!CONSENSUS_VALUES.has(o.consensus)) throw invalid(`options.consensus must be one of none, raft, pbft`, '/options/consensus');
    options.consensus = o.consensus as ConsensusKind;
  }
  if (o?.read) {
    if (!READ_VALUES.has(o.read)) throw invalid(`options.read must be 'log' or 'linearizable'`, '/options/read');
    options.read = o.read as 'log' | 'linearizable';
  }
  if (o?.idempotencyKey) {
    if (o.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) throw invalid(`options.idempotency_key is longer than ${MAX_IDEMPOTENCY_KEY_LENGTH}`, '/options/idempotency_key');
    options.idempotency_key = o.idempotencyKey;
  }
  if (o?.timeoutMs) {
    if (o.timeoutMs > MAX_TIMEOUT_MS) throw invalid(`options.timeout_ms must be at most ${MAX_TIMEOUT_MS}`, '/options/timeout_ms');
    options.timeout_ms = o.timeoutMs;
  }
  // A gRPC deadline (grpc-timeout) bounds the execution too: the shorter one wins.
  const deadline = ctx.timeoutMs();
  if (deadline !== undefined) {
    const fromDeadline = Math.max(1, Math.min(MAX_TIMEOUT_MS, Math.floor(deadline)));
    options.timeout_ms = Math.min(options.timeout_ms ?? fromDeadline, fromDeadline);
  }
  return options;
}

function receiptMessage(r: Receipt): ReceiptMessage {
  return create(ReceiptSchema, {
    receiptId: r.receipt_id,
    timestamp: r.timestamp,
    operation: { type: r.operation.type, operatorId: r.operation.operator_id, inputsHash: r.operation.inputs_hash, outputsHash: r.operation.outputs_hash },
    prevReceiptHash: r.prev_receipt_hash,
    signer: r.signer,
    index: BigInt(r.index),
    signature: r.signature,
  });
}

function resultMessage(rec: ResultRecord): Result {
  return create(ResultSchema, {
    index: BigInt(rec.index),
    operatorId: rec.operator_id,
    ...(rec.outputs === null ? {} : { outputs: fromJson(ValueSchema, rec.outputs satisfies Json as JsonValue) }),
    receipt: receiptMessage(rec.receipt),
  });
}

/** Settles with `p`, or rejects with the signal's reason (the client's deadline or cancel). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(ConnectError.from(signal.reason, Code.Canceled));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function routes(opts: GrpcOptions, log: Logger): (router: ConnectRouter) => void {
  const { backend } = opts;
  const maxStreamBuffer = opts.maxStreamBuffer ?? DEFAULT_STREAM_BUFFER;
  const maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
  let openStreams = 0;

  async function executeOperator(req: OperatorRequest, ctx: HandlerContext): Promise<OperatorResponse> {
    try {
      const principal = principalOf(ctx);
      if (!OPERATOR_ID_PATTERN.test(req.operatorId)) throw invalid('operator_id must be an operator identifier', '/operator_id');
      const options = executeOptionsOf(req, ctx);
      // An absent Struct is an empty object: proto3 clients drop `{}` unless told otherwise.
      const inputs: Json = req.inputs ?? {};
      const result = await untilAborted(backend.execute({ operator_id: req.operatorId, inputs, options, principal: principal.id }), ctx.signal);
      return create(OperatorResponseSchema, {
        status: 'success',
        outputs: fromJson(ValueSchema, result.outputs satisfies Json as JsonValue),
        receiptId: result.receipt?.receipt_id ?? '',
        executionTimeMs: result.execution_time_ms,
        ...(result.receipt === null ? {} : { receipt: receiptMessage(result.receipt) }),
        replayed: result.replayed,
        ...(result.certificate === undefined ? {} : { certificate: { ...result.certificate } }),
      });
    } catch (e) {
      throw toClientError(e, log, 'ExecuteOperator', ctx.signal);
    }
  }

  async function* streamResults(req: StreamRequest, ctx: HandlerContext): AsyncGenerator<Result> {
    // uint64 on the wire; receipt indexes stay far below 2^53.
    if (req.fromIndex > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('from_index is beyond any receipt index', '/from_index');
    const from = Number(req.fromIndex);
    if (req.operatorIds.length > MAX_STREAM_FILTER) throw invalid(`operator_ids holds more than ${MAX_STREAM_FILTER} ids`, '/operator_ids');
    for (const [i, id] of req.operatorIds.entries()) {
      if (!OPERATOR_ID_PATTERN.test(id)) throw invalid('operator_ids must hold operator identifiers', `/operator_ids/${i}`);
    }
    if (openStreams >= maxStreams) throw new ConnectError(`more than ${maxStreams} result streams are open`, Code.ResourceExhausted);
    openStreams++;
    const release = ctx.values.get(kHoldOpen)();
    try {
      // The generator is pulled once per written message, and a write waits for HTTP/2 flow
      // control: a slow reader stops the pulls, and backend.stream bounds what piles up.
      const principal = principalOf(ctx);
      const viewer = { principal: principal.id, allOutputs: principal.scopes.has('audit') };
      for await (const rec of backend.stream(from, req.operatorIds, viewer, ctx.signal, maxStreamBuffer)) {
        yield resultMessage(rec);
      }
    } catch (e) {
      throw toClientError(e, log, 'StreamResults', ctx.signal);
    } finally {
      release();
      openStreams--;
    }
  }

  return (router) => {
    router.service(HyperSync, { executeOperator, streamResults });
  };
}

/**
 * Mounts the HyperSync service on `app` (call before `listen`): one Fastify route per RPC,
 * each handing the request to Connect's universal handler. The app must be the HTTP/2 TLS one
 * (`http2: true, https: {allowHTTP1: true, …}`, as buildApi makes it) for plain gRPC clients;
 * Connect and gRPC-Web also work on HTTP/1.1. Registered in its own encapsulated scope, so its
 * content-type parser and hooks touch no REST route.
 */
export async function registerGrpc<S extends RawServerBase, L extends FastifyBaseLogger, P extends FastifyTypeProvider>(
  app: FastifyInstance<S, RawRequestDefaultExpression<S>, RawReplyDefaultExpression<S>, L, P>,
  opts: GrpcOptions,
): Promise<void> {
  await app.register(async (scope) => {
    // Routes, hooks and parsers are all this scope uses, which every server flavour has.
    const rpc = scope as unknown as FastifyInstance;
    const log = opts.logger ?? createLogger('api-grpc');
    // Connect reads request bodies itself: no Fastify parser may consume one (not even JSON).
    rpc.removeAllContentTypeParsers();
    rpc.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    // Runs for these routes only, before a byte of the body is read.
    rpc.addHook('onRequest', authenticateCall(opts.auth));
    rpc.addHook('onRequest', refuseUnknownEncoding(ACCEPT_COMPRESSION));
    const router = createConnectRouter({ interceptors: [scopeInterceptor()], readMaxBytes: MAX_GRPC_REQUEST_BYTES, acceptCompression: ACCEPT_COMPRESSION });
    routes(opts, log)(router);
    for (const handler of router.handlers) {
      rpc.all(handler.requestPath, async (req, reply) => {
        // The response is Connect's to write; Fastify's onResponse (audit, metrics) still runs.
        reply.hijack();
        const contextValues = createContextValues().set(kPrincipal, req.principal).set(kHoldOpen, holdOpenOf(req.raw));
        const universal = withCheckedMessages(universalRequestFromNodeRequest(req.raw, reply.raw, undefined, contextValues), { input: handler.method.input, readMaxBytes: MAX_GRPC_REQUEST_BYTES, compressions: ACCEPT_COMPRESSION });
        try {
          const response = await handler(universal);
          for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
          await universalResponseToNodeResponse(response, reply.raw);
        } catch (e) {
          // The client went away mid-response: nothing to answer.
          if (ConnectError.from(e).code !== Code.Aborted) log.warn({ err: e, rpc: handler.method.name }, 'writing an RPC response failed');
        }
      });
    }
  });
}
