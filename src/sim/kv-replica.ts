// The simulator's replica: a string KV (kv.put, kv.cas, kv.get) with the real Command encoding
// and the same exactly-once sessions as the operator state machine (a command whose (client,
// key) was applied answers with the first result), but none of its schema checks or canonical
// JSON, so thousands of seeds stay cheap. The simulator can run the real Replica instead
// (`receipts: true`): the operator state machine and signed receipts on a power-loss store.
import type { CommandOutcome, ReplicaPort, SteppedSnapshot } from '../consensus/engine.ts';
import { utf8Decode, utf8Encode } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import type { ApplyResult } from '../statemachine/types.ts';

interface Session {
  seq: number;
  ordinal: number;
  outputs: Json;
}

interface Encoded {
  operator_id: string;
  inputs: { key: string; value?: string; expected?: string | null };
  timestamp: number;
  session?: { client: string; key: string };
}

/** The simulator's clients number their operations: idempotency key `idem:<seq>`. */
const SEQ_KEY = /^idem:(\d+)$/;

/** Steps a snapshot of the simulator's replica takes (each one a turn of the simulated loop). */
export const SIM_SNAPSHOT_STEPS = 3;

export class KvReplica implements ReplicaPort {
  #kv = new Map<string, string>();
  /**
   * One session per client (its latest operation), as in the Raft dissertation's client table:
   * a client has one operation in flight and numbers them in order, so a retry of the latest
   * answers from here and an older duplicate is known stale. Snapshots stay tiny.
   */
  #sessions = new Map<string, Session>();
  #ordinal = 0;

  get ordinal(): number {
    return this.#ordinal;
  }

  apply(data: Uint8Array): CommandOutcome {
    const cmd = JSON.parse(utf8Decode(data)) as Encoded;
    const m = cmd.session === undefined ? null : SEQ_KEY.exec(cmd.session.key);
    const client = cmd.session?.client;
    const seq = m === null ? -1 : Number(m[1]);
    const last = client === undefined ? undefined : this.#sessions.get(client);
    if (last !== undefined && seq >= 0 && seq <= last.seq) {
      // A retry of the latest operation answers with its first result; an older one is stale.
      const outputs = seq === last.seq ? last.outputs : null;
      return { result: { ok: true, outputs, ordinal: last.ordinal, timestamp: cmd.timestamp, replayed: true }, receipt: null };
    }
    const { key } = cmd.inputs;
    let outputs: Json;
    switch (cmd.operator_id) {
      case 'kv.put': {
        const previous = this.#kv.get(key);
        this.#kv.set(key, cmd.inputs.value as string);
        outputs = previous === undefined ? { ok: true } : { ok: true, previous };
        break;
      }
      case 'kv.cas': {
        const current = this.#kv.get(key) ?? null;
        const ok = current === (cmd.inputs.expected ?? null);
        if (ok) this.#kv.set(key, cmd.inputs.value as string);
        outputs = ok || current === null ? { ok } : { ok, current };
        break;
      }
      default:
        return { result: { ok: false, code: 'UNKNOWN_OPERATOR', message: `the simulator's replica has no ${cmd.operator_id}` }, receipt: null };
    }
    const ordinal = this.#ordinal++;
    if (client !== undefined && seq >= 0) this.#sessions.set(client, { seq, ordinal, outputs });
    return { result: { ok: true, outputs, ordinal, timestamp: cmd.timestamp, replayed: false }, receipt: null };
  }

  query(operator_id: string, inputs: Json): ApplyResult {
    if (operator_id !== 'kv.get') return { ok: false, code: 'UNKNOWN_OPERATOR', message: `the simulator's replica has no ${operator_id}` };
    const value = this.#kv.get((inputs as { key: string }).key);
    return { ok: true, outputs: value === undefined ? { found: false } : { found: true, value }, ordinal: -1, timestamp: 0, replayed: false };
  }

  snapshot(): Uint8Array {
    const kv = [...this.#kv.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const sessions = [...this.#sessions.entries()];
    return utf8Encode(JSON.stringify({ ordinal: this.#ordinal, kv, sessions }));
  }

  /**
   * The bytes of now, handed out after SIM_SNAPSHOT_STEPS steps: the runtime's stepped
   * snapshot path (applies between steps, a restore or a stop in the middle) runs in every seed.
   */
  beginSnapshot(): SteppedSnapshot {
    const bytes = this.snapshot();
    let steps = 0;
    let cancelled = false;
    return {
      step: () => !cancelled && ++steps >= SIM_SNAPSHOT_STEPS,
      bytes: () => {
        if (cancelled || steps < SIM_SNAPSHOT_STEPS) throw new Error('kv-replica: snapshot not finished');
        return bytes;
      },
      cancel: () => {
        cancelled = true;
      },
    };
  }

  async restore(data: Uint8Array): Promise<void> {
    await this.load(data);
  }

  async load(data: Uint8Array): Promise<void> {
    const s = JSON.parse(utf8Decode(data)) as { ordinal: number; kv: Array<[string, string]>; sessions: Array<[string, Session]> };
    this.#ordinal = s.ordinal;
    this.#kv = new Map(s.kv);
    this.#sessions = new Map(s.sessions);
  }

  async flush(): Promise<void> {
    // Nothing is written: the state lives in the log and its snapshots.
  }

  async close(): Promise<void> {
    // Nothing to release.
  }
}
