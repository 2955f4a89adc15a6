// The API backend when the relay is a Raft learner: writes are forwarded to the leader and
// answered from this relay's own replica once it applied them (its own signed receipt);
// readonly operators with `read: 'linearizable'` use ReadIndex. Reads of receipts, tree head
// and streams are local. Inputs are validated here first, so bad input never reaches the log.
import { randomUUID } from 'node:crypto';
import type { Json } from '../../src/ico/types.ts';
import { ClusterUnavailableError, DeadlineExceededError, type RaftDriver } from '../../src/net/raft-driver.ts';
import type { HyperSyncPeer } from '../../src/net/types.ts';
import type { InclusionProof, SignedTreeHead } from '../../src/receipts/log.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import { builtinRegistry, type OperatorRegistry } from '../../src/statemachine/index.ts';
import type { ApplyResult, OperatorInfo } from '../../src/statemachine/types.ts';
import { ApiError, type ApiBackend, type ClusterStatus, type ExecuteRequest, type ExecuteResult, type ResultRecord } from './backend.ts';
import { streamReceipts } from './result-stream.ts';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const MAX_TIMEOUT_MS = 60_000;

export function checkTimeout(t: number | undefined): number {
  if (t === undefined) return DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(t) || t < 1 || t > MAX_TIMEOUT_MS) throw new ApiError('INVALID_REQUEST', `options.timeout_ms must be an integer in [1, ${MAX_TIMEOUT_MS}]`, { path: '/options/timeout_ms' });
  return t;
}

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

export class RaftBackend implements ApiBackend {
  readonly consensus = 'raft' as const;
  readonly #driver: RaftDriver;
  readonly #peer: HyperSyncPeer;
  readonly #registry: OperatorRegistry;

  constructor(driver: RaftDriver, peer: HyperSyncPeer, registry: OperatorRegistry = builtinRegistry()) {
    this.#driver = driver;
    this.#peer = peer;
    this.#registry = registry;
  }

  operators(): OperatorInfo[] {
    return this.#registry.list();
  }

  async execute(req: ExecuteRequest): Promise<ExecuteResult> {
    const started = performance.now();
    const timeout = checkTimeout(req.options.timeout_ms);
    if (req.options.consensus !== undefined && req.options.consensus !== 'raft') {
      throw new ApiError('UNSUPPORTED', `consensus '${req.options.consensus}' does not run on this cluster (it runs raft)`, { path: '/options/consensus' });
    }
    const problem = this.#registry.validate(req.operator_id, req.inputs);
    if (problem !== null) throw new ApiError(problem.code, problem.message, { path: problem.path });
    const def = this.#registry.get(req.operator_id);
    try {
      if (req.options.read === 'linearizable') {
        if (def?.readonly !== true) throw new ApiError('INVALID_REQUEST', `options.read 'linearizable' needs a readonly operator; '${req.operator_id}' writes`, { path: '/options/read' });
        const r = await this.#driver.read(req.operator_id, req.inputs, timeout);
        if (!r.ok) throw applyError(r);
        return { outputs: r.outputs, receipt: null, execution_time_ms: elapsed(started), replayed: false };
      }
      const key = req.options.idempotency_key !== undefined ? `idem:${req.options.idempotency_key}` : `req:${randomUUID()}`;
      const outcome = await this.#driver.execute(req.operator_id, req.inputs, { client: req.principal, key }, timeout);
      if (!outcome.result.ok) throw applyError(outcome.result);
      const receipt = outcome.receipt === null ? null : await outcome.receipt;
      return { outputs: outcome.result.outputs, receipt, execution_time_ms: elapsed(started), replayed: outcome.result.replayed };
    } catch (e) {
      if (e instanceof ApiError) throw e;
      // The cluster could not commit in time (no quorum, an election): 503, retryable. The
      // command may still commit later; a retry with the same idempotency key returns it,
      // executed once, so nothing is ever half-applied.
      if (e instanceof DeadlineExceededError) throw new ApiError('UNAVAILABLE', `consensus did not complete within ${timeout} ms; retry with the same idempotency_key`);
      if (e instanceof ClusterUnavailableError) throw new ApiError('UNAVAILABLE', e.message);
      throw new ApiError('UNAVAILABLE', `this replica cannot answer: ${(e as Error).message}`);
    }
  }

  async receipt(id: string): Promise<{ receipt: Receipt; proof: InclusionProof; tree_head: SignedTreeHead } | undefined> {
    const log = this.#driver.replica.log;
    const receipt = await log.getById(id);
    if (receipt === undefined) return undefined;
    return { receipt, proof: await log.inclusionProof(id), tree_head: log.signedTreeHead() };
  }

  async receipts(from: number, limit: number): Promise<Receipt[]> {
    const out: Receipt[] = [];
    const log = this.#driver.replica.log;
    for (let i = from; i < Math.min(log.size, from + limit); i++) {
      // log.size counts durable receipts only, so every one listed here can be read.
      const r = await log.get(i);
      if (r === undefined) break;
      out.push(r);
    }
    return out;
  }

  treeHead(): SignedTreeHead {
    return this.#driver.replica.log.signedTreeHead();
  }

  cluster(): ClusterStatus {
    const s = this.#driver.status();
    const members = [
      ...s.voters.map((peerId) => ({ peerId, role: 'voter' as const })),
      ...s.learners.map((peerId) => ({ peerId, role: 'learner' as const })),
    ].map((m) => {
      const p = s.progress.find((x) => x.peerId === m.peerId);
      return p === undefined ? m : { ...m, match: p.match, state: p.state };
    });
    return {
      consensus: 'raft',
      self: s.id,
      leader: s.leader === '' ? null : s.leader,
      term: s.term,
      commit_index: s.commit,
      applied_index: s.applied,
      members,
      peers: this.#peer.peers().filter((p) => p.state === 'established').length,
    };
  }

  /** No per-stream buffer to bound here: records are read from the replica as the consumer pulls. */
  stream(from: number, filter: readonly string[], signal: AbortSignal): AsyncIterable<ResultRecord> {
    return streamReceipts(this.#driver.replica, from, filter, signal);
  }

  async close(): Promise<void> {
    // The driver and replica belong to the relay's raft member, which stops them.
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

export type { Json };
