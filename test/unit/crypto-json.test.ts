// parseJson works around V8's escaped-key bug (nodejs/node#63785): it must give what a
// correct JSON.parse gives — same values, same acceptance — also after the poisoning parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalize, MAX_JSON_PARSE_DEPTH, parseJson, parseJsonStrict } from '../../src/crypto/index.ts';

const codes = (k: string): number[] => [...k].map((c) => c.codePointAt(0) as number);

test('an escaped key after the V8 poisoning parse comes back right', () => {
  parseJson('{"h":[],"\\\\":0}');
  JSON.parse('{"h":[],"\\\\":0}'); // poison the native key cache, as any other code might
  const value = parseJson('{"h":1,"\\"":2}') as Record<string, number>;
  assert.deepEqual(Object.keys(value).map(codes), [[104], [34]]);
  assert.equal(value['"'], 2);
});

test('strings, escapes, numbers, literals and nesting parse to the values they encode', () => {
  const cases: Array<[string, unknown]> = [
    ['{"a\\u0000b":"\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"}', { 'a\u0000b': '\ud83d\ude00/\b\f\n\r\t"\\' }],
    ['[-0,1e-7,1E+21,0.5,-12.5e3,9007199254740993,true,false,null]', [-0, 1e-7, 1e21, 0.5, -12500, 9007199254740992, true, false, null]],
    [' [ 1 , { "x" : [ ] , "y" : { } } , "\\u00E9" ] ', [1, { x: [], y: {} }, '\u00e9']],
    ['"\\ud800"', '\ud800'],
    ['{"dup":1,"dup":2}', { dup: 2 }],
    ['"\u2028\u2029\u007f"', '\u2028\u2029\u007f'],
  ];
  for (const [text, expected] of cases) {
    assert.deepEqual(parseJsonStrict(text), expected, text);
    assert.deepEqual(parseJson(text), expected, text);
  }
  const proto = parseJsonStrict('{"__proto__":{"polluted":true},"x":1}') as Record<string, unknown>;
  assert.ok(Object.hasOwn(proto, '__proto__'));
  assert.deepEqual(Object.keys(proto), ['__proto__', 'x']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
});

test('invalid JSON text is a SyntaxError, as for JSON.parse', () => {
  const bad = [
    '', ' ', '{', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', "'x'", '"\\x"', '"\\u12g4"', '"\\', '"abc', '"a\u0001b"',
    '01', '1.', '.5', '-', '+1', '1e', 'tru', 'nul', 'NaN', 'Infinity', '[1] [2]', '{"a":1}x', '"\\n" 1', '\u00a0 1',
  ];
  for (const text of bad) {
    assert.throws(() => JSON.parse(text), SyntaxError, `native accepts ${JSON.stringify(text)}`);
    assert.throws(() => parseJsonStrict(text), SyntaxError, JSON.stringify(text));
    assert.throws(() => parseJson(text), SyntaxError, JSON.stringify(text));
  }
  let deep = '1';
  for (let i = 0; i <= MAX_JSON_PARSE_DEPTH; i++) deep = `[${deep}]`;
  assert.throws(() => parseJsonStrict(deep), SyntaxError);
});

test('property: parses any JSON text (with escapes) to the value it encodes', () => {
  const key = fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\r', '\u0000', '\u001f', '/', '\u20ac', '\ud83d\ude00'), maxLength: 3 });
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: 'grapheme' }), key, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(key, tie('value'), { maxKeys: 8 }),
  })).value;
  fc.assert(
    fc.property(json, fc.boolean(), (value, pretty) => {
      const text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
      if (text === undefined) return;
      assert.equal(canonicalize(parseJson(text)), canonicalize(value));
      assert.equal(canonicalize(parseJsonStrict(text)), canonicalize(value));
    }),
    { numRuns: 500 },
  );
});
