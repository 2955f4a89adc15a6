// The ICO JSON envelope decoder (src/ico/envelope.ts) under the shared decoder harness: random
// bytes, byte-level mutations of sealed envelopes, and JSON-level edits (fields dropped, added,
// retyped, edge numbers and timestamps, duplicate and escaped keys, reordered and spaced text,
// deep nesting), half of them re-signed by the sender's real key so the checks behind the
// signature (type, seq, timestamp, replay) are reached too. Every input decodes to one of the
// sealed envelopes (or to exactly what was re-signed, within the envelope's rules) or is
// rejected with an ICO_* code.
import fc from 'fast-check';
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { base64urlEncode, canonicalize } from '../../src/crypto/index.ts';
import { DEFAULT_CODEC_LIMITS, ICO_TYPES, IcoError, ReplayGuard, decodeEnvelope, isRfc3339Utc, type Envelope, type IcoErrorCode, type IcoType, type JsonObject } from '../../src/ico/index.ts';
import { identity } from '../unit/ico-fixtures.ts';
import { fuzzDecoder, type Decoded, type Mutant } from './decoder-harness.ts';

const NOW = Date.parse('2026-11-24T16:35:38.169Z');
/** Small enough that mutations which grow a frame reach the size check. */
const MAX_FRAME_BYTES = 4096;

const ERROR_CODES: ReadonlySet<IcoErrorCode> = new Set<IcoErrorCode>(['ICO_MALFORMED', 'ICO_UNKNOWN_TYPE', 'ICO_BAD_SIGNATURE', 'ICO_SENDER_MISMATCH', 'ICO_REPLAYED', 'ICO_TIMESTAMP_SKEW', 'ICO_FRAME_TOO_LARGE']);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ids = [await identity(), await identity()];
const payloads: Array<[IcoType, JsonObject]> = [
  ['HELLO', { version: '1.0', cluster: 'fuzz', roles: ['voter'], capabilities: ['sync'], tree_head: { size: 3, root: `sha256:${'ab'.repeat(32)}` }, join_token: null, heartbeat_ms: 1000 }],
  ['HEARTBEAT', { beat: 7 }],
  ['STATE_SYNC', { kind: 'ranges', items: [1, 2.5, -3, 'x', { nested: [true, null] }], text: 'héllo ✓ \u0000 "q" \\ 𝄞' }],
  ['CONSENSUS', { raft: { type: 'append', term: 4, entries: [{ index: 9, data: 'AAEC' }] } }],
  ['GOODBYE', { code: 'shutdown', reason: 'bye' }],
];
const samples: Uint8Array[] = [];
for (const id of ids) for (const [type, payload] of payloads) samples.push(id.sealer.seal(type, payload, NOW).bytes);

function decode(bytes: Uint8Array): Decoded<Envelope> {
  // A fresh replay window per input: each input is judged on its own.
  const r = decodeEnvelope(bytes, { now: NOW, replay: new ReplayGuard(), limits: { maxFrameBytes: MAX_FRAME_BYTES } });
  return r.ok ? { ok: true, value: r.envelope } : { ok: false, error: r.error };
}

function same(a: Envelope, b: Envelope): boolean {
  return a.signature === b.signature && a.sender === b.sender && a.seq === b.seq && a.type === b.type && a.timestamp === b.timestamp && a.v === b.v && JSON.stringify(a.payload) === JSON.stringify(b.payload);
}

const DEEP_MARK = '\u0000deep\u0000';
const FIELDS = ['v', 'type', 'sender', 'seq', 'timestamp', 'payload', 'signature'];

const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -1, -0, 1.5, 2 ** 53, 2 ** 53 + 2, 1e308, Number.MAX_SAFE_INTEGER, '', ' ', '1.0', '99.99', 'HELLO', 'hello', 'NOPE', null, true, [], {}),
  fc.constantFrom('2026-02-30T00:00:00Z', '2026-11-24T16:35:60Z', '2026-11-24T16:35:38+01:00', '2026-11-24 16:35:38Z', '2026-11-24T16:35:38.1234567890Z', '9999-12-31T23:59:59Z'),
  fc.constantFrom('12D3KooW', '12D3KooWxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'Qm' + 'a'.repeat(44), 'A'.repeat(86), 'A'.repeat(85) + '=', '*'.repeat(86)),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 40 }),
);

type Edit = { kind: 'drop'; field: number } | { kind: 'add'; key: string; value: unknown } | { kind: 'set'; field: number; value: unknown } | { kind: 'payload'; value: unknown } | { kind: 'swap-sender' } | { kind: 'deep' ; depth: number };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), field: fc.nat({ max: FIELDS.length - 1 }) }),
  fc.record({ kind: fc.constant('add' as const), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'signature2', 'Type')), value: edgeValue }),
  fc.record({ kind: fc.constant('set' as const), field: fc.nat({ max: FIELDS.length - 1 }), value: edgeValue }),
  fc.record({ kind: fc.constant('payload' as const), value: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }))) }),
  fc.record({ kind: fc.constant('swap-sender' as const) }),
  fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 50, max: 1900 }) }),
);

