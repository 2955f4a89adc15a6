// One replica of the replicated state: the operator state machine plus this peer's own signed
// receipt log. Every execution (ordinal k) gets one receipt, appended in ordinal order, so the
// receipt for ordinal k sits at log index k - offset. `offset` grows only when the replica jumps
// ahead by installing a snapshot (the executions inside it were receipted by the replicas that
// ran them); it is persisted with the log. Re-applying entries after a restart finds their
// receipts already there and appends nothing twice.
import type { Ed25519Signer } from '../crypto/index.ts';
import { utf8Decode, utf8Encode } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { ReceiptLog } from '../receipts/log.ts';
import type { Receipt } from '../receipts/receipt.ts';
import { decodeCommand, StateMachine, StateMachineError } from '../statemachine/index.ts';
import type { OperatorRegistry } from '../statemachine/registry.ts';
import type { ApplyResult } from '../statemachine/types.ts';
import type { Store } from '../store/types.ts';

/**
 * Recent executions kept in memory (outputs for live streams, receipts still being written).
 * Bounded by count because outputs can be large; a stream further behind gets `outputs: null`.
 */
export const RECENT_EXECUTIONS = 4096;
const OFFSET_KEY = utf8Encode('Qoffset');

export interface Execution {
  ordinal: number;
  operator_id: string;
  outputs: Json;
  receipt: Promise<Receipt>;
}

export type ExecutionListener = (e: Execution) => void;

export class Replica {
  readonly log: ReceiptLog;
  readonly #store: Store;
  readonly #registry: OperatorRegistry | undefined;
  #sm: StateMachine;
  #offset: number;
  readonly #recent = new Map<number, Execution>();
  readonly #listeners = new Set<ExecutionListener>();
  #lastReceipt: Promise<unknown> = Promise.resolve();
  /** Receipts appended so far, durable or still being written (log.size lags behind). */
  #count: number;

  private constructor(store: Store, log: ReceiptLog, sm: StateMachine, offset: number, registry: OperatorRegistry | undefined) {
    this.#store = store;
    this.log = log;
    this.#sm = sm;
    this.#offset = offset;
    this.#registry = registry;
    this.#count = log.size;
  }

  /** Receipt index the next execution will get. */
  get receiptCount(): number {
    return this.#count;
  }

  static async open(opts: { store: Store; signer: Ed25519Signer; peerId: string; registry?: OperatorRegistry }): Promise<Replica> {
    // Receipts of a Raft replica are rebuilt by re-applying the durable Raft log after a crash
    // (ed25519 is deterministic and the timestamp comes from the entry), so no fsync per batch.
    const log = await ReceiptLog.open(opts.store, { signer: opts.signer, peerId: opts.peerId, sync: false });
    const raw = await opts.store.get(OFFSET_KEY);
    const offset = raw === undefined ? 0 : Number(utf8Decode(raw));
    return new Replica(opts.store, log, new StateMachine(opts.registry), offset, opts.registry);
  }

  get ordinal(): number {
    return this.#sm.ordinal;
  }

  /** Applies one committed entry's data. Returns the result; receipts are appended in order. */
  apply(data: Uint8Array): { result: ApplyResult; receipt: Promise<Receipt> | null } {
    const cmd = decodeCommand(data);
    if (cmd instanceof StateMachineError) return { result: { ok: false, code: 'INVALID_COMMAND', message: cmd.message }, receipt: null };
    const result = this.#sm.apply(cmd);
    if (!result.ok) return { result, receipt: null };
    if (result.replayed) return { result, receipt: this.receiptFor(result.ordinal) };
    const index = result.ordinal - this.#offset;
    let receipt: Promise<Receipt>;
    if (index < this.#count) {
      // Replayed after a restart: this execution's receipt is already in the log.
      receipt = this.log.get(index).then((r) => r ?? Promise.reject(new Error(`receipt ${index} missing`)));
    } else {
      if (index !== this.#count) throw new Error(`replica: execution ${result.ordinal} would land at receipt ${index}, log has ${this.#count}`);
      this.#count++;
      receipt = this.log.append({ operator_id: cmd.operator_id, inputs: cmd.inputs, outputs: result.outputs }, result.timestamp);
      this.#lastReceipt = receipt.catch(() => undefined);
    }
    receipt.catch(() => undefined);
    const e: Execution = { ordinal: result.ordinal, operator_id: cmd.operator_id, outputs: result.outputs, receipt };
    this.#remember(e);
    for (const l of this.#listeners) l(e);
    return { result, receipt };
  }

  /** A readonly operator against the current state (after a ReadIndex wait). */
  query(operator_id: string, inputs: Json): ApplyResult {
    return this.#sm.query(operator_id, inputs);
  }

  /** The receipt of execution `ordinal` on this replica, if it has one. */
  receiptFor(ordinal: number): Promise<Receipt> {
    const recent = this.#recent.get(ordinal);
    if (recent !== undefined) return recent.receipt;
    const index = ordinal - this.#offset;
    return this.log.get(index).then((r) => r ?? Promise.reject(new Error(`no receipt for execution ${ordinal} on this replica`)));
  }

  recent(ordinal: number): Execution | undefined {
    return this.#recent.get(ordinal);
  }

  /** Execution ordinal of receipt index `index` on this replica. */
  ordinalOf(index: number): number {
    return index + this.#offset;
  }

  onExecution(l: ExecutionListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** Waits until every receipt appended so far is durable (before a snapshot drops the log). */
  async flush(): Promise<void> {
    await this.#lastReceipt;
  }

  snapshot(): Uint8Array {
    return this.#sm.snapshot();
  }

  /** Installs a snapshot received from the leader; executions inside it get no local receipt. */
  async restore(data: Uint8Array): Promise<void> {
    await this.flush();
    const sm = StateMachine.restore(data, this.#registry);
    const haveUpTo = this.#offset + this.#count;
    if (sm.ordinal > haveUpTo) {
      this.#offset = sm.ordinal - this.#count;
      await this.#store.put(OFFSET_KEY, utf8Encode(String(this.#offset)));
    }
    this.#sm = sm;
    this.#recent.clear();
  }

  /** Restores the state machine from our own durable snapshot at startup (no offset change). */
  load(data: Uint8Array): void {
    this.#sm = StateMachine.restore(data, this.#registry);
  }

  #remember(e: Execution): void {
    this.#recent.set(e.ordinal, e);
    if (this.#recent.size > RECENT_EXECUTIONS) {
      const oldest = this.#recent.keys().next().value as number;
      this.#recent.delete(oldest);
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await this.log.close();
  }
}
