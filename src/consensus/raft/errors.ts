// Errors of the Raft core. Operating errors (a proposal on a follower, a conf change while
// one is pending) are typed with a stable `code`; broken invariants throw RaftInvariantError
// and mean a bug or corrupted storage: never catch it to carry on.
import type { NodeId } from './types.ts';

export type ProposalDropReason =
  | 'notLeader'
  | 'transferInProgress'
  | 'tooLarge'
  | 'uncommittedLimit'
  | 'readQueueFull'
  | 'removed';

/** The request was not accepted; retry, at `leaderHint` when it is not ''. */
export class ProposalDroppedError extends Error {
  readonly code = 'RAFT_PROPOSAL_DROPPED';
  override name = 'ProposalDroppedError';
  readonly reason: ProposalDropReason;
  readonly leaderHint: NodeId;
  constructor(reason: ProposalDropReason, leaderHint: NodeId) {
    super(`proposal dropped: ${reason}${leaderHint === '' ? '' : ` (leader ${leaderHint})`}`);
    this.reason = reason;
    this.leaderHint = leaderHint;
  }
}

export type ConfChangeRejectReason = 'pending' | 'noCommitInTerm' | 'invalid' | 'lastVoter';

export class ConfChangeRejectedError extends Error {
  readonly code = 'RAFT_CONF_CHANGE_REJECTED';
  override name = 'ConfChangeRejectedError';
  readonly reason: ConfChangeRejectReason;
  constructor(reason: ConfChangeRejectReason, detail: string) {
    super(`conf change rejected (${reason}): ${detail}`);
    this.reason = reason;
  }
}

export class LeaderTransferError extends Error {
  readonly code = 'RAFT_LEADER_TRANSFER';
  override name = 'LeaderTransferError';
}

/** A broken invariant: the node must stop. */
export class RaftInvariantError extends Error {
  readonly code = 'RAFT_INVARIANT';
  override name = 'RaftInvariantError';
}

export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
