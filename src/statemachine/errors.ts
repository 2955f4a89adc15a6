// Typed errors of the state machine. OperatorError is a domain failure an operator's run()
// throws (the machine rolls its writes back and reports OPERATOR_FAILED); StateMachineError
// is everything else: corrupt snapshots, malformed commands, broken invariants.

export class OperatorError extends Error {
  override name = 'OperatorError';
  /** Stable, machine-readable reason, e.g. 'NOT_A_COUNTER', 'COUNTER_OVERFLOW'. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export type StateMachineErrorCode = 'SNAPSHOT_CORRUPT' | 'INVALID_COMMAND' | 'OPERATOR_EXISTS' | 'INVALID_OPERATOR' | 'INVARIANT';

export class StateMachineError extends Error {
  override name = 'StateMachineError';
  readonly code: StateMachineErrorCode;
  constructor(code: StateMachineErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
