// The consensus engine seam: what the relay and the CLI call, whatever orders the commands
// (Raft, PBFT, or nothing at all on one node). An engine runs a command through its order and
// answers with the result its own replica computed when it applied it; reads are linearizable
// or serializable. Invariants: every engine applies each command at most once per idempotency
// session; an error is a typed ConsensusError whose `code` never changes meaning.
//
//   const engine = await openEngine({ kind: 'raft', ... });        // src/consensus/open.ts
//   await engine.start();
//   const { result, receipt } = await engine.submit({ operator_id: 'kv.put', inputs: { key: 'a', value: 1 } }, { signal: AbortSignal.timeout(5_000) });
//   const read = await engine.read('kv.get', { key: 'a' }, { consistency: 'linearizable' });
//   await engine.close();
import type { Json } from '../ico/types.ts';
import type { Receipt } from '../receipts/receipt.ts';
import type { ApplyResult } from '../statemachine/types.ts';

export type EngineKind = 'none' | 'raft' | 'pbft';

/** No submit or read waits longer than this, whatever its signal (the API's longest timeout). */
export const MAX_WAIT_MS = 60_000;
/** Commands waiting to apply at most; beyond it new ones are refused (UNAVAILABLE: overloaded). */
export const MAX_PENDING_COMMANDS = 16_384;
/** Reads waiting at most; beyond it new ones are refused (UNAVAILABLE: overloaded). */
export const MAX_PENDING_READS = 16_384;

/** A command as a caller gives it: the engine stamps the time and orders it. */
export interface SubmitCommand {
  readonly operator_id: string;
  readonly inputs: Json;
  /**
   * Exactly-once: commands with the same (client, key) execute at most once; a retry answers
   * with the first execution's result and receipt. Without it the engine may still retry
   * internally, but a caller's own retry executes again.
   */
  readonly idempotency?: { readonly client: string; readonly key: string };
  /**
   * Who asks (an API principal; at most MAX_SESSION_FIELD_CHARS, no NUL), recorded with the
   * execution so that its outputs are shown to it alone. With `idempotency` its client is the owner.
   */
  readonly owner?: string;
}

export interface SubmitOptions {
  /** Aborting gives up waiting (the command may still apply: retry with the same idempotency key). */
  readonly signal?: AbortSignal;
}

/** linearizable: sees every write acknowledged before it began; serializable: this replica's state now. */
export type ReadConsistency = 'linearizable' | 'serializable';

export interface ReadOptions {
  readonly consistency?: ReadConsistency;
  readonly signal?: AbortSignal;
}

export interface ApplyOptions {
  answering?: boolean;
}

export interface CommandOutcome {
  /** What this replica's state machine answered (a failed operator changed nothing). */
  readonly result: ApplyResult;
  /**
   * This replica's receipt of the execution; null when the command did not execute. A replica
   * with lazy receipts signs it when this is first read: read it only to use it.
   */
  readonly receipt: Promise<Receipt> | null;
}

export interface EngineMember {
  readonly peerId: string;
  readonly role: 'voter' | 'learner';
  /** Highest log index known to match this peer's (leaders only). */
  readonly match?: number;
  readonly state?: string;
}

