// The API backend for `consensus: none`: one node applies commands to its StateMachine
// directly and appends one signed receipt per execution. Invariant: receipt index ==
// execution ordinal (applies run in call order, appends are issued in that same order and
// each result is checked). Key layout beside the ReceiptLog's ('r','i','m','h'):
//   'c' u64(ordinal) → encoded Command (replayed on open after the snapshot)
//   'o' u64(index)   → outputs JSON (for stream())
//   's'              → snapshot header {ordinal, chunks, bytes, digest}
//   'S' u64(ordinal) u32(chunk) → snapshot bytes, in chunks below the store's value limit
// 'c' and 'o' are durable before the receipt's append starts, so on open every receipt has
// its command; commands past the log's end were never acknowledged and are dropped.
import { sha256Digest, utf8Decode, utf8Encode, type Ed25519Signer } from '../../src/crypto/index.ts';
import type { Json } from '../../src/ico/types.ts';
import { ReceiptLog, type InclusionProof, type SignedTreeHead } from '../../src/receipts/log.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import { decodeCommand, encodeCommand, MAX_SESSION_FIELD_CHARS } from '../../src/statemachine/command.ts';
import { StateMachineError } from '../../src/statemachine/errors.ts';
import { StateMachine } from '../../src/statemachine/machine.ts';
import type { OperatorRegistry } from '../../src/statemachine/registry.ts';
import type { Command, OperatorInfo } from '../../src/statemachine/types.ts';
import { MAX_BATCH_OPS, type BatchOp, type Store } from '../../src/store/types.ts';
import { prefixedKey, readU64, u64 } from '../../src/store/keys.ts';
import { ApiError, type ApiBackend, type ClusterStatus, type ExecuteRequest, type ExecuteResult, type ResultRecord } from './backend.ts';

export const DEFAULT_TIMEOUT_MS = 5000;
export const MAX_TIMEOUT_MS = 60_000;
/** A state machine snapshot is persisted after every this many executions. */
export const SNAPSHOT_EVERY = 1000;
/** Snapshot chunk size: well below the store's 4 MiB value limit. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Chunks written per batch (bounds one batch at 8 MiB, under the store's 32 MiB). */
export const SNAPSHOT_CHUNKS_PER_BATCH = 8;
export const DEFAULT_MAX_BUFFERED = 1024;
/** Most receipts one receipts() call returns. */
export const MAX_RECEIPTS_PAGE = 1000;

