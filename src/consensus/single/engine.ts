// `consensus: none`: one node orders commands by arrival and applies them to its replica at
// once. The replica is the only record, so a command, its outputs and its receipt are one
// synced batch (group-committed) before the caller hears back. Invariant: receipt index ==
// execution ordinal (applies run in call order, appends are issued in that order, each
// result is checked). Key layout beside the replica's ('r','i','m','h','o','Qoffset'):
//   'c' u64(ordinal)            → the Command (re-run on open after the snapshot)
//   's'                         → snapshot header {ordinal, chunks, bytes, digest}
//   'S' u64(ordinal) u32(chunk) → snapshot bytes, in chunks below the store's value limit
// On open: load the snapshot, re-run the commands after it (their receipts exist already),
// and sweep what a crash left behind (commands past the log end were never acknowledged).
import { sha256Digest, utf8Decode, utf8Encode, type Ed25519Signer } from '../../crypto/index.ts';
import type { Json } from '../../ico/types.ts';
import { Replica, replicaKeys } from '../../replica/replica.ts';
import { decodeCommand, encodeCommand } from '../../statemachine/command.ts';
import { StateMachineError } from '../../statemachine/errors.ts';
import type { StateMachineOptions } from '../../statemachine/machine.ts';
import type { OperatorRegistry } from '../../statemachine/registry.ts';
import type { ApplyResult, Command } from '../../statemachine/types.ts';
import { prefixedKey, readU64, u64 } from '../../store/keys.ts';
import { MAX_BATCH_OPS, type BatchOp, type Store } from '../../store/types.ts';
import { abortError, InvalidCommandError, onAbort, UnavailableError, type CommandOutcome, type Consensus, type EngineMember, type EngineStatus, type ReadOptions, type SubmitCommand, type SubmitOptions } from '../engine.ts';

/** A state machine snapshot is persisted after every this many executions at least. */
export const SNAPSHOT_EVERY = 1000;
/**
 * ...and no more often than every (last snapshot's bytes / this) executions: a snapshot
 * serializes and writes the whole state, so a fixed interval costs each execution more the
 * larger the state grows; this bounds the snapshot bytes per execution instead (and the
 * commands re-run on open stay proportional to the state, as loading it is).
 */
export const SNAPSHOT_BYTES_PER_EXECUTION = 1024;
/** Snapshot chunk size: well below the store's 4 MiB value limit. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Chunks written per batch (bounds one batch at 8 MiB, under the store's 32 MiB). */
export const SNAPSHOT_CHUNKS_PER_BATCH = 8;
/**
 * Executions the replica keeps in memory: outputs are on disk here, so the window only needs
 * to cover receipts still being written (fewer long-lived objects, less garbage collection).
 */
export const SINGLE_RECENT_EXECUTIONS = 1024;

export class SingleEngineError extends Error {
  override name = 'SingleEngineError';
  readonly code: 'STORAGE_CORRUPT' | 'INVARIANT';
  constructor(code: SingleEngineError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export const singleKeys = {
  command: (ordinal: number): Uint8Array => prefixedKey('c', u64(ordinal)),
  snapshotHeader: (): Uint8Array => prefixedKey('s'),
  snapshotChunk: (ordinal: number, chunk: number): Uint8Array => prefixedKey('S', u64(ordinal), u32(chunk)),
  /** Exclusive upper bound of every key under a one-byte prefix. */
  end: (prefix: string): Uint8Array => prefixedKey(prefix, new Uint8Array(12).fill(0xff)),
};

interface SnapshotHeader {
  ordinal: number;
  chunks: number;
  bytes: number;
  digest: string;
}

function headerProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const h = v as Record<string, unknown>;
  for (const k of ['ordinal', 'chunks', 'bytes'] as const) {
    const n = h[k];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return `${k} must be a non-negative integer`;
  }
  return typeof h['digest'] === 'string' ? null : 'digest must be a string';
}

export interface SingleEngineOptions {
  store: Store;
  signer: Ed25519Signer;
  peerId: string;
  registry?: OperatorRegistry;
  /** Wall clock (ms since epoch); commands get max(now, previous) so receipt times never go back. */
  now?: () => number;
  /** Default SNAPSHOT_EVERY; smaller in tests. */
  snapshotEvery?: number;
  /** The state machine's session limits (must be the same on every open of one store). */
  sessions?: StateMachineOptions;
}

export class SingleEngine implements Consensus<Replica> {
  readonly kind = 'none' as const;
  readonly id: string;
  readonly replica: Replica;
  readonly #store: Store;
  readonly #now: () => number;
  readonly #snapshotEvery: number;
  /** Ordinal the next execution must get (== receipts issued to the log so far). */
  #next: number;
  #lastTimestamp = 0;
  #snapshotTail: Promise<void> = Promise.resolve();
  #snapshotOrdinal: number;
  /** Ordinal whose execution takes the next snapshot. */
  #nextSnapshotAt: number;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Set when persistence failed: memory is then ahead of disk, so nothing more is accepted. */
  #failed: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(opts: SingleEngineOptions, replica: Replica, snapshotOrdinal: number) {
    this.id = opts.peerId;
    this.replica = replica;
    this.#store = opts.store;
    this.#now = opts.now ?? Date.now;
    this.#snapshotEvery = opts.snapshotEvery ?? SNAPSHOT_EVERY;
    this.#next = replica.ordinal;
    this.#snapshotOrdinal = snapshotOrdinal;
    this.#nextSnapshotAt = snapshotOrdinal + this.#snapshotEvery - 1;
  }

