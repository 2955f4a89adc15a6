// The tab's client of the relay REST API. The page calls its own origin (`/api/v1/…`): the web
// server forwards those paths to the relay (Vite `server.proxy`, set up by the devnet and the
// e2e harness with web/api-proxy.ts), so the tab needs neither CORS nor trust in the devnet's
// CA. The credential comes from the join URL's fragment (`api=`) and is sent as a bearer token.
// Every failure is a RelayApiError with a stable code, whose message says what to do.
import type { Json } from '../src/ico/types.ts';
import type { Receipt } from '../src/verify/index.ts';

/** A request to the relay that takes longer than this fails (the panel shows the error and retries on the next refresh). */
export const API_TIMEOUT_MS = 10_000;

export type RelayApiErrorCode =
  /** The URL carries no `api=` credential. */
  | 'NO_CREDENTIAL'
  /** The web server does not forward /api to the relay (it answered with something not JSON). */
  | 'NOT_FORWARDED'
  /** No answer (relay down, network off, timeout). */
  | 'UNREACHABLE'
  /** The relay answered with an error body: its own code is in `apiCode`. */
  | 'API_ERROR';

export class RelayApiError extends Error {
  override name = 'RelayApiError';
  readonly code: RelayApiErrorCode;
  /** HTTP status, 0 when there was no answer. */
  readonly status: number;
  /** The relay's error code (`UNAUTHENTICATED`, `NOT_FOUND`, …) for API_ERROR. */
  readonly apiCode: string | null;
  constructor(code: RelayApiErrorCode, message: string, status = 0, apiCode: string | null = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.apiCode = apiCode;
  }
}

export interface OperatorInfo {
  id: string;
  description: string;
  readonly: boolean;
  input_schema: { [key: string]: Json };
  output_schema: { [key: string]: Json };
}

export interface ClusterInfo {
  consensus: 'none' | 'raft' | 'pbft';
  self: string;
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
  members: Array<{ peerId: string; role: 'voter' | 'learner'; match?: number; state?: string }>;
  peers: number;
  /** The PBFT group beside the engine, as its client (the relay) sees it; absent when there is none. */
  pbft?: PbftInfo;
}

/** One PBFT replica's own status, as GET /api/v1/cluster relays it. */
export interface PbftReplicaInfo {
  self: string;
  view: number;
  primary: string;
  active: boolean;
  low_watermark: number;
  high_watermark: number;
  last_executed: number;
  stable_checkpoint: { seq: number; digest: string };
  dropped_total: number;
}

export interface PbftInfo {
  cluster: string;
  members: string[];
  f: number;
  /** The view f+1 replicas are in (null while they disagree). */
  view: number | null;
  primary: string | null;
  replicas: PbftReplicaInfo[];
}

export interface ExecuteReply {
  status: string;
  outputs: Json;
  receipt_id: string | null;
  execution_time_ms: number;
  /** The receipt itself (through PBFT: signed by the replica the certificate vouches for). */
  receipt?: Json;
  /** Through PBFT only: the quorum certificate `{scheme, certificate, result}` (the verifier parses it). */
  certificate?: Json;
}

/** Who orders an execution: the relay's own engine, or the PBFT group beside it (`options.consensus: "pbft"`). */
export type ExecuteEngine = 'default' | 'pbft';

/** A receipt as the API lists it (the verifier checks every field before the page trusts one). */
export type ReceiptView = Receipt;

export interface ReceiptsPage {
  receipts: ReceiptView[];
  from: number;
  next: number;
  tree_size: number;
}

export interface RelayApi {
  readonly available: boolean;
  cluster(): Promise<ClusterInfo>;
  operators(): Promise<OperatorInfo[]>;
  execute(operatorId: string, inputs: Json, engine?: ExecuteEngine): Promise<ExecuteReply>;
  receipts(from: number, limit: number): Promise<ReceiptsPage>;
  /** The proof bundle `{receipt, proof, tree_head}` exactly as served, for the verifier. */
  receiptBundle(id: string): Promise<unknown>;
  treeHead(): Promise<{ size: number; root: string; timestamp: string; signature: string }>;
}

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

function isErrorBody(v: unknown): v is { error: { code: string; message: string } } {
  if (typeof v !== 'object' || v === null || !('error' in v)) return false;
  const e = (v as { error: unknown }).error;
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { message?: unknown }).message === 'string';
}

/** `base` is the page's origin; `token` null makes every call fail with NO_CREDENTIAL. */
export function relayApi(base: string, token: string | null, fetchFn: Fetch = (i, init) => fetch(i, init)): RelayApi {
  async function call<T>(method: 'GET' | 'POST', path: string, body?: Json): Promise<T> {
    if (token === null) throw new RelayApiError('NO_CREDENTIAL', 'This tab has no relay API credential: open the web-app URL `npm start` prints (its fragment carries `api=`).');
    let res: Response;
    try {
      res = await fetchFn(new URL(path, base).toString(), {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
    } catch (e) {
      throw new RelayApiError('UNREACHABLE', `The relay API did not answer (${e instanceof Error ? e.message : String(e)}); it is retried on the next refresh.`);
    }
    const type = res.headers.get('content-type') ?? '';
    if (!type.includes('application/json')) {
      // A relay that is down behind the proxy answers 502/504 from the proxy itself.
      if (res.status >= 500) throw new RelayApiError('UNREACHABLE', `The relay API is unreachable through this web server (HTTP ${res.status}); it is retried on the next refresh.`, res.status);
      throw new RelayApiError('NOT_FORWARDED', `This web server does not forward /api to the relay (got HTTP ${res.status} ${type || 'without a content type'}); serve the app with \`npm start\`.`, res.status);
    }
    const parsed: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      if (isErrorBody(parsed)) throw new RelayApiError('API_ERROR', `${parsed.error.code}: ${parsed.error.message}`, res.status, parsed.error.code);
      throw new RelayApiError('API_ERROR', `HTTP ${res.status} without an error body`, res.status);
    }
    return parsed as T;
  }
  return {
    available: token !== null,
    cluster: () => call<ClusterInfo>('GET', '/api/v1/cluster'),
    operators: async () => (await call<{ operators: OperatorInfo[] }>('GET', '/api/v1/operators')).operators,
    execute: (operatorId, inputs, engine = 'default') =>
      call<ExecuteReply>('POST', '/api/v1/operators/execute', { operator_id: operatorId, inputs, ...(engine === 'pbft' ? { options: { consensus: 'pbft' } } : {}) }),
    receipts: (from, limit) => call<ReceiptsPage>('GET', `/api/v1/receipts?from=${from}&limit=${limit}`),
    receiptBundle: (id) => call<unknown>('GET', `/api/v1/receipts/${encodeURIComponent(id)}`),
    treeHead: () => call('GET', '/api/v1/tree-head'),
  };
}
