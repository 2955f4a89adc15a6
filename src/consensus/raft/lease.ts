// The leader lease behind lease-based linearizable reads (Raft thesis §6.4.1; etcd-io/raft's
// ReadOnlyLeaseBased is the model, made safe against clock drift within a stated bound).
// A follower that heard from its leader ignores (pre)votes for `electionTicks` of its own ticks
// (CheckQuorum). So once a quorum answered a heartbeat the leader sent at local time t, no other
// leader can be elected before (electionTicks - 1) follower ticks have passed after t; the leader
// may answer reads from its commit index alone until t + leaseDurationMs on its own monotonic
// clock, where the duration divides that window by the bound on clock-rate ratios.
// Invariants: heartbeat rounds are numbered in send order, so acks only move a lease forward; at
// most MAX_LEASE_ROUNDS rounds are remembered (an ack of a forgotten round extends nothing).
import { invariant } from './errors.ts';

/** Heartbeat rounds whose send time the leader remembers (older acks extend no lease). */
export const MAX_LEASE_ROUNDS = 256;
/**
 * Default bound on the ratio of any two members' clock rates (1.5: one member's clock may run
 * 50 % faster than another's). Real quartz drifts by parts per million; the bound also covers the
 * tick timer firing early or late, which is why it is generous. A deployment whose clocks can
 * drift further must lower its lease (or turn leases off): the lease is only as safe as this bound.
 */
export const DEFAULT_CLOCK_RATE_BOUND = 1.5;

export interface LeaseConfig {
  /** Monotonic local time in ms (never jumps back; wall-clock jumps would void the lease). */
  readonly now: () => number;
  /** How long a quorum's answer to one heartbeat keeps the lease, from the heartbeat's send time. */
  readonly durationMs: number;
}

/**
 * The lease a quorum's heartbeat answer buys: the follower's vote guard lasts at least
 * (electionTicks - 1) of its ticks (the first may fire at once), and a leader clock up to
 * `clockRateBound` times slower than a follower's must count that window shorter.
 */
export function leaseDurationMs(electionTicks: number, tickMs: number, clockRateBound: number): number {
  invariant(clockRateBound >= 1, 'lease: the clock-rate bound is a ratio >= 1');
  invariant(electionTicks >= 2 && tickMs > 0, 'lease: needs electionTicks >= 2 and tickMs > 0');
  return Math.floor(((electionTicks - 1) * tickMs) / clockRateBound);
}

/** One leadership's lease: heartbeat rounds sent and the latest round each voter answered. */
export class LeaderLease {
  readonly #cfg: LeaseConfig;
  readonly #seqs: number[] = [];
  readonly #sentAt: number[] = [];
  #start = 0;
  #count = 0;
  /** Send time of the latest round each voter answered. */
  readonly #acked = new Map<string, number>();

  constructor(cfg: LeaseConfig) {
    invariant(cfg.durationMs > 0, 'lease: duration must be positive');
    this.#cfg = cfg;
  }

  now(): number {
    return this.#cfg.now();
  }

  /** A heartbeat round `seq` leaves now (seqs increase). */
  sent(seq: number): void {
    const slot = (this.#start + this.#count) % MAX_LEASE_ROUNDS;
    if (this.#count === MAX_LEASE_ROUNDS) this.#start = (this.#start + 1) % MAX_LEASE_ROUNDS;
    else this.#count++;
    this.#seqs[slot] = seq;
    this.#sentAt[slot] = this.#cfg.now();
  }

  /** `voter` answered round `seq`. */
  acked(voter: string, seq: number): void {
    for (let i = this.#count - 1; i >= 0; i--) {
      const slot = (this.#start + i) % MAX_LEASE_ROUNDS;
      if (this.#seqs[slot] !== seq) continue;
      const at = this.#sentAt[slot] as number;
      if (at > (this.#acked.get(voter) ?? -Infinity)) this.#acked.set(voter, at);
      return;
    }
  }

  /** Whether a quorum of `voters` (this leader counts as now) answered a round sent within the lease. */
  held(self: string, voters: readonly string[], quorum: number): boolean {
    const now = this.#cfg.now();
    let fresh = 0;
    for (const v of voters) {
      if (v === self) fresh++;
      else if (now - (this.#acked.get(v) ?? -Infinity) < this.#cfg.durationMs) fresh++;
    }
    return fresh >= quorum;
  }

  clear(): void {
    this.#start = 0;
    this.#count = 0;
    this.#acked.clear();
  }
}
