// Who may call the relay API, as both front ends (REST in relay/api/server.ts, gRPC in
// relay/api/grpc.ts) see it. Credentials come from request headers and the TLS layer only, so
// they are checked before a byte of the request body is read.
/**
 * execute: run operators. read: receipts, tree heads, status, and the outputs of one's own
 * executions. audit: the outputs of every principal's executions (for the cluster's operators).
 */
export type Scope = 'execute' | 'read' | 'audit';

export interface Principal {
  /** Stable id: the API key's id, 'token:<name>' for a bearer token, 'cert:<name>' for a mapped client certificate. */
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
}

export type AuthFailure = { readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'RATE_LIMITED'; readonly message: string; readonly retryAfterSeconds?: number };

export type SanKind = 'dns' | 'email' | 'uri' | 'ip';

/** A client certificate the TLS layer verified against the cluster CA (never an unverified one). */
export interface VerifiedCertificate {
  /** The subject CNs (usually one). */
  readonly subjectCN: readonly string[];
  readonly san: ReadonlyArray<{ readonly kind: SanKind; readonly value: string }>;
  /** As the TLS layer reports it: hex. */
  readonly serial: string;
}

export interface Credentials {
  /** The Authorization header (`Bearer <token>`). */
  authorization?: string | undefined;
  /** The X-API-Key header. */
  apiKey?: string | undefined;
  certificate?: VerifiedCertificate | undefined;
  /** The peer's IP address: failed authentications are rate limited per source. */
  source?: string | undefined;
}

export interface Authenticator {
  /**
   * Resolves the credentials of one request, in this order: `authorization`, `x-api-key`, a
   * verified client certificate mapped to a principal. Constant-time comparisons; revoked keys
   * and certificate serials fail. Applies the per-principal rate limit, and the per-source
   * limit on failed authentications (both RATE_LIMITED with retryAfterSeconds). Synchronous
   * and free of I/O: it runs on every request.
   */
  authenticate(creds: Credentials, now?: number): Principal | AuthFailure;
}

export function isPrincipal(r: Principal | AuthFailure): r is Principal {
  return 'id' in r;
}