type Format = 'plain' | 'spaced' | 'reversed-keys' | 'duplicate-key' | 'escaped-keys';
const formatArb = fc.constantFrom<Format>('plain', 'spaced', 'reversed-keys', 'duplicate-key', 'escaped-keys');

function render(obj: Record<string, unknown>, format: Format, extra: string): string {
  switch (format) {
    case 'plain':
      return JSON.stringify(obj);
    case 'spaced':
      return JSON.stringify(obj, null, 1);
    case 'reversed-keys':
      return JSON.stringify(Object.fromEntries(Object.entries(obj).reverse()));
    case 'duplicate-key':
      // A second `type` (or any field) after the first: JSON.parse keeps the last.
      return JSON.stringify(obj).replace(/}$/, `,${JSON.stringify(extra)}:${JSON.stringify(obj[extra] ?? 'HEARTBEAT')}}`);
    case 'escaped-keys':
      // Keys written with \\u escapes decode to the same names (the V8 escaped-key bug lives here).
      return JSON.stringify(obj).replace(/"([a-z_]+)":/g, (_m, k: string) => `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}":`);
  }
}

/** Signs `obj` (without its signature) as its sender would, if the sender is one of ours and JCS takes it. */
function resign(obj: Record<string, unknown>): boolean {
  const signer = ids.find((id) => id.peerId === obj['sender'])?.signer;
  if (signer === undefined) return false;
  const { signature: _dropped, ...body } = obj;
  let text: string;
  try {
    text = canonicalize(body);
  } catch {
    return false;
  }
  obj['signature'] = base64urlEncode(signer.sign(encoder.encode(text)));
  return true;
}

const structured: fc.Arbitrary<Mutant<Envelope>> = fc.tuple(fc.nat({ max: samples.length - 1 }), fc.array(editArb, { minLength: 1, maxLength: 3 }), formatArb, fc.constantFrom(...FIELDS), fc.boolean()).map(([i, edits, format, extra, signAgain]) => {
  const obj = JSON.parse(decoder.decode(samples[i])) as Record<string, unknown>;
  let deep = 0;
  for (const e of edits) {
    switch (e.kind) {
      case 'drop':
        delete obj[FIELDS[e.field]!];
        break;
      case 'add':
        obj[e.key] = e.value;
        break;
      case 'set':
        obj[FIELDS[e.field]!] = e.value;
        break;
      case 'payload':
        obj['payload'] = e.value;
        break;
      case 'swap-sender':
        obj['sender'] = ids.find((id) => id.peerId !== obj['sender'])?.peerId;
        break;
      case 'deep':
        // Spliced in as text below: nesting this deep would overflow JSON.stringify here.
        obj['payload'] = { deep: DEEP_MARK };
        deep = e.depth;
        break;
    }
  }
  // Deep nesting is spliced in as text after signing, so those mutants are never re-signed.
  const signedAs = signAgain && deep === 0 && resign(obj) ? (JSON.parse(JSON.stringify(obj)) as Envelope) : undefined;
  const text = render(obj, format, extra);
  const bytes = encoder.encode(deep === 0 ? text : text.replace(JSON.stringify(DEEP_MARK), `${'['.repeat(deep)}1${']'.repeat(deep)}`));
  return signedAs === undefined ? { bytes } : { bytes, signedAs };
});

fuzzDecoder<Envelope>({
  name: 'ICO JSON envelope decoder',
  samples,
  decode,
  errorCodes: ERROR_CODES,
  codeOf: (e) => (e instanceof IcoError ? e.code : null),
  same,
  invariant(e) {
    if (Object.keys(e).length !== 7) return `fields: ${Object.keys(e).join(',')}`;
    if (!(ICO_TYPES as readonly string[]).includes(e.type)) return `type ${e.type}`;
    if (!Number.isSafeInteger(e.seq) || e.seq <= 0) return `seq ${e.seq}`;
    if (!isRfc3339Utc(e.timestamp) || Math.abs(Date.parse(e.timestamp) - NOW) > DEFAULT_CODEC_LIMITS.maxSkewMs) return `timestamp ${e.timestamp}`;
    if (typeof e.payload !== 'object' || e.payload === null || Array.isArray(e.payload)) return 'payload is not an object';
    return null;
  },
  structured,
});

test('ICO JSON envelope decoder: a 1 MiB frame nested 500,000 deep is a typed rejection, not a stack overflow', () => {
  const depth = 500_000;
  const sealed = JSON.parse(decoder.decode(samples[1])) as Record<string, unknown>;
  const text = JSON.stringify({ ...sealed, payload: { deep: DEEP_MARK } }).replace(JSON.stringify(DEEP_MARK), `${'['.repeat(depth)}1${']'.repeat(depth)}`);
  const bytes = encoder.encode(text);
  assert.ok(bytes.length <= DEFAULT_CODEC_LIMITS.maxFrameBytes);
  const r = decodeEnvelope(bytes, { now: NOW });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.error instanceof IcoError && ERROR_CODES.has(r.error.code), r.ok ? '' : String(r.error));
});
