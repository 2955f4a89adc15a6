// The relay's REST routes fed random and mutated requests through Fastify's inject (the same
// code path as the network, minus the socket): methods, paths (known, mutated, percent-encoded,
// junk), query strings, credentials (valid, revoked-looking, malformed, oversized), content
// types, and bodies (valid execute bodies with fields replaced, random JSON, deep nesting,
// random bytes, truncations). Every answer is < 500, and every error is the one JSON error
// shape with a code whose status is the error table's.
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { HTTP_STATUS, type HttpErrorCode } from '../../relay/api/errors.ts';
import { createApiKey, revokeApiKey } from '../../relay/api/keys-file.ts';
import type { EngineBackend } from '../../relay/api/engine-backend.ts';
import { buildApi } from '../../relay/api/server.ts';
import { tempDir } from '../harness/processes.ts';
import { FUZZ_READ_TOKEN, FUZZ_TOKEN, openFuzzAuth, openMemoryBackend } from './api-fixture.ts';
import { fuzzParameters, Tally } from './fuzz-params.ts';

const TOKEN = FUZZ_TOKEN;
const READ_TOKEN = FUZZ_READ_TOKEN;
const BODY_LIMIT = 16 * 1024;

let app: FastifyInstance;
let auth: KeyStoreAuthenticator;
let backend: EngineBackend;
let apiKey: string;
let revokedKey: string;
let receiptId: string;

before(async () => {
  const dir = tempDir('hypersync-fuzz-rest-');
  const keysFile = `${dir}/keys.json`;
  apiKey = (await createApiKey(keysFile, 'fuzz', ['execute', 'read'])).secret;
  const revoked = await createApiKey(keysFile, 'gone', ['read']);
  revokedKey = revoked.secret;
  await revokeApiKey(keysFile, revoked.entry.id);
  auth = await openFuzzAuth(keysFile);
  backend = await openMemoryBackend();
  app = await buildApi({ backend, auth, bodyLimit: BODY_LIMIT, logger: pino({ level: 'silent' }) });
  await app.ready();
  const first = await app.inject({ method: 'POST', url: '/api/v1/operators/execute', headers: { authorization: `Bearer ${TOKEN}` }, payload: { operator_id: 'kv.put', inputs: { key: 'seed', value: 1 } } });
  assert.equal(first.statusCode, 200, first.body);
  receiptId = (JSON.parse(first.body) as { receipt_id: string }).receipt_id;
  const text = await app.inject({ method: 'POST', url: '/api/v1/operators/execute', headers: { authorization: `Bearer ${TOKEN}` }, payload: { operator_id: 'kv.put', inputs: { key: 'text', value: 'not a number' } } });
  assert.equal(text.statusCode, 200, text.body);
});

after(async () => {
  await app?.close();
  auth?.close();
  await backend?.close();
});

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;

const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('/api/v1/operators/execute', '/api/v1/receipts', '/api/v1/tree-head', '/api/v1/operators', '/api/v1/cluster', '/metrics', '/healthz', '/docs/json') },
  { weight: 2, arbitrary: fc.constant('/api/v1/receipts/RID') },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom('/api/v1/receipts/receipt_', '/api/v1/receipts/%00', '/api/v1/receipts/..%2F..%2Fetc', '/api/v1//operators', '/api/v1/operators/execute/', '/API/V1/OPERATORS', '/api/v1/receipts/%E0%A4%A', '/%', '/api/v1/operators/execute?', '/api/v1/receipts/receipt_' + 'f'.repeat(64) + '/x'), fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => `/api/v1/${encodeURIComponent(s)}`) },
);

const queryValue: fc.Arbitrary<string> = fc.oneof(fc.constantFrom('0', '1', '1000', '1001', '-1', '01', '1e3', '9'.repeat(20), '', '%', '%zz', 'NaN', '0x10'), fc.nat().map(String), fc.string({ maxLength: 10 }));
const queryArb: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.constantFrom('from', 'limit', 'from', 'other', '__proto__', 'limit[]'), queryValue), { maxLength: 4 }).map((kv) => (kv.length === 0 ? '' : `?${kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`)),
  fc.string({ maxLength: 30 }).map((s) => `?${s}`),
);

const credentialArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ authorization: `Bearer ${TOKEN}` }) },
  { weight: 2, arbitrary: fc.constant({ 'x-api-key': 'APIKEY' }) },
  { weight: 1, arbitrary: fc.constant({ authorization: `Bearer ${READ_TOKEN}` }) },
  { weight: 1, arbitrary: fc.constant({ 'x-api-key': 'REVOKED' }) },
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic dXNlcjpwYXNz', 'Bearer hsk_', 'Bearer hsk_abcdefgh_' + 'A'.repeat(20), `Bearer ${'x'.repeat(600)}`, `Bearer ${TOKEN} extra`).map((a) => ({ authorization: a })),
      fc.string({ maxLength: 60 }).map((a) => ({ authorization: `Bearer ${a}` })),
      fc.string({ maxLength: 60 }).map((k) => ({ 'x-api-key': k })),
    ),
  },
);

const contentTypeArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(undefined, 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/json;', 'application/jsonx', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/grpc', '*/*', ''),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

/** Keys shared across cases, so operators meet each other's values ('text' holds a string: a counter over it is 422). */
const keyArb = fc.oneof(fc.constantFrom('text', 'shared', 'n'), fc.string({ minLength: 1, maxLength: 20 }));

const validBody: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ operator_id: fc.constant('kv.put'), inputs: fc.record({ key: keyArb, value: fc.jsonValue({ maxDepth: 2 }) }) }),
  fc.record({ operator_id: fc.constant('kv.get'), inputs: fc.record({ key: keyArb }) }),
  fc.record({ operator_id: fc.constant('counter.add'), inputs: fc.record({ key: keyArb, delta: fc.oneof(fc.integer(), fc.double()) }) }),
  fc.record({ operator_id: fc.constant('kv.cas'), inputs: fc.record({ key: keyArb, expected: fc.jsonValue({ maxDepth: 1 }), value: fc.jsonValue({ maxDepth: 1 }) }) }),
  fc.record({ operator_id: fc.constantFrom('echo', 'sha256', 'kv.delete', 'no.such.op', 'Kv.Put'), inputs: fc.jsonValue({ maxDepth: 2 }) }),
);

const optionsArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.record(
    {
      consensus: fc.constantFrom('none', 'raft', 'pbft', 'paxos', 1),
      timeout_ms: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.constantFrom(1.5, '100', null)),
      idempotency_key: fc.oneof(fc.string({ maxLength: 140 }), fc.constant('')),
      read: fc.constantFrom('log', 'linearizable', 'eventual'),
      extra: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 1 }),
);

type BodyEdit = { kind: 'set'; key: string; value: unknown } | { kind: 'drop'; key: string };
const bodyEdit: fc.Arbitrary<BodyEdit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('operator_id', 'inputs', 'options', 'extra', '__proto__', 'constructor'), value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('kv.put', 'no.such.op', 'not an id!', 'a'.repeat(200), '')) }),
  fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom('operator_id', 'inputs') }),
);

const bodyArb: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(validBody, optionsArb, fc.array(bodyEdit, { maxLength: 2 })).map(([b, options, edits]) => {
    const body: Record<string, unknown> = options === undefined ? { ...b } : { ...b, options };
    for (const e of edits) {
      if (e.kind === 'drop') delete body[e.key];
      else body[e.key] = e.value;
    }
    return JSON.stringify(body);
  }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((d) => `{"operator_id":"echo","inputs":${'['.repeat(d)}${']'.repeat(d)}}`) },
  { weight: 1, arbitrary: fc.tuple(validBody, fc.nat()).map(([b, cut]) => { const t = JSON.stringify(b); return t.slice(0, cut % (t.length + 1)); }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, '', 'null', '[]', '"x"', '{"operator_id":"echo","inputs":{},"operator_id":"kv.put"}', '{"__proto__":{"admin":true},"operator_id":"echo","inputs":{}}', `{"operator_id":"echo","inputs":"${'x'.repeat(BODY_LIMIT)}"}`) },
);