  static async open(opts: SingleEngineOptions): Promise<SingleEngine> {
    const { store } = opts;
    if (opts.snapshotEvery !== undefined && (!Number.isSafeInteger(opts.snapshotEvery) || opts.snapshotEvery < 1)) throw new RangeError('snapshotEvery must be a positive integer');
    const replica = await Replica.open({
      store,
      signer: opts.signer,
      peerId: opts.peerId,
      ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
      ...(opts.sessions !== undefined ? { sessions: opts.sessions } : {}),
      syncReceipts: true,
      // It answers every write it applies: signing in the append's batch costs the same one
      // signature and no extra read.
      receiptSigning: 'eager',
      storeOutputs: true,
      recentExecutions: SINGLE_RECENT_EXECUTIONS,
    });
    const log = replica.log;
    let snapshotOrdinal = 0;
    const rawHeader = await store.get(singleKeys.snapshotHeader());
    if (rawHeader !== undefined) {
      const header = parseHeader(rawHeader);
      const bytes = new Uint8Array(header.bytes);
      let off = 0;
      for (let i = 0; i < header.chunks; i++) {
        const chunk = await store.get(singleKeys.snapshotChunk(header.ordinal, i));
        if (chunk === undefined || off + chunk.length > header.bytes) throw new SingleEngineError('STORAGE_CORRUPT', `snapshot ${header.ordinal} chunk ${i} is missing or too long`);
        bytes.set(chunk, off);
        off += chunk.length;
      }
      if (off !== header.bytes || sha256Digest(bytes) !== header.digest) throw new SingleEngineError('STORAGE_CORRUPT', `snapshot ${header.ordinal} does not match its header`);
      await replica.load(bytes);
      if (replica.ordinal !== header.ordinal) throw new SingleEngineError('STORAGE_CORRUPT', `snapshot says ordinal ${replica.ordinal}, header ${header.ordinal}`);
      snapshotOrdinal = header.ordinal;
    }
    if (replica.ordinal > log.size) throw new SingleEngineError('STORAGE_CORRUPT', `snapshot at ${replica.ordinal} is ahead of a receipt log of ${log.size}`);
    // Re-run what the log holds past the snapshot; receipts exist already, none is appended.
    for (let ordinal = replica.ordinal; ordinal < log.size; ordinal++) {
      const raw = await store.get(singleKeys.command(ordinal));
      if (raw === undefined) throw new SingleEngineError('STORAGE_CORRUPT', `command ${ordinal} is missing (the receipt log has ${log.size})`);
      const command = decodeCommand(raw);
      if (command instanceof StateMachineError) throw new SingleEngineError('STORAGE_CORRUPT', `command ${ordinal}: ${command.message}`);
      const { result } = replica.execute(command);
      if (!result.ok || result.replayed || result.ordinal !== ordinal) throw new SingleEngineError('STORAGE_CORRUPT', `command ${ordinal} did not re-execute as ordinal ${ordinal}`);
    }
    await sweep(store, log.size, snapshotOrdinal);
    const engine = new SingleEngine(opts, replica, snapshotOrdinal);
    const last = log.size > 0 ? await log.get(log.size - 1) : undefined;
    if (last !== undefined) engine.#lastTimestamp = Date.parse(last.timestamp);
    return engine;
  }