export interface EngineStatus {
  readonly kind: EngineKind;
  readonly self: string;
  /** null while no leader is known (an engine without leaders names itself). */
  readonly leader: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

/** What every engine's replica offers the engine: the applied state and nothing about order. */
/** A snapshot of the state at the moment it was begun, written one bounded step at a time. */
export interface SteppedSnapshot {
  /** One bounded step; true once complete. */
  step(): boolean;
  /** The bytes, once step() returned true. */
  bytes(): Uint8Array;
  /** Gives up (the state was replaced). */
  cancel(): void;
}

export interface ReplicaPort {
  /**
   * Applies one ordered command's bytes. `answering`: a caller on this member waits for this
   * entry's outcome, so its receipt is signed in the append's batch (it is read at once);
   * otherwise the replica may sign it lazily.
   */
  apply(data: Uint8Array, opts?: ApplyOptions): CommandOutcome;
  /** A readonly operator against the current state. */
  query(operator_id: string, inputs: Json): ApplyResult;
  /** Deterministic bytes of the state (equal states, equal bytes). */
  snapshot(): Uint8Array;
  /**
   * The same bytes written in bounded steps while apply() goes on (a large state must not hold
   * the event loop). A replica without it is snapshotted by snapshot() in one go.
   */
  beginSnapshot?(): SteppedSnapshot;
  /** Replaces the state with a snapshot from another replica. */
  restore(data: Uint8Array): Promise<void>;
  /** Loads the engine's own snapshot at start. */
  load(data: Uint8Array): Promise<void>;
  /** Resolves when everything applied so far is durable (before a log is compacted past it). */
  flush(): Promise<void>;
  /** Waits for writes in progress and releases storage. */
  close(): Promise<void>;
}

export interface Consensus<R extends ReplicaPort = ReplicaPort> {
  readonly kind: EngineKind;
  /** This member's id (its PeerId). */
  readonly id: string;
  /** The replica this engine applies to (state machine and, for the real one, receipts). */
  readonly replica: R;
  start(): Promise<void>;
  /** Executes `cmd` through the engine's order; resolves once this replica applied it. */
  submit(cmd: SubmitCommand, opts?: SubmitOptions): Promise<CommandOutcome>;
  /** Runs a readonly operator: linearizable by default, serializable on request. */
  read(operator_id: string, inputs: Json, opts?: ReadOptions): Promise<ApplyResult>;
  status(): EngineStatus;
  members(): EngineMember[];
  /** Stops: pending calls reject with UNAVAILABLE, storage is closed. */
  close(): Promise<void>;
}

// ---- errors -------------------------------------------------------------------------------

export type ConsensusErrorCode = 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | 'CANCELLED' | 'INVALID_COMMAND';

/** Whether a caller may retry (with the same idempotency key) and expect it to work. */
export const RETRYABLE: Readonly<Record<ConsensusErrorCode, boolean>> = {
  UNAVAILABLE: true,
  DEADLINE_EXCEEDED: true,
  CANCELLED: false,
  INVALID_COMMAND: false,
};

export abstract class ConsensusError extends Error {
  abstract readonly code: ConsensusErrorCode;
  get retryable(): boolean {
    return RETRYABLE[this.code];
  }
}

/**
 * No agreement could be reached in time: no leader or quorum, overloaded, stopping. Also what a
 * replicated engine answers when the caller's deadline passes before agreement (as etcd does).
 */
export class UnavailableError extends ConsensusError {
  readonly code = 'UNAVAILABLE';
  override name = 'UnavailableError';
}

/** The caller's deadline passed during local work (a disk write). */
export class DeadlineExceededError extends ConsensusError {
  readonly code = 'DEADLINE_EXCEEDED';
  override name = 'DeadlineExceededError';
}

/** The caller aborted for another reason than its deadline. */
export class CancelledError extends ConsensusError {
  readonly code = 'CANCELLED';
  override name = 'CancelledError';
}

/** The command itself is malformed (an operator id or session field out of its limits). */
export class InvalidCommandError extends ConsensusError {
  readonly code = 'INVALID_COMMAND';
  override name = 'InvalidCommandError';
}

/** The typed error for an aborted signal: a timeout is a deadline, anything else a cancel. */
export function abortError(signal: AbortSignal, what: string): DeadlineExceededError | CancelledError {
  const reason: unknown = signal.reason;
  if (reason instanceof DeadlineExceededError) return reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return timedOut ? new DeadlineExceededError(`${what}: deadline exceeded`) : new CancelledError(`${what}: cancelled`);
}

/**
 * Calls `onAbort` once if `signal` aborts; returns the detach function (call it when done).
 * An already-aborted signal calls it at once.
 */
export function onAbort(signal: AbortSignal | undefined, onAborted: () => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    onAborted();
    return () => undefined;
  }
  signal.addEventListener('abort', onAborted, { once: true });
  return () => signal.removeEventListener('abort', onAborted);
}
