// Admission to a cluster: a peer is admitted when its PeerId is on the allowlist, or when
// its HELLO carries a join token signed by the cluster key for this cluster, for this peer
// (or '*', any peer) and not yet expired. Tokens travel in URL fragments as base64url JSON.
import { base64urlDecode, base64urlEncode, canonicalBytes, crypto, parseJson, utf8Decode, utf8Encode, type Ed25519Signer } from '../crypto/index.ts';
import { MalformedEnvelopeError, NotAdmittedError, type IcoError } from './errors.ts';
import type { JoinToken } from './types.ts';

export interface AdmissionPolicy {
  cluster: string;
  allowlist: ReadonlySet<string>;
  /** Raw ed25519 public key of the cluster; without it only the allowlist admits. */
  clusterPublicKey?: Uint8Array;
}

/** Longest accepted token parameter (URL fragments, HELLO payloads). */
export const MAX_JOIN_TOKEN_CHARS = 2048;

export function createJoinToken(opts: { clusterSigner: Ed25519Signer; cluster: string; peer: string; expires: Date }): JoinToken {
  const body = { cluster: opts.cluster, peer: opts.peer, expires: opts.expires.toISOString() };
  return { ...body, signature: base64urlEncode(opts.clusterSigner.sign(canonicalBytes(body))) };
}

function isJoinToken(value: unknown): value is JoinToken {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const t = value as Record<string, unknown>;
  return (
    Object.keys(t).length === 4 &&
    typeof t['cluster'] === 'string' && typeof t['peer'] === 'string' &&
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
  if (Date.parse(token.expires) <= now) return `join token expired at ${token.expires}`;
  const body = { cluster: token.cluster, peer: token.peer, expires: token.expires };
  if (!crypto.verify(policy.clusterPublicKey, canonicalBytes(body), base64urlDecode(token.signature))) return 'join token signature is not the cluster key';
  return null;
}

/** True when `token` is a valid, unexpired cluster-signed token admitting `peerId` to `cluster`. Never throws. */
export function verifyJoinToken(token: unknown, clusterPublicKey: Uint8Array, cluster: string, peerId: string, now: number): boolean {
  return joinTokenProblem(token, { cluster, allowlist: new Set(), clusterPublicKey }, peerId, now) === null;
}

export function admit(policy: AdmissionPolicy, peerId: string, joinToken: unknown, now: number): { ok: true } | { ok: false; error: IcoError } {
  if (policy.allowlist.has(peerId)) return { ok: true };
  if (joinToken === null || joinToken === undefined) return { ok: false, error: new NotAdmittedError(`${peerId} is not on the allowlist and presented no join token`) };
  const problem = joinTokenProblem(joinToken, policy, peerId, now);
  return problem === null ? { ok: true } : { ok: false, error: new NotAdmittedError(problem) };
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
