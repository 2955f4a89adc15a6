// The relay's one API backend, over any consensus engine (none, raft, pbft): it checks a
// request at the edge (options, idempotency key, inputs against the operator's schema), runs
// it through the engine, and answers with what this relay's own replica computed and signed.
// Receipts, proofs, tree heads and result streams come from that replica. Engine errors map to
// API codes in one table, ENGINE_ERRORS.
import type { Json } from '../../src/ico/types.ts';
import { ConsensusError, type Consensus, type ConsensusErrorCode } from '../../src/consensus/engine.ts';
import type { PbftGateway } from '../../src/consensus/pbft/runtime/gateway.ts';
import type { Replica } from '../../src/replica/replica.ts';
import type { InclusionProof, SignedTreeHead } from '../../src/receipts/log.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import { MAX_SESSION_FIELD_CHARS } from '../../src/statemachine/command.ts';
import type { ApplyResult, OperatorInfo } from '../../src/statemachine/types.ts';
import { ApiError, type ApiBackend, type ApiErrorCode, type ClusterStatus, type ConsensusKind, type ExecuteRequest, type ExecuteResult, type OutputViewer, type ResultRecord } from './backend.ts';
import { streamReceipts } from './result-stream.ts';
import { DEFAULT_TIMEOUT_MS, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_LIST_LIMIT, MAX_TIMEOUT_MS } from './schemas.ts';

/** How each engine error reaches an API caller (retryable ones become 503/504). */
export const ENGINE_ERRORS: Readonly<Record<ConsensusErrorCode, ApiErrorCode>> = {
  UNAVAILABLE: 'UNAVAILABLE',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  // Only the caller itself cancels; if it still listens, asking again is the right advice.
  CANCELLED: 'UNAVAILABLE',
  INVALID_COMMAND: 'INVALID_REQUEST',
};

/** Longest receipt id looked up (ids are `receipt_` + 64 hex). */
const MAX_RECEIPT_ID_CHARS = 200;

export function applyError(r: Extract<ApplyResult, { ok: false }>): ApiError {
  switch (r.code) {
    case 'UNKNOWN_OPERATOR':
      return new ApiError('UNKNOWN_OPERATOR', r.message);
    case 'INVALID_INPUT':
      return new ApiError('INVALID_INPUT', r.message, r.path !== undefined ? { path: r.path } : {});
    case 'OPERATOR_FAILED':
      return new ApiError('OPERATOR_FAILED', r.message);
    case 'INVALID_COMMAND':
      return new ApiError('INVALID_REQUEST', r.message);
  }
}

export function checkTimeout(t: unknown): number {
  if (t === undefined) return DEFAULT_TIMEOUT_MS;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1 || t > MAX_TIMEOUT_MS) throw new ApiError('INVALID_REQUEST', `options.timeout_ms must be an integer in [1, ${MAX_TIMEOUT_MS}]`, { path: '/options/timeout_ms' });
  return t;
}

function sessionFieldOk(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max && !v.includes('\u0000');
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}

export interface EngineBackendOptions {
  engine: Consensus<Replica>;
  /** Established peer connections, for the cluster view (one node has none). */
  peers?: () => number;
  /** Wall clock for tree-head timestamps (ms since epoch). */
  now?: () => number;
  /** The cluster's PBFT group, reached as a client: `options.consensus: 'pbft'` goes there. */
  pbft?: PbftGateway;
}

export class EngineBackend implements ApiBackend {
  readonly #engine: Consensus<Replica>;
  readonly #peers: () => number;
  readonly #now: () => number;
  readonly #pbft: PbftGateway | undefined;
  /** Aborted on close: ends every live stream. */
  readonly #closed = new AbortController();
  #closing: Promise<void> | null = null;

  constructor(opts: EngineBackendOptions) {
    this.#engine = opts.engine;
    this.#peers = opts.peers ?? (() => 0);
    this.#now = opts.now ?? Date.now;
    this.#pbft = opts.pbft;
  }

