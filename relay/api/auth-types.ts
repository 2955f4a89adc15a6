// Who may call the relay API, as both front ends (REST in relay/api/server.ts, gRPC in
// relay/api/grpc.ts) see it. Credentials are checked before a request body is read.
export type Scope = 'execute' | 'read';

export interface Principal {
  /** Stable id: the API key's id, 'token:<name>' for a bearer token, 'cert:<CN>' for mTLS. */
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
}

export type AuthFailure = { readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'RATE_LIMITED'; readonly message: string; readonly retryAfterSeconds?: number };

export interface Authenticator {
  /**
   * Resolves the credentials of one request: `authorization` (Bearer token), `x-api-key`, or a
   * verified client certificate (its subject CN; only when the TLS layer verified it against
   * the cluster CA). Constant-time comparisons; revoked keys fail. Also applies the per-key
   * rate limit (RATE_LIMITED with retryAfterSeconds).
   */
  authenticate(creds: { authorization?: string | undefined; apiKey?: string | undefined; certificateCN?: string | undefined }, now?: number): Principal | AuthFailure;
}

export function isPrincipal(r: Principal | AuthFailure): r is Principal {
  return 'id' in r;
}
