// The client side of the Raft runtime. Any member (voter or learner) accepts commands: the
// leader stamps and appends them; any other member forwards them, in batches, to the leader,
// which answers (index, term). A command resolves when this replica applies that index in that
// term; a lost, refused or overtaken one is sent again with the same session key, so it
// executes at most once. Invariants: at most MAX_PENDING_COMMANDS wait; none waits past its
// caller's signal or MAX_WAIT_MS; a leader's stamps never go back in time.
import { ProposalDroppedError, type NodeId, type RaftNode } from '../index.ts';
import { abortError, CancelledError, MAX_PENDING_COMMANDS, MAX_WAIT_MS, onAbort, UnavailableError, type CommandOutcome } from '../../engine.ts';
import type { Timers } from '../../ports.ts';
import type { JsonObject } from '../../../ico/types.ts';
import { encodeCommand } from '../../../statemachine/command.ts';
import { APPLIED_MEMORY, ATTEMPT_TIMEOUT_MS, FORWARD_GATHER_MAX_MS, MAX_FORWARDS_IN_FLIGHT, REPROPOSE_TICKS } from './limits.ts';
import { encodeConsensusPayload, MAX_PROPOSALS_PER_ENVELOPE, type ForwardedProposal, type ProposalAnswer } from './wire.ts';

/**
 * Session keys of requests without an idempotency key start with this (a client's key is sent
 * as `idem:` + key): the leader marks their sessions `retry`, kept only for the runtime's own
 * retries and never evicting a client's key.
 */
export const RETRY_KEY_PREFIX = 'req:';

/** A command as it waits here: the session makes every retry of it the same command. */
export type Proposal = Omit<ForwardedProposal, 'id'>;

interface PendingCommand {
  readonly prop: Proposal;
  readonly started: number;
  /** Since when it has found no leader, uninterrupted (0: a leader was known last time). */
  leaderlessSince: number;
  /** Where the leader put it, while that answer stands (cleared when it is sent again). */
  accepted: { index: number; term: number } | undefined;
  readonly resolve: (o: CommandOutcome) => void;
  readonly reject: (e: Error) => void;
  detach: () => void;
  done: boolean;
}

interface Waiter {
  readonly term: number;
  readonly resolve: (o: CommandOutcome) => void;
  readonly retry: () => void;
}

export interface CommandStats {
  proposed: number;
  forwarded: number;
  retries: number;
  dropped: number;
  pending: number;
}

export interface ClientCommandsDeps {
  readonly id: NodeId;
  readonly node: RaftNode;
  readonly timers: Timers;
  readonly tickMs: number;
  /** How long a command waits for a leader to be known before it fails UNAVAILABLE. */
  readonly leaderlessWaitMs: number;
  /** Sends a CONSENSUS payload to a member; `onFail` when it cannot be handed to the wire. */
  send(to: NodeId, payload: JsonObject, onFail?: () => void): void;
  /** Asks the Ready loop to run (new entries to persist and send). */
  kick(): void;
  /** The index this replica applied. */
  applied(): number;
}

export class ClientCommands {
  readonly #d: ClientCommandsDeps;
  #nextId = 1;
  readonly #commands = new Map<number, PendingCommand>();
  /** Commands to propose locally (leader) or forward, flushed once per turn. */
  #outbox: number[] = [];
  #outboxScheduled = false;
  #forwardsInFlight = 0;
  #cancelGather: (() => void) | undefined;
  readonly #waiters = new Map<number, Waiter[]>();
  /** The term (and outcome) of recently applied entries, so a late answer finds its result. */
  readonly #appliedTerms = new Map<number, { term: number; outcome: CommandOutcome | null }>();
  /** Last time stamped on a command by this node as leader (keeps stamps monotonic). */
  #lastStamp = 0;
  #stopped = false;
  readonly #stats = { proposed: 0, forwarded: 0, retries: 0, dropped: 0 };

  constructor(deps: ClientCommandsDeps) {
    this.#d = deps;
  }

