// RFC 8785 JSON Canonicalization Scheme: the one byte form of a JSON value that everything
// signed or hashed here is computed over. Strings and numbers serialize exactly as
// ECMAScript's JSON.stringify (which RFC 8785 adopts); object keys sort by UTF-16 code units.
// Anything that is not plain JSON data (undefined, functions, bigint, NaN, class instances,
// lone surrogates, cycles) is rejected with a JcsError rather than silently dropped.

export class JcsError extends Error {
  readonly code = 'JCS_INVALID';
  override name = 'JcsError';
}

/** Deepest nesting accepted; bounds recursion on hostile input. */
export const MAX_JCS_DEPTH = 128;

// Strings holding none of these serialize as themselves in quotes (the common case); the
// rest go through JSON.stringify, whose escaping is exactly RFC 8785's (section 3.2.2.2).
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** Thrown inside the recursion; the public entry turns it into a JcsError with the path. */
class Invalid {
  readonly path: string[] = [];
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

function serializeString(s: string): string {
  // A lone surrogate has no UTF-8 form: I-JSON (and so JCS) forbids it.
  if (!s.isWellFormed()) throw new Invalid('lone surrogate in string');
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** Objects up to this many keys sort by insertion sort (several times faster than Array#sort there). */
const SMALL_OBJECT_KEYS = 16;

// `<` on strings compares UTF-16 code units, which is exactly RFC 8785's property order.
function sortKeys(keys: string[]): string[] {
  if (keys.length > SMALL_OBJECT_KEYS) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

// Paths are only built while unwinding from an error, so the success path allocates nothing
// but the output string (this runs on every envelope and receipt signature).
function serialize(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return serializeString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Invalid('non-finite number');
      // Number.prototype.toString is RFC 8785's number serialization; it already prints -0 as 0.
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      // The depth bound also ends cycles, which can only show up as unbounded depth.
      if (depth >= MAX_JCS_DEPTH) throw new Invalid(`nesting deeper than ${MAX_JCS_DEPTH} (or a cycle)`);
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          try {
            const item: unknown = value[i];
            if (item === undefined) throw new Invalid(i in value ? 'undefined is not JSON' : 'sparse array hole');
            out += serialize(item, depth + 1);
          } catch (e) {
            if (e instanceof Invalid) e.path.push(`[${i}]`);
            throw e;
          }
        }
        return out + ']';
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new Invalid('not a plain object');
      const record = value as Record<string, unknown>;
      const keys = sortKeys(Object.keys(record));
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if (i > 0) out += ',';
        try {
          out += serializeString(key) + ':' + serialize(record[key], depth + 1);
        } catch (e) {
          if (e instanceof Invalid) e.path.push(`.${key}`);
          throw e;
        }
      }
      return out + '}';
    }
    default:
      throw new Invalid(`${typeof value} is not JSON`);
  }
}

/** The canonical JSON text of `value` (RFC 8785). Throws JcsError for non-JSON input. */
export function canonicalize(value: unknown): string {
  try {
    return serialize(value, 0);
  } catch (e) {
    if (e instanceof Invalid) throw new JcsError(`${e.reason} at $${e.path.reverse().join('')}`);
    throw e;
  }
}

const encoder = new TextEncoder();

/** UTF-8 bytes of the canonical JSON text: the input to every hash and signature. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}
