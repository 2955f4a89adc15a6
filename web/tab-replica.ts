// The replica of a Raft group of tabs: a key-value map driven by the group's committed log.
// Small on purpose (the web app has a size budget; the full operator registry brings a JSON
// Schema compiler): kv.put, kv.delete and kv.get, with the same inputs and outputs as the
// built-in operators of the same names. Both writes are idempotent, so a command the runtime
// sends again after a lost answer changes nothing twice. No receipts: the state is rebuilt from
// the durable Raft log (and the runtime's snapshots) when a tab reopens its group.
import type { CommandOutcome, ReplicaPort } from '../src/consensus/engine.ts';
import { canonicalBytes, utf8Decode } from '../src/crypto/index.ts';
import type { Json } from '../src/ico/types.ts';
import { decodeCommand } from '../src/statemachine/command.ts';
import type { ApplyResult } from '../src/statemachine/types.ts';

/** Keys the replica holds at most (a kv.put of a new key beyond it is refused). */
export const MAX_TAB_KEYS = 100_000;
/** Longest key and largest value (canonical JSON bytes), as the built-in operators allow. */
export const MAX_TAB_KEY_CHARS = 256;
export const MAX_TAB_VALUE_BYTES = 64 * 1024;
/** The operators a tab group runs. */
export const TAB_OPERATORS = ['kv.put', 'kv.delete', 'kv.get'] as const;

function problem(code: 'INVALID_INPUT' | 'UNKNOWN_OPERATOR', message: string): ApplyResult {
  return { ok: false, code, message };
}

function keyOf(inputs: Json): string | ApplyResult {
  const key = typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs) ? inputs['key'] : undefined;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_TAB_KEY_CHARS) return problem('INVALID_INPUT', `key must be a string of 1–${MAX_TAB_KEY_CHARS} characters`);
  return key;
}

export class TabReplica implements ReplicaPort {
  #kv = new Map<string, Json>();
  #ordinal = 0;

  apply(data: Uint8Array): CommandOutcome {
    const cmd = decodeCommand(data);
    if (!('operator_id' in cmd)) return { result: { ok: false, code: 'INVALID_COMMAND', message: cmd.message }, receipt: null };
    const result = this.#write(cmd.operator_id, cmd.inputs, cmd.timestamp);
    return { result, receipt: null };
  }

  #write(op: string, inputs: Json, timestamp: number): ApplyResult {
    const key = keyOf(inputs);
    if (typeof key !== 'string') return key;
    const ok = (outputs: Json): ApplyResult => ({ ok: true, outputs, ordinal: this.#ordinal++, timestamp, replayed: false });
    const previous = this.#kv.get(key);
    if (op === 'kv.put') {
      const value = (inputs as { value?: Json }).value;
      if (value === undefined || value === null) return problem('INVALID_INPUT', 'value must be JSON other than null');
      if (canonicalBytes(value).length > MAX_TAB_VALUE_BYTES) return problem('INVALID_INPUT', `value exceeds ${MAX_TAB_VALUE_BYTES} bytes`);
      if (previous === undefined && this.#kv.size >= MAX_TAB_KEYS) return problem('INVALID_INPUT', `the group holds ${MAX_TAB_KEYS} keys at most`);
      this.#kv.set(key, value);
      return ok(previous === undefined ? { ok: true } : { ok: true, previous });
    }
    if (op === 'kv.delete') {
      this.#kv.delete(key);
      return ok({ deleted: previous !== undefined });
    }
    return problem('UNKNOWN_OPERATOR', `a tab group runs ${TAB_OPERATORS.filter((o) => o !== 'kv.get').join(' and ')}; read with kv.get`);
  }

  query(operator_id: string, inputs: Json): ApplyResult {
    if (operator_id !== 'kv.get') return problem('UNKNOWN_OPERATOR', 'a tab group reads with kv.get');
    const key = keyOf(inputs);
    if (typeof key !== 'string') return key;
    const value = this.#kv.get(key);
    return { ok: true, outputs: value === undefined ? { found: false } : { found: true, value }, ordinal: this.#ordinal, timestamp: 0, replayed: false };
  }

  /** Canonical JSON of `{kv: [[key, value]…] in key order, ordinal}`: equal states, equal bytes. */
  snapshot(): Uint8Array {
    const kv: Json = [...this.#kv.keys()].sort().map((k) => [k, this.#kv.get(k)!]);
    return canonicalBytes({ kv, ordinal: this.#ordinal });
  }

  async restore(data: Uint8Array): Promise<void> {
    const parsed = JSON.parse(utf8Decode(data)) as { kv: Array<[string, Json]>; ordinal: number };
    this.#kv = new Map(parsed.kv);
    this.#ordinal = parsed.ordinal;
  }

  load(data: Uint8Array): Promise<void> {
    return this.restore(data);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
