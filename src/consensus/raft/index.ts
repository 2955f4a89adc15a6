// Public surface of the pure Raft core (see raft.ts for the protocol and its invariants).
export * from './types.ts';
export * from './errors.ts';
export { RaftNode, quorum, DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS, MAX_SNAPSHOT_BYTES, SNAPSHOT_STALL_HEARTBEATS, type RaftStatus } from './raft.ts';
export { RaftLog } from './log.ts';
export { LeaderLease, leaseDurationMs, DEFAULT_CLOCK_RATE_BOUND, MAX_LEASE_ROUNDS, type LeaseConfig } from './lease.ts';
export { Progress, Inflights, type ProgressState } from './progress.ts';
export { bootstrapState, encodeConfChange, decodeConfChange, applyConfChange, confChangeProblem, EMPTY_CONF } from './confchange.ts';
