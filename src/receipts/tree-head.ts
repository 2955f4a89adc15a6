// Signed tree heads and inclusion proofs as they travel (REST, CLI bundles): the types, the
// bytes a tree head signature covers (JCS of the head without `signature`), signing, and the
// checks anyone can run offline. Pure: no store, so the standalone verifier uses it as is.
import { base64urlDecode, base64urlEncode, canonicalBytes, crypto, hexDecode, isDigest, publicKeyFromPeerId, type Ed25519Signer } from '../crypto/index.ts';
import type { SignatureCheck } from './receipt.ts';

export interface SignedTreeHead {
  size: number;
  root: string;
  timestamp: string;
  signer: string;
  signature: string;
}

export interface InclusionProof {
  receipt_id: string;
  index: number;
  tree_size: number;
  /** Leaf data is the receipt hash bytes; the proof's hashes in hex. */
  leaf_hash: string;
  path: string[];
}

/** Longest proof path accepted: a tree of 2^64 leaves needs 64 hashes. */
export const MAX_PROOF_HASHES = 64;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
const HEX_HASH = /^[0-9a-f]{64}$/;

/** Signs a tree head over `size` leaves with root `root` (32 bytes). */
export function signTreeHead(size: number, root: string, now: number, signer: Ed25519Signer, signerId: string): SignedTreeHead {
  const body = { size, root, timestamp: new Date(now).toISOString(), signer: signerId };
  return { ...body, signature: base64urlEncode(signer.sign(canonicalBytes(body))) };
}

/** Shape check of an untrusted tree head; the reason it is not one, or null. */
export function treeHeadShapeProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const h = value as Record<string, unknown>;
  if (Object.keys(h).length !== 5) return 'must have exactly size, root, timestamp, signer, signature';
  if (typeof h['size'] !== 'number' || !Number.isSafeInteger(h['size']) || h['size'] < 0) return 'size must be a non-negative integer';
  if (!isDigest(h['root'])) return 'root must be sha256:<64 hex>';
  if (typeof h['timestamp'] !== 'string' || Number.isNaN(Date.parse(h['timestamp']))) return 'timestamp must be RFC 3339';
  if (typeof h['signer'] !== 'string') return 'signer must be a PeerId';
  if (typeof h['signature'] !== 'string' || !SIGNATURE_PATTERN.test(h['signature'])) return 'signature must be 64 bytes of base64url';
  return null;
}

/** A shape-checked tree head's signature check, or why there can be none; `publicKey` overrides the signer's key. */
export function treeHeadSignature(sth: SignedTreeHead, publicKey?: Uint8Array): SignatureCheck | string {
  const { signature, ...body } = sth;
  let key: Uint8Array;
  try {
    key = publicKey ?? publicKeyFromPeerId(sth.signer);
  } catch {
    return 'signer is not an ed25519 PeerId';
  }
  try {
    return { publicKey: key, message: canonicalBytes(body), signature: base64urlDecode(signature) };
  } catch {
    return 'signature is not base64url';
  }
}

/** Verifies a signed tree head's signature with `publicKey` (synchronous; never throws). */
export function verifyTreeHead(sth: SignedTreeHead, publicKey: Uint8Array): boolean {
  const check = treeHeadSignature(sth, publicKey);
  return typeof check !== 'string' && crypto.verify(check.publicKey, check.message, check.signature);
}

/** The root of a shape-checked tree head as 32 bytes. */
export function treeHeadRoot(sth: SignedTreeHead): Uint8Array {
  return hexDecode(sth.root.slice('sha256:'.length));
}

/** Proof hashes (lowercase hex) → bytes, or null if any is not a 32-byte hex hash or there are too many. */
export function proofHashes(path: unknown): Uint8Array[] | null {
  if (!Array.isArray(path) || path.length > MAX_PROOF_HASHES) return null;
  const out: Uint8Array[] = [];
  for (const h of path) {
    if (typeof h !== 'string' || !HEX_HASH.test(h)) return null;
    out.push(hexDecode(h));
  }
  return out;
}
