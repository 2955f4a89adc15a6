// The operator form's pure part: fields from each built-in operator's JSON Schema, and the
// inputs object back from what a person typed (numbers, booleans, enums, JSON), with the
// first problem named by its field. The relay's own validation stays the judge; the form
// only has to produce what the person meant, or say which field is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinRegistry } from '../../src/statemachine/builtins.ts';
import { formFields, MAX_FORM_FIELDS, parseInputs, type FormValue } from '../../web/schema-form.ts';
import type { Json } from '../../src/ico/types.ts';

type Schema = { [key: string]: Json };
const ops = new Map(builtinRegistry().list().map((o) => [o.id, o.input_schema as Schema]));

function schemaOf(id: string): Schema {
  const s = ops.get(id);
  assert.ok(s !== undefined, `operator ${id}`);
  return s;
}

const raw = (entries: Array<[string, FormValue]>): Map<string, FormValue> => new Map(entries);

test('every built-in operator gets a form, and its inputs validate against the relay schema', () => {
  assert.ok(ops.size >= 5);
  const kv = formFields(schemaOf('kv.put'));
  assert.deepEqual(kv.map((f) => [f.name, f.kind, f.required]), [['key', 'string', true], ['value', 'json', true]]);
  assert.match(kv[0]!.hint, /maxLength 256/);
  assert.deepEqual(parseInputs(kv, raw([['key', 'a'], ['value', '{"n":1}']])), { ok: true, inputs: { key: 'a', value: { n: 1 } } });
  const add = formFields(schemaOf('counter.add'));
  assert.deepEqual(add.map((f) => [f.name, f.kind]), [['key', 'string'], ['delta', 'integer']]);
  assert.deepEqual(parseInputs(add, raw([['key', 'c'], ['delta', '-3']])), { ok: true, inputs: { key: 'c', delta: -3 } });
  const sha = formFields(schemaOf('sha256'));
  assert.deepEqual(sha.map((f) => [f.name, f.kind, f.required, f.options]), [['data', 'string', true, []], ['encoding', 'enum', false, ['"utf8"', '"base64"']]]);
  assert.deepEqual(parseInputs(sha, raw([['data', 'hi'], ['encoding', '"base64"']])), { ok: true, inputs: { data: 'hi', encoding: 'base64' } });
  // An operator whose schema is just `object`: one JSON box for the whole input.
  const echo = formFields(schemaOf('echo'));
  assert.deepEqual(echo.map((f) => [f.name, f.kind]), [['', 'json']]);
  assert.deepEqual(parseInputs(echo, raw([['', '{"x":[1,2]}']])), { ok: true, inputs: { x: [1, 2] } });
});

test('the first wrong field is named with what is wrong', () => {
  const kv = formFields(schemaOf('kv.put'));
  assert.deepEqual(parseInputs(kv, raw([['key', ''], ['value', '1']])), { ok: false, field: 'key', problem: 'required' });
  const bad = parseInputs(kv, raw([['key', 'a'], ['value', '{oops']]));
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.field, 'value');
  assert.match(!bad.ok ? bad.problem : '', /not valid JSON/);
  const add = formFields(schemaOf('counter.add'));
  assert.deepEqual(parseInputs(add, raw([['key', 'c'], ['delta', '1.5']])), { ok: false, field: 'delta', problem: "'1.5' is not a whole number" });
  assert.deepEqual(parseInputs(add, raw([['key', 'c'], ['delta', 'ten']])), { ok: false, field: 'delta', problem: "'ten' is not a number" });
  // Optional fields left empty are left out, not sent as "".
  const sha = formFields(schemaOf('sha256'));
  assert.deepEqual(parseInputs(sha, raw([['data', 'x'], ['encoding', '']])), { ok: true, inputs: { data: 'x' } });
});

test('booleans come from checkboxes; a schema with more than MAX_FORM_FIELDS properties is one JSON box', () => {
  const flag = formFields({ type: 'object', properties: { on: { type: 'boolean' } }, required: ['on'] });
  assert.deepEqual(parseInputs(flag, raw([['on', true]])), { ok: true, inputs: { on: true } });
  assert.deepEqual(parseInputs(flag, raw([])), { ok: true, inputs: { on: false } });
  const wide: Schema = { type: 'object', properties: Object.fromEntries(Array.from({ length: MAX_FORM_FIELDS + 1 }, (_, i) => [`p${i}`, { type: 'string' }])) };
  assert.deepEqual(formFields(wide).map((f) => f.name), ['']);
  assert.equal(formFields({ type: 'object', properties: Object.fromEntries(Array.from({ length: MAX_FORM_FIELDS }, (_, i) => [`p${i}`, { type: 'string' }])) }).length, MAX_FORM_FIELDS);
});
