// The operator registry: operator definitions with their input/output JSON Schemas compiled
// once by ajv (strict, no coercion, nothing removed), so every replica accepts exactly the
// same inputs. Rejections name the JSON Pointer of the failing input ("inputs/key must be
// string"). Inputs must also canonicalize (RFC 8785) within MAX_INPUT_BYTES: receipts hash them.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { DataValidateFunction } from 'ajv/dist/types/index.js';
import addFormats from 'ajv-formats';
import { canonicalBytes } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { OPERATOR_ID_PATTERN } from '../receipts/receipt.ts';
import { StateMachineError } from './errors.ts';
import { canonicalSize } from './command.ts';
import type { OperatorDef, OperatorInfo } from './types.ts';

/** Operators one registry holds at most. */
export const MAX_OPERATORS = 1024;
/** Largest inputs object, as RFC 8785 bytes. */
export const MAX_INPUT_BYTES = 1024 * 1024;
/**
 * Schema extension keyword: the value's RFC 8785 serialization is at most this many bytes
 * (JSON Schema cannot say "serialized size"). `x-` so foreign tools treat it as an annotation.
 */
export const MAX_JSON_BYTES_KEYWORD = 'x-maxJsonBytes';

export interface ValidationFailure {
  code: 'UNKNOWN_OPERATOR' | 'INVALID_INPUT';
  message: string;
  /** JSON Pointer into the command (or request body): "/inputs/key"; "/operator_id" for UNKNOWN_OPERATOR. */
  path: string;
}

interface Entry {
  def: OperatorDef;
  input: ValidateFunction;
  output: ValidateFunction;
}

/** RFC 6901 escaping of one reference token. */
function pointerToken(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1');
}

// canonicalSize lives beside the command codec (no schema compiler for code that only encodes commands).
export { canonicalSize };

function describe(e: ErrorObject): { pointer: string; text: string } {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required' && typeof params['missingProperty'] === 'string') {
    return { pointer: `${e.instancePath}/${pointerToken(params['missingProperty'])}`, text: 'is required' };
  }
  if (e.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
    return { pointer: `${e.instancePath}/${pointerToken(params['additionalProperty'])}`, text: 'is not allowed' };
  }
  if (e.keyword === MAX_JSON_BYTES_KEYWORD) {
    return { pointer: e.instancePath, text: `must be at most ${String(params['limit'])} bytes as canonical JSON` };
  }
  return { pointer: e.instancePath, text: e.message ?? `fails ${e.keyword}` };
}

export class OperatorRegistry {
  readonly #ajv: Ajv2020;
  readonly #ops = new Map<string, Entry>();

  constructor() {
    this.#ajv = new Ajv2020({ allErrors: false, strict: true, coerceTypes: false, removeAdditional: false, useDefaults: false });
    addFormats.default(this.#ajv);
    const maxJsonBytes: DataValidateFunction = (max: number, data: unknown): boolean => {
      const size = canonicalSize(data);
      if (size >= 0 && size <= max) return true;
      maxJsonBytes.errors = [{ keyword: MAX_JSON_BYTES_KEYWORD, params: { limit: max } }];
      return false;
    };
    this.#ajv.addKeyword({ keyword: MAX_JSON_BYTES_KEYWORD, schemaType: 'number', errors: true, validate: maxJsonBytes });
  }

  /** Adds an operator; its schemas are compiled now (a bad schema throws INVALID_OPERATOR). */
  register(def: OperatorDef): void {
    if (!OPERATOR_ID_PATTERN.test(def.id)) throw new StateMachineError('INVALID_OPERATOR', `invalid operator id '${def.id.slice(0, 40)}'`);
    if (this.#ops.has(def.id)) throw new StateMachineError('OPERATOR_EXISTS', `operator ${def.id} is already registered`);
    if (this.#ops.size >= MAX_OPERATORS) throw new StateMachineError('INVALID_OPERATOR', `a registry holds at most ${MAX_OPERATORS} operators`);
    if (def.description.trim() === '') throw new StateMachineError('INVALID_OPERATOR', `operator ${def.id} needs a description`);
    let input: ValidateFunction;
    let output: ValidateFunction;
    try {
      input = this.#ajv.compile(def.input_schema);
      output = this.#ajv.compile(def.output_schema);
    } catch (e) {
      throw new StateMachineError('INVALID_OPERATOR', `operator ${def.id}: ${(e as Error).message}`);
    }
    this.#ops.set(def.id, { def, input, output });
  }

  get(id: string): OperatorDef | undefined {
    return this.#ops.get(id)?.def;
  }

  /** Public descriptions, sorted by id. */
  list(): OperatorInfo[] {
    return [...this.#ops.values()]
      .map(({ def }) => ({ id: def.id, description: def.description, readonly: def.readonly, input_schema: def.input_schema, output_schema: def.output_schema }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** null when `inputs` are acceptable to `operator_id`; else the first failure, with its path. */
  validate(operator_id: string, inputs: unknown): ValidationFailure | null {
    const entry = this.#ops.get(operator_id);
    if (entry === undefined) return { code: 'UNKNOWN_OPERATOR', message: `unknown operator '${operator_id.slice(0, 128)}' (GET /api/v1/operators lists them)`, path: '/operator_id' };
    if (!entry.input(inputs)) {
      const first = entry.input.errors?.[0];
      const { pointer, text } = first === undefined ? { pointer: '', text: 'are invalid' } : describe(first);
      return { code: 'INVALID_INPUT', message: `inputs${pointer} ${text}`, path: `/inputs${pointer}` };
    }
    const size = canonicalSize(inputs);
    if (size < 0) return { code: 'INVALID_INPUT', message: 'inputs must be plain JSON (finite numbers, no lone surrogates, bounded nesting)', path: '/inputs' };
    if (size > MAX_INPUT_BYTES) return { code: 'INVALID_INPUT', message: `inputs must be at most ${MAX_INPUT_BYTES} bytes as canonical JSON, got ${size}`, path: '/inputs' };
    return null;
  }

  /** Checks outputs against the operator's output schema (tests and debug assertions). */
  outputProblem(operator_id: string, outputs: Json): string | null {
    const entry = this.#ops.get(operator_id);
    if (entry === undefined) return `unknown operator '${operator_id.slice(0, 128)}'`;
    if (entry.output(outputs)) return null;
    const first = entry.output.errors?.[0];
    if (first === undefined) return 'outputs are invalid';
    const { pointer, text } = describe(first);
    return `outputs${pointer} ${text}`;
  }
}
