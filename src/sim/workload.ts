// The simulator's clients: each runs one operation at a time (a linearizable get, a put, or a
// cas on a small key set) through any member's engine, with a deadline (an AbortSignal fired by
// simulated time), and retries a failed or timed-out attempt with the same idempotency key,
// so a write executes at most once. Every operation lands in a history the linearizability
// checker reads: call at the first attempt, return when an attempt succeeds (never: unknown).
import type { Consensus, ReplicaPort } from '../consensus/engine.ts';
import type { Json } from '../ico/types.ts';
import { checkKvHistory, type KvInput, type KvOperation, type KvOutput } from './linearizability.ts';
import type { Xoshiro128 } from './prng.ts';
import type { SimClock } from './time.ts';

const KEYS = ['a', 'b', 'c'];
/** An attempt's deadline, in ms: longer than the runtime's own retry, so that code runs too. */
const ATTEMPT_DEADLINE_MS: readonly [number, number] = [2_000, 4_000];
/** Pause before the next attempt after a failure, and between operations, in ms. */
const RETRY_PAUSE_MS: readonly [number, number] = [10, 75];
const THINK_MS: readonly [number, number] = [5, 150];

interface PendingOp {
  readonly historyIndex: number;
  readonly input: KvInput;
  readonly seq: number;
  attempt: number;
}

interface Client {
  readonly id: string;
  seq: number;
  pending: PendingOp | undefined;
  leaderHint: string;
  /** The member the last failed attempt went to. */
  lastFailed: string;
}

interface HistoryEntry {
  readonly client: string;
  readonly input: KvInput;
  readonly call: number;
  ret: number;
  output: KvOutput | undefined;
}

export interface WorkloadDeps {
  readonly clock: SimClock;
  readonly rng: Xoshiro128;
  /** Member ids, and the engine of a member that is up (undefined while it is down). */
  members(): readonly string[];
  engine(id: string): Consensus<ReplicaPort> | undefined;
  /** No new operation starts at or after this time. */
  readonly stopAt: number;
  trace(line: () => string): void;
  /** An outcome no correct engine can give (the run fails). */
  violation(property: string, detail: string): void;
}

export class Workload {
  readonly #d: WorkloadDeps;
  readonly #clients: Client[] = [];
  readonly #history: HistoryEntry[] = [];
  completed = 0;
  /** Time the first operation invoked at or after `since` completed (-1: none yet). */
  #firstSince = -1;
  #since = Number.POSITIVE_INFINITY;

