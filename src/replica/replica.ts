// One replica of the replicated state, shared by every consensus engine: the operator state
// machine plus this peer's own signed receipt log. Every execution (ordinal k) gets one
// receipt, appended in ordinal order, so the receipt for ordinal k sits at log index
// k - offset. By default receipts are lazy: appended unsigned (chained, in the tree, a tree
// head signed per batch) and signed when something first reads an outcome's or execution's
// `receipt` (the member answering the client, a lookup, an export, a stream), so a replica
// that answers nobody signs no receipt per write. `offset` grows only when the replica jumps ahead by installing a snapshot (the
// executions inside it were receipted by the replicas that ran them); it is persisted with the
// log. Re-applying entries after a restart finds their receipts already there and appends
// nothing twice. Keys beside the ReceiptLog's ('r','i','m','h'): 'Qoffset', and with
// `storeOutputs` 'o' u64(index) → outputs JSON and 'w' u64(index) → the owner (who asked),
// written in the receipt's own batch. An execution's owner is the client of its session, or
// the owner its engine passes for one without a session; only the owner sees its outputs.
import type { Ed25519Signer } from '../crypto/index.ts';
import { utf8Decode, utf8Encode } from '../crypto/index.ts';
import type { ApplyOptions, CommandOutcome, ReplicaPort, SteppedSnapshot } from '../consensus/engine.ts';
import type { Json } from '../ico/types.ts';
import { ReceiptLog } from '../receipts/log.ts';
import type { Receipt } from '../receipts/receipt.ts';
import { decodeCommand, StateMachine, StateMachineError, type StateMachineOptions } from '../statemachine/index.ts';
import type { OperatorRegistry } from '../statemachine/registry.ts';
import type { ApplyResult, Command } from '../statemachine/types.ts';
import { prefixedKey, u64 } from '../store/keys.ts';
import type { BatchOp, Store } from '../store/types.ts';

/**
 * Recent executions kept in memory (outputs for live streams, receipts still being written).
 * Bounded by count because outputs can be large; a stream further behind gets `outputs: null`
 * unless the replica stores outputs.
 */
export const RECENT_EXECUTIONS = 4096;
const OFFSET_KEY = utf8Encode('Qoffset');

export const replicaKeys = {
  outputs: (index: number): Uint8Array => prefixedKey('o', u64(index)),
  owner: (index: number): Uint8Array => prefixedKey('w', u64(index)),
};

/**
 * Whether a replica must fsync its receipts: yes when the engine's log that would rebuild them
 * is not durable (a Raft learner writes its log without fsync). Such a member may answer
 * clients (the relay); after a power cut it could lose a receipt it acknowledged, and once the
 * leader compacted those entries away it restarts from a snapshot, with nothing to rebuild it.
 */
export function mustSyncReceipts(logDurable: boolean): boolean {
  return !logDurable;
}

export interface Execution {
  ordinal: number;
  operator_id: string;
  outputs: Json;
  /** Who asked for it (an API principal), when known. */
  owner: string | undefined;
  /** This replica's receipt; a lazy one is signed when this is first read. */
  readonly receipt: Promise<Receipt>;
}

/** Memoizes a receipt made on first use (the signature of a lazy receipt is made once). */
function once(make: () => Promise<Receipt>): () => Promise<Receipt> {
  let p: Promise<Receipt> | undefined;
  return () => (p ??= make());
}

export type ExecutionListener = (e: Execution) => void;

export interface ReplicaOptions {
  store: Store;
  signer: Ed25519Signer;
  peerId: string;
  registry?: OperatorRegistry;
  /** The state machine's session limits (every replica of one cluster must use the same). */
  sessions?: StateMachineOptions;
  /**
   * Default false: receipts are written without fsync, because re-applying the engine's durable
   * log rebuilds them bit for bit (ed25519 is deterministic, the timestamp comes from the
   * entry). True when the replica itself is the only record (the single-node engine).
   */
  syncReceipts?: boolean;
  /** Also keep each execution's outputs on disk, in its receipt's batch (streams replay them). */
  storeOutputs?: boolean;
  /** Recent executions kept in memory (default RECENT_EXECUTIONS). */
  recentExecutions?: number;
  /**
   * 'lazy' (default): receipts are signed when first read, so only the member that answers a
   * client signs on the way to the answer. 'eager': signed in the append's batch (the
   * single-node engine, which answers every write).
   */
  receiptSigning?: 'eager' | 'lazy';
}

