// The replicated state machine's contract: operators (id, JSON Schemas, deterministic run),
// the commands that Raft entries carry, and what applying one yields. Pure: no clocks, no
// randomness, no I/O. Every replica that applies the same commands in the same order reaches
// the same state and the same outputs; receipts are appended by the driver (src/net), one per
// execution, at position `ordinal`.
import type { Json, JsonObject } from '../ico/types.ts';

/** A JSON Schema (draft 2020-12 subset that ajv compiles). */
export type JsonSchema = JsonObject;

/** Read/write view of the replicated key-value state an operator acts on. */
export interface KvView {
  get(key: string): Json | undefined;
  set(key: string, value: Json): void;
  delete(key: string): boolean;
}

export interface OperatorContext {
  readonly kv: KvView;
  /** Leader-assigned time of the command (ms since epoch), the same on every replica. */
  readonly timestamp: number;
}

export interface OperatorDef {
  readonly id: string;
  readonly description: string;
  readonly input_schema: JsonSchema;
  readonly output_schema: JsonSchema;
  /** Reads only: may be served by a linearizable read (ReadIndex) without a log entry. */
  readonly readonly: boolean;
  /** Deterministic; may throw OperatorError for a domain failure (no state change then). */
  run(inputs: Json, ctx: OperatorContext): Json;
}

/** The payload of one Raft log entry (JSON, then UTF-8 bytes). */
export interface Command {
  readonly operator_id: string;
  readonly inputs: Json;
  /** Leader-assigned time (ms since epoch); becomes the receipt timestamp. */
  readonly timestamp: number;
  /**
   * Exactly-once: a command whose (client, key) was already applied is not applied again;
   * the first application's result is returned instead. `key` is the caller's
   * idempotency key, or a unique request id the client reuses on retries. `retry: true` marks
   * a session that exists only for the runtime's own retries of a request without a key: it
   * is kept in a separate, shorter-lived table and never evicts a client's key.
   */
  readonly session?: { readonly client: string; readonly key: string; readonly retry?: true };
}

export type ApplyErrorCode = 'UNKNOWN_OPERATOR' | 'INVALID_INPUT' | 'OPERATOR_FAILED' | 'INVALID_COMMAND';

export type ApplyResult =
  | {
      readonly ok: true;
      readonly outputs: Json;
      /** Position of this execution among all executions (0-based) = receipt index. */
      readonly ordinal: number;
      readonly timestamp: number;
      /** True when this is a deduplicated retry: `ordinal`/`outputs` are the first application's. */
      readonly replayed: boolean;
    }
  | {
      readonly ok: false;
      readonly code: ApplyErrorCode;
      readonly message: string;
      /** JSON Pointer of the failing input (INVALID_INPUT). */
      readonly path?: string;
    };

/** Public description of an operator (the REST `GET /api/v1/operators` item). */
export interface OperatorInfo {
  readonly id: string;
  readonly description: string;
  readonly readonly: boolean;
  readonly input_schema: JsonSchema;
  readonly output_schema: JsonSchema;
}