  constructor(deps: WorkloadDeps, clients: number) {
    this.#d = deps;
    for (let i = 0; i < clients; i++) {
      const c: Client = { id: `c${i + 1}`, seq: 0, pending: undefined, leaderHint: '', lastFailed: '' };
      this.#clients.push(c);
      deps.clock.at(deps.rng.range(5, 250), () => this.#next(c));
    }
  }

  /** Watch for the first operation invoked from `time` on to complete (liveness after healing). */
  watchFrom(time: number): void {
    this.#since = time;
    this.#firstSince = -1;
  }

  get firstCompletedSince(): number {
    return this.#firstSince;
  }

  #next(c: Client): void {
    if (c.pending !== undefined || this.#d.clock.now >= this.#d.stopAt) return;
    const { rng } = this.#d;
    const key = rng.pick(KEYS);
    const r = rng.nextInt(10);
    const value = `${c.id}-${c.seq + 1}`;
    let input: KvInput;
    if (r < 4) input = { kind: 'get', key };
    else if (r < 8) input = { kind: 'put', key, value };
    else input = { kind: 'cas', key, expected: rng.chance(0.3) ? null : `${rng.pick(this.#clients).id}-${rng.range(1, c.seq + 2)}`, value };
    c.seq++;
    this.#history.push({ client: c.id, input, call: this.#d.clock.now, ret: Number.POSITIVE_INFINITY, output: undefined });
    const p: PendingOp = { historyIndex: this.#history.length - 1, input, seq: c.seq, attempt: 0 };
    c.pending = p;
    this.#d.trace(() => `${c.id} invokes ${JSON.stringify(input)}`);
    this.#attempt(c, p);
  }

  #attempt(c: Client, p: PendingOp): void {
    const { rng, clock } = this.#d;
    const ids = this.#d.members();
    // A real client follows its leader hint, and after a failure asks another member.
    const others = ids.filter((id) => id !== c.lastFailed);
    const target = c.leaderHint !== '' && ids.includes(c.leaderHint) && rng.chance(0.8) ? c.leaderHint : rng.pick(others.length > 0 ? others : ids);
    const attempt = ++p.attempt;
    const current = (): boolean => c.pending === p && p.attempt === attempt;
    const failed = (why: string): void => {
      if (!current()) return;
      p.attempt++;
      c.leaderHint = '';
      c.lastFailed = target;
      this.#d.trace(() => `${c.id} attempt ${attempt} at ${target} failed: ${why}`);
      clock.at(clock.now + rng.range(...RETRY_PAUSE_MS), () => {
        if (c.pending === p) this.#attempt(c, p);
      });
    };
    const engine = this.#d.engine(target);
    if (engine === undefined) {
      c.leaderHint = '';
      failed(`${target} is down`);
      return;
    }
    const deadline = new AbortController();
    clock.at(clock.now + rng.range(...ATTEMPT_DEADLINE_MS), () => {
      if (!current()) return;
      deadline.abort(new DOMException('attempt deadline', 'TimeoutError'));
      failed('deadline');
    });
    const signal = deadline.signal;
    const call: Promise<KvOutput> =
      p.input.kind === 'get'
        ? engine.read('kv.get', { key: p.input.key }, { consistency: 'linearizable', signal }).then((r) => {
            if (!r.ok) throw new Error(`kv.get failed: ${r.message}`);
            const out = r.outputs as { found: boolean; value?: Json };
            return out.found ? (out.value as string) : null;
          })
        : engine.submit({ operator_id: `kv.${p.input.kind}`, inputs: this.#inputs(p.input), idempotency: { client: c.id, key: String(p.seq) } }, { signal }).then(({ result }) => {
            if (!result.ok) throw new Error(`kv.${p.input.kind} failed: ${result.message}`);
            return p.input.kind === 'put' ? 'ok' : (result.outputs as { ok: boolean }).ok;
          });
    call.then(
      (output) => {
        if (!current()) return;
        c.leaderHint = target;
        this.#complete(c, p, output);
      },
      (e: unknown) => {
        const err = e as Error & { code?: string };
        if (err.code === undefined) this.#d.violation('client', `${c.id} got an untyped error from ${target}: ${err.message}`);
        failed(`${err.code ?? err.name}: ${err.message}`);
      },
    );
  }

  #inputs(input: KvInput): Json {
    switch (input.kind) {
      case 'put':
        return { key: input.key, value: input.value };
      case 'cas':
        return { key: input.key, expected: input.expected, value: input.value };
      case 'get':
        return { key: input.key };
    }
  }

  #complete(c: Client, p: PendingOp, output: KvOutput): void {
    const h = this.#history[p.historyIndex] as HistoryEntry;
    h.ret = this.#d.clock.now;
    h.output = output;
    c.pending = undefined;
    this.completed++;
    if (this.#firstSince < 0 && h.call >= this.#since) this.#firstSince = this.#d.clock.now;
    this.#d.trace(() => `${c.id} got ${JSON.stringify(output)} for ${JSON.stringify(h.input)}`);
    const { clock, rng } = this.#d;
    clock.at(clock.now + rng.range(...THINK_MS), () => this.#next(c));
  }

  /** Checks the history: reads that never returned had no effect; writes that never returned may have. */
  check(): { checked: number; result: 'ok' | 'illegal' | 'unknown'; partition?: number } {
    const ops: KvOperation[] = [];
    for (const h of this.#history) {
      if (h.output === undefined && h.input.kind === 'get') continue;
      ops.push({ client: h.client, input: h.input, output: h.output, call: h.call, ret: h.ret });
    }
    const report = checkKvHistory(ops);
    return { checked: ops.length, result: report.result, ...(report.failedPartition !== undefined ? { partition: report.failedPartition } : {}) };
  }
}
