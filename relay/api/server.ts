// The relay's REST API on Fastify: one HTTPS port speaking HTTP/1.1 and HTTP/2 by ALPN (plain
// HTTP only when the caller asks for it), OpenAPI from the route schemas, Prometheus metrics, and
// one error table. Credentials are checked in onRequest, before any body byte is read; bad input
// is always a 4xx with `{status:"error", error:{code, message}}`, never a 500 or a stack trace.
import { randomUUID } from 'node:crypto';
import { constants as http2Constants, Http2ServerRequest } from 'node:http2';
import fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import type { Json } from '../../src/ico/types.ts';
import { isPrincipal, type Authenticator, type Scope } from './auth-types.ts';
import { ApiError, type ApiBackend, type ExecuteOptions } from './backend.ts';
import { codeForStatus, DEFAULT_RETRY_AFTER_S, errorBody, FASTIFY_ERRORS, HTTP_STATUS, type HttpErrorCode } from './errors.ts';
import { registerGrpc, type GrpcLimits } from './grpc.ts';
import { HttpMetrics } from './metrics.ts';
import { answerPlainHttp } from './plain-http-hint.ts';
import { authorize } from './request-auth.ts';
import {
  clusterReplySchema,
  DEFAULT_LIST_LIMIT,
  errorSchema,
  executeBodySchema,
  executeReplySchema,
  healthReplySchema,
  statusReplySchema,
  MAX_LIST_LIMIT,
  operatorsReplySchema,
  receiptParamsSchema,
  receiptReplySchema,
  receiptSchema,
  receiptsQuerySchema,
  receiptsReplySchema,
  treeHeadSchema,
} from './schemas.ts';

/** Default request body limit (bytes): a larger body is refused with 413. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** A client must finish sending a request's headers within this time (slowloris). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** …and the whole request (headers and body) within this time. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Idle sockets / HTTP/2 sessions are closed after this (above the longest execute deadline). */
export const DEFAULT_IDLE_TIMEOUT_MS = 75_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Request bytes still read (and dropped) after an early answer before the upload is reset. */
export const DRAIN_LIMIT_BYTES = 4 * 1024 * 1024;
/** How long a client may go on uploading after an early answer before the upload is reset. */
export const DRAIN_TIMEOUT_MS = 1_000;
/** Longest request id taken from a client's X-Request-Id. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export interface ApiTls {
  key: string | Buffer;
  cert: string | Buffer;
  /**
   * The cluster CA. Only with one does the server ask for client certificates; one it verified
   * is a credential when the keys file maps it to a principal.
   */
  ca?: string | Buffer | undefined;
}

export interface ApiTimeouts {
  headersMs?: number;
  requestMs?: number;
  idleMs?: number;
}

export interface BuildApiOptions {
  backend: ApiBackend;
  auth: Authenticator;
  tls?: ApiTls | undefined;
  bodyLimit?: number;
  logger?: Logger;
  timeouts?: ApiTimeouts;
  /** Fields of GET /api/v1/status (the relay's peer id, multiaddrs, peer counts…); /healthz tells only liveness. */
  status?: () => Record<string, Json>;
  /** gRPC/Connect service hypersync.v1.HyperSync on the same port (relay/api/grpc.ts). */
  grpc?: GrpcLimits;
  /** More Prometheus text appended to GET /metrics (the sync layer's counters). */
  extraMetrics?: () => string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scope a route requires; routes without one (healthz, docs, gRPC) skip this auth hook. */
    scope?: Scope;
  }
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

interface ReplyLike {
  code(status: number): ReplyLike;
  type(contentType: string): ReplyLike;
  send(payload?: unknown): ReplyLike;
}

/** Generic over the reply so one function serves the HTTP/1 and the HTTP/2 server's types. */
function answerFrameworkError<R extends ReplyLike>(error: FastifyError, _req: unknown, reply: R): void {
  const code = FASTIFY_ERRORS[error.code] ?? 'INVALID_REQUEST';
  reply.code(HTTP_STATUS[code]).type('application/json; charset=utf-8').send(errorBody(code, error.message));
}

