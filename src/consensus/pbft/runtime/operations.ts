// What a PBFT request's `op` and a REPLY's `result` hold when the shared replica (operator
// state machine + receipts) is the application. An op is a tag byte and canonical JSON: 0x01 a
// Command (client-stamped timestamp, optional session), 0x02 a readonly operator run in order
// (a linearizable read). A result is canonical JSON every honest replica computes identically,
// so f+1 matching replies certify it; for a write it names the receipt's operation fields
// (operator, inputs and outputs hashes), which is what ties a certificate to a receipt.
import { canonicalBytes, digestJson, parseJson, utf8Decode } from '../../../crypto/index.ts';
import type { Json } from '../../../ico/types.ts';
import { commandProblem, decodeCommand, encodeCommand } from '../../../statemachine/command.ts';
import { InvalidCommandError, type SubmitCommand } from '../../engine.ts';
import { StateMachineError } from '../../../statemachine/errors.ts';
import type { ApplyResult, Command } from '../../../statemachine/types.ts';

const WRITE = 0x01;
const READ = 0x02;

export type PbftOp = { readonly kind: 'write'; readonly command: Command } | { readonly kind: 'read'; readonly operator_id: string; readonly inputs: Json; readonly timestamp: number };

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

/** The write op of a submitted command stamped `timestamp`, or why it is malformed (nothing was sent). */
export function submitOp(cmd: SubmitCommand, timestamp: number): Uint8Array | InvalidCommandError {
  const session = cmd.idempotency !== undefined ? { client: cmd.idempotency.client, key: `idem:${cmd.idempotency.key}` } : undefined;
  const command = { operator_id: cmd.operator_id, inputs: cmd.inputs, timestamp, ...(session !== undefined ? { session } : {}) };
  const problem = commandProblem(command);
  if (problem !== null) return new InvalidCommandError(problem);
  try {
    return encodeWriteOp(command);
  } catch (e) {
    if (e instanceof StateMachineError) return new InvalidCommandError(e.message);
    throw e;
  }
}

/** Does this op change state (a Command)? */
export function isWriteOp(op: Uint8Array): boolean {
  return op[0] === WRITE;
}

/** Throws StateMachineError (INVALID_COMMAND) for a command out of its limits. */
export function encodeWriteOp(command: Command): Uint8Array {
  return tagged(WRITE, encodeCommand(command));
}

export function encodeReadOp(operator_id: string, inputs: Json, timestamp: number): Uint8Array {
  return tagged(READ, canonicalBytes({ operator_id, inputs, timestamp }));
}

/** The op in `bytes`, or why it is none (every replica decides the same). Never throws. */
export function decodeOp(bytes: Uint8Array): PbftOp | string {
  const body = bytes.subarray(1);
  if (bytes[0] === WRITE) {
    const cmd = decodeCommand(body);
    return cmd instanceof StateMachineError ? cmd.message : { kind: 'write', command: cmd };
  }
  if (bytes[0] === READ) {
    let v: unknown;
    try {
      v = parseJson(utf8Decode(body));
    } catch {
      return 'read op is not JSON';
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'read op must be an object';
    const { operator_id, inputs, timestamp } = v as Record<string, unknown>;
    if (typeof operator_id !== 'string' || typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || inputs === undefined) return 'read op fields';
    return { kind: 'read', operator_id, inputs: inputs as Json, timestamp };
  }
  return 'unknown op tag';
}

/** The certified result of an execution: what every honest replica answers, bit for bit. */
export type PbftResult =
  | { readonly ok: true; readonly ordinal: number; readonly replayed: boolean; readonly timestamp: number; readonly outputs: Json; readonly operator_id: string; readonly inputs_hash: string; readonly outputs_hash: string }
  | { readonly ok: true; readonly read: true; readonly outputs: Json; readonly ordinal: number; readonly timestamp: number }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly path?: string };

export function writeResult(r: ApplyResult, command: Command): Uint8Array {
  if (!r.ok) return failedResult(r);
  return canonicalBytes({
    ok: true,
    ordinal: r.ordinal,
    replayed: r.replayed,
    timestamp: r.timestamp,
    outputs: r.outputs,
    operator_id: command.operator_id,
    inputs_hash: digestJson(command.inputs),
    outputs_hash: digestJson(r.outputs),
  });
}

export function readResult(r: ApplyResult): Uint8Array {
  if (!r.ok) return failedResult(r);
  return canonicalBytes({ ok: true, read: true, outputs: r.outputs, ordinal: r.ordinal, timestamp: r.timestamp });
}

function failedResult(r: Extract<ApplyResult, { ok: false }>): Uint8Array {
  return canonicalBytes(r.path === undefined ? { ok: false, code: r.code, message: r.message } : { ok: false, code: r.code, message: r.message, path: r.path });
}

export function invalidResult(message: string): Uint8Array {
  return canonicalBytes({ ok: false, code: 'INVALID_COMMAND', message });
}

/** The result in certified bytes as an ApplyResult, or null when they are not one of ours. */
export function decodeResult(bytes: Uint8Array): ApplyResult | null {
  let v: unknown;
  try {
    v = parseJson(utf8Decode(bytes));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o['ok'] === true && typeof o['ordinal'] === 'number' && typeof o['timestamp'] === 'number' && 'outputs' in o) {
    return { ok: true, outputs: o['outputs'] as Json, ordinal: o['ordinal'], timestamp: o['timestamp'], replayed: o['replayed'] === true };
  }
  if (o['ok'] === false && typeof o['code'] === 'string' && typeof o['message'] === 'string') {
    const code = o['code'];
    if (code !== 'UNKNOWN_OPERATOR' && code !== 'INVALID_INPUT' && code !== 'OPERATOR_FAILED' && code !== 'INVALID_COMMAND') return null;
    return typeof o['path'] === 'string' ? { ok: false, code, message: o['message'], path: o['path'] } : { ok: false, code, message: o['message'] };
  }
  return null;
}