  get consensus(): ConsensusKind {
    return this.#engine.kind;
  }

  get engine(): Consensus<Replica> {
    return this.#engine;
  }

  operators(): OperatorInfo[] {
    return this.#engine.replica.registry.list();
  }

  async execute(req: ExecuteRequest): Promise<ExecuteResult> {
    const started = performance.now();
    const options = req.options ?? {};
    if (this.#closed.signal.aborted) throw new ApiError('UNAVAILABLE', 'the backend is closed');
    const kind = this.#engine.kind;
    const viaPbft = options.consensus === 'pbft' && kind !== 'pbft' && this.#pbft !== undefined;
    if (options.consensus !== undefined && options.consensus !== kind && !viaPbft) {
      throw new ApiError('UNSUPPORTED', `consensus '${String(options.consensus).slice(0, 20)}' does not run here (this relay runs '${kind}')`, { path: '/options/consensus' });
    }
    const timeout = checkTimeout(options.timeout_ms);
    if (options.read !== undefined && options.read !== 'log' && options.read !== 'linearizable') throw new ApiError('INVALID_REQUEST', "options.read must be 'log' or 'linearizable'", { path: '/options/read' });
    const key = options.idempotency_key;
    if (key !== undefined && !sessionFieldOk(key, MAX_IDEMPOTENCY_KEY_LENGTH)) throw new ApiError('INVALID_REQUEST', `options.idempotency_key must be 1..${MAX_IDEMPOTENCY_KEY_LENGTH} characters without NUL`, { path: '/options/idempotency_key' });
    if (key !== undefined && !sessionFieldOk(req.principal, MAX_SESSION_FIELD_CHARS)) throw new ApiError('INVALID_REQUEST', 'the principal cannot scope an idempotency key');
    const registry = this.#engine.replica.registry;
    const problem = registry.validate(req.operator_id, req.inputs);
    if (problem !== null) throw new ApiError(problem.code, problem.message, { path: problem.path });
    // A cleared timer rather than AbortSignal.timeout: that one costs 3x as much and its timer
    // lives on for the whole timeout after the answer (thousands pending at full load).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`timeout_ms ${timeout} passed`, 'TimeoutError')), timeout);
    const signal = deadline.signal;
    try {
      if (viaPbft && this.#pbft !== undefined) return await this.#executePbft(this.#pbft, req, key, registry.get(req.operator_id)?.readonly === true && options.read === 'linearizable', signal, started);
      if (options.read === 'linearizable') {
        if (registry.get(req.operator_id)?.readonly !== true) throw new ApiError('INVALID_REQUEST', `options.read 'linearizable' needs a readonly operator; '${req.operator_id}' writes`, { path: '/options/read' });
        const r = await this.#engine.read(req.operator_id, req.inputs, { consistency: 'linearizable', signal });
        if (!r.ok) throw applyError(r);
        return { outputs: r.outputs, receipt: null, execution_time_ms: elapsed(started), replayed: false };
      }
      const idempotency = key === undefined ? undefined : { client: req.principal, key };
      // The owner sees the outputs in StreamResults; a principal that cannot be one is left out (audit only).
      const owner = sessionFieldOk(req.principal, MAX_SESSION_FIELD_CHARS) ? { owner: req.principal } : {};
      const outcome = await this.#engine.submit({ operator_id: req.operator_id, inputs: req.inputs, ...owner, ...(idempotency !== undefined ? { idempotency } : {}) }, { signal });
      if (!outcome.result.ok) throw applyError(outcome.result);
      const receipt = outcome.receipt === null ? null : await outcome.receipt;
      return { outputs: outcome.result.outputs, receipt, execution_time_ms: elapsed(started), replayed: outcome.result.replayed };
    } catch (e) {
      if (e instanceof ApiError) throw e;
      // A retryable engine error means the command may still apply later: a retry with the
      // same idempotency key returns it, executed once, so nothing is ever half-applied.
      if (e instanceof ConsensusError) throw new ApiError(ENGINE_ERRORS[e.code], e.message);
      throw new ApiError('UNAVAILABLE', `this replica cannot answer: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Through the PBFT group as its client: the certified outputs, a replica's receipt the certificate vouches for, and the certificate. */
  async #executePbft(pbft: PbftGateway, req: ExecuteRequest, key: string | undefined, read: boolean, signal: AbortSignal, started: number): Promise<ExecuteResult> {
    if (read) {
      const r = await pbft.read(req.operator_id, req.inputs, { signal });
      if (!r.result.ok) throw applyError(r.result);
      return { outputs: r.result.outputs, receipt: null, execution_time_ms: elapsed(started), replayed: false, certificate: r.certificate };
    }
    const idempotency = key === undefined ? undefined : { client: req.principal, key };
    const o = await pbft.submit({ operator_id: req.operator_id, inputs: req.inputs, ...(idempotency !== undefined ? { idempotency } : {}) }, { signal });
    if (!o.result.ok) throw applyError(o.result);
    if (o.receipt === null) throw new ApiError('UNAVAILABLE', 'executed and certified, but no replica handed over a receipt the certificate vouches for: retry with the same idempotency key');
    return { outputs: o.result.outputs, receipt: o.receipt, execution_time_ms: elapsed(started), replayed: o.result.replayed, certificate: o.certificate };
  }

  async receipt(id: string): Promise<{ receipt: Receipt; proof: InclusionProof; tree_head: SignedTreeHead } | undefined> {
    if (typeof id !== 'string' || id.length > MAX_RECEIPT_ID_CHARS) return undefined;
    const log = this.#engine.replica.log;
    const receipt = await log.getById(id);
    if (receipt === undefined) return undefined;
    // The proof is for exactly the tree the head signs, even while appends go on.
    const tree_head = log.signedTreeHead(this.#now());
    if (receipt.index >= tree_head.size) return undefined;
    const proof = await log.inclusionProof(id, tree_head.size);
    return { receipt, proof, tree_head };
  }

  async receipts(from: number, limit: number): Promise<Receipt[]> {
    if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('INVALID_REQUEST', 'from must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new ApiError('INVALID_REQUEST', `limit must be an integer in 1..${MAX_LIST_LIMIT}`);
    const log = this.#engine.replica.log;
    // log.size counts durable receipts only: every one listed here is in a signed tree.
    const end = Math.min(log.size, from + limit);
    const out: Receipt[] = [];
    if (from >= end) return out;
    for await (const r of log.iterate(from)) {
      if (r.index >= end) break;
      out.push(r);
    }
    return out;
  }

  treeHead(): SignedTreeHead {
    return this.#engine.replica.log.signedTreeHead(this.#now());
  }

  cluster(): ClusterStatus {
    const s = this.#engine.status();
    return {
      consensus: s.kind,
      self: s.self,
      leader: s.leader,
      term: s.term,
      commit_index: s.commitIndex,
      applied_index: s.appliedIndex,
      members: this.#engine.members().map((m) => ({ ...m })),
      peers: this.#peers(),
      ...(this.#pbft !== undefined ? { pbft: this.#pbft.view() } : {}),
    };
  }

  /** Pull-based: records are read from the replica as the consumer asks, so nothing piles up. */
  stream(from: number, filter: readonly string[], viewer: OutputViewer, signal: AbortSignal, maxBuffered?: number): AsyncIterable<ResultRecord> {
    if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('INVALID_REQUEST', 'from must be a non-negative integer');
    if (maxBuffered !== undefined && (!Number.isSafeInteger(maxBuffered) || maxBuffered < 1)) throw new ApiError('INVALID_REQUEST', 'maxBuffered must be a positive integer');
    return streamReceipts(this.#engine.replica, from, filter, viewer, AbortSignal.any([signal, this.#closed.signal]));
  }

  /** Ends live streams, then closes the engine (waiting for executions in flight). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed.abort();
      this.#pbft?.close();
      await this.#engine.close();
    })();
    return this.#closing;
  }
}

export type { Json };