  stats(): CommandStats {
    return { ...this.#stats, pending: this.#commands.size };
  }

  submit(prop: Proposal, signal: AbortSignal | undefined): Promise<CommandOutcome> {
    if (this.#stopped) return Promise.reject(new UnavailableError('raft runtime stopped'));
    if (removed(this.#d.node, this.#d.id)) return Promise.reject(new UnavailableError(REMOVED));
    if (this.#commands.size >= MAX_PENDING_COMMANDS) return Promise.reject(new UnavailableError(`${MAX_PENDING_COMMANDS} commands pending: overloaded, retry later`));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const cmd: PendingCommand = { prop, started: this.#d.timers.now(), leaderlessSince: 0, accepted: undefined, resolve, reject, detach: () => undefined, done: false };
      this.#commands.set(id, cmd);
      cmd.detach = onAbort(signal, () => this.#finish(id, waitEnded(abortError(signal as AbortSignal, 'command'))));
      if (!cmd.done) this.#enqueue(id);
    });
  }

  #finish(id: number, err: Error | null, outcome?: CommandOutcome): void {
    const c = this.#commands.get(id);
    if (c === undefined || c.done) return;
    c.done = true;
    this.#commands.delete(id);
    c.detach();
    if (err !== null) c.reject(err);
    else c.resolve(outcome as CommandOutcome);
  }

  #enqueue(id: number): void {
    const c = this.#commands.get(id);
    if (c !== undefined) c.accepted = undefined;
    this.#outbox.push(id);
    if (this.#outboxScheduled) return;
    this.#outboxScheduled = true;
    this.#d.timers.defer(() => {
      this.#outboxScheduled = false;
      this.#flushOutbox();
    });
  }

  #later(ticks: number, ids: readonly number[]): void {
    this.#d.timers.after(this.#d.tickMs * ticks, () => {
      for (const id of ids) this.#enqueue(id);
    });
  }

  #flushOutbox(): void {
    if (this.#stopped) return;
    const leader = this.#d.node.currentLeader();
    const self = this.#d.id;
    // Forwarding: with MAX_FORWARDS_IN_FLIGHT batches unanswered, let commands gather into the
    // next, bigger batch (fewer payloads per write); an answer or a short timer flushes it.
    if (leader !== self && leader !== '' && this.#forwardsInFlight >= MAX_FORWARDS_IN_FLIGHT) {
      this.#cancelGather ??= this.#d.timers.after(FORWARD_GATHER_MAX_MS, () => {
        this.#cancelGather = undefined;
        this.#forwardsInFlight = 0;
        this.#flushOutbox();
      });
      return;
    }
    // A retry may queue an id that is still waiting here: send each command once per batch.
    const ids = [...new Set(this.#outbox)].filter((id) => this.#commands.has(id));
    this.#outbox = [];
    if (ids.length === 0) return;
    if (removed(this.#d.node, self)) {
      // Removed from the cluster: no leader will ever answer this member again.
      for (const id of ids) this.#finish(id, new UnavailableError(REMOVED));
      return;
    }
    if (leader === self) {
      for (const a of this.proposeLocal(ids.map((id) => ({ id, ...(this.#commands.get(id) as PendingCommand).prop })))) {
        this.#onAnswer(a);
        this.#armRetry(a.id);
      }
      return;
    }
    const now = this.#d.timers.now();
    if (leader === '') {
      // No leader yet: try again shortly (an election takes about one election timeout), for
      // as long as a leader could still appear.
      const waiting: number[] = [];
      for (const id of ids) {
        const c = this.#commands.get(id) as PendingCommand;
        if (c.leaderlessSince === 0) c.leaderlessSince = now;
        if (now - c.leaderlessSince > this.#d.leaderlessWaitMs) this.#finish(id, new UnavailableError(`no leader known for ${this.#d.leaderlessWaitMs} ms; ask another member`));
        else waiting.push(id);
      }
      if (waiting.length > 0) this.#later(REPROPOSE_TICKS, waiting);
      return;
    }
    for (const id of ids) (this.#commands.get(id) as PendingCommand).leaderlessSince = 0;
    for (let i = 0; i < ids.length; i += MAX_PROPOSALS_PER_ENVELOPE) {
      const props = ids.slice(i, i + MAX_PROPOSALS_PER_ENVELOPE).map((id) => ({ id, ...(this.#commands.get(id) as PendingCommand).prop }));
      this.#stats.forwarded += props.length;
      this.#forwardsInFlight++;
      // If the leader cannot be reached (it just died), ask again after a beat rather than
      // waiting out a whole attempt: by then a new leader is usually known.
      this.#d.send(leader, encodeConsensusPayload({ k: 'propose', props }), () => {
        this.forwardAnswered();
        this.#later(REPROPOSE_TICKS, props.map((p) => p.id));
      });
      for (const p of props) this.#armRetry(p.id);
    }
  }

  /** A forwarded batch was answered (or could not be sent): the next batch may go. */
  forwardAnswered(): void {
    this.#forwardsInFlight = Math.max(0, this.#forwardsInFlight - 1);
    if (this.#forwardsInFlight < MAX_FORWARDS_IN_FLIGHT && this.#outbox.length > 0) {
      this.#cancelGather?.();
      this.#cancelGather = undefined;
      this.#flushOutbox();
    }
  }

  /** If no apply arrives within an attempt, send the command again (same session key). */
  #armRetry(id: number): void {
    const c = this.#commands.get(id);
    if (c === undefined) return;
    this.#d.timers.after(ATTEMPT_TIMEOUT_MS, () => {
      if (this.#commands.get(id) !== c || c.done) return;
      if (this.#d.timers.now() - c.started > MAX_WAIT_MS) {
        this.#finish(id, new UnavailableError(`not applied within ${MAX_WAIT_MS} ms (it may still apply; retry with the same idempotency key)`));
        return;
      }
      // Appended by the leader of the current term, which is still leading: the entry commits
      // or a new term overwrites it, and both are seen here. Appending it again would only
      // grow the log (a loaded cluster would then fall further behind with every attempt).
      const a = c.accepted;
      if (a !== undefined && a.term === this.#d.node.currentTerm() && this.#d.node.currentLeader() !== '' && a.index > this.#d.applied()) {
        this.#armRetry(id);
        return;
      }
      this.#stats.retries++;
      this.#enqueue(id);
    });
  }

  /** Leader side: stamp and append commands; answers carry (index, term) or a refusal. */
  proposeLocal(props: readonly ForwardedProposal[]): ProposalAnswer[] {
    this.#lastStamp = Math.max(this.#lastStamp, this.#d.timers.now());
    const datas = props.map((p) => encodeCommand({ operator_id: p.operator_id, inputs: p.inputs, timestamp: this.#lastStamp, session: p.key.startsWith(RETRY_KEY_PREFIX) ? { client: p.client, key: p.key, retry: true } : { client: p.client, key: p.key } }));
    try {
      const first = this.#d.node.proposeBatch(datas);
      const term = this.#d.node.currentTerm();
      this.#stats.proposed += props.length;
      this.#d.kick();
      return props.map((p, i) => ({ id: p.id, index: first + i, term }));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.#stats.dropped += props.length;
      const error = e.reason === 'notLeader' ? 'notLeader' : 'dropped';
      return props.map((p) => ({ id: p.id, error, leader: e.leaderHint }));
    }
  }

  /** The leader's answers to a forwarded batch. */
  onAnswers(answers: readonly ProposalAnswer[]): void {
    for (const a of answers) this.#onAnswer(a);
    this.forwardAnswered();
  }

  #onAnswer(a: ProposalAnswer): void {
    if (!this.#commands.has(a.id)) return;
    if ('error' in a) {
      // Refused: retry after a beat (a new leader is being elected, or the leader is busy).
      this.#later(1, [a.id]);
      return;
    }
    const seen = this.#appliedTerms.get(a.index);
    if (seen !== undefined) {
      if (seen.term === a.term && seen.outcome !== null) this.#finish(a.id, null, seen.outcome);
      else this.#enqueue(a.id);
      return;
    }
    if (a.index <= this.#d.applied()) {
      // Applied long ago and forgotten (or compacted): the session table answers a retry.
      this.#enqueue(a.id);
      return;
    }
    (this.#commands.get(a.id) as PendingCommand).accepted = { index: a.index, term: a.term };
    let list = this.#waiters.get(a.index);
    if (list === undefined) this.#waiters.set(a.index, (list = []));
    list.push({ term: a.term, resolve: (o) => this.#finish(a.id, null, o), retry: () => this.#enqueue(a.id) });
  }

  /** This replica applied entry (index, term); `outcome` is null for entries without a command. */
  /** Whether a caller on this member waits for the entry at `index`. */
  waiting(index: number): boolean {
    return this.#waiters.has(index);
  }

  onApplied(index: number, term: number, outcome: CommandOutcome | null): void {
    this.#appliedTerms.set(index, { term, outcome });
    if (this.#appliedTerms.size > APPLIED_MEMORY) this.#appliedTerms.delete(this.#appliedTerms.keys().next().value as number);
    const list = this.#waiters.get(index);
    if (list === undefined) return;
    this.#waiters.delete(index);
    for (const w of list) {
      if (w.term === term && outcome !== null) w.resolve(outcome);
      else w.retry();
    }
  }

  /** A snapshot moved this replica to `applied`: waiters at or below it never see their entry. */
  onSnapshotInstalled(applied: number): void {
    for (const [index, list] of this.#waiters) {
      if (index > applied) continue;
      this.#waiters.delete(index);
      for (const w of list) w.retry();
    }
  }

  /** This node just became leader: its stamps continue from its own clock. */
  onLeader(): void {
    this.#lastStamp = Math.max(this.#lastStamp, this.#d.timers.now());
  }

  stop(reason: string): void {
    this.#stopped = true;
    this.#cancelGather?.();
    for (const id of [...this.#commands.keys()]) this.#finish(id, new UnavailableError(reason));
  }
}

const REMOVED = 'this member was removed from the cluster; ask another one';

/** This member knows a configuration and is not in it (an empty one is a joiner's, not yet learned). */
export function removed(node: RaftNode, self: NodeId): boolean {
  const conf = node.config();
  return conf.voters.length + conf.learners.length > 0 && !conf.voters.includes(self) && !conf.learners.includes(self);
}

/**
 * A replicated engine that did not apply a command before its caller's deadline answers
 * UNAVAILABLE (etcd's request timeout does the same): the cluster could not agree in time.
 */
export function waitEnded(e: Error): Error {
  return e instanceof CancelledError ? e : new UnavailableError('not applied before the deadline (it may still apply; retry with the same idempotency key)');
}
