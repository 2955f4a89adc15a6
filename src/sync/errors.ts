// Typed errors of the sync layer. Operating errors (a malformed message, a forged record, a
// peer that goes away mid-session) are values with a stable `code`: the engine reports them,
// scores the peer and keeps running. Broken invariants use `invariant()` and crash loudly.

export type SyncErrorCode =
  | 'SYNC_MALFORMED'
  | 'SYNC_BAD_RECORD'
  | 'SYNC_BAD_SIGNATURE'
  | 'SYNC_CLOCK_DRIFT'
  | 'SYNC_LIMIT'
  | 'SYNC_SESSION_UNKNOWN'
  | 'SYNC_DIVERGED'
  | 'SYNC_ABORTED'
  | 'SYNC_NOT_FOUND'
  | 'SYNC_NOT_IN_CONFLICT'
  | 'SYNC_BAD_RECEIPT';

export class SyncError extends Error {
  readonly code: SyncErrorCode;
  override name = 'SyncError';
  constructor(code: SyncErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export class MalformedSyncMessageError extends SyncError {
  override name = 'MalformedSyncMessageError';
  constructor(message: string) { super('SYNC_MALFORMED', message); }
}
export class BadRecordError extends SyncError {
  override name = 'BadRecordError';
  constructor(message: string) { super('SYNC_BAD_RECORD', message); }
}
export class BadRecordSignatureError extends SyncError {
  override name = 'BadRecordSignatureError';
  constructor(message: string) { super('SYNC_BAD_SIGNATURE', message); }
}
export class ClockDriftError extends SyncError {
  override name = 'ClockDriftError';
  constructor(message: string) { super('SYNC_CLOCK_DRIFT', message); }
}
export class SyncLimitError extends SyncError {
  override name = 'SyncLimitError';
  constructor(message: string) { super('SYNC_LIMIT', message); }
}
export class SyncAbortedError extends SyncError {
  override name = 'SyncAbortedError';
  constructor(message: string) { super('SYNC_ABORTED', message); }
}
export class NotInConflictError extends SyncError {
  override name = 'NotInConflictError';
  constructor(message: string) { super('SYNC_NOT_IN_CONFLICT', message); }
}
export class BadReceiptError extends SyncError {
  override name = 'BadReceiptError';
  constructor(message: string) { super('SYNC_BAD_RECEIPT', message); }
}

export class SyncInvariantError extends Error {
  override name = 'SyncInvariantError';
}

/** A broken invariant is a bug: crash loudly rather than sync wrong data. */
export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new SyncInvariantError(`sync invariant violated: ${message}`);
}