export class Replica implements ReplicaPort {
  readonly log: ReceiptLog;
  readonly #store: Store;
  readonly #registry: OperatorRegistry | undefined;
  readonly #machineOptions: StateMachineOptions;
  readonly #storeOutputs: boolean;
  readonly #syncReceipts: boolean;
  readonly #recentMax: number;
  readonly #eager: boolean;
  #sm: StateMachine;
  #offset: number;
  readonly #recent = new Map<number, Execution>();
  readonly #listeners = new Set<ExecutionListener>();
  #lastReceipt: Promise<unknown> = Promise.resolve();
  /** Receipts appended so far, durable or still being written (log.size lags behind). */
  #count: number;

  private constructor(opts: ReplicaOptions, log: ReceiptLog, offset: number) {
    this.#store = opts.store;
    this.log = log;
    this.#machineOptions = opts.sessions ?? {};
    this.#sm = new StateMachine(opts.registry, this.#machineOptions);
    this.#offset = offset;
    this.#registry = opts.registry;
    this.#storeOutputs = opts.storeOutputs ?? false;
    this.#syncReceipts = opts.syncReceipts ?? false;
    this.#recentMax = opts.recentExecutions ?? RECENT_EXECUTIONS;
    this.#eager = opts.receiptSigning === 'eager';
    this.#count = log.size;
  }

  static async open(opts: ReplicaOptions): Promise<Replica> {
    const log = await ReceiptLog.open(opts.store, { signer: opts.signer, peerId: opts.peerId, sync: opts.syncReceipts ?? false });
    const raw = await opts.store.get(OFFSET_KEY);
    const offset = raw === undefined ? 0 : Number(utf8Decode(raw));
    return new Replica(opts, log, offset);
  }

  /** Receipt index the next execution will get. */
  get receiptCount(): number {
    return this.#count;
  }

  /** Executions applied so far (the ordinal the next one gets). */
  get ordinal(): number {
    return this.#sm.ordinal;
  }

  /** Sessions the state machine remembers (clients' keys, retry sessions). */
  get sessions(): StateMachine['sessions'] {
    return this.#sm.sessions;
  }

  get registry(): OperatorRegistry {
    return this.#sm.registry;
  }

  /** Applies one ordered entry's data (a Command's bytes). Receipts are appended in order. */
  apply(data: Uint8Array, opts: ApplyOptions = {}): CommandOutcome {
    const cmd = decodeCommand(data);
    if (cmd instanceof StateMachineError) return { result: { ok: false, code: 'INVALID_COMMAND', message: cmd.message }, receipt: null };
    return this.execute(cmd, undefined, cmd.session?.client, opts.answering === true);
  }

