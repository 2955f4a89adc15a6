// The nemesis run's two halves, driven against a real Raft cluster (test/harness/raft-cluster.ts):
// clients that run a mixed kv/counter workload through the relay API and record every call and
// return as a history for the linearizability checker (src/sim/linearizability.ts), and a nemesis
// that injects one fault at a time: SIGKILL the leader and restart it, SIGSTOP/SIGCONT a follower,
// SIGKILL the relay and restart it, cut a voter off the network (its connection gater, through
// `hypersync node --fault-signals`). Every loop, retry and wait is bounded.
import type { KvCounterInput, KvCounterOperation, KvCounterOutput } from '../../src/sim/linearizability.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import type { JsonEvent, Proc } from './processes.ts';
import { clusterStatus, until, type RaftCluster } from './raft-cluster.ts';

/** The engine's own deadline for each attempt (options.timeout_ms). */
export const ATTEMPT_TIMEOUT_MS = 3_000;
/** A read's HTTP bound, past the engine's deadline (a SIGKILLed relay never answers). */
const READ_PATIENCE_MS = ATTEMPT_TIMEOUT_MS + 5_000;
/**
 * A writer is less patient than the engine: it abandons an attempt after this long and retries
 * with the same idempotency key while the first may still commit, as real clients do, so the
 * exactly-once path is exercised (not only requests refused before they reached the leader).
 */
const WRITE_PATIENCE_MS = 1_000;
/** A write is retried with its idempotency key until acknowledged or this budget is spent. */
export const WRITE_RETRY_BUDGET_MS = 45_000;
/** Attempts per write at most (with RETRY_PAUSE_MS between them). */
export const MAX_WRITE_ATTEMPTS = 200;
const RETRY_PAUSE_MS = 100;
/** Keys are renamed every EPOCH_MS, so every key's history stays short enough to check fast. */
export const EPOCH_MS = 10_000;
/** Register keys and counter keys per epoch. */
const REGISTERS = 3;
const COUNTERS = 2;
/** How long a fault is held before it is healed, and the quiet time between faults. */
export const FAULT_HOLD_MS = 3_000;
export const QUIET_MS = 2_000;
/** Bound on waiting for the cluster to recover from one fault (a leader, a restart). */
const RECOVERY_TIMEOUT_MS = 30_000;

export type FaultKind = 'kill-leader' | 'pause-follower' | 'restart-relay' | 'cut-peer';
export const FAULT_KINDS: readonly FaultKind[] = ['kill-leader', 'pause-follower', 'restart-relay', 'cut-peer'];

interface Reply {
  status: number;
  body: { status?: string; outputs?: Record<string, unknown>; receipt_id?: string | null; error?: { code: string; message: string } };
}

async function request(c: RaftCluster, operator_id: string, inputs: Record<string, unknown>, options: Record<string, unknown>, patienceMs: number): Promise<Reply> {
  try {
    const r = await fetch(`${c.api}/api/v1/operators/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${c.token}` },
      body: JSON.stringify({ operator_id, inputs, options: { timeout_ms: ATTEMPT_TIMEOUT_MS, ...options } }),
      signal: AbortSignal.timeout(patienceMs),
    });
    return { status: r.status, body: (await r.json()) as Reply['body'] };
  } catch (e) {
    return { status: 0, body: { status: 'error', error: { code: 'NETWORK', message: (e as Error).message } } };
  }
}

/** Statuses after which the write's outcome is unknown and a retry with the same key is right. */
const RETRYABLE = new Set([0, 429, 503, 504]);

export interface AckedWrite {
  readonly key: string;
  readonly value: string;
  readonly receiptId: string;
}

export interface WorkloadReport {
  readonly history: KvCounterOperation[];
  /** Unique-key puts that were acknowledged (each must read back at the end). */
  readonly acked: AckedWrite[];
  /** Receipt ids of every acknowledged write (each must be served by the relay at the end). */
  readonly receipts: string[];
  /** Answers no client should ever see (a 4xx/5xx that is not retryable). */
  readonly unexpected: string[];
  readonly counts: { ok: number; unknown: number; failedReads: number; retries: number };
}

/** Clients that each run one operation at a time until `stop` is aborted. */
export class Workload {
  readonly #c: RaftCluster;
  readonly #t0 = performance.now();
  readonly #history: KvCounterOperation[] = [];
  readonly #acked: AckedWrite[] = [];
  readonly #receipts: string[] = [];
  readonly #unexpected: string[] = [];
  readonly #counts = { ok: 0, unknown: 0, failedReads: 0, retries: 0 };
  readonly #prefix: string;

  constructor(c: RaftCluster, prefix: string) {
    this.#c = c;
    this.#prefix = prefix;
  }

