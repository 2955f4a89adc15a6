// The replicated state machine: applies commands to a KV in log order, exactly once per
// client session key. Invariants: apply() is a pure function of (state, command) — no
// clocks, no randomness, no insertion-order-dependent output — so replicas fed the same
// commands produce the same outputs and byte-identical snapshots; `ordinal` counts real
// executions only (a dedup replay or a failure does not advance it); a failed run changes nothing.
import { utf8Decode } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { builtinRegistry } from './builtins.ts';
import { cloneJson } from './clone.ts';
import { RETRY_SESSION_TTL_MS, sessionProblem } from './command.ts';
import { OperatorError, StateMachineError } from './errors.ts';
import { canonicalSize, type OperatorRegistry } from './registry.ts';
import { compareStrings, SnapshotJob } from './snapshot-job.ts';
import type { ApplyResult, Command, KvView } from './types.ts';

/**
 * A client's idempotency key is remembered at least this long, measured by the leader-stamped
 * time of the entries (never a local clock, so every replica forgets at the same entry).
 */
export const SESSION_TTL_MS = 10 * 60_000;
/** Bytes of keyed sessions (outputs, client, key) held at most; beyond it the oldest go first. */
export const MAX_SESSION_BYTES = 64 * 1024 * 1024;
/** Retry sessions (requests without a key) are kept RETRY_SESSION_TTL_MS (command.ts)... */
export { RETRY_SESSION_TTL_MS };
/** ...and at most this many... */
export const MAX_RETRY_SESSIONS = 65_536;
/** ...holding at most these bytes. */
export const MAX_RETRY_SESSION_BYTES = 16 * 1024 * 1024;
/** Bytes a session costs beyond its strings and outputs (the table's own bookkeeping). */
const SESSION_OVERHEAD_BYTES = 64;
export const SNAPSHOT_VERSION = 2;
const NEWLINE = 0x0a;

function corrupt(why: string): StateMachineError {
  return new StateMachineError('SNAPSHOT_CORRUPT', `snapshot: ${why}`);
}

function parseRecord(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(utf8Decode(bytes));
  } catch {
    throw corrupt('a record is not UTF-8 JSON');
  }
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Session-table limits; every replica of one cluster must use the same. */
export interface StateMachineOptions {
  /** Keyed sessions are kept at least this long (default SESSION_TTL_MS). */
  sessionTtlMs?: number;
  /** Bytes of keyed sessions at most (default MAX_SESSION_BYTES). */
  maxSessionBytes?: number;
  /** Retry sessions at most (default MAX_RETRY_SESSIONS). */
  maxRetrySessions?: number;
}

interface Session {
  client: string;
  key: string;
  retry: boolean;
  ordinal: number;
  timestamp: number;
  outputs: Json;
  bytes: number;
}

/**
 * Sessions in ordinal order (entries are only added with a fresh, larger ordinal), forgotten
 * oldest first once older than `ttlMs` at the current entry's time, or beyond the bounds.
 */
class SessionTable {
  readonly #byId = new Map<string, Session>();
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #maxCount: number;
  readonly #onForget: (s: Session) => void;
  #bytes = 0;

  constructor(ttlMs: number, maxBytes: number, maxCount: number, onForget: (s: Session) => void) {
    this.#ttlMs = ttlMs;
    this.#maxBytes = maxBytes;
    this.#maxCount = maxCount;
    this.#onForget = onForget;
  }

  get size(): number {
    return this.#byId.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(id: string): Session | undefined {
    return this.#byId.get(id);
  }

  values(): IterableIterator<Session> {
    return this.#byId.values();
  }

  add(id: string, s: Session): void {
    this.#byId.set(id, s);
    this.#bytes += s.bytes;
    this.#trim(() => this.#bytes > this.#maxBytes || this.#byId.size > this.#maxCount);
  }

  /** Forgets sessions older than the TTL at entry time `now` (oldest first; stops at a younger one). */
  expire(now: number): void {
    this.#trim((oldest) => oldest.timestamp + this.#ttlMs <= now);
  }

