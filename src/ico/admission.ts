// Admission to a cluster: a peer is admitted when its PeerId is on the allowlist, or when
// its HELLO carries a join token signed by the cluster key for this cluster, for this peer
// (or '*', any peer), not expired, not revoked, living at most MAX_JOIN_TOKEN_LIFETIME_MS.
// A token grants one role (the peer's HELLO may claim no other) and admits only until it
// expires. Tokens travel in URL fragments as base64url JSON.
import { base64urlDecode, base64urlEncode, canonicalBytes, crypto, parseJson, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import { MalformedEnvelopeError, NotAdmittedError, type IcoError } from './errors.ts';
import type { JoinToken, PeerRole } from './types.ts';

export interface AdmissionPolicy {
  cluster: string;
  allowlist: ReadonlySet<string>;
  /** Raw ed25519 public key of the cluster; without it only the allowlist admits. */
  clusterPublicKey?: Uint8Array;
  /** Ids of join tokens the cluster revoked (cluster.json `revokedTokens`). */
  revokedTokens?: ReadonlySet<string>;
}

/** Longest accepted token parameter (URL fragments, HELLO payloads). */
export const MAX_JOIN_TOKEN_CHARS = 2048;
/** Longest a join token may live (expires − issued): a token claiming longer is refused. */
export const MAX_JOIN_TOKEN_LIFETIME_MS = 7 * 86_400_000;
/** A token issued further than this in the admitter's future is refused (clock skew allowance). */
export const MAX_TOKEN_ISSUE_SKEW_MS = 5 * 60_000;
/** The roles a join token may grant (a relay is admitted by being configured as one). */
export const JOIN_TOKEN_ROLES: readonly PeerRole[] = ['voter', 'learner', 'browser'];
const TOKEN_ID = /^[A-Za-z0-9_-]{8,64}$/;
const TOKEN_FIELDS = ['cluster', 'peer', 'role', 'id', 'issued', 'expires'] as const;

export class JoinTokenError extends Error {
  readonly code = 'JOIN_TOKEN_INVALID';
  override name = 'JoinTokenError';
}

export function createJoinToken(opts: { clusterSigner: Ed25519Signer; cluster: string; peer: string; role: PeerRole; ttlMs: number; now?: number; id?: string }): JoinToken {
  if (!JOIN_TOKEN_ROLES.includes(opts.role)) throw new JoinTokenError(`a join token cannot grant the role '${opts.role}' (use ${JOIN_TOKEN_ROLES.join(', ')})`);
  if (!(opts.ttlMs > 0 && opts.ttlMs <= MAX_JOIN_TOKEN_LIFETIME_MS)) throw new JoinTokenError(`a join token lives at most ${MAX_JOIN_TOKEN_LIFETIME_MS / 3_600_000} h`);
  const id = opts.id ?? base64urlEncode(crypto.randomBytes(12));
  if (!TOKEN_ID.test(id)) throw new JoinTokenError('a join token id is 8..64 base64url characters');
  const issued = opts.now ?? Date.now();
  const body = { cluster: opts.cluster, peer: opts.peer, role: opts.role, id, issued: new Date(issued).toISOString(), expires: new Date(issued + opts.ttlMs).toISOString() };
  return { ...body, signature: base64urlEncode(opts.clusterSigner.sign(canonicalBytes(body))) };
}

function isJoinToken(value: unknown): value is JoinToken {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const t = value as Record<string, unknown>;
  return (
    Object.keys(t).length === TOKEN_FIELDS.length + 1 &&
    typeof t['cluster'] === 'string' && typeof t['peer'] === 'string' &&
    typeof t['role'] === 'string' && (JOIN_TOKEN_ROLES as readonly string[]).includes(t['role']) &&
    typeof t['id'] === 'string' && TOKEN_ID.test(t['id']) &&
    typeof t['issued'] === 'string' && !Number.isNaN(Date.parse(t['issued'])) &&
    typeof t['expires'] === 'string' && !Number.isNaN(Date.parse(t['expires'])) &&
    typeof t['signature'] === 'string' && /^[A-Za-z0-9_-]{86}$/.test(t['signature'])
  );
}

/** Checks a token for `peerId` joining `policy.cluster` at `now`; returns the reason it fails, or null. */
export function joinTokenProblem(token: unknown, policy: AdmissionPolicy, peerId: string, now: number): string | null {
  if (policy.clusterPublicKey === undefined) return 'this cluster admits by allowlist only';
  if (!isJoinToken(token)) return 'join token is malformed';
  if (token.cluster !== policy.cluster) return `join token is for cluster '${token.cluster}'`;
  if (token.peer !== '*' && token.peer !== peerId) return 'join token was issued to another peer';
  const issued = Date.parse(token.issued);
  const expires = Date.parse(token.expires);
  if (expires <= now) return `join token expired at ${token.expires}`;
  if (expires - issued > MAX_JOIN_TOKEN_LIFETIME_MS || expires <= issued) return `join token lives longer than ${MAX_JOIN_TOKEN_LIFETIME_MS / 3_600_000} h`;
  if (issued > now + MAX_TOKEN_ISSUE_SKEW_MS) return `join token is issued in the future (${token.issued})`;
  const body = Object.fromEntries(TOKEN_FIELDS.map((f) => [f, token[f]]));
  if (!crypto.verify(policy.clusterPublicKey, canonicalBytes(body), base64urlDecode(token.signature))) return 'join token signature is not the cluster key';
  if (policy.revokedTokens?.has(token.id) === true) return `join token ${token.id} was revoked`;
  return null;
}

/** True when `token` is a valid, unexpired cluster-signed token admitting `peerId` to `cluster`. Never throws. */
export function verifyJoinToken(token: unknown, clusterPublicKey: Uint8Array, cluster: string, peerId: string, now: number): boolean {
  return joinTokenProblem(token, { cluster, allowlist: new Set(), clusterPublicKey }, peerId, now) === null;
}

/**
 * How a peer is admitted: by the allowlist (for as long as the session lasts, with the roles it
 * announces), or by a join token, which grants one role and ends the session when it expires.
 */
export type Admission = { ok: true; via: 'allowlist' } | { ok: true; via: 'token'; role: PeerRole; expiresAt: number; tokenId: string } | { ok: false; error: IcoError };

export function admit(policy: AdmissionPolicy, peerId: string, joinToken: unknown, now: number): Admission {
  if (policy.allowlist.has(peerId)) return { ok: true, via: 'allowlist' };
  if (joinToken === null || joinToken === undefined) return { ok: false, error: new NotAdmittedError(`${peerId} is not on the allowlist and presented no join token`) };
  const problem = joinTokenProblem(joinToken, policy, peerId, now);
  if (problem !== null) return { ok: false, error: new NotAdmittedError(problem) };
  const t = joinToken as JoinToken;
  return { ok: true, via: 'token', role: t.role, expiresAt: Date.parse(t.expires), tokenId: t.id };
}

export function encodeJoinTokenParam(token: JoinToken): string {
  return base64urlEncode(utf8Encode(JSON.stringify(token)));
}

/** URL parameter → token; throws MalformedEnvelopeError with a readable reason. */
export function decodeJoinTokenParam(param: string): JoinToken {
  if (param.length > MAX_JOIN_TOKEN_CHARS) throw new MalformedEnvelopeError('join token parameter is too long');
  let value: unknown;
  try {
    value = parseJson(utf8Decode(base64urlDecode(param)));
  } catch {
    throw new MalformedEnvelopeError('join token parameter is not base64url JSON');
  }
  if (!isJoinToken(value)) throw new MalformedEnvelopeError('join token parameter does not hold a join token');
  return value;
}