  #now(): number {
    return performance.now() - this.#t0;
  }

  #keys(): { registers: string[]; counters: string[] } {
    const epoch = Math.floor(this.#now() / EPOCH_MS);
    return {
      registers: Array.from({ length: REGISTERS }, (_, i) => `${this.#prefix}-e${epoch}-r${i}`),
      counters: Array.from({ length: COUNTERS }, (_, i) => `${this.#prefix}-e${epoch}-c${i}`),
    };
  }

  /** Runs `clients` clients until `signal` aborts; resolves when every client stopped. */
  async run(clients: number, seed: number, signal: AbortSignal): Promise<void> {
    await Promise.all(Array.from({ length: clients }, (_, i) => this.#client(`c${i}`, new Xoshiro128(seed + i), signal)));
  }

  async #client(name: string, rng: Xoshiro128, signal: AbortSignal): Promise<void> {
    for (let n = 0; !signal.aborted; n++) {
      const { registers, counters } = this.#keys();
      const r = rng.next();
      const register = registers[rng.nextInt(registers.length)] as string;
      const counter = counters[rng.nextInt(counters.length)] as string;
      const value = `${name}-${n}`;
      if (r < 0.25) await this.#write(name, { kind: 'put', key: register, value }, 'kv.put', { key: register, value }, `${name}-${n}`);
      else if (r < 0.35) {
        const expected = rng.next() < 0.3 ? null : `c${rng.nextInt(4)}-${Math.max(0, n - 1 - rng.nextInt(3))}`;
        await this.#write(name, { kind: 'cas', key: register, expected, value }, 'kv.cas', { key: register, expected, value }, `${name}-${n}`);
      } else if (r < 0.55) {
        const delta = 1 + rng.nextInt(5);
        await this.#write(name, { kind: 'add', key: counter, delta }, 'counter.add', { key: counter, delta }, `${name}-${n}`);
      } else if (r < 0.65) {
        const key = `${this.#prefix}-u-${name}-${n}`;
        const input: KvCounterInput = { kind: 'put', key, value };
        await this.#write(name, input, 'kv.put', { key, value }, `${name}-${n}`);
      } else await this.read(name, rng.next() < 0.6 ? register : counter);
    }
  }

  /** A linearizable kv.get, recorded when it answers (a failed read has no effect to record). */
  async read(client: string, key: string): Promise<KvCounterOutput | undefined> {
    const call = this.#now();
    const r = await request(this.#c, 'kv.get', { key }, { read: 'linearizable' }, READ_PATIENCE_MS);
    const ret = this.#now();
    if (r.status !== 200) {
      if (!RETRYABLE.has(r.status)) this.#unexpected.push(`kv.get ${key}: ${r.status} ${JSON.stringify(r.body)}`);
      this.#counts.failedReads++;
      return undefined;
    }
    const out = r.body.outputs as { found: boolean; value?: unknown };
    const output = out.found ? (out.value as string | number) : null;
    this.#history.push({ client, input: { kind: 'get', key }, output, call, ret });
    this.#counts.ok++;
    return output;
  }

  async #write(client: string, input: KvCounterInput, operator: string, inputs: Record<string, unknown>, idempotencyKey: string): Promise<void> {
    const call = this.#now();
    const budgetEnd = call + WRITE_RETRY_BUDGET_MS;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && this.#now() < budgetEnd; attempt++) {
      if (attempt > 0) {
        this.#counts.retries++;
        await new Promise((res) => setTimeout(res, RETRY_PAUSE_MS));
      }
      const r = await request(this.#c, operator, inputs, { idempotency_key: `${this.#prefix}-${idempotencyKey}` }, WRITE_PATIENCE_MS);
      if (r.status === 200) {
        const out = r.body.outputs as Record<string, unknown>;
        const output: KvCounterOutput = input.kind === 'put' ? 'ok' : input.kind === 'cas' ? out['ok'] === true : (out['value'] as number);
        this.#history.push({ client, input, output, call, ret: this.#now() });
        this.#receipts.push(String(r.body.receipt_id));
        if (input.kind === 'put' && input.key.includes('-u-')) this.#acked.push({ key: input.key, value: input.value, receiptId: String(r.body.receipt_id) });
        this.#counts.ok++;
        return;
      }
      if (!RETRYABLE.has(r.status)) {
        this.#unexpected.push(`${operator} ${JSON.stringify(inputs)}: ${r.status} ${JSON.stringify(r.body)}`);
        break;
      }
    }
    // Never acknowledged: it may have applied (or may still), at any time after its call.
    this.#history.push({ client, input, output: undefined, call, ret: Infinity });
    this.#counts.unknown++;
  }

  /** Every key the history touches, for the final reads. */
  keys(): string[] {
    return [...new Set(this.#history.map((o) => o.input.key))];
  }

  report(): WorkloadReport {
    return { history: this.#history, acked: this.#acked, receipts: this.#receipts, unexpected: this.#unexpected, counts: { ...this.#counts } };
  }
}


// ---- the nemesis -----------------------------------------------------------------------------

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly target: string;
  readonly atMs: number;
  readonly healedMs: number;
}

function waitNewEvent(p: Proc, pred: (e: JsonEvent) => boolean, what: string): Promise<JsonEvent> {
  const seen = new Set(p.events);
  return p.waitFor((e) => !seen.has(e) && pred(e), RECOVERY_TIMEOUT_MS, what);
}

const pause = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** Injects faults one at a time, round-robin over the kinds, until `signal` aborts. */
export class Nemesis {
  readonly #c: RaftCluster;
  readonly #rng: Xoshiro128;
  readonly #t0 = performance.now();
  readonly faults: FaultRecord[] = [];

  constructor(c: RaftCluster, seed: number) {
    this.#c = c;
    this.#rng = new Xoshiro128(seed);
  }

  async run(signal: AbortSignal): Promise<void> {
    for (let i = 0; !signal.aborted; i++) {
      await pause(QUIET_MS);
      if (signal.aborted) break;
      await this.inject(FAULT_KINDS[i % FAULT_KINDS.length] as FaultKind);
    }
  }

  async #leaderIndex(): Promise<number> {
    const s = await until('a leader known to the relay', () => clusterStatus(this.#c.api), (st) => st.leader !== null, RECOVERY_TIMEOUT_MS, 100);
    return this.#c.nodes.findIndex((n) => n.peerId === s.leader);
  }

  async inject(kind: FaultKind): Promise<void> {
    const c = this.#c;
    const at = performance.now() - this.#t0;
    let target = '';
    switch (kind) {
      case 'kill-leader': {
        const i = await this.#leaderIndex();
        const victim = c.nodes[i];
        if (victim === undefined) throw new Error('the leader is not one of the voters');
        target = victim.name;
        victim.proc.child.kill('SIGKILL');
        await victim.proc.exited;
        await until('a new leader', () => clusterStatus(c.api), (st) => st.leader !== null && st.leader !== victim.peerId, RECOVERY_TIMEOUT_MS, 100);
        await pause(FAULT_HOLD_MS);
        await c.startNode(i);
        break;
      }
      case 'pause-follower': {
        const leader = await this.#leaderIndex();
        const followers = c.nodes.map((_, i) => i).filter((i) => i !== leader);
        const n = c.nodes[followers[this.#rng.nextInt(followers.length)] as number]!;
        target = n.name;
        n.proc.child.kill('SIGSTOP');
        try {
          await pause(FAULT_HOLD_MS);
        } finally {
          n.proc.child.kill('SIGCONT');
        }
        break;
      }
      case 'restart-relay': {
        target = 'relay';
        c.relay.child.kill('SIGKILL');
        await c.relay.exited;
        await pause(FAULT_HOLD_MS / 3);
        await c.restartRelay();
        await until('the restarted relay to know a leader', () => clusterStatus(c.api), (st) => st.leader !== null, RECOVERY_TIMEOUT_MS, 100);
        break;
      }
      case 'cut-peer': {
        // Any voter, the leader included: a cut leader must lose its lease to the majority.
        const n = c.nodes[this.#rng.nextInt(c.nodes.length)]!;
        target = n.name;
        const cut = waitNewEvent(n.proc, (e) => e.type === 'fault:network-cut' && e['cut'] === true, 'the network cut');
        n.proc.child.kill('SIGUSR2');
        await cut;
        await waitNewEvent(n.proc, (e) => e.type === 'peer:down', 'a peer session down after the cut');
        await pause(FAULT_HOLD_MS);
        const healed = waitNewEvent(n.proc, (e) => e.type === 'fault:network-cut' && e['cut'] === false, 'the cut lifted');
        n.proc.child.kill('SIGUSR2');
        await healed;
        await waitNewEvent(n.proc, (e) => e.type === 'peer:established', 'a session again after the cut');
        break;
      }
    }
    this.faults.push({ kind, target, atMs: Math.round(at), healedMs: Math.round(performance.now() - this.#t0) });
  }

  countByKind(): Record<FaultKind, number> {
    const out = { 'kill-leader': 0, 'pause-follower': 0, 'restart-relay': 0, 'cut-peer': 0 };
    for (const f of this.faults) out[f.kind]++;
    return out;
  }
}
