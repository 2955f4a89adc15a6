// Errors of the PBFT core. Bad input never throws: the core drops it and counts a DropReason.
// Operating errors a caller can act on (a malformed frame, a refused submission, a certificate
// that does not verify) are classes with a stable `code`; a broken invariant throws
// PbftInvariantError and means a bug (or a non-deterministic application): never carry on.

/** Why the core dropped a message (counted in PbftStats.dropped). */
export type DropReason =
  /** The transport sender, or the claimed signer, is not in the membership. */
  | 'nonMember'
  /** The signature does not verify for the claimed signer. */
  | 'badSignature'
  /** For a view below the current one. */
  | 'staleView'
  /** For a view above the current one (retransmission brings it back once there). */
  | 'futureView'
  /** Agreement message while waiting for a NEW-VIEW. */
  | 'inactive'
  /** Sequence number outside (low, high] watermarks. */
  | 'outsideWatermarks'
  /** A carried proof (checkpoint, prepared, commit, view-change set, new-view order) is invalid. */
  | 'badCertificate'
  /** PRE-PREPARE or NEW-VIEW not from the primary of its view; PREPARE from the primary. */
  | 'notPrimary'
  /** The batch does not hash to the announced digest. */
  | 'digestMismatch'
  /** A second, different message from the same signer for the same slot (equivocation). */
  | 'conflict'
  /** Unknown client, bad client signature, or a field over its limit. */
  | 'invalidRequest'
  /** Already have it or already executed. */
  | 'duplicate'
  /** A bounded queue is full. */
  | 'queueFull'
  /** State transfer data that does not match the proven checkpoint digest. */
  | 'badState'
  /** Well formed but not expected now (e.g. a STATE-CHUNK nobody asked for). */
  | 'unexpected';

export const DROP_REASONS: readonly DropReason[] = [
  'nonMember',
  'badSignature',
  'staleView',
  'futureView',
  'inactive',
  'outsideWatermarks',
  'badCertificate',
  'notPrimary',
  'digestMismatch',
  'conflict',
  'invalidRequest',
  'duplicate',
  'queueFull',
  'badState',
  'unexpected',
];

/** The bytes are not a well-formed PBFT message (codec.ts). */
export class PbftDecodeError extends Error {
  readonly code = 'PBFT_MALFORMED';
  override name = 'PbftDecodeError';
}

export type SubmitRejectReason = 'outstanding' | 'tooLarge' | 'timestamp';

/** PbftClient.submit refused the operation. */
export class PbftSubmitError extends Error {
  readonly code = 'PBFT_SUBMIT_REJECTED';
  override name = 'PbftSubmitError';
  readonly reason: SubmitRejectReason;
  constructor(reason: SubmitRejectReason, detail: string) {
    super(`submit rejected (${reason}): ${detail}`);
    this.reason = reason;
  }
}

/** A membership that is not n = 3f + 1 distinct replicas with 32-byte keys. */
export class PbftMembershipError extends Error {
  readonly code = 'PBFT_MEMBERSHIP_INVALID';
  override name = 'PbftMembershipError';
}

/** A broken invariant: the replica must stop. */
export class PbftInvariantError extends Error {
  readonly code = 'PBFT_INVARIANT';
  override name = 'PbftInvariantError';
}

export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new PbftInvariantError(typeof message === 'string' ? message : message());
}