export class LocalBackendError extends Error {
  override name = 'LocalBackendError';
  readonly code: 'STORAGE_CORRUPT' | 'INVARIANT';
  constructor(code: LocalBackendError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

const prefixed = prefixedKey;

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export const localKeys = {
  command: (ordinal: number): Uint8Array => prefixed('c', u64(ordinal)),
  outputs: (index: number): Uint8Array => prefixed('o', u64(index)),
  snapshotHeader: (): Uint8Array => prefixed('s'),
  snapshotChunk: (ordinal: number, chunk: number): Uint8Array => prefixed('S', u64(ordinal), u32(chunk)),
  /** Exclusive upper bound of every key under a one-byte prefix. */
  end: (prefix: string): Uint8Array => prefixed(prefix, new Uint8Array(12).fill(0xff)),
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

export interface LocalBackendOptions {
  store: Store;
  signer: Ed25519Signer;
  peerId: string;
  registry?: OperatorRegistry;
  /** Wall clock (ms since epoch); commands get max(now, previous) so receipt times never go back. */
  now?: () => number;
  /** Default SNAPSHOT_EVERY; smaller in tests. */
  snapshotEvery?: number;
  /** The state machine's session bound (must be the same on every open of one store). */
  maxSessions?: number;
}

interface Subscriber {
  buffer: ResultRecord[];
  readonly max: number;
  overflow: boolean;
  wake: (() => void) | null;
}

function apiFromApply(code: string, message: string, path: string | undefined): ApiError {
  switch (code) {
    case 'UNKNOWN_OPERATOR':
    case 'INVALID_INPUT':
    case 'OPERATOR_FAILED':
      return new ApiError(code, message, path === undefined ? {} : { path });
    default:
      return new ApiError('INVALID_REQUEST', message);
  }
}

function sessionFieldOk(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_SESSION_FIELD_CHARS && !v.includes('\u0000');
}

export class LocalBackend implements ApiBackend {
  readonly consensus = 'none' as const;
  readonly peerId: string;
  readonly #store: Store;
  readonly #log: ReceiptLog;
  readonly #machine: StateMachine;
  readonly #now: () => number;
  readonly #snapshotEvery: number;
  /** Ordinal the next execution must get (== receipts issued to the log so far). */
  #next: number;
  /** Receipts [0, #durable) are durable and have been announced to subscribers. */
  #durable: number;
  #lastTimestamp = 0;
  /** Appends are issued strictly one after another, in ordinal order. */
  #snapshotTail: Promise<void> = Promise.resolve();
  #snapshotOrdinal: number;
  readonly #inflight = new Map<number, Promise<Receipt>>();
  readonly #completed = new Map<number, ResultRecord>();
  readonly #subscribers = new Set<Subscriber>();
  /** Set when persistence failed: memory is then ahead of disk, so nothing more is accepted. */
  #failed: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(opts: LocalBackendOptions, log: ReceiptLog, machine: StateMachine, snapshotOrdinal: number) {
    this.peerId = opts.peerId;
    this.#store = opts.store;
    this.#log = log;
    this.#machine = machine;
    this.#now = opts.now ?? Date.now;
    this.#snapshotEvery = opts.snapshotEvery ?? SNAPSHOT_EVERY;
    this.#next = machine.ordinal;
    this.#durable = machine.ordinal;
    this.#snapshotOrdinal = snapshotOrdinal;
  }

  static async open(opts: LocalBackendOptions): Promise<LocalBackend> {
    const { store } = opts;
    if (opts.snapshotEvery !== undefined && (!Number.isSafeInteger(opts.snapshotEvery) || opts.snapshotEvery < 1)) throw new RangeError('snapshotEvery must be a positive integer');
    const log = await ReceiptLog.open(store, { signer: opts.signer, peerId: opts.peerId });
    const machineOpts = opts.maxSessions === undefined ? {} : { maxSessions: opts.maxSessions };
    let machine: StateMachine;
    let snapshotOrdinal = 0;
    const rawHeader = await store.get(localKeys.snapshotHeader());
    if (rawHeader === undefined) {
      machine = new StateMachine(opts.registry, machineOpts);
    } else {
      const header = LocalBackend.#parseHeader(rawHeader);
      const bytes = new Uint8Array(header.bytes);
      let off = 0;
      for (let i = 0; i < header.chunks; i++) {
        const chunk = await store.get(localKeys.snapshotChunk(header.ordinal, i));
        if (chunk === undefined || off + chunk.length > header.bytes) throw new LocalBackendError('STORAGE_CORRUPT', `snapshot ${header.ordinal} chunk ${i} is missing or too long`);
        bytes.set(chunk, off);
        off += chunk.length;
      }
      if (off !== header.bytes || sha256Digest(bytes) !== header.digest) throw new LocalBackendError('STORAGE_CORRUPT', `snapshot ${header.ordinal} does not match its header`);
      machine = StateMachine.restore(bytes, opts.registry, machineOpts);
      if (machine.ordinal !== header.ordinal) throw new LocalBackendError('STORAGE_CORRUPT', `snapshot says ordinal ${machine.ordinal}, header ${header.ordinal}`);
      snapshotOrdinal = header.ordinal;
    }
    if (machine.ordinal > log.size) throw new LocalBackendError('STORAGE_CORRUPT', `snapshot at ${machine.ordinal} is ahead of a receipt log of ${log.size}`);
    // Re-run what the log holds past the snapshot; receipts exist already, none is appended.
    for (let ordinal = machine.ordinal; ordinal < log.size; ordinal++) {
      const raw = await store.get(localKeys.command(ordinal));
      if (raw === undefined) throw new LocalBackendError('STORAGE_CORRUPT', `command ${ordinal} is missing (the receipt log has ${log.size})`);
      const command = decodeCommand(raw);
      if (command instanceof StateMachineError) throw new LocalBackendError('STORAGE_CORRUPT', `command ${ordinal}: ${command.message}`);
      const result = machine.apply(command);
      if (!result.ok || result.replayed || result.ordinal !== ordinal) throw new LocalBackendError('STORAGE_CORRUPT', `command ${ordinal} did not re-execute as ordinal ${ordinal}`);
    }
    await LocalBackend.#sweep(store, log.size, snapshotOrdinal);
    const backend = new LocalBackend(opts, log, machine, snapshotOrdinal);
    const last = log.size > 0 ? await log.get(log.size - 1) : undefined;
    if (last !== undefined) backend.#lastTimestamp = Date.parse(last.timestamp);
    return backend;
  }

  static #parseHeader(raw: Uint8Array): SnapshotHeader {
    let v: unknown;
    try {
      v = JSON.parse(utf8Decode(raw));
    } catch {
      throw new LocalBackendError('STORAGE_CORRUPT', 'snapshot header is not JSON');
    }
    const problem = headerProblem(v);
    if (problem !== null) throw new LocalBackendError('STORAGE_CORRUPT', `snapshot header: ${problem}`);
    return v as SnapshotHeader;
  }

  /** Deletes what a crash can leave behind: commands/outputs past the log, stale snapshot chunks, commands below the snapshot. */
  static async #sweep(store: Store, logSize: number, snapshotOrdinal: number): Promise<void> {
    const doomed: Uint8Array[] = [];
    const collect = async (gte: Uint8Array, lt: Uint8Array, keep?: (key: Uint8Array) => boolean): Promise<void> => {
      for await (const [key] of store.range({ gte, lt })) if (keep === undefined || !keep(key)) doomed.push(key);
    };
    await collect(localKeys.command(logSize), localKeys.end('c'));
    await collect(localKeys.outputs(logSize), localKeys.end('o'));
    await collect(localKeys.command(0), localKeys.command(snapshotOrdinal));
    await collect(localKeys.snapshotChunk(0, 0), localKeys.end('S'), (key) => readU64(key, 1) === snapshotOrdinal);
    for (let i = 0; i < doomed.length; i += MAX_BATCH_OPS) {
      await store.batch(doomed.slice(i, i + MAX_BATCH_OPS).map((key): BatchOp => ({ type: 'del', key })));
    }
  }

