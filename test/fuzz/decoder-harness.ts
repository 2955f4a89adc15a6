// A fuzz harness for any decoder of signed bytes: random bytes, byte-level mutations of valid
// encodings (bit flips, overwrites, insertions of random or structural bytes, deletions,
// truncations, splices of two encodings, repeated runs) and, when the codec offers them,
// format-aware mutations (which may re-sign what they changed). For every input the decoder
// must not throw, must reject with one of its typed error codes, and may accept only what
// decodes to one of the valid samples or to the message a mutant was re-signed as (a signature
// can not be forged, so nothing else is acceptable), and only values that keep its invariants.
//
// Plugging a codec in (the JSON envelope codec does it in ico-decoder.fuzz.test.ts; the binary
// envelope codec adds its own file the same way):
//
//   fuzzDecoder({ name: 'ICO binary envelope', samples, decode, errorCodes, codeOf, same, structured? });
//
// which registers one node:test test per mutation family, each running FUZZ_RUNS cases.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { fuzzParameters, Tally } from './fuzz-params.ts';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface DecoderBoundary<T> {
  /** Named in test titles and in failure reports. */
  readonly name: string;
  /** Valid encodings (each must decode): the inputs mutations start from. */
  readonly samples: readonly Uint8Array[];
  /** The boundary under test; must return, never throw. */
  decode(bytes: Uint8Array): Decoded<T>;
  /** Every code a rejection may carry. */
  readonly errorCodes: ReadonlySet<string>;
  /** A rejection's stable code when it is one of this codec's typed errors, else null. */
  codeOf(error: unknown): string | null;
  /** Whether two decoded values are the same message. */
  same(a: T, b: T): boolean;
  /** What every accepted value must satisfy; returns the broken rule, or null. */
  invariant?(value: T): string | null;
  /** Format-aware mutants (e.g. JSON-level edits for a JSON codec), re-signed or not. */
  readonly structured?: fc.Arbitrary<Mutant<T>>;
}

/**
 * A format-aware mutant: its bytes; when it was re-signed, the one value it may decode to
 * (`signedAs`), or, when that is not worth predicting (`resigned`), any value that keeps the
 * boundary's invariant.
 */
export interface Mutant<T> {
  bytes: Uint8Array;
  signedAs?: T;
  resigned?: boolean;
}

/** Bytes that mean something to common encodings: JSON punctuation, quotes, escapes, varint edges. */
const STRUCTURAL_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x20, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x75, 0xc0, 0xed, 0xa0, 0xf0];

type Op =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; other: number; at: number; from: number }
  | { op: 'repeat'; at: number; len: number; times: number };

const byteOf = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...STRUCTURAL_BYTES));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: byteOf }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(byteOf, { minLength: 1, maxLength: 8 }).map((a) => Uint8Array.from(a)) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('splice' as const), other: fc.nat(), at: fc.nat(), from: fc.nat() }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 32 }), times: fc.integer({ min: 2, max: 8 }) }),
);

function apply(bytes: Uint8Array, op: Op, samples: readonly Uint8Array[]): Uint8Array {
  const n = bytes.length;
  const at = n === 0 ? 0 : op.at % (n + 1);
  switch (op.op) {
    case 'flip': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[op.at % n] = out[op.at % n]! ^ (1 << op.bit);
      return out;
    }
    case 'set': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[op.at % n] = op.byte;
      return out;
    }
    case 'insert':
      return Uint8Array.from([...bytes.subarray(0, at), ...op.bytes, ...bytes.subarray(at)]);
    case 'delete':
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(Math.min(n, at + op.len))]);
    case 'truncate':
      return bytes.subarray(0, at);
    case 'splice': {
      const other = samples[op.other % samples.length]!;
      return Uint8Array.from([...bytes.subarray(0, at), ...other.subarray(other.length === 0 ? 0 : op.from % other.length)]);
    }
    case 'repeat': {
      const run = bytes.subarray(at, Math.min(n, at + op.len));
      return Uint8Array.from([...bytes.subarray(0, at), ...Array.from({ length: op.times }, () => [...run]).flat(), ...bytes.subarray(at)]);
    }
  }
}

/** A valid sample with one to four byte-level mutations applied. */
export function mutatedSample(samples: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.nat({ max: samples.length - 1 }), byteMutations(1)).map(([i, mutate]) => mutate(samples[i]!, samples));
}

/** Up to four byte-level mutations, as a function of the bytes (and of other encodings to splice from). */
export function byteMutations(minLength = 0): fc.Arbitrary<(bytes: Uint8Array, others?: readonly Uint8Array[]) => Uint8Array> {
  return fc.array(opArb, { minLength, maxLength: 4 }).map((ops) => (bytes, others = [bytes]) => ops.reduce((b, op) => apply(b, op, others.length > 0 ? others : [bytes]), bytes));
}

/** Registers the harness's tests for one decoder. */
export function fuzzDecoder<T>(b: DecoderBoundary<T>): void {
  assert.ok(b.samples.length > 0, `${b.name}: no samples`);
  const accepted: T[] = b.samples.map((s, i) => {
    const r = b.decode(s);
    assert.ok(r.ok, `${b.name}: sample ${i} does not decode: ${r.ok ? '' : String(r.error)}`);
    return r.value;
  });

  const check = ({ bytes, signedAs, resigned }: Mutant<T>, tally: Tally): void => {
    let r: Decoded<T>;
    try {
      r = b.decode(bytes);
    } catch (e) {
      assert.fail(`${b.name} threw on ${bytes.length} bytes (${Buffer.from(bytes.subarray(0, 64)).toString('hex')}…): ${String(e)}`);
    }
    if (r.ok) {
      const known = accepted.some((v) => b.same(v, r.value)) || (signedAs !== undefined && b.same(signedAs, r.value)) || resigned === true;
      assert.ok(known, `${b.name} accepted bytes that decode to no valid sample: ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`);
      const broken = b.invariant?.(r.value) ?? null;
      assert.equal(broken, null, `${b.name} accepted a value that breaks its rules: ${broken}`);
      tally.add(signedAs === undefined && resigned !== true ? 'accepted' : 'accepted-resigned');
      return;
    }
    const code = b.codeOf(r.error);
    assert.ok(code !== null, `${b.name} rejected with an untyped error: ${String(r.error)}`);
    assert.ok(b.errorCodes.has(code), `${b.name} rejected with unknown code ${code}`);
    tally.add(code);
  };

  const plain = (arb: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Mutant<T>> => arb.map((bytes) => ({ bytes }));
  const families: Array<[string, fc.Arbitrary<Mutant<T>>]> = [
    ['random bytes', plain(fc.uint8Array({ maxLength: 2048 }))],
    ['byte-level mutations of valid encodings', plain(mutatedSample(b.samples))],
  ];
  if (b.structured !== undefined) families.push(['format-aware mutations', b.structured]);
  for (const [family, arb] of families) {
    test(`${b.name}: ${family} never throw, and every rejection is typed`, (t) => {
      const tally = new Tally();
      fc.assert(fc.property(arb, (m) => check(m, tally)), fuzzParameters());
      t.diagnostic(`${b.name} / ${family}: ${tally.total} cases: ${tally.toString()}`);
    });
  }
}
