// Linearizable reads of the Raft runtime (ReadIndex): a read waits until this replica applied
// the index the leader confirmed with a heartbeat quorum. Reads that arrive together share
// one round, and at most MAX_READ_ROUNDS rounds are in flight; later reads join the next
// round, as etcd does. A round lost to a leadership change is asked again on a tick.
import { ProposalDroppedError, type NodeId, type RaftNode, type ReadState } from '../index.ts';
import { abortError, MAX_PENDING_READS, MAX_WAIT_MS, onAbort, UnavailableError } from '../../engine.ts';
import type { Timers } from '../../ports.ts';
import type { Json } from '../../../ico/types.ts';
import type { ApplyResult } from '../../../statemachine/types.ts';
import { removed, waitEnded } from './commands.ts';
import { ATTEMPT_TIMEOUT_MS, MAX_READ_ROUNDS } from './limits.ts';

interface PendingRead {
  readonly operator_id: string;
  readonly inputs: Json;
  readonly started: number;
  readonly resolve: (r: ApplyResult) => void;
  readonly reject: (e: Error) => void;
  detach: () => void;
  /** The confirmed index to wait for (-1 until the round is answered). */
  index: number;
  done: boolean;
}

interface ReadRound {
  readonly reads: PendingRead[];
  /** When the round was last asked (0: not asked yet, no leader known). */
  askedAt: number;
  /** Since when no leader was known to ask, uninterrupted (0: one was). */
  leaderlessSince: number;
}

export interface LinearizableReadsDeps {
  readonly id: NodeId;
  readonly node: RaftNode;
  readonly timers: Timers;
  /** How long a read waits for a leader to be known before it fails UNAVAILABLE. */
  readonly leaderlessWaitMs: number;
  /** Asks the Ready loop to run (a ReadIndex request to send). */
  kick(): void;
  applied(): number;
  query(operator_id: string, inputs: Json): ApplyResult;
}

export class LinearizableReads {
  readonly #d: LinearizableReadsDeps;
  readonly #rounds = new Map<string, ReadRound>();
  #unsent: PendingRead[] = [];
  #ready: PendingRead[] = [];
  #flushScheduled = false;
  #count = 0;
  #seq = 0;
  #stopped = false;

  constructor(deps: LinearizableReadsDeps) {
    this.#d = deps;
  }

  read(operator_id: string, inputs: Json, signal: AbortSignal | undefined): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(new UnavailableError('raft runtime stopped'));
    if (removed(this.#d.node, this.#d.id)) return Promise.reject(new UnavailableError('this member was removed from the cluster; ask another one'));
    if (this.#count >= MAX_PENDING_READS) return Promise.reject(new UnavailableError(`${MAX_PENDING_READS} reads pending: overloaded, retry later`));
    return new Promise((resolve, reject) => {
      const r: PendingRead = { operator_id, inputs, started: this.#d.timers.now(), resolve, reject, detach: () => undefined, index: -1, done: false };
      this.#count++;
      r.detach = onAbort(signal, () => this.#finish(r, waitEnded(abortError(signal as AbortSignal, 'read'))));
      if (r.done) return;
      this.#unsent.push(r);
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#d.timers.defer(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#stopped || this.#rounds.size >= MAX_READ_ROUNDS) return;
    const reads = this.#unsent.filter((r) => !r.done);
    this.#unsent = [];
    if (reads.length === 0) return;
    const ctx = `${this.#d.id.slice(-8)}:${++this.#seq}`;
    const round: ReadRound = { reads, askedAt: 0, leaderlessSince: 0 };
    this.#rounds.set(ctx, round);
    this.#ask(ctx, round);
  }

  #ask(ctx: string, round: ReadRound): void {
    const now = this.#d.timers.now();
    if (this.#d.node.currentLeader() === '') {
      // No leader known yet: the tick asks again, for as long as one could still appear.
      round.askedAt = 0;
      if (round.leaderlessSince === 0) round.leaderlessSince = now;
      if (now - round.leaderlessSince > this.#d.leaderlessWaitMs) for (const r of round.reads) this.#finish(r, new UnavailableError(`no leader known for ${this.#d.leaderlessWaitMs} ms; ask another member`));
      return;
    }
    round.leaderlessSince = 0;
    round.askedAt = now;
    try {
      this.#d.node.readIndex(ctx);
      this.#d.kick();
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      // Refused (the read queue is full, or leadership is moving): the tick asks again.
      round.askedAt = 0;
    }
  }

  /** Per tick: rounds dropped by a leadership change (or asked before a leader was known) are asked again. */
  onTick(): void {
    const now = this.#d.timers.now();
    for (const [ctx, round] of this.#rounds) {
      for (const r of round.reads) if (!r.done && now - r.started > MAX_WAIT_MS) this.#finish(r, new UnavailableError(`read not confirmed within ${MAX_WAIT_MS} ms`));
      if (round.reads.every((r) => r.done)) {
        this.#rounds.delete(ctx);
        continue;
      }
      if (round.askedAt === 0 || now - round.askedAt > ATTEMPT_TIMEOUT_MS) this.#ask(ctx, round);
    }
    this.#flush();
  }

  /** The leader confirmed these rounds at these indices. */
  onReadStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      const round = this.#rounds.get(rs.ctx);
      if (round === undefined) continue;
      this.#rounds.delete(rs.ctx);
      for (const r of round.reads) {
        if (r.done) continue;
        r.index = rs.index;
        this.#ready.push(r);
      }
    }
    if (states.length > 0) this.#scheduleFlush();
  }

  /** Serves the confirmed reads this replica has applied far enough for. */
  serve(): void {
    if (this.#ready.length === 0) return;
    const applied = this.#d.applied();
    const waiting: PendingRead[] = [];
    for (const r of this.#ready) {
      if (r.done) continue;
      if (r.index <= applied) this.#finish(r, null, this.#d.query(r.operator_id, r.inputs));
      else waiting.push(r);
    }
    this.#ready = waiting;
  }

  #finish(r: PendingRead, err: Error | null, result?: ApplyResult): void {
    if (r.done) return;
    r.done = true;
    this.#count--;
    r.detach();
    if (err !== null) r.reject(err);
    else r.resolve(result as ApplyResult);
  }

  stop(reason: string): void {
    this.#stopped = true;
    for (const round of this.#rounds.values()) for (const r of round.reads) this.#finish(r, new UnavailableError(reason));
    for (const r of this.#unsent) this.#finish(r, new UnavailableError(reason));
    for (const r of this.#ready) this.#finish(r, new UnavailableError(reason));
  }
}