  operators(): OperatorInfo[] {
    return this.#machine.registry.list();
  }

  async execute(req: ExecuteRequest): Promise<ExecuteResult> {
    const started = performance.now();
    const options = req.options ?? {};
    if (this.#closed) throw new ApiError('UNAVAILABLE', 'the backend is closed');
    if (this.#failed !== null) throw new ApiError('UNAVAILABLE', `the backend stopped after a storage failure: ${this.#failed.message}`);
    if (options.consensus !== undefined && options.consensus !== 'none') throw new ApiError('UNSUPPORTED', `consensus '${String(options.consensus).slice(0, 20)}' does not run on this node (it runs 'none')`);
    const timeout = options.timeout_ms ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) throw new ApiError('INVALID_REQUEST', `timeout_ms must be an integer in 1..${MAX_TIMEOUT_MS}`);
    if (options.read !== undefined && options.read !== 'log' && options.read !== 'linearizable') throw new ApiError('INVALID_REQUEST', "read must be 'log' or 'linearizable'");
    const key = options.idempotency_key;
    if (key !== undefined && !sessionFieldOk(key)) throw new ApiError('INVALID_REQUEST', `idempotency_key must be 1..${MAX_SESSION_FIELD_CHARS} characters without NUL`);
    if (key !== undefined && !sessionFieldOk(req.principal)) throw new ApiError('INVALID_REQUEST', 'the principal cannot scope an idempotency key');
    const invalid = this.#machine.registry.validate(req.operator_id, req.inputs);
    if (invalid !== null) throw new ApiError(invalid.code, invalid.message, { path: invalid.path });
    const elapsed = (): number => Math.round((performance.now() - started) * 1000) / 1000;

    if (options.read === 'linearizable') {
      // One node: its state is the committed state, so a local read is linearizable.
      if (this.#machine.registry.get(req.operator_id)?.readonly !== true) throw new ApiError('INVALID_REQUEST', `read 'linearizable' is only for readonly operators; ${req.operator_id} writes`);
      const r = this.#machine.query(req.operator_id, req.inputs, this.#now());
      if (!r.ok) throw apiFromApply(r.code, r.message, r.path);
      return { outputs: r.outputs, receipt: null, execution_time_ms: elapsed(), replayed: false };
    }

    // Without an idempotency key there is nothing to retry against on one node, so no session
    // entry is spent (one per request would evict callers' real keys from the bounded table).
    this.#lastTimestamp = Math.max(this.#now(), this.#lastTimestamp);
    const command: Command = key === undefined
      ? { operator_id: req.operator_id, inputs: req.inputs, timestamp: this.#lastTimestamp }
      : { operator_id: req.operator_id, inputs: req.inputs, timestamp: this.#lastTimestamp, session: { client: req.principal, key } };
    const work = this.#execute(command);
    const { outputs, receipt, replayed } = await withDeadline(work, timeout);
    return { outputs, receipt, execution_time_ms: elapsed(), replayed };
  }

  /** Applies now (synchronously, so call order is ordinal order), then persists in order. */
  #execute(command: Command): Promise<{ outputs: Json; receipt: Receipt; replayed: boolean }> {
    const r = this.#machine.apply(command);
    if (!r.ok) return Promise.reject(apiFromApply(r.code, r.message, r.path));
    if (r.replayed) return this.#receiptAt(r.ordinal).then((receipt) => ({ outputs: r.outputs, receipt, replayed: true }));
    if (r.ordinal !== this.#next) throw this.#fail(new LocalBackendError('INVARIANT', `execution got ordinal ${r.ordinal}, expected ${this.#next}`));
    this.#next++;
    const snapshot = (r.ordinal + 1) % this.#snapshotEvery === 0 ? this.#machine.snapshot() : null;
    const receipt = this.#persist(r.ordinal, command, r.outputs);
    this.#inflight.set(r.ordinal, receipt);
    const done = receipt.then(
      (rec) => {
        this.#inflight.delete(r.ordinal);
        this.#announce({ index: r.ordinal, operator_id: command.operator_id, outputs: r.outputs, receipt: rec });
        if (snapshot !== null) this.#saveSnapshot(r.ordinal + 1, snapshot);
        return { outputs: r.outputs, receipt: rec, replayed: false };
      },
      (e: unknown) => {
        this.#inflight.delete(r.ordinal);
        throw this.#fail(e);
      },
    );
    return done;
  }

  #persist(ordinal: number, command: Command, outputs: Json): Promise<Receipt> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    // The command and its outputs ride in the receipt's own batch: one atomic, synced write per
    // group, and appends are issued in call order (= ordinal order) with no chain to wait on.
    const receipt = this.#log.append({ operator_id: command.operator_id, inputs: command.inputs, outputs }, command.timestamp, [
      { type: 'put', key: localKeys.command(ordinal), value: encodeCommand(command) },
      { type: 'put', key: localKeys.outputs(ordinal), value: utf8Encode(JSON.stringify(outputs)) },
    ]);
    return receipt.then((r) => {
      if (r.index !== ordinal) throw new LocalBackendError('INVARIANT', `receipt index ${r.index} for ordinal ${ordinal}`);
      return r;
    });
  }

  #fail(e: unknown): Error {
    const error = e instanceof Error ? e : new Error(String(e));
    this.#failed ??= error;
    for (const s of this.#subscribers) s.wake?.();
    return e instanceof ApiError ? e : new ApiError('UNAVAILABLE', `storage failed: ${error.message}`);
  }

  async #receiptAt(ordinal: number): Promise<Receipt> {
    const pending = this.#inflight.get(ordinal);
    if (pending !== undefined) return pending;
    const receipt = await this.#log.get(ordinal);
    if (receipt === undefined) throw this.#fail(new LocalBackendError('INVARIANT', `no receipt at ordinal ${ordinal}`));
    return receipt;
  }