  async start(): Promise<void> {
    // Nothing to start: one node needs no timers and no peers.
  }

  status(): EngineStatus {
    const ordinal = this.replica.ordinal;
    return { kind: 'none', self: this.id, leader: this.id, term: 0, commitIndex: ordinal, appliedIndex: ordinal };
  }

  members(): EngineMember[] {
    return [{ peerId: this.id, role: 'voter' }];
  }

  submit(cmd: SubmitCommand, opts: SubmitOptions = {}): Promise<CommandOutcome> {
    if (this.#closed) return Promise.reject(new UnavailableError('the engine is closed'));
    if (this.#failed !== null) return Promise.reject(new UnavailableError(`the engine stopped after a storage failure: ${this.#failed.message}`));
    if (opts.signal?.aborted === true) return Promise.reject(abortError(opts.signal, 'command'));
    this.#lastTimestamp = Math.max(this.#now(), this.#lastTimestamp);
    // On one node nothing retries on its own: a command without a key takes no session slot.
    const command: Command =
      cmd.idempotency === undefined
        ? { operator_id: cmd.operator_id, inputs: cmd.inputs, timestamp: this.#lastTimestamp }
        : { operator_id: cmd.operator_id, inputs: cmd.inputs, timestamp: this.#lastTimestamp, session: { client: cmd.idempotency.client, key: cmd.idempotency.key } };
    // Encoded (and so checked) once, before anything runs: the bytes go to disk with the receipt.
    let encoded: Uint8Array;
    try {
      encoded = encodeCommand(command);
    } catch (e) {
      return Promise.reject(e instanceof StateMachineError ? new InvalidCommandError(e.message) : e);
    }
    let executed: CommandOutcome;
    try {
      executed = this.#execute(command, encoded, cmd.idempotency?.client ?? cmd.owner);
    } catch (e) {
      return Promise.reject(e);
    }
    if (executed.receipt === null) return Promise.resolve(executed);
    const durable = executed.receipt.then(() => executed);
    return untilAborted(durable, opts.signal);
  }

  /** Applies now (synchronously, so call order is ordinal order), then persists in order. */
  #execute(command: Command, encoded: Uint8Array, owner: string | undefined): CommandOutcome {
    let snapshot: Uint8Array | null = null;
    const outcome = this.replica.execute(command, (ordinal) => {
      if (ordinal !== this.#next) throw this.#fail(new SingleEngineError('INVARIANT', `execution got ordinal ${ordinal}, expected ${this.#next}`));
      this.#next++;
      if (ordinal >= this.#nextSnapshotAt) {
        const taken = this.replica.snapshot();
        snapshot = taken;
        this.#nextSnapshotAt = ordinal + Math.max(this.#snapshotEvery, Math.ceil(taken.length / SNAPSHOT_BYTES_PER_EXECUTION));
      }
      return [{ type: 'put', key: singleKeys.command(ordinal), value: encoded }];
    }, owner);
    const r = outcome.result;
    if (!r.ok || r.replayed || outcome.receipt === null) return outcome;
    const ordinal = r.ordinal;
    const taken: Uint8Array | null = snapshot;
    const receipt = outcome.receipt.then(
      (rec) => {
        if (rec.index !== ordinal) throw this.#fail(new SingleEngineError('INVARIANT', `receipt index ${rec.index} for ordinal ${ordinal}`));
        if (taken !== null) this.#saveSnapshot(ordinal + 1, taken);
        return rec;
      },
      (e: unknown) => {
        throw this.#fail(e);
      },
    );
    this.#inflight.add(receipt);
    receipt.then(
      () => this.#inflight.delete(receipt),
      () => this.#inflight.delete(receipt),
    );
    return { result: r, receipt };
  }

  #fail(e: unknown): Error {
    const error = e instanceof Error ? e : new Error(String(e));
    this.#failed ??= error;
    return new UnavailableError(`storage failed: ${error.message}`);
  }

  read(operator_id: string, inputs: Json, opts: ReadOptions = {}): Promise<ApplyResult> {
    if (this.#closed) return Promise.reject(new UnavailableError('the engine is closed'));
    if (opts.signal?.aborted === true) return Promise.reject(abortError(opts.signal, 'read'));
    // One node: its state is the committed state, so a local read is linearizable too.
    return Promise.resolve(this.replica.query(operator_id, inputs, this.#now()));
  }

  #saveSnapshot(ordinal: number, bytes: Uint8Array): void {
    this.#snapshotTail = this.#snapshotTail
      .then(async () => {
        if (this.#failed !== null || ordinal <= this.#snapshotOrdinal) return;
        const chunks = Math.ceil(bytes.length / SNAPSHOT_CHUNK_BYTES);
        for (let first = 0; first < chunks; first += SNAPSHOT_CHUNKS_PER_BATCH) {
          const ops: BatchOp[] = [];
          for (let i = first; i < Math.min(chunks, first + SNAPSHOT_CHUNKS_PER_BATCH); i++) {
            ops.push({ type: 'put', key: singleKeys.snapshotChunk(ordinal, i), value: bytes.subarray(i * SNAPSHOT_CHUNK_BYTES, (i + 1) * SNAPSHOT_CHUNK_BYTES) });
          }
          await this.#store.batch(ops);
        }
        const header: SnapshotHeader = { ordinal, chunks, bytes: bytes.length, digest: sha256Digest(bytes) };
        // The header switches atomically; the old snapshot and older commands go after it (a
        // crash in between leaves only garbage that open() sweeps).
        await this.#store.put(singleKeys.snapshotHeader(), utf8Encode(JSON.stringify(header)));
        const previous = this.#snapshotOrdinal;
        this.#snapshotOrdinal = ordinal;
        await sweepBelow(this.#store, previous, ordinal);
      })
      .catch(() => {
        // Not fatal: the commands since the last good snapshot stay on disk and are re-run on open.
      });
  }

  /** Waits for executions in flight and snapshot writes, then closes the replica and its store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await Promise.allSettled([...this.#inflight]);
      await this.#snapshotTail;
      await this.replica.close();
    })();
    return this.#closing;
  }
}

function parseHeader(raw: Uint8Array): SnapshotHeader {
  let v: unknown;
  try {
    v = JSON.parse(utf8Decode(raw));
  } catch {
    throw new SingleEngineError('STORAGE_CORRUPT', 'snapshot header is not JSON');
  }
  const problem = headerProblem(v);
  if (problem !== null) throw new SingleEngineError('STORAGE_CORRUPT', `snapshot header: ${problem}`);
  return v as SnapshotHeader;
}

async function deleteAll(store: Store, doomed: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < doomed.length; i += MAX_BATCH_OPS) await store.batch(doomed.slice(i, i + MAX_BATCH_OPS).map((key): BatchOp => ({ type: 'del', key })));
}

/** Deletes what a crash can leave behind: commands/outputs past the log, stale snapshot chunks, commands below the snapshot. */
async function sweep(store: Store, logSize: number, snapshotOrdinal: number): Promise<void> {
  const doomed: Uint8Array[] = [];
  const collect = async (gte: Uint8Array, lt: Uint8Array, keep?: (key: Uint8Array) => boolean): Promise<void> => {
    for await (const [key] of store.range({ gte, lt })) if (keep === undefined || !keep(key)) doomed.push(key);
  };
  await collect(singleKeys.command(logSize), singleKeys.end('c'));
  await collect(replicaKeys.outputs(logSize), singleKeys.end('o'));
  await collect(singleKeys.command(0), singleKeys.command(snapshotOrdinal));
  await collect(singleKeys.snapshotChunk(0, 0), singleKeys.end('S'), (key) => readU64(key, 1) === snapshotOrdinal);
  await deleteAll(store, doomed);
}

async function sweepBelow(store: Store, previousSnapshot: number, snapshot: number): Promise<void> {
  const doomed: Uint8Array[] = [];
  for await (const [key] of store.range({ gte: singleKeys.snapshotChunk(previousSnapshot, 0), lt: singleKeys.snapshotChunk(previousSnapshot + 1, 0) })) doomed.push(key);
  for await (const [key] of store.range({ gte: singleKeys.command(previousSnapshot), lt: singleKeys.command(snapshot) })) doomed.push(key);
  await deleteAll(store, doomed);
}

/** Settles with `work`, or rejects when `signal` aborts first (the work itself goes on). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const detach = onAbort(signal, () => reject(abortError(signal, 'command')));
    work.then(
      (v) => {
        detach();
        resolve(v);
      },
      (e: unknown) => {
        detach();
        reject(e);
      },
    );
  });
}