function routePattern(url: string): RegExp {
  const escaped = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`);
}

/** 1048576 → "1 MiB": limits read better in binary units when they are whole. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  return `${n} bytes`;
}

function parseUint(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : Number(text);
}

/** Builds the API (routes, hooks, docs) without listening; `app.listen()` or `app.inject()` next. */
export async function buildApi(opts: BuildApiOptions): Promise<FastifyInstance> {
  const { backend, auth } = opts;
  const log = opts.logger ?? createLogger('api');
  const headersMs = opts.timeouts?.headersMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestMs = Math.max(opts.timeouts?.requestMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headersMs);
  const idleMs = opts.timeouts?.idleMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  // Node checks header/request deadlines on this interval; it must be finer than the deadlines.
  const connectionsCheckingInterval = Math.max(25, Math.min(1000, Math.floor(headersMs / 4)));
  const nodeTimeouts = { headersTimeout: headersMs, requestTimeout: requestMs, connectionsCheckingInterval, keepAliveTimeout: DEFAULT_KEEP_ALIVE_TIMEOUT_MS };
  const common = {
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    connectionTimeout: idleMs,
    keepAliveTimeout: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: requestMs,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    logger: false,
    requestIdHeader: false,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }): string => {
      const given = firstHeader(req.headers['x-request-id']);
      return given !== undefined && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: true,
    // Errors the router raises before any hook (a URL that does not percent-decode) get the
    // one error shape too.
    frameworkErrors: answerFrameworkError,
  } as const;
  // Both transports share the compat request/reply API the handlers use; one type for both.
  const app = (
    opts.tls !== undefined
      ? fastify({
          ...common,
          http2: true,
          http2SessionTimeout: idleMs,
          https: {
            allowHTTP1: true,
            key: opts.tls.key,
            cert: opts.tls.cert,
            // Without a cluster CA no certificate is asked for: Node would check one against
            // the public roots, and any publicly issued client certificate would then verify.
            ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca, requestCert: true } : { requestCert: false }),
            // Client certificates are optional; an unverified one is simply not a credential.
            rejectUnauthorized: false,
            ...nodeTimeouts,
          },
        })
      : fastify({ ...common, http: nodeTimeouts })
  ) as unknown as FastifyInstance;

  if (opts.tls !== undefined) {
    // Plain HTTP on this HTTPS port gets a readable 400 instead of an empty reply.
    const hint = answerPlainHttp(app.server, { firstByteTimeoutMs: headersMs });
    app.addHook('preClose', async () => hint.closePending());
  }

  const metrics = new HttpMetrics();
  const known: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const pattern = routePattern(route.url);
    const hit = known.find((k) => k.pattern.source === pattern.source);
    if (hit !== undefined) for (const m of methods) hit.methods.add(m);
    else known.push({ pattern, methods: new Set(methods) });
  });

  // Only JSON bodies: Fastify's built-in JSON parser stays (it refuses __proto__), text/plain goes.
  app.removeContentTypeParser('text/plain');

  const sendError = (reply: FastifyReply, code: HttpErrorCode, message: string, extra: { path?: string | undefined; retryAfter?: number; retryable?: boolean } = {}): FastifyReply => {
    const status = HTTP_STATUS[code];
    if (status === 429 || status === 503) void reply.header('retry-after', String(extra.retryAfter ?? DEFAULT_RETRY_AFTER_S));
    return reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message, { path: extra.path, retryable: extra.retryable ?? (status === 503 || status === 504 || status === 429) }));
  };

  // An answer sent before the request body was read (413, an oversized gRPC message, a 401)
  // leaves an HTTP/2 client uploading on a stream nobody reads: the stream stays half open,
  // and the session, and a graceful close, wait on it until the idle timeout. No route here
  // reads a request after answering it, so once the answer is complete the rest of the upload
  // is read and dropped (the request object, abandoned by its handler, gets none of it); the
  // stream is reset with RST_STREAM(NO_ERROR) (RFC 9113 §8.1) when the client has not ended
  // its upload within DRAIN_TIMEOUT_MS or sends more than DRAIN_LIMIT_BYTES. Draining first
  // lets clients finish cleanly: Node's client reports a reset that arrives while it still
  // uploads as a failed call, even after a complete answer.
  app.addHook('onRequest', async (req) => {
    const raw = req.raw as unknown;
    if (!(raw instanceof Http2ServerRequest)) return;
    const stream = raw.stream;
    stream.once('finish', () => {
      if (stream.readableEnded || stream.destroyed) return;
      const reset = (): void => {
        if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_NO_ERROR);
      };
      const timer = setTimeout(reset, DRAIN_TIMEOUT_MS);
      stream.once('close', () => clearTimeout(timer));
      let drained = 0;
      stream.removeAllListeners('data');
      stream.on('data', (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > DRAIN_LIMIT_BYTES) reset();
      });
      stream.resume();
    });
  });

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    const scope = req.routeOptions.config.scope;
    if (scope === undefined) return;
    const result = authorize(auth, req, scope);
    if (isPrincipal(result)) return undefined;
    if (result.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer realm="hypersync"');
    // HTTP/1: close the connection rather than read (and discard) a body nobody will use.
    if (req.raw.httpVersionMajor === 1) void reply.header('connection', 'close');
    return sendError(reply, result.code, result.message, result.retryAfterSeconds !== undefined ? { retryAfter: result.retryAfterSeconds } : {});
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const latencyMs = reply.elapsedTime;
    const status = reply.statusCode;
    metrics.observe(req.method, route, status, latencyMs / 1000);
    // The audit line: refused and failed requests at info, answered ones at debug (building and
    // writing a line per answered request cost a measurable share of a request's CPU).
    const level = status >= 400 ? 'info' : 'debug';
    if (!log.isLevelEnabled(level)) return;
    log[level]({ req_id: req.id, method: req.method, route, url: route === 'unmatched' ? req.url.slice(0, 200) : undefined, status, principal: req.principal?.id ?? null, latency_ms: Math.round(latencyMs * 100) / 100, http: req.raw.httpVersion }, 'api request');
  });

  app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
    if (err instanceof ApiError) {
      return sendError(reply, err.code, err.message, { path: err.path, retryable: err.retryable });
    }
    const fe = err as FastifyError & { validationContext?: string };
    if (fe.validation !== undefined) {
      const first = fe.validation[0];
      const path = first?.instancePath !== undefined && first.instancePath !== '' ? first.instancePath : undefined;
      return sendError(reply, 'INVALID_REQUEST', fe.message, { path });
    }
    if (err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return sendError(reply, 'MALFORMED_JSON', `request body is not valid JSON: ${err.message}`);
    const mapped = fe.code !== undefined ? FASTIFY_ERRORS[fe.code] : undefined;
    if (mapped === 'UNSUPPORTED_MEDIA_TYPE') return sendError(reply, mapped, `content-type must be application/json (got ${firstHeader(req.headers['content-type']) ?? 'none'})`);
    if (mapped === 'PAYLOAD_TOO_LARGE') return sendError(reply, mapped, `request body over this API's limit of ${common.bodyLimit} bytes (${formatBytes(common.bodyLimit)}); the README lists every limit`);
    if (mapped !== undefined) return sendError(reply, mapped, fe.message);
    const status = fe.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendError(reply, codeForStatus(status), fe.message);
    log.error({ req_id: req.id, err: { name: err.name, message: err.message, stack: err.stack } }, 'api handler failed');
    return sendError(reply, 'INTERNAL', 'internal error');
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const match = known.find((k) => k.pattern.test(path));
    if (match !== undefined && !match.methods.has(req.method)) {
      void reply.header('allow', [...match.methods].join(', '));
      return sendError(reply, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    }
    return sendError(reply, 'ROUTE_NOT_FOUND', `no route ${req.method} ${path}`);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'HyperSync relay API', version: '1.0.0', description: 'Execute operators through consensus and fetch signed receipts with Merkle proofs.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'a bearer token or an API key (hsk_…)' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(errorSchema);
  app.addSchema(receiptSchema);
  app.addSchema(treeHeadSchema);

  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
  const errors = { 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' }, 429: { $ref: 'Error#' } };

  app.post<{ Body: { operator_id: string; inputs: Json; options?: ExecuteOptions } }>(
    '/api/v1/operators/execute',
    {
      config: { scope: 'execute' },
      schema: {
        summary: 'Execute an operator',
        description: 'Runs the operator through the configured consensus and returns its outputs and signed receipt.',
        tags: ['operators'],
        security,
        body: executeBodySchema,
        response: { 200: executeReplySchema, ...errors, 404: { $ref: 'Error#' }, 413: { $ref: 'Error#' }, 415: { $ref: 'Error#' }, 422: { $ref: 'Error#' }, 503: { $ref: 'Error#' }, 504: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const principal = req.principal;
      if (principal === null) throw new Error('execute reached without a principal');
      const result = await backend.execute({ operator_id: req.body.operator_id, inputs: req.body.inputs, options: req.body.options ?? {}, principal: principal.id });
      return {
        status: 'success',
        outputs: result.outputs,
        receipt_id: result.receipt?.receipt_id ?? null,
        execution_time_ms: result.execution_time_ms,
        receipt: result.receipt,
        replayed: result.replayed,
        ...(result.certificate !== undefined ? { certificate: result.certificate } : {}),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/receipts/:id',
    { config: { scope: 'read' }, schema: { summary: 'A receipt with its inclusion proof and the signed tree head', tags: ['receipts'], security, params: receiptParamsSchema, response: { 200: receiptReplySchema, ...errors, 404: { $ref: 'Error#' } } } },
    async (req) => {
      const found = await backend.receipt(req.params.id);
      if (found === undefined) throw new ApiError('NOT_FOUND', `no receipt ${req.params.id}`);
      return found;
    },
  );

  app.get<{ Querystring: { from?: string; limit?: string } }>(
    '/api/v1/receipts',
    { config: { scope: 'read' }, schema: { summary: 'A page of receipts in log order', tags: ['receipts'], security, querystring: receiptsQuerySchema, response: { 200: receiptsReplySchema, ...errors } } },
    async (req) => {
      const from = parseUint(req.query.from, 0);
      const limit = parseUint(req.query.limit, DEFAULT_LIST_LIMIT);
      if (limit < 1 || limit > MAX_LIST_LIMIT) throw new ApiError('INVALID_REQUEST', `limit must be between 1 and ${MAX_LIST_LIMIT}`, { path: '/limit' });
      const receipts = await backend.receipts(from, limit);
      return { receipts, from, limit, next: from + receipts.length, tree_size: backend.treeHead().size };
    },
  );

  app.get('/api/v1/tree-head', { config: { scope: 'read' }, schema: { summary: 'The signed Merkle tree head of the receipt log', tags: ['receipts'], security, response: { 200: { $ref: 'TreeHead#' }, ...errors } } }, async () => backend.treeHead());

  app.get('/api/v1/operators', { config: { scope: 'read' }, schema: { summary: 'The operator registry with JSON Schemas', tags: ['operators'], security, response: { 200: operatorsReplySchema, ...errors } } }, async () => ({ operators: backend.operators() }));

  app.get('/api/v1/cluster', { config: { scope: 'read' }, schema: { summary: 'Consensus and membership status', tags: ['cluster'], security, response: { 200: clusterReplySchema, ...errors } } }, async () => backend.cluster());

  await registerGrpc(app, { backend, auth, ...opts.grpc });

  // Liveness only: without credentials nothing about the relay, its peers or its load.
  app.get('/healthz', { schema: { summary: 'Liveness (no credentials)', tags: ['ops'], response: { 200: healthReplySchema } } }, async () => ({ status: 'ok' }));

  app.get(
    '/api/v1/status',
    { config: { scope: 'read' }, schema: { summary: "The relay's identity, addresses, peers, limits and API settings", tags: ['ops'], security, response: { 200: statusReplySchema, ...errors } } },
    async () => ({ status: 'ok', ...(opts.status?.() ?? {}) }),
  );

  // Metrics need the read scope: Prometheus sends it with `authorization: {credentials: …}`.
  app.get(
    '/metrics',
    { config: { scope: 'read' }, schema: { summary: 'Prometheus metrics (text format 0.0.4; read scope)', tags: ['ops'], security, produces: ['text/plain'] } },
    async (_req, reply) => {
      void reply.type('text/plain; version=0.0.4; charset=utf-8');
      return metrics.render(backend.cluster(), backend.treeHead().size) + (opts.extraMetrics?.() ?? '');
    },
  );

  return app;
}