  /** Delivers durable records to live subscribers strictly in index order. */
  #announce(record: ResultRecord): void {
    this.#completed.set(record.index, record);
    for (let next = this.#completed.get(this.#durable); next !== undefined; next = this.#completed.get(this.#durable)) {
      this.#completed.delete(this.#durable);
      this.#durable++;
      for (const s of this.#subscribers) {
        if (s.overflow) continue;
        if (s.buffer.length >= s.max) {
          // A consumer this far behind is caught up from storage instead.
          s.overflow = true;
          s.buffer = [];
        } else {
          s.buffer.push(next);
        }
        s.wake?.();
      }
    }
  }

  #saveSnapshot(ordinal: number, bytes: Uint8Array): void {
    this.#snapshotTail = this.#snapshotTail.then(async () => {
      if (this.#failed !== null || ordinal <= this.#snapshotOrdinal) return;
      const chunks = Math.ceil(bytes.length / SNAPSHOT_CHUNK_BYTES);
      for (let first = 0; first < chunks; first += SNAPSHOT_CHUNKS_PER_BATCH) {
        const ops: BatchOp[] = [];
        for (let i = first; i < Math.min(chunks, first + SNAPSHOT_CHUNKS_PER_BATCH); i++) {
          ops.push({ type: 'put', key: localKeys.snapshotChunk(ordinal, i), value: bytes.subarray(i * SNAPSHOT_CHUNK_BYTES, (i + 1) * SNAPSHOT_CHUNK_BYTES) });
        }
        await this.#store.batch(ops);
      }
      const header: SnapshotHeader = { ordinal, chunks, bytes: bytes.length, digest: sha256Digest(bytes) };
      // The header switches atomically; the old snapshot and older commands go after it (a crash in between leaves only garbage that open() sweeps).
      await this.#store.put(localKeys.snapshotHeader(), utf8Encode(JSON.stringify(header)));
      const previous = this.#snapshotOrdinal;
      this.#snapshotOrdinal = ordinal;
      await LocalBackend.#sweepBelow(this.#store, previous, ordinal);
    }).catch(() => {
      // Not fatal: the commands since the last good snapshot stay on disk and are replayed on open.
    });
  }

  static async #sweepBelow(store: Store, previousSnapshot: number, snapshot: number): Promise<void> {
    const doomed: Uint8Array[] = [];
    for await (const [key] of store.range({ gte: localKeys.snapshotChunk(previousSnapshot, 0), lt: localKeys.snapshotChunk(previousSnapshot + 1, 0) })) doomed.push(key);
    for await (const [key] of store.range({ gte: localKeys.command(previousSnapshot), lt: localKeys.command(snapshot) })) doomed.push(key);
    for (let i = 0; i < doomed.length; i += MAX_BATCH_OPS) await store.batch(doomed.slice(i, i + MAX_BATCH_OPS).map((key): BatchOp => ({ type: 'del', key })));
  }

  async receipt(id: string): Promise<{ receipt: Receipt; proof: InclusionProof; tree_head: SignedTreeHead } | undefined> {
    if (typeof id !== 'string' || id.length > 200) return undefined;
    const receipt = await this.#log.getById(id);
    if (receipt === undefined) return undefined;
    const tree_head = this.#log.signedTreeHead(this.#now());
    const proof = await this.#log.inclusionProof(id, tree_head.size);
    return { receipt, proof, tree_head };
  }

  async receipts(from: number, limit: number): Promise<Receipt[]> {
    if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('INVALID_REQUEST', 'from must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RECEIPTS_PAGE) throw new ApiError('INVALID_REQUEST', `limit must be an integer in 1..${MAX_RECEIPTS_PAGE}`);
    const out: Receipt[] = [];
    for await (const r of this.#log.iterate(from)) {
      out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }

  treeHead(): SignedTreeHead {
    return this.#log.signedTreeHead(this.#now());
  }

  cluster(): ClusterStatus {
    const ordinal = this.#machine.ordinal;
    return { consensus: 'none', self: this.peerId, leader: this.peerId, term: 0, commit_index: ordinal, applied_index: ordinal, members: [{ peerId: this.peerId, role: 'voter' }], peers: 0 };
  }

  async *stream(from: number, filter: readonly string[], signal: AbortSignal, maxBuffered: number = DEFAULT_MAX_BUFFERED): AsyncIterable<ResultRecord> {
    if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('INVALID_REQUEST', 'from must be a non-negative integer');
    if (!Number.isSafeInteger(maxBuffered) || maxBuffered < 1) throw new ApiError('INVALID_REQUEST', 'maxBuffered must be a positive integer');
    const wanted = filter.length === 0 ? null : new Set(filter);
    const live = (): boolean => !signal.aborted && !this.#closed && this.#failed === null;
    let cursor = from;
    while (live()) {
      // From storage: the consumer sets the pace, nothing is buffered.
      if (cursor < this.#durable) {
        for await (const receipt of this.#log.iterate(cursor)) {
          if (!live()) return;
          if (receipt.index !== cursor) throw new LocalBackendError('STORAGE_CORRUPT', `receipt ${receipt.index} found where ${cursor} belongs`);
          cursor++;
          if (wanted !== null && !wanted.has(receipt.operation.operator_id)) continue;
          yield { index: receipt.index, operator_id: receipt.operation.operator_id, outputs: await this.#outputsAt(receipt.index), receipt };
        }
        continue;
      }
      // Live: records arrive from #announce into a bounded buffer.
      const sub: Subscriber = { buffer: [], max: maxBuffered, overflow: false, wake: null };
      this.#subscribers.add(sub);
      const onAbort = (): void => sub.wake?.();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        // Anything that became durable before we subscribed is read from storage.
        if (cursor < this.#durable) continue;
        while (live()) {
          const record = sub.buffer.shift();
          if (record !== undefined) {
            if (record.index < cursor) continue;
            if (record.index > cursor) break;
            cursor++;
            if (wanted === null || wanted.has(record.operator_id)) yield record;
            continue;
          }
          if (sub.overflow) break;
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
          });
          sub.wake = null;
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        this.#subscribers.delete(sub);
      }
    }
  }

  async #outputsAt(index: number): Promise<Json | null> {
    const raw = await this.#store.get(localKeys.outputs(index));
    return raw === undefined ? null : (JSON.parse(utf8Decode(raw)) as Json);
  }

  /** Waits for executions in flight and snapshot writes, ends streams, closes the store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const s of this.#subscribers) s.wake?.();
      await Promise.allSettled([...this.#inflight.values()]);
      await this.#snapshotTail;
      await this.#log.close();
    })();
    return this.#closing;
  }
}

/** Races `work` against a timer; the work itself goes on (a late result is still persisted). */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApiError('DEADLINE_EXCEEDED', `execution did not finish within ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