  /**
   * Applies a decoded command. `extra(ordinal)` are the caller's own writes for a new execution,
   * committed atomically with its receipt (the single-node engine keeps its command log so).
   * `owner` names who asked when the command has no session (whose client it would be).
   * `answering`: a caller here waits for the receipt, so it is signed in the append's batch.
   */
  execute(cmd: Command, extra?: (ordinal: number) => readonly BatchOp[], owner: string | undefined = cmd.session?.client, answering = false): CommandOutcome {
    const result = this.#sm.apply(cmd);
    if (!result.ok) return { result, receipt: null };
    if (result.replayed) {
      const first = once(() => this.receiptFor(result.ordinal));
      return {
        result,
        get receipt() {
          return first();
        },
      };
    }
    const index = result.ordinal - this.#offset;
    let receipt: () => Promise<Receipt>;
    if (index < this.#count) {
      // Replayed after a restart: this execution's receipt is already in the log.
      receipt = once(() => this.log.get(index).then((r) => r ?? Promise.reject(new Error(`receipt ${index} missing`))));
    } else {
      if (index !== this.#count) throw new Error(`replica: execution ${result.ordinal} would land at receipt ${index}, log has ${this.#count}`);
      this.#count++;
      const ops: BatchOp[] = [...(extra?.(result.ordinal) ?? [])];
      if (this.#storeOutputs) {
        ops.push({ type: 'put', key: replicaKeys.outputs(index), value: utf8Encode(JSON.stringify(result.outputs)) });
        if (owner !== undefined) ops.push({ type: 'put', key: replicaKeys.owner(index), value: utf8Encode(owner) });
      }
      const entry = { operator_id: cmd.operator_id, inputs: cmd.inputs, outputs: result.outputs };
      const extraOps = ops.length > 0 ? ops : undefined;
      if (this.#eager || answering) {
        const signed = this.log.append(entry, result.timestamp, extraOps);
        this.#lastReceipt = signed.catch(() => undefined);
        receipt = () => signed;
      } else {
        const appended = this.log.appendLazy(entry, result.timestamp, extraOps);
        this.#lastReceipt = appended.catch(() => undefined);
        receipt = once(() => appended.then((i) => this.log.get(i)).then((r) => r ?? Promise.reject(new Error(`receipt ${index} missing`))));
      }
    }
    const e: Execution = {
      ordinal: result.ordinal,
      operator_id: cmd.operator_id,
      outputs: result.outputs,
      owner,
      get receipt() {
        return receipt();
      },
    };
    this.#remember(e);
    for (const l of this.#listeners) l(e);
    return {
      result,
      get receipt() {
        return receipt();
      },
    };
  }

  /** A readonly operator against the current state. */
  query(operator_id: string, inputs: Json, timestamp?: number): ApplyResult {
    return this.#sm.query(operator_id, inputs, timestamp);
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

  /** The outputs of execution `ordinal`: from memory, else from disk when stored, else null. */
  async outputsOf(ordinal: number): Promise<Json | null> {
    const recent = this.#recent.get(ordinal);
    if (recent !== undefined) return recent.outputs;
    if (!this.#storeOutputs) return null;
    const raw = await this.#store.get(replicaKeys.outputs(ordinal - this.#offset));
    return raw === undefined ? null : (JSON.parse(utf8Decode(raw)) as Json);
  }

  /** Who asked for execution `ordinal`: from memory, else from disk when outputs are stored, else undefined. */
  async ownerOf(ordinal: number): Promise<string | undefined> {
    // An execution re-run at startup has no owner in memory; the stored one is the truth.
    const recent = this.#recent.get(ordinal)?.owner;
    if (recent !== undefined) return recent;
    if (!this.#storeOutputs) return undefined;
    const raw = await this.#store.get(replicaKeys.owner(ordinal - this.#offset));
    return raw === undefined ? undefined : utf8Decode(raw);
  }

  /** Execution ordinal of receipt index `index` on this replica. */
  ordinalOf(index: number): number {
    return index + this.#offset;
  }

  onExecution(l: ExecutionListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /**
   * Waits until every receipt appended so far is durable: before the engine's log is compacted
   * past the entries that would rebuild them (or a snapshot replaces this state). Receipts
   * written without fsync get one synced write after them, which makes them durable too.
   */
  async flush(): Promise<void> {
    await this.#lastReceipt;
    if (!this.#syncReceipts) await this.#store.put(OFFSET_KEY, utf8Encode(String(this.#offset)));
  }

  snapshot(): Uint8Array {
    return this.#sm.snapshot();
  }

  beginSnapshot(): SteppedSnapshot {
    return this.#sm.beginSnapshot();
  }

  /** Installs a snapshot received from the leader; executions inside it get no local receipt. */
  async restore(data: Uint8Array): Promise<void> {
    await this.flush();
    const sm = StateMachine.restore(data, this.#registry, this.#machineOptions);
    await this.#jumpTo(sm.ordinal);
    this.#sm = sm;
    this.#recent.clear();
  }

  /**
   * Restores the state machine from the engine's own durable snapshot at startup. A snapshot
   * ahead of this replica's receipts is one installed from the leader just before a crash that
   * came before restore() wrote the offset: the offset is set as restore() would have.
   */
  async load(data: Uint8Array): Promise<void> {
    this.#sm = StateMachine.restore(data, this.#registry, this.#machineOptions);
    await this.#jumpTo(this.#sm.ordinal);
  }

  /** Executions below `ordinal` that this replica never ran get no local receipt. */
  async #jumpTo(ordinal: number): Promise<void> {
    if (ordinal <= this.#offset + this.#count) return;
    this.#offset = ordinal - this.#count;
    await this.#store.put(OFFSET_KEY, utf8Encode(String(this.#offset)));
  }

  #remember(e: Execution): void {
    this.#recent.set(e.ordinal, e);
    if (this.#recent.size > this.#recentMax) {
      const oldest = this.#recent.keys().next().value as number;
      this.#recent.delete(oldest);
    }
  }

  /** Waits for receipts being written, then closes the store. */
  async close(): Promise<void> {
    await this.flush();
    await this.log.close();
  }
}
