// What the relay's REST and gRPC front ends call. One implementation, EngineBackend
// (relay/api/engine-backend.ts), over whichever consensus engine runs (src/consensus/engine.ts):
// the front ends never see which one it is.
import type { EngineKind } from '../../src/consensus/engine.ts';
import type { CarriedCertificate } from '../../src/consensus/pbft/receipt-certificate.ts';
import type { PbftClusterView } from '../../src/consensus/pbft/runtime/gateway.ts';
import type { Json } from '../../src/ico/types.ts';
import type { InclusionProof, SignedTreeHead } from '../../src/receipts/log.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import type { OperatorInfo } from '../../src/statemachine/types.ts';

export type ConsensusKind = EngineKind;

export interface ExecuteOptions {
  consensus?: ConsensusKind;
  /** Deadline for the whole execution (default 5000, max 60000). */
  timeout_ms?: number;
  /** A retry with the same key (same principal) returns the first result and receipt. */
  idempotency_key?: string;
  /** For readonly operators: 'linearizable' serves a ReadIndex read (no log entry, no receipt). */
  read?: 'log' | 'linearizable';
}

export interface ExecuteRequest {
  operator_id: string;
  inputs: Json;
  options: ExecuteOptions;
  /** Who asks (API key id, token subject or certificate CN): scopes idempotency keys. */
  principal: string;
}

export interface ExecuteResult {
  outputs: Json;
  /** null only for a linearizable read (no log entry). */
  receipt: Receipt | null;
  execution_time_ms: number;
  /** True when an idempotent retry returned the stored result. */
  replayed: boolean;
  /** Through PBFT: the quorum certificate (f+1 signed replies) that vouches for `receipt` and `outputs`. */
  certificate?: CarriedCertificate;
}

/** One executed operator as StreamResults delivers it. */
export interface ResultRecord {
  index: number;
  operator_id: string;
  /**
   * null when the viewer may not see them (another principal's execution, and no audit scope),
   * or when this replica no longer has them (e.g. it caught up by snapshot).
   */
  outputs: Json | null;
  receipt: Receipt;
}

/** Whose outputs a stream shows: the principal's own, or every one with the audit scope. */
export interface OutputViewer {
  readonly principal: string;
  readonly allOutputs: boolean;
}

export interface ClusterMember {
  peerId: string;
  role: 'voter' | 'learner';
  match?: number;
  state?: string;
}

export interface ClusterStatus {
  consensus: ConsensusKind;
  self: string;
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
  members: ClusterMember[];
  peers: number;
  /** Where a PBFT group runs beside: its members and each replica's view, watermarks and stable checkpoint. */
  pbft?: PbftClusterView;
}

export type ApiErrorCode =
  | 'UNKNOWN_OPERATOR' // 404
  | 'INVALID_INPUT' // 400 (message names the path)
  | 'INVALID_REQUEST' // 400
  | 'OPERATOR_FAILED' // 422
  | 'NOT_FOUND' // 404
  | 'UNAVAILABLE' // 503, retryable: no leader / consensus timeout / overloaded
  | 'DEADLINE_EXCEEDED' // 504, retryable
  | 'UNSUPPORTED'; // 400: e.g. consensus 'pbft' when it does not run

export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly retryable: boolean;
  readonly path: string | undefined;
  constructor(code: ApiErrorCode, message: string, opts: { retryable?: boolean; path?: string } = {}) {
    super(message);
    this.code = code;
    this.retryable = opts.retryable ?? (code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED');
    this.path = opts.path;
  }
}

export interface ApiBackend {
  readonly consensus: ConsensusKind;
  operators(): OperatorInfo[];
  /** Throws ApiError. Validates inputs against the operator's schema before anything else. */
  execute(req: ExecuteRequest): Promise<ExecuteResult>;
  receipt(id: string): Promise<{ receipt: Receipt; proof: InclusionProof; tree_head: SignedTreeHead } | undefined>;
  receipts(from: number, limit: number): Promise<Receipt[]>;
  treeHead(): SignedTreeHead;
  cluster(): ClusterStatus;
  /**
   * Replays executions from `from` (receipt index), then delivers live ones, in order.
   * `filter` keeps only those operator ids (empty: all). Every record carries its receipt
   * (hashes only); outputs only where `viewer` may see them. Ends when `signal` aborts. The
   * iterator buffers at most `maxBuffered` records; a consumer that falls further behind
   * than that is caught up from storage (never unbounded memory).
   */
  stream(from: number, filter: readonly string[], viewer: OutputViewer, signal: AbortSignal, maxBuffered?: number): AsyncIterable<ResultRecord>;
  close(): Promise<void>;
}
