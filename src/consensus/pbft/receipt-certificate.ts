// PBFT's QuorumCertificateScheme (src/verify/certificate.ts): a receipt of a PBFT execution
// travels with the quorum certificate of the request and the certified result bytes. The check
// is offline against the cluster's membership (its id and ordered PeerIds; the keys are inside
// the PeerIds): the certificate verifies (f+1 matching signed replies, or 2f+1 commits), the
// result it certifies hashes to the certified digest, and that result (or, for commits, the
// ordered command) names exactly the receipt's operator and inputs/outputs hashes. Depends on
// src/crypto and the PBFT codec only, so it runs in the browser verifier.
import { base64urlDecode, digestJson, parseJson, publicKeyFromPeerId, utf8Decode } from '../../crypto/index.ts';
import type { Receipt } from '../../receipts/receipt.ts';
import type { CertificateVerdict, QuorumCertificateScheme } from '../../verify/certificate.ts';
import { bytesEqual, sha256Ed25519 } from './auth.ts';
import { certificateFromText, verifyCertificate, type QuorumCertificate } from './certificate.ts';
import { MAX_REPLICAS, type Membership } from './types.ts';

export const PBFT_CERTIFICATE_SCHEME = 'pbft/1';
/** Characters of a carried certificate's text fields at most (a certificate of 64 replicas with paths fits). */
export const MAX_CARRIED_CERTIFICATE_CHARS = 1024 * 1024;

/** What a PBFT outcome and receipt carry: the certificate (certificateToText) and the certified result, base64url. */
export interface CarriedCertificate {
  readonly scheme: typeof PBFT_CERTIFICATE_SCHEME;
  readonly certificate: string;
  readonly result: string;
}

/** The membership as JSON gives it: `{cluster, replicas: [PeerId, ...]}` (cluster.json's `pbft` section). */
export interface MembershipJson {
  readonly cluster: string;
  readonly replicas: readonly string[];
}

/** Parses untrusted JSON into a Membership, or says why it is none. */
export function membershipFromJson(v: unknown): Membership | string {
  if (typeof v !== 'object' || v === null) return 'membership must be an object';
  const { cluster, replicas } = v as Record<string, unknown>;
  if (typeof cluster !== 'string') return 'membership.cluster must be a string';
  if (!Array.isArray(replicas) || replicas.length > MAX_REPLICAS) return `membership.replicas must be an array of at most ${MAX_REPLICAS} PeerIds`;
  const out: { id: string; publicKey: Uint8Array }[] = [];
  for (const id of replicas) {
    if (typeof id !== 'string') return 'membership.replicas must hold PeerId strings';
    try {
      out.push({ id, publicKey: publicKeyFromPeerId(id) });
    } catch {
      return `membership.replicas: ${id.slice(0, 60)} is not an ed25519 PeerId`;
    }
  }
  return { cluster, replicas: out };
}

export function membershipToJson(m: Membership): MembershipJson {
  return { cluster: m.cluster, replicas: m.replicas.map((r) => r.id) };
}

/** Parses untrusted JSON into a CarriedCertificate, or says why it is none. */
export function carriedCertificateFromJson(v: unknown): CarriedCertificate | string {
  if (typeof v !== 'object' || v === null) return 'certificate must be an object';
  const { scheme, certificate, result } = v as Record<string, unknown>;
  if (scheme !== PBFT_CERTIFICATE_SCHEME) return `certificate.scheme must be ${PBFT_CERTIFICATE_SCHEME}`;
  if (typeof certificate !== 'string' || typeof result !== 'string' || certificate.length + result.length > MAX_CARRIED_CERTIFICATE_CHARS) return 'certificate.certificate and certificate.result must be base64url strings';
  return { scheme, certificate, result };
}

function objectOf(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = parseJson(utf8Decode(bytes));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Names the receipt's operation exactly? (fields: operator_id, inputs_hash, outputs_hash when known) */
function operationMismatch(said: Record<string, string | undefined>, receipt: Receipt): string | undefined {
  for (const k of ['operator_id', 'inputs_hash', 'outputs_hash'] as const) {
    const v = said[k];
    if (v !== undefined && v !== receipt.operation[k]) return `the certified ${k} is not the receipt's`;
  }
  return undefined;
}

/** Checks a certificate carried with `receipt` against `membership`; never throws. */
export function verifyCarriedCertificate(carried: CarriedCertificate, membership: Membership, receipt: Receipt): CertificateVerdict {
  let cert: QuorumCertificate;
  let result: Uint8Array;
  try {
    cert = certificateFromText(carried.certificate);
    result = base64urlDecode(carried.result);
  } catch (e) {
    return { ok: false, reason: `malformed certificate: ${e instanceof Error ? e.message : String(e)}` };
  }
  const verdict = verifyCertificate(cert, membership);
  if (!verdict.ok) return { ok: false, reason: `${verdict.problem}: ${verdict.detail}` };
  if (cert.kind === 'replies') {
    if (!bytesEqual(sha256Ed25519.digest(result), cert.resultDigest)) return { ok: false, reason: 'the carried result is not the certified one' };
    const o = objectOf(result);
    if (o === undefined || o['ok'] !== true || o['read'] === true) return { ok: false, reason: 'the certified result is not a successful write' };
    const str = (k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : '');
    const bad = operationMismatch({ operator_id: str('operator_id'), inputs_hash: str('inputs_hash'), outputs_hash: str('outputs_hash') }, receipt);
    return bad === undefined ? { ok: true } : { ok: false, reason: bad };
  }
  // 2f+1 commits order the request: its command names the operator and inputs (outputs are the receipt's own).
  const op = cert.request.op;
  const cmd = op[0] === 0x01 ? objectOf(op.subarray(1)) : undefined;
  if (cmd === undefined || typeof cmd['operator_id'] !== 'string' || !('inputs' in cmd)) return { ok: false, reason: 'the committed request is not a write command' };
  const bad = operationMismatch({ operator_id: cmd['operator_id'], inputs_hash: digestJson(cmd['inputs']) }, receipt);
  return bad === undefined ? { ok: true } : { ok: false, reason: bad };
}

/** For verifyCertifiedReceipt (hypersync/verify): PBFT receipts checked against the cluster's membership. */
export const pbftCertificateScheme: QuorumCertificateScheme<CarriedCertificate, Membership> = {
  id: PBFT_CERTIFICATE_SCHEME,
  verify: (certificate, membership, receipt) => Promise.resolve(verifyCarriedCertificate(certificate, membership, receipt)),
};
