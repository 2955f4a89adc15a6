// The built-in operators: a small KV (put/get/delete/cas), counters, sha256 and echo. Every
// run() is deterministic and touches state only through ctx.kv; a domain failure throws
// OperatorError (the machine then discards the writes). KV values are any JSON except null,
// so `expected: null` in kv.cas means "absent" without ambiguity.
import { base64urlDecode, bytesEqual, canonicalBytes, sha256Digest, utf8Encode } from '../crypto/index.ts';
import type { Json, JsonObject } from '../ico/types.ts';
import { OperatorError } from './errors.ts';
import { MAX_JSON_BYTES_KEYWORD, OperatorRegistry } from './registry.ts';
import type { JsonSchema, OperatorContext, OperatorDef } from './types.ts';

/** Longest KV key, in characters. */
export const MAX_KEY_CHARS = 256;
/** Largest KV value, as RFC 8785 bytes. */
export const MAX_VALUE_BYTES = 64 * 1024;
/** Longest `data` string sha256 accepts, in characters. */
export const MAX_SHA256_DATA_CHARS = 256 * 1024;

const keySchema: JsonSchema = { type: 'string', minLength: 1, maxLength: MAX_KEY_CHARS };
const valueSchema: JsonSchema = { not: { type: 'null' }, [MAX_JSON_BYTES_KEYWORD]: MAX_VALUE_BYTES };
const anyValue: JsonSchema = {};

function object(properties: JsonObject, required: string[]): JsonSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

/** Inputs reach run() only after schema validation, so these reads are of checked shapes. */
function field(inputs: Json, name: string): Json | undefined {
  return (inputs as JsonObject)[name];
}

function str(inputs: Json, name: string): string {
  return field(inputs, name) as string;
}

function jsonEqual(a: Json, b: Json): boolean {
  return bytesEqual(canonicalBytes(a), canonicalBytes(b));
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (RFC 4648 §4, padded); OperatorError on anything else. */
function base64Decode(text: string): Uint8Array {
  if (!STD_BASE64.test(text)) throw new OperatorError('INVALID_BASE64', 'data is not padded standard base64');
  try {
    return base64urlDecode(text.replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_'));
  } catch {
    // Non-zero trailing bits: a second spelling of the same bytes.
    throw new OperatorError('INVALID_BASE64', 'data is not canonical base64');
  }
}

export const kvPut: OperatorDef = {
  id: 'kv.put',
  description: 'Sets key to value (any JSON but null, at most 64 KiB); returns the previous value if there was one.',
  readonly: false,
  input_schema: object({ key: keySchema, value: valueSchema }, ['key', 'value']),
  output_schema: object({ ok: { const: true }, previous: anyValue }, ['ok']),
  run(inputs: Json, ctx: OperatorContext): Json {
    const key = str(inputs, 'key');
    const previous = ctx.kv.get(key);
    ctx.kv.set(key, field(inputs, 'value') as Json);
    return previous === undefined ? { ok: true } : { ok: true, previous };
  },
};

export const kvGet: OperatorDef = {
  id: 'kv.get',
  description: 'Reads key; found is false when it is absent.',
  readonly: true,
  input_schema: object({ key: keySchema }, ['key']),
  output_schema: object({ found: { type: 'boolean' }, value: anyValue }, ['found']),
  run(inputs: Json, ctx: OperatorContext): Json {
    const value = ctx.kv.get(str(inputs, 'key'));
    return value === undefined ? { found: false } : { found: true, value };
  },
};

export const kvDelete: OperatorDef = {
  id: 'kv.delete',
  description: 'Removes key; deleted is false when it was already absent.',
  readonly: false,
  input_schema: object({ key: keySchema }, ['key']),
  output_schema: object({ deleted: { type: 'boolean' } }, ['deleted']),
  run(inputs: Json, ctx: OperatorContext): Json {
    return { deleted: ctx.kv.delete(str(inputs, 'key')) };
  },
};

export const kvCas: OperatorDef = {
  id: 'kv.cas',
  description: 'Compare-and-set: sets key to value only if it currently equals expected (null: only if absent). On a mismatch ok is false and current holds the present value, if any.',
  readonly: false,
  input_schema: object({ key: keySchema, expected: { [MAX_JSON_BYTES_KEYWORD]: MAX_VALUE_BYTES }, value: valueSchema }, ['key', 'expected', 'value']),
  output_schema: object({ ok: { type: 'boolean' }, current: anyValue }, ['ok']),
  run(inputs: Json, ctx: OperatorContext): Json {
    const key = str(inputs, 'key');
    const expected = field(inputs, 'expected') as Json;
    const current = ctx.kv.get(key);
    const matches = expected === null ? current === undefined : current !== undefined && jsonEqual(current, expected);
    if (!matches) return current === undefined ? { ok: false } : { ok: false, current };
    ctx.kv.set(key, field(inputs, 'value') as Json);
    return { ok: true };
  },
};

export const counterAdd: OperatorDef = {
  id: 'counter.add',
  description: 'Adds delta (an integer) to the counter at key (absent counts as 0); fails if key holds a non-integer or the sum leaves the safe-integer range.',
  readonly: false,
  input_schema: object({ key: keySchema, delta: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } }, ['key', 'delta']),
  output_schema: object({ value: { type: 'integer' } }, ['value']),
  run(inputs: Json, ctx: OperatorContext): Json {
    const key = str(inputs, 'key');
    const current = ctx.kv.get(key) ?? 0;
    if (typeof current !== 'number' || !Number.isSafeInteger(current)) throw new OperatorError('NOT_A_COUNTER', `${key.slice(0, 64)} does not hold an integer`);
    const value = current + (field(inputs, 'delta') as number);
    if (!Number.isSafeInteger(value)) throw new OperatorError('COUNTER_OVERFLOW', `${key.slice(0, 64)} would leave the safe-integer range`);
    ctx.kv.set(key, value);
    return { value };
  },
};

export const sha256: OperatorDef = {
  id: 'sha256',
  description: 'SHA-256 of data (UTF-8 text by default, or padded standard base64 with encoding "base64"), as "sha256:<hex>".',
  readonly: true,
  input_schema: object({ data: { type: 'string', maxLength: MAX_SHA256_DATA_CHARS }, encoding: { enum: ['utf8', 'base64'] } }, ['data']),
  output_schema: object({ digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } }, ['digest']),
  run(inputs: Json): Json {
    const data = str(inputs, 'data');
    const bytes = field(inputs, 'encoding') === 'base64' ? base64Decode(data) : utf8Encode(data);
    return { digest: sha256Digest(bytes) };
  },
};

export const echo: OperatorDef = {
  id: 'echo',
  description: 'Returns its inputs (any JSON object) unchanged.',
  readonly: true,
  input_schema: { type: 'object' },
  output_schema: { type: 'object' },
  run(inputs: Json): Json {
    return inputs;
  },
};

export const BUILTIN_OPERATORS: readonly OperatorDef[] = [kvPut, kvGet, kvDelete, kvCas, counterAdd, sha256, echo];

/** A registry holding the built-in operators. */
export function builtinRegistry(): OperatorRegistry {
  const registry = new OperatorRegistry();
  for (const def of BUILTIN_OPERATORS) registry.register(def);
  return registry;
}