/** Mostly a route's own method and path (so requests get past routing), sometimes anything. */
const routeArb: fc.Arbitrary<{ method: string; path: string }> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ method: 'POST', path: '/api/v1/operators/execute' }) },
  { weight: 2, arbitrary: fc.constantFrom({ method: 'GET', path: '/api/v1/receipts' }, { method: 'GET', path: '/api/v1/receipts/RID' }, { method: 'GET', path: `/api/v1/receipts/receipt_${'0'.repeat(64)}` }) },
  { weight: 1, arbitrary: fc.constantFrom(...['/api/v1/tree-head', '/api/v1/operators', '/api/v1/cluster', '/metrics', '/healthz', '/docs/json'].map((path) => ({ method: 'GET', path }))) },
  { weight: 4, arbitrary: fc.record({ method: fc.constantFrom(...METHODS), path: pathArb }) },
);

const fuzzedRequest = fc.record({
  route: routeArb,
  query: queryArb,
  credentials: credentialArb,
  contentType: contentTypeArb,
  requestId: fc.option(fc.oneof(fc.string({ maxLength: 80 }), fc.constant('req-1')), { nil: undefined }),
  body: bodyArb,
});

/** A well-formed execute (credentials, content type, body shape), its operator and inputs random: the handlers' own answers. */
const cleanExecute = validBody.map((b) => ({
  route: { method: 'POST', path: '/api/v1/operators/execute' },
  query: '',
  credentials: { authorization: `Bearer ${TOKEN}` } as Record<string, string>,
  contentType: 'application/json' as string | undefined,
  requestId: undefined as string | undefined,
  body: JSON.stringify(b) as string | Buffer | undefined,
}));

const requestArb = fc.oneof({ weight: 7, arbitrary: fuzzedRequest }, { weight: 3, arbitrary: cleanExecute });

const KNOWN_CODES = new Set(Object.keys(HTTP_STATUS));

test('REST routes: random and mutated requests never answer 5xx, and every error is typed', async (t) => {
  const tally = new Tally();
  await fc.assert(
    fc.asyncProperty(requestArb, async (r) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.credentials)) headers[k] = v === 'APIKEY' ? apiKey : v === 'REVOKED' ? revokedKey : v;
      if (r.contentType !== undefined) headers['content-type'] = r.contentType;
      if (r.requestId !== undefined) headers['x-request-id'] = r.requestId;
      const { method, path } = r.route;
      const url = path.replace('RID', receiptId) + r.query;
      let res;
      try {
        res = await app.inject({ method: method as (typeof METHODS)[number], url, headers, ...(r.body === undefined ? {} : { payload: r.body }) });
      } catch (e) {
        // light-my-request refuses some URLs itself (it cannot build the request): no server involved.
        if (e instanceof TypeError && /url|URL|path/.test(e.message)) {
          tally.add('client-refused');
          return;
        }
        throw e;
      }
      assert.ok(res.statusCode >= 200 && res.statusCode < 500, `${method} ${url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
      tally.add(String(res.statusCode));
      if (res.statusCode >= 400 && method !== 'HEAD') {
        assert.match(String(res.headers['content-type']), /^application\/json/, `${method} ${url}: ${res.statusCode} is not JSON`);
        const body = JSON.parse(res.body) as { status?: unknown; error?: { code?: unknown; message?: unknown } };
        assert.equal(body.status, 'error');
        const code = body.error?.code;
        assert.ok(typeof code === 'string' && KNOWN_CODES.has(code), `unknown error code ${String(code)}`);
        assert.equal(HTTP_STATUS[code as HttpErrorCode], res.statusCode, `${code} answered with ${res.statusCode}`);
        assert.ok(typeof body.error?.message === 'string' && body.error.message.length > 0);
        assert.doesNotMatch(res.body, /\n\s+at |node_modules/, 'no stack trace');
        if (res.statusCode === 405) assert.ok(typeof res.headers['allow'] === 'string');
        if (res.statusCode === 429 || res.statusCode === 503) assert.match(String(res.headers['retry-after']), /^\d+$/);
        tally.add(code);
      }
    }),
    fuzzParameters(),
  );
  t.diagnostic(`statuses and codes: ${tally.toString()}`);
  // The run reached the interesting answers, not only one kind of refusal.
  for (const key of ['200', '400', '401', '403', '404', '405', '413', '415', '422', 'INVALID_INPUT', 'INVALID_REQUEST', 'MALFORMED_JSON', 'UNKNOWN_OPERATOR', 'NOT_FOUND']) assert.ok(tally.get(key) > 0, `no request answered ${key}`);
  // And the server still serves.
  const ok = await app.inject({ method: 'GET', url: '/api/v1/tree-head', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.statusCode, 200);
});