  #trim(over: (oldest: Session) => boolean): void {
    for (const [id, oldest] of this.#byId) {
      if (!over(oldest)) return;
      this.#onForget(oldest);
      this.#byId.delete(id);
      this.#bytes -= oldest.bytes;
    }
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Writes of one run, applied to the state only if the run succeeds. */
class Overlay implements KvView {
  readonly writes = new Map<string, Json | undefined>();
  readonly #base: ReadonlyMap<string, Json>;
  constructor(base: ReadonlyMap<string, Json>) {
    this.#base = base;
  }
  get(key: string): Json | undefined {
    return this.writes.has(key) ? this.writes.get(key) : this.#base.get(key);
  }
  set(key: string, value: Json): void {
    this.writes.set(key, value);
  }
  delete(key: string): boolean {
    const existed = this.get(key) !== undefined;
    this.writes.set(key, undefined);
    return existed;
  }
}

class ReadOnlyView implements KvView {
  readonly #base: ReadonlyMap<string, Json>;
  constructor(base: ReadonlyMap<string, Json>) {
    this.#base = base;
  }
  get(key: string): Json | undefined {
    return this.#base.get(key);
  }
  set(): void {
    throw new StateMachineError('INVARIANT', 'a readonly operator tried to write');
  }
  delete(): boolean {
    throw new StateMachineError('INVARIANT', 'a readonly operator tried to delete');
  }
}

function sessionId(client: string, key: string): string {
  return `${client}\u0000${key}`;
}

export class StateMachine {
  readonly registry: OperatorRegistry;
  readonly #kv = new Map<string, Json>();
  /** Clients' idempotency keys. */
  readonly #keyed: SessionTable;
  /** The runtime's own retry sessions of requests without a key: never evict a keyed one. */
  readonly #retries: SessionTable;
  #ordinal = 0;
  /** Snapshots being written in steps: told of each value and session before it changes. */
  readonly #jobs = new Set<SnapshotJob>();

