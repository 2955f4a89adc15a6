// A deep copy of plain JSON data: what the state machine hands out and keeps, so an operator
// or a caller that mutates an object it got never changes the replicated state. For the small
// values commands carry it is several times cheaper than structuredClone (which serializes
// through V8's value serializer). Anything that is not plain JSON (a Date, a Map, a class
// instance) goes through structuredClone unchanged, so the copy is never weaker than before;
// like structuredClone, the copy of an object is always a plain object (Object.prototype).

/** Deepest nesting copied by recursion; anything deeper goes to structuredClone. */
export const MAX_CLONE_DEPTH = 128;

/** Deep copy of `value`; plain objects and arrays are copied by hand, the rest by structuredClone. */
export function cloneJson<T>(value: T): T {
  return copy(value, 0) as T;
}

function copy(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_CLONE_DEPTH) return structuredClone(value);
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copy(value[i], depth + 1);
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  // A null-prototype source is copied to a plain object, as structuredClone does: replicas
  // that decoded a command and one that did not hand out equal values.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copy((value as Record<string, unknown>)[key], depth + 1);
    // JSON.parse makes "__proto__" an own property; plain assignment would set the prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
    else out[key] = v;
  }
  return out;
}
