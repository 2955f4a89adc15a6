// The codec of Command, the payload of one log entry: RFC 8785 JSON bytes. decodeCommand is
// a trust boundary (log entries arrive from peers and disks): it accepts exactly the
// Command shape within named limits and returns a typed INVALID_COMMAND error otherwise.
import { canonicalBytes, JcsError, utf8Decode } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { OPERATOR_ID_PATTERN } from '../receipts/receipt.ts';
import { StateMachineError } from './errors.ts';
import type { Command } from './types.ts';

/** Byte length of the RFC 8785 form, or -1 when the value cannot be canonicalized (depth, NaN, lone surrogates). */
export function canonicalSize(value: unknown): number {
  try {
    return canonicalBytes(value).length;
  } catch {
    return -1;
  }
}

/**
 * Requests without a key get a session of their own only for the runtime's retries of them
 * (`session.retry`): in a separate table, so they never evict a client's key, kept this long
 * (src/statemachine/machine.ts holds the table; defined here so the Raft runtime's limits need
 * no state machine).
 */
export const RETRY_SESSION_TTL_MS = 2 * 60_000;

/** Largest encoded command (inputs are at most 1 MiB canonical; this leaves room for the rest). */
export const MAX_COMMAND_BYTES = 2 * 1024 * 1024;
/** Longest session client or key, in characters. */
export const MAX_SESSION_FIELD_CHARS = 256;

const COMMAND_FIELDS = new Set(['operator_id', 'inputs', 'timestamp', 'session']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why `session` is not a valid session, or null. NUL is reserved as the table's separator. */
export function sessionProblem(session: unknown): string | null {
  if (!isPlainObject(session)) return 'session must be an object';
  const keys = Object.keys(session);
  const retry = 'retry' in session;
  if (keys.length !== (retry ? 3 : 2) || !('client' in session) || !('key' in session)) return 'session must be exactly {client, key} or {client, key, retry: true}';
  if (retry && session['retry'] !== true) return 'session.retry must be true when present';
  for (const name of ['client', 'key'] as const) {
    const v = session[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SESSION_FIELD_CHARS) return `session.${name} must be a string of 1..${MAX_SESSION_FIELD_CHARS} characters`;
    if (v.includes('\u0000')) return `session.${name} must not contain NUL`;
  }
  return null;
}

const INPUTS_NOT_JSON = 'inputs must be plain JSON';

/**
 * Why `value` is not a Command, or null. `checkInputs` false leaves out canonicalizing the
 * inputs, for a caller that canonicalizes the whole command next (encodeCommand).
 */
export function commandProblem(value: unknown, checkInputs = true): string | null {
  if (!isPlainObject(value)) return 'command must be a JSON object';
  for (const k of Object.keys(value)) if (!COMMAND_FIELDS.has(k)) return `unexpected field '${k.slice(0, 40)}'`;
  const { operator_id, inputs, timestamp } = value;
  if (typeof operator_id !== 'string' || !OPERATOR_ID_PATTERN.test(operator_id)) return 'operator_id must be an operator identifier';
  if (!('inputs' in value) || (checkInputs && canonicalSize(inputs) < 0)) return INPUTS_NOT_JSON;
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) return 'timestamp must be a non-negative integer (ms since epoch)';
  if ('session' in value) {
    const problem = sessionProblem(value['session']);
    if (problem !== null) return problem;
  }
  return null;
}

export function encodeCommand(cmd: Command): Uint8Array {
  const problem = commandProblem(cmd, false);
  if (problem !== null) throw new StateMachineError('INVALID_COMMAND', problem);
  // The inputs are canonicalized once, inside the command (every other field is checked above).
  let bytes: Uint8Array;
  try {
    bytes = canonicalBytes(cmd.session === undefined ? { operator_id: cmd.operator_id, inputs: cmd.inputs, timestamp: cmd.timestamp } : cmd);
  } catch (e) {
    if (e instanceof JcsError) throw new StateMachineError('INVALID_COMMAND', INPUTS_NOT_JSON);
    throw e;
  }
  if (bytes.length > MAX_COMMAND_BYTES) throw new StateMachineError('INVALID_COMMAND', `command of ${bytes.length} bytes exceeds ${MAX_COMMAND_BYTES}`);
  return bytes;
}

/** The command in `bytes`, or a StateMachineError (INVALID_COMMAND) saying what is wrong. Never throws. */
export function decodeCommand(bytes: Uint8Array): Command | StateMachineError {
  const invalid = (why: string): StateMachineError => new StateMachineError('INVALID_COMMAND', why);
  if (!(bytes instanceof Uint8Array)) return invalid('command must be bytes');
  if (bytes.length > MAX_COMMAND_BYTES) return invalid(`command of ${bytes.length} bytes exceeds ${MAX_COMMAND_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(bytes));
  } catch {
    return invalid('command is not UTF-8 JSON');
  }
  const problem = commandProblem(value);
  if (problem !== null) return invalid(problem);
  const v = value as { operator_id: string; inputs: Json; timestamp: number; session?: { client: string; key: string; retry?: true } };
  if (v.session === undefined) return { operator_id: v.operator_id, inputs: v.inputs, timestamp: v.timestamp };
  const session = v.session.retry === true ? { client: v.session.client, key: v.session.key, retry: true as const } : { client: v.session.client, key: v.session.key };
  return { operator_id: v.operator_id, inputs: v.inputs, timestamp: v.timestamp, session };
}