  constructor(registry: OperatorRegistry = builtinRegistry(), options: StateMachineOptions = {}) {
    this.registry = registry;
    const forget = (s: Session): void => {
      for (const j of this.#jobs) j.beforeSessionGone(s);
    };
    this.#keyed = new SessionTable(positive('sessionTtlMs', options.sessionTtlMs ?? SESSION_TTL_MS), positive('maxSessionBytes', options.maxSessionBytes ?? MAX_SESSION_BYTES), Number.POSITIVE_INFINITY, forget);
    this.#retries = new SessionTable(RETRY_SESSION_TTL_MS, MAX_RETRY_SESSION_BYTES, positive('maxRetrySessions', options.maxRetrySessions ?? MAX_RETRY_SESSIONS), forget);
  }

  /** Number of executions applied so far = the ordinal the next execution gets = receipt log size. */
  get ordinal(): number {
    return this.#ordinal;
  }

  /** Sessions remembered: clients' keys and retry sessions, and the bytes the keyed ones hold. */
  get sessions(): { keyed: number; keyedBytes: number; retry: number } {
    return { keyed: this.#keyed.size, keyedBytes: this.#keyed.bytes, retry: this.#retries.size };
  }

  apply(cmd: Command): ApplyResult {
    const invalid = this.registry.validate(cmd.operator_id, cmd.inputs);
    if (invalid !== null) return { ok: false, ...invalid };
    // Time passes with every entry, keyed or not: forget what is older than the TTLs now.
    this.#keyed.expire(cmd.timestamp);
    this.#retries.expire(cmd.timestamp);
    if (cmd.session !== undefined) {
      const problem = sessionProblem(cmd.session);
      if (problem !== null) return { ok: false, code: 'INVALID_COMMAND', message: problem };
      const seen = this.#table(cmd.session.retry === true).get(sessionId(cmd.session.client, cmd.session.key));
      if (seen !== undefined) return { ok: true, outputs: cloneJson(seen.outputs), ordinal: seen.ordinal, timestamp: seen.timestamp, replayed: true };
    }
    const def = this.registry.get(cmd.operator_id);
    if (def === undefined) throw new StateMachineError('INVARIANT', `validated operator ${cmd.operator_id} vanished`);
    const overlay = new Overlay(this.#kv);
    let outputs: Json;
    try {
      outputs = def.run(cmd.inputs, { kv: overlay, timestamp: cmd.timestamp });
    } catch (e) {
      if (e instanceof OperatorError) return { ok: false, code: 'OPERATOR_FAILED', message: `${e.code}: ${e.message}` };
      throw e;
    }
    // Receipts hash the outputs: ones that cannot be canonicalized fail here, on every replica alike.
    const outputBytes = canonicalSize(outputs);
    if (outputBytes < 0) return { ok: false, code: 'OPERATOR_FAILED', message: `OUTPUT_INVALID: ${cmd.operator_id} returned outputs that are not plain JSON` };
    for (const [key, value] of overlay.writes) {
      for (const j of this.#jobs) j.beforeKv(key, this.#kv.get(key));
      if (value === undefined) this.#kv.delete(key);
      else this.#kv.set(key, cloneJson(value));
    }
    const ordinal = this.#ordinal++;
    // The session's copy and the caller's are separate, and neither shares objects with the state.
    if (cmd.session !== undefined) this.#remember(cmd.session.client, cmd.session.key, cmd.session.retry === true, ordinal, cmd.timestamp, cloneJson(outputs), outputBytes);
    return { ok: true, outputs: cloneJson(outputs), ordinal, timestamp: cmd.timestamp, replayed: false };
  }

  /** Runs a readonly operator against the current state; changes nothing (ordinal -1). */
  query(operator_id: string, inputs: Json, timestamp = 0): ApplyResult {
    const invalid = this.registry.validate(operator_id, inputs);
    if (invalid !== null) return { ok: false, ...invalid };
    const def = this.registry.get(operator_id);
    if (def === undefined) throw new StateMachineError('INVARIANT', `validated operator ${operator_id} vanished`);
    if (!def.readonly) return { ok: false, code: 'INVALID_COMMAND', message: `${operator_id} is not readonly: it must go through the log` };
    let outputs: Json;
    try {
      outputs = def.run(inputs, { kv: new ReadOnlyView(this.#kv), timestamp });
    } catch (e) {
      if (e instanceof OperatorError) return { ok: false, code: 'OPERATOR_FAILED', message: `${e.code}: ${e.message}` };
      throw e;
    }
    if (canonicalSize(outputs) < 0) return { ok: false, code: 'OPERATOR_FAILED', message: `OUTPUT_INVALID: ${operator_id} returned outputs that are not plain JSON` };
    return { ok: true, outputs: cloneJson(outputs), ordinal: -1, timestamp, replayed: false };
  }

  #table(retry: boolean): SessionTable {
    return retry ? this.#retries : this.#keyed;
  }

  #remember(client: string, key: string, retry: boolean, ordinal: number, timestamp: number, outputs: Json, outputBytes: number): void {
    const bytes = client.length + key.length + outputBytes + SESSION_OVERHEAD_BYTES;
    this.#table(retry).add(sessionId(client, key), { client, key, retry, ordinal, timestamp, outputs, bytes });
  }

  /**
   * Deterministic bytes: equal states give equal bytes on every replica. One RFC 8785 line per
   * record (a header {v, ordinal, kv, sessions} with the record counts, then each [key, value]
   * in key order, then each session [kind, client, key, ordinal, timestamp, outputs] in ordinal
   * order, kind 'key' or 'retry'), each ending in a newline, which RFC 8785
   * never puts inside a value. No single string holds the whole state, so a state of any size
   * fits (V8 caps one string near 512 MiB).
   */
  snapshot(): Uint8Array {
    const job = this.beginSnapshot();
    for (let done = false; !done; ) done = job.step();
    return job.bytes();
  }

  /**
   * The same bytes as snapshot(), of the state as it is now, written in bounded steps (call
   * step() until it returns true) while apply() goes on: a large state never holds the loop.
   */
  beginSnapshot(): SnapshotJob {
    const job = new SnapshotJob({
      version: SNAPSHOT_VERSION,
      ordinal: this.#ordinal,
      kv: this.#kv,
      sessions: [() => this.#keyed.values(), () => this.#retries.values()],
      detach: (j) => this.#jobs.delete(j),
    });
    this.#jobs.add(job);
    return job;
  }

  /** Rebuilds a machine from snapshot bytes; SNAPSHOT_CORRUPT on anything but a well-formed snapshot. */
  static restore(bytes: Uint8Array, registry?: OperatorRegistry, options: StateMachineOptions = {}): StateMachine {
    const firstEnd = bytes.indexOf(NEWLINE);
    // Version 1 (one JSON object, no newline anywhere) is still read: older data dirs hold it.
    if (firstEnd < 0) return StateMachine.#restoreV1(bytes, registry, options);
    const header = parseRecord(bytes.subarray(0, firstEnd));
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw corrupt('the header is not an object');
    const h = header as Record<string, unknown>;
    if (Object.keys(h).sort().join(',') !== 'kv,ordinal,sessions,v') throw corrupt('header fields must be exactly v, ordinal, kv, sessions');
    if (h['v'] !== SNAPSHOT_VERSION) throw corrupt(`unsupported version ${String(h['v']).slice(0, 20)}`);
    const ordinal = h['ordinal'];
    if (!isCount(ordinal)) throw corrupt('ordinal must be a non-negative integer');
    if (!isCount(h['kv']) || !isCount(h['sessions'])) throw corrupt('kv and sessions must be record counts');
    let pos = firstEnd + 1;
    const next = (): unknown => {
      const end = bytes.indexOf(NEWLINE, pos);
      if (end < 0) throw corrupt('fewer records than the header counts');
      const v = parseRecord(bytes.subarray(pos, end));
      pos = end + 1;
      return v;
    };
    const machine = new StateMachine(registry, options);
    const load = machine.#loader(ordinal);
    for (let i = 0; i < h['kv']; i++) load.kv(next());
    for (let i = 0; i < h['sessions']; i++) {
      const line = next();
      if (!Array.isArray(line) || line.length !== 6 || (line[0] !== 'key' && line[0] !== 'retry')) throw corrupt('a session must be [kind, client, key, ordinal, timestamp, outputs]');
      load.session(line.slice(1), line[0] === 'retry');
    }
    if (pos !== bytes.length) throw corrupt('bytes after the last record');
    machine.#ordinal = ordinal;
    return machine;
  }

  static #restoreV1(bytes: Uint8Array, registry: OperatorRegistry | undefined, options: StateMachineOptions): StateMachine {
    const value = parseRecord(bytes);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt('not an object');
    const snap = value as Record<string, unknown>;
    if (Object.keys(snap).sort().join(',') !== 'kv,ordinal,sessions,v') throw corrupt('fields must be exactly v, ordinal, kv, sessions');
    if (snap['v'] !== 1) throw corrupt(`unsupported version ${String(snap['v']).slice(0, 20)}`);
    const ordinal = snap['ordinal'];
    if (!isCount(ordinal)) throw corrupt('ordinal must be a non-negative integer');
    const kv = snap['kv'];
    const sessions = snap['sessions'];
    if (!Array.isArray(kv) || !Array.isArray(sessions)) throw corrupt('kv and sessions must be arrays');
    const machine = new StateMachine(registry, options);
    const load = machine.#loader(ordinal);
    for (const entry of kv as unknown[]) load.kv(entry);
    for (const entry of sessions as unknown[]) load.session(entry, false);
    machine.#ordinal = ordinal;
    return machine;
  }

  /** Checks and adds snapshot records in order: kv entries sorted by key, sessions by ordinal. */
  #loader(ordinal: number): { kv: (entry: unknown) => void; session: (entry: unknown, retry: boolean) => void } {
    let previousKey: string | null = null;
    let previousOrdinal = -1;
    return {
      kv: (entry) => {
        if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') throw corrupt('a kv entry must be [key, value]');
        const [key, v] = entry as [string, unknown];
        if (previousKey !== null && compareStrings(previousKey, key) >= 0) throw corrupt('kv keys must be sorted and unique');
        if (v === null || canonicalSize(v) < 0) throw corrupt(`the value of ${key.slice(0, 64)} is not a non-null JSON value`);
        this.#kv.set(key, v as Json);
        previousKey = key;
      },
      session: (entry, retry) => {
        if (!Array.isArray(entry) || entry.length !== 5) throw corrupt('a session must be [client, key, ordinal, timestamp, outputs]');
        const [client, key, o, timestamp, outputs] = entry as unknown[];
        if (sessionProblem({ client, key }) !== null) throw corrupt('a session client or key is invalid');
        if (typeof o !== 'number' || !Number.isSafeInteger(o) || o <= previousOrdinal || o >= ordinal) throw corrupt('session ordinals must increase and stay below the ordinal');
        if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) throw corrupt('a session timestamp is invalid');
        const size = canonicalSize(outputs);
        if (size < 0) throw corrupt('session outputs are not JSON');
        if (this.#table(retry).get(sessionId(client as string, key as string)) !== undefined) throw corrupt('a session appears twice');
        this.#remember(client as string, key as string, retry, o, timestamp, outputs as Json, size);
        previousOrdinal = o;
      },
    };
  }
}
