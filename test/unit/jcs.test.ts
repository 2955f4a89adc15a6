// RFC 8785 conformance: the RFC's own examples (sections 3.2.2, 3.2.3), its Appendix B
// number table, the reference implementation's test data, a property test against a naive
// reference, and rejection of everything that is not plain JSON data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalBytes, canonicalize, JcsError, parseJson } from '../../src/crypto/index.ts';

function fromIeeeHex(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

test('RFC 8785 Appendix B: numbers serialize exactly as the table', () => {
  const table: Array<[string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  for (const [hex, expected] of table) assert.equal(canonicalize(fromIeeeHex(hex)), expected, hex);
});

test('RFC 8785 Appendix B: NaN and Infinity are rejected', () => {
  assert.throws(() => canonicalize(fromIeeeHex('7fffffffffffffff')), JcsError);
  assert.throws(() => canonicalize(fromIeeeHex('7ff0000000000000')), JcsError);
});

test('RFC 8785 3.2.2: the sample object canonicalizes to the published output', () => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
      ' "literals": [null, true, false]}',
  ) as unknown;
  assert.equal(
    canonicalize(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test('RFC 8785 3.2.3: properties sort by UTF-16 code units', () => {
  const input = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  assert.equal(
    canonicalize(input),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
});

// Input and expected output files of the RFC authors' reference implementation
// (github.com/cyberphone/json-canonicalization, testdata/, commit 19d51d7).
const CYBERPHONE: Array<[string, string, string]> = [
  ["arrays", "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]\n",
    "[56,{\"1\":[],\"10\":null,\"d\":true}]"],
  ["french", "{\n  \"peach\": \"This sorting order\",\n  \"péché\": \"is wrong according to French\",\n  \"pêche\": \"but canonicalization MUST\",\n  \"sin\":   \"ignore locale\"\n}\n",
    "{\"peach\":\"This sorting order\",\"péché\":\"is wrong according to French\",\"pêche\":\"but canonicalization MUST\",\"sin\":\"ignore locale\"}"],
  ["structures", "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n  \"a\": { },\n  \"111\": [ {\"e\": \"yes\",\"E\": \"no\" } ],\n  \"A\": { }\n}",
    "{\"\":\"empty\",\"1\":{\"\\n\":56,\"f\":{\"F\":5,\"f\":\"hi\"}},\"10\":{},\"111\":[{\"E\":\"no\",\"e\":\"yes\"}],\"A\":{},\"a\":{}}"],
  ["unicode", "{\n  \"Unnormalized Unicode\":\"A\\u030a\"\n}\n",
    "{\"Unnormalized Unicode\":\"Å\"}"],
  ["values", "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
    "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"],
  ["weird", "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\u000a\": \"Newline\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}\n",
    "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"דּ\":\"Hebrew Letter Dalet With Dagesh\"}"],
];

test('reference implementation test data: every input canonicalizes to its expected output', () => {
  for (const [name, input, output] of CYBERPHONE) {
    assert.equal(canonicalize(parseJson(input)), output, name);
    assert.deepEqual(canonicalBytes(parseJson(input)), new TextEncoder().encode(output), name);
  }
});

/** The obvious implementation (JSON.stringify + Array#sort), to hold the optimized one against. */
function naive(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(naive).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${naive(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

test('property: equals the naive JSON.stringify + sort form, and parses back to the same value', () => {
  // Keys from a small alphabet with astral, combining and control characters collide and
  // sort interestingly; objects get past the insertion-sort threshold.
  const key = fc.string({ unit: fc.constantFrom('a', 'B', '1', '\u0000', '\u007f', '\u00e9', '\u20ac', '\ud83d\ude00', '\ufb33', '"', '\\'), maxLength: 4 });
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(), fc.string({ unit: 'grapheme' }), tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 5 }),
    object: fc.dictionary(key, tie('value'), { maxKeys: 24 }),
  })).value;
  fc.assert(
    fc.property(json, (value) => {
      const text = canonicalize(value);
      assert.equal(text, naive(value));
      // parseJson, not JSON.parse: V8 can mis-decode escaped keys (src/crypto/json.ts).
      assert.equal(canonicalize(parseJson(text)), text);
    }),
    { numRuns: 500 },
  );
});

test('nested objects sort recursively and whitespace disappears', () => {
  assert.equal(canonicalize({ b: { d: 1, c: [2, { f: 3, e: 4 }] }, a: 'x' }), '{"a":"x","b":{"c":[2,{"e":4,"f":3}],"d":1}}');
});

test('non-JSON values are rejected with JcsError', () => {
  const bad: unknown[] = [undefined, () => 1, 10n, Symbol('s'), new Date(0), new Map(), { a: undefined }, [1, undefined], Number.NaN, '\ud800', { ['\udc00']: 1 }];
  for (const value of bad) assert.throws(() => canonicalize(value), (e: unknown) => e instanceof JcsError && e.code === 'JCS_INVALID');
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.throws(() => canonicalize(cyclic), JcsError);
  let deep: unknown = 1;
  for (let i = 0; i < 200; i++) deep = [deep];
  assert.throws(() => canonicalize(deep), JcsError);
  // eslint-style sparse array
  assert.throws(() => canonicalize(new Array(3)), JcsError);
});
