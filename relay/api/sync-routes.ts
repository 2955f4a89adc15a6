// REST routes of the sync layer on the relay: documents (read, write, delete), manual
// conflicts (list, resolve with a signed resolution record), and sync sessions (start one
// with a peer or all peers; progress and recent reports). Mounted on the API app before it
// listens, so the app's auth hook (scopes), error body and metrics apply unchanged.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Json } from '../../src/ico/types.ts';
import { SyncError } from '../../src/sync/errors.ts';
import type { SyncService } from '../../src/sync/service.ts';
import { MAX_LIST_LIMIT, type DocEntry } from '../../src/sync/docstore.ts';
import { errorBody, HTTP_STATUS, type HttpErrorCode } from './errors.ts';

const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
const errors = { 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' }, 404: { $ref: 'Error#' }, 429: { $ref: 'Error#' } };

/** Sync error codes as HTTP errors (the relay's one error table stays the source of statuses). */
function httpCode(e: SyncError): HttpErrorCode {
  switch (e.code) {
    case 'SYNC_NOT_FOUND':
    case 'SYNC_NOT_IN_CONFLICT':
      return 'NOT_FOUND';
    case 'SYNC_BAD_RECORD':
    case 'SYNC_LIMIT':
      return 'INVALID_REQUEST';
    default:
      return 'UNAVAILABLE';
  }
}

function fail(reply: FastifyReply, e: unknown): FastifyReply {
  if (!(e instanceof SyncError)) throw e;
  const code = httpCode(e);
  return reply.code(HTTP_STATUS[code]).type('application/json; charset=utf-8').send(errorBody(code, `${e.code}: ${e.message}`));
}

function docView(e: DocEntry): Record<string, Json> {
  return { key: e.key, value: e.value, deleted: e.deleted, conflict: e.conflict, versions: e.versions as unknown as Json };
}

export async function registerSyncRoutes(app: FastifyInstance, sync: SyncService): Promise<void> {
  app.get<{ Querystring: { prefix?: string; after?: string; limit?: string } }>(
    '/api/v1/docs',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Documents in key order (with a prefix, after a key)', tags: ['docs'], security,
        querystring: { type: 'object', additionalProperties: false, properties: { prefix: { type: 'string', maxLength: 512 }, after: { type: 'string', maxLength: 512 }, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } } },
        response: { ...errors },
      },
    },
    async (req, reply) => {
      const limit = Math.min(Number(req.query.limit ?? 100), MAX_LIST_LIMIT);
      try {
        const docs = await sync.docs.list({ ...(req.query.prefix !== undefined ? { prefix: req.query.prefix } : {}), ...(req.query.after !== undefined ? { after: req.query.after } : {}), limit });
        const last = docs[docs.length - 1];
        return { docs: docs.map(docView), ...(docs.length === limit && last !== undefined ? { next: last.key } : {}) };
      } catch (e) {
        return fail(reply, e);
      }
    },
  );
  app.get<{ Params: { '*': string } }>(
    '/api/v1/docs/*',
    { config: { scope: 'read' }, schema: { summary: 'One document: its value and the versions behind it', tags: ['docs'], security, response: { ...errors } } },
    async (req, reply) => {
      try {
        const e = await sync.docs.get(req.params['*']);
        if (e === undefined) return reply.code(404).send(errorBody('NOT_FOUND', `no document ${req.params['*'].slice(0, 200)}`));
        return docView(e);
      } catch (e) {
        return fail(reply, e);
      }
    },
  );
  app.put<{ Params: { '*': string }; Body: { value: Json } }>(
    '/api/v1/docs/*',
    {
      config: { scope: 'execute' },
      schema: { summary: 'Writes a document as this relay (signed, synced to peers)', tags: ['docs'], security, body: { type: 'object', required: ['value'], additionalProperties: false, properties: { value: {} } }, response: { ...errors } },
    },
    async (req, reply) => {
      try {
        const r = await sync.docs.put(req.params['*'], req.body.value);
        return { key: r.key, op: r.op, origin: r.origin, seq: r.seq, t: [r.t[0], r.t[1]] };
      } catch (e) {
        return fail(reply, e);
      }
    },
  );
  app.delete<{ Params: { '*': string } }>(
    '/api/v1/docs/*',
    { config: { scope: 'execute' }, schema: { summary: 'Deletes a document (a signed tombstone that syncs)', tags: ['docs'], security, response: { ...errors } } },
    async (req, reply) => {
      try {
        const r = await sync.docs.delete(req.params['*']);
        return { key: r.key, op: r.op, origin: r.origin, seq: r.seq, t: [r.t[0], r.t[1]] };
      } catch (e) {
        return fail(reply, e);
      }
    },
  );
  app.get('/api/v1/conflicts', { config: { scope: 'read' }, schema: { summary: 'Documents with concurrent versions awaiting a manual resolution', tags: ['conflicts'], security, response: { ...errors } } }, async () => ({
    conflicts: (await sync.docs.conflicts()).map(docView),
  }));
  app.post<{ Body: { key: string; value?: Json; version?: string } }>(
    '/api/v1/conflicts/resolve',
    {
      config: { scope: 'execute' },
      schema: {
        summary: 'Resolves a conflict with a signed resolution record: a new value, or one of the versions by id', tags: ['conflicts'], security,
        body: { type: 'object', required: ['key'], additionalProperties: false, properties: { key: { type: 'string', minLength: 1, maxLength: 512 }, value: {}, version: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
        response: { ...errors },
      },
    },
    async (req, reply) => {
      const { key, version } = req.body;
      const hasValue = Object.hasOwn(req.body, 'value');
      if (hasValue === (version !== undefined)) return reply.code(400).send(errorBody('INVALID_REQUEST', 'give exactly one of value or version'));
      try {
        const r = await sync.resolve(key, version !== undefined ? { version } : { value: req.body.value as Json });
        return { key: r.key, op: r.op, value: r.value, origin: r.origin, seq: r.seq };
      } catch (e) {
        return fail(reply, e);
      }
    },
  );
  app.post<{ Body: { peer?: string; mode?: 'auto' | 'vector' | 'range' } }>(
    '/api/v1/sync',
    {
      config: { scope: 'execute' },
      schema: {
        summary: 'Starts a sync with one peer (or every established peer); follow it with GET /api/v1/sync', tags: ['sync'], security,
        body: { type: 'object', additionalProperties: false, properties: { peer: { type: 'string', maxLength: 128 }, mode: { type: 'string', enum: ['auto', 'vector', 'range'] } } },
        response: { ...errors },
      },
    },
    async (req, reply) => {
      const peers = req.body?.peer !== undefined ? [req.body.peer] : sync.status().peers;
      if (req.body?.peer !== undefined && !sync.status().peers.includes(req.body.peer)) return reply.code(404).send(errorBody('NOT_FOUND', `no established session with ${req.body.peer.slice(0, 80)}`));
      const startedAt = Date.now();
      for (const p of peers) void sync.sync(p, req.body?.mode !== undefined ? { mode: req.body.mode } : {}).catch(() => undefined);
      return reply.code(202).send({ started: peers, startedAt });
    },
  );
  app.get('/api/v1/sync', { config: { scope: 'read' }, schema: { summary: 'Sync state: our summary, sessions in progress, recent reports, open conflicts', tags: ['sync'], security, response: { ...errors } } }, async () => {
    const s = sync.status();
    return { summary: s.summary, peers: s.peers, sessions: s.sessions, reports: s.reports, conflicts: s.conflicts, metrics: sync.metrics() } as unknown as Record<string, Json>;
  });
}

/** Prometheus lines for the sync layer (appended to GET /metrics). */
export function renderSyncMetrics(sync: SyncService): string {
  const m = sync.metrics();
  const out: string[] = [];
  const counter = (name: string, help: string, value: number, labels = ''): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name}${labels} ${value}`);
  };
  const gauge = (name: string, help: string, value: number): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  counter('hypersync_sync_sessions_total', 'Sync sessions finished (either role).', m.sessions);
  counter('hypersync_sync_sessions_failed_total', 'Sync sessions that ended without converging (peer gone, timeout).', m.sessionsFailed);
  out.push('# HELP hypersync_sync_records_total Document versions moved by sync sessions, by direction.', '# TYPE hypersync_sync_records_total counter');
  out.push(`hypersync_sync_records_total{direction="sent"} ${m.recordsSent}`, `hypersync_sync_records_total{direction="received"} ${m.recordsReceived}`);
  out.push('# HELP hypersync_sync_bytes_total STATE_SYNC payload bytes of sync sessions, by direction.', '# TYPE hypersync_sync_bytes_total counter');
  out.push(`hypersync_sync_bytes_total{direction="out"} ${m.bytesOut}`, `hypersync_sync_bytes_total{direction="in"} ${m.bytesIn}`);
  counter('hypersync_sync_rejected_total', 'Sync records or messages refused (bad signature, malformed), each scored against its sender.', m.rejected);
  gauge('hypersync_sync_sessions_active', 'Sync sessions in progress.', sync.status().sessions.length);
  gauge('hypersync_docs', 'Document versions held (tombstones and concurrent versions included).', m.docs);
  gauge('hypersync_docs_conflicts', 'Documents with an open manual conflict.', m.conflicts);
  gauge('hypersync_receipt_logs_mirrored', 'Receipt logs this peer holds and serves (its own included).', m.mirroredLogs);
  return `${out.join('\n')}\n`;
}
