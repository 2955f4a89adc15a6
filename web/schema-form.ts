// Form fields from an operator's JSON Schema, and the inputs object back from what a person
// typed. Pure (no DOM), so Node unit tests cover it. It understands the schemas operators
// publish (an object of typed properties); any property it cannot type gets a JSON text box,
// and a schema that is not an object of properties is one JSON box for the whole input. The
// relay validates the inputs again: this only turns text into the JSON a person meant.
import type { Json } from '../src/ico/types.ts';

/** Fields one form shows; an operator with more is entered as one JSON object. */
export const MAX_FORM_FIELDS = 32;
/** Longest text a field accepts before parsing (the relay's body limit is the real bound). */
export const MAX_FIELD_CHARS = 256 * 1024;

export type FieldKind = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json';

export interface FormField {
  /** The property name; '' for the whole-input JSON box. */
  name: string;
  kind: FieldKind;
  required: boolean;
  /** Choices of an `enum` field, as JSON text. */
  options: string[];
  /** What the schema says about the field, for a hint under it. */
  hint: string;
}

type Schema = { [key: string]: Json };

function isObject(v: Json | undefined): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(schema: Schema): { kind: FieldKind; options: string[] } {
  const e = schema['enum'];
  if (Array.isArray(e) && e.length > 0) return { kind: 'enum', options: e.map((x) => JSON.stringify(x)) };
  const t = schema['type'];
  if (t === 'string' || t === 'integer' || t === 'number' || t === 'boolean') return { kind: t, options: [] };
  return { kind: 'json', options: [] };
}

function hintOf(schema: Schema, kind: FieldKind): string {
  const parts: string[] = [];
  if (typeof schema['description'] === 'string') parts.push(schema['description']);
  if (kind === 'json') parts.push('JSON');
  for (const k of ['minLength', 'maxLength', 'minimum', 'maximum'] as const) if (typeof schema[k] === 'number') parts.push(`${k} ${schema[k]}`);
  if (isObject(schema['not']) && schema['not']['type'] === 'null') parts.push('not null');
  return parts.join(' · ');
}

/** The fields of an input schema. */
export function formFields(inputSchema: Schema): FormField[] {
  const props = inputSchema['properties'];
  const required = new Set(Array.isArray(inputSchema['required']) ? inputSchema['required'].filter((r): r is string => typeof r === 'string') : []);
  if (inputSchema['type'] !== 'object' || !isObject(props) || Object.keys(props).length === 0 || Object.keys(props).length > MAX_FORM_FIELDS) {
    return [{ name: '', kind: 'json', required: true, options: [], hint: 'the whole input, as a JSON object' }];
  }
  return Object.entries(props).map(([name, s]) => {
    const schema = isObject(s) ? s : {};
    const { kind, options } = kindOf(schema);
    return { name, kind, required: required.has(name), options, hint: hintOf(schema, kind) };
  });
}

export type FormValue = string | boolean;
export type ParsedInputs = { ok: true; inputs: Json } | { ok: false; field: string; problem: string };

function parseOne(field: FormField, raw: FormValue): { value: Json } | { problem: string } | null {
  if (field.kind === 'boolean') return { value: raw === true };
  const text = typeof raw === 'string' ? raw : String(raw);
  if (text.length > MAX_FIELD_CHARS) return { problem: `longer than ${MAX_FIELD_CHARS} characters` };
  // An empty box is "not given" (a required one is reported as such), for strings too.
  if (text === '') return null;
  switch (field.kind) {
    case 'string':
      return { value: text };
    case 'integer':
    case 'number': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) return { problem: `'${text.slice(0, 40)}' is not a number` };
      if (field.kind === 'integer' && !Number.isSafeInteger(n)) return { problem: `'${text.slice(0, 40)}' is not a whole number` };
      return { value: n };
    }
    case 'enum':
    case 'json':
      try {
        return { value: JSON.parse(text) as Json };
      } catch (e) {
        return { problem: `not valid JSON (${e instanceof Error ? e.message.slice(0, 80) : 'parse error'})` };
      }
  }
}

/** The inputs object from the raw values (by field name); the first problem names its field. */
export function parseInputs(fields: FormField[], raw: ReadonlyMap<string, FormValue>): ParsedInputs {
  const inputs: { [key: string]: Json } = {};
  for (const field of fields) {
    const parsed = parseOne(field, raw.get(field.name) ?? (field.kind === 'boolean' ? false : ''));
    if (parsed === null) {
      if (field.required) return { ok: false, field: field.name, problem: 'required' };
      continue;
    }
    if ('problem' in parsed) return { ok: false, field: field.name, problem: parsed.problem };
    if (field.name === '') return { ok: true, inputs: parsed.value };
    inputs[field.name] = parsed.value;
  }
  return { ok: true, inputs };
}
