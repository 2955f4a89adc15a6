// Offline checks of what a log hands out: proof bundles (a receipt, its RFC 9162 inclusion
// proof and the signed tree head it is proven against) and consistency proofs between two
// signed tree heads. Pure (no store); every check runs the cheap parts first and ends with
// the signatures, which the synchronous form verifies one by one and the asynchronous form
// (native WebCrypto in a browser) all at once.
import { crypto, hexEncode } from '../crypto/index.ts';
import { KeyCache } from '../crypto/key-cache.ts';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.ts';
import { BAD_SIGNATURE, prepareReceipt, receiptShapeProblem, type Receipt, type ReceiptFailureCode, type SignatureCheck } from './receipt.ts';
import { proofHashes, treeHeadRoot, treeHeadShapeProblem, treeHeadSignature, type InclusionProof, type SignedTreeHead } from './tree-head.ts';

export interface ProofBundle {
  receipt: Receipt;
  proof: InclusionProof;
  tree_head: SignedTreeHead;
}

/** Two signed heads of one log and the RFC 9162 proof that the first is a prefix of the second. */
export interface ConsistencyBundle {
  first: SignedTreeHead;
  second: SignedTreeHead;
  /** Hashes in lowercase hex, as `GET …/consistency` and ReceiptLog.consistencyProof() give them. */
  proof: string[];
}

export type ProofFailureCode =
  | ReceiptFailureCode
  | 'BUNDLE_MALFORMED'
  | 'TREE_HEAD_MALFORMED'
  | 'TREE_HEAD_SIGNATURE_INVALID'
  | 'TREE_HEAD_SIGNER_MISMATCH'
  | 'PROOF_MALFORMED'
  | 'PROOF_MISMATCH'
  | 'INCLUSION_PROOF_INVALID'
  | 'CONSISTENCY_PROOF_INVALID';

export type ProofFailure = { ok: false; code: ProofFailureCode; reason: string };
export type ProofVerdict = { ok: true } | ProofFailure;

function failure(code: ProofFailureCode, reason: string): ProofFailure {
  return { ok: false, code, reason };
}

/**
 * Tree heads whose signatures verified, remembered at most: a client checks many receipts
 * against one head (every bundle the relay serves between two heads carries the same one),
 * and ed25519 verification is deterministic, so a head verified once needs no second check.
 * Keyed by every signed field and the signature; only successes are kept; oldest out first.
 */
export const MAX_VERIFIED_TREE_HEADS = 256;
const verifiedHeads = new KeyCache<true>(MAX_VERIFIED_TREE_HEADS);

function headKey(h: SignedTreeHead): string {
  return JSON.stringify([h.size, h.root, h.timestamp, h.signer, h.signature]);
}

/** A signature still to check; `head` names a tree head, whose verdict is remembered. */
interface PendingSignature {
  check: SignatureCheck;
  failure: ProofFailure;
  head?: string;
}

/** Everything is checked but these signatures; each fails as its `failure` when it does not verify. */
type Pending = ProofFailure | { signatures: PendingSignature[] };

/** The signatures left once remembered tree heads are taken out. */
function unverified(signatures: PendingSignature[]): PendingSignature[] {
  return signatures.filter((s) => s.head === undefined || verifiedHeads.get(s.head) === undefined);
}

function remember(signatures: PendingSignature[]): void {
  for (const s of signatures) if (s.head !== undefined) verifiedHeads.getOrCreate(s.head, () => true);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A shape-checked tree head's signature check, or the failure; `signer` pins the expected PeerId. */
function headSignature(value: unknown, what: string, signer: string | undefined): ProofFailure | { head: SignedTreeHead; signature: PendingSignature } {
  const shape = treeHeadShapeProblem(value);
  if (shape !== null) return failure('TREE_HEAD_MALFORMED', `${what}: ${shape}`);
  const head = value as SignedTreeHead;
  if (signer !== undefined && head.signer !== signer) return failure('TREE_HEAD_SIGNER_MISMATCH', `${what}: signed by ${head.signer}, expected ${signer}`);
  const check = treeHeadSignature(head);
  if (typeof check === 'string') return failure('TREE_HEAD_MALFORMED', `${what}: ${check}`);
  return { head, signature: { check, failure: failure('TREE_HEAD_SIGNATURE_INVALID', `${what}: signature does not verify`), head: headKey(head) } };
}

function prepareBundle(value: unknown, signer: string | undefined): Pending {
  if (!isObject(value)) return failure('BUNDLE_MALFORMED', 'not a JSON object');
  const { receipt, proof, tree_head: sth } = value;
  const shape = receiptShapeProblem(receipt);
  if (shape !== null) return failure('RECEIPT_MALFORMED', `receipt: ${shape}`);
  const r = receipt as Receipt;
  if (signer !== undefined && r.signer !== signer) return failure('RECEIPT_SIGNATURE_INVALID', `receipt: signed by ${r.signer}, expected ${signer}`);
  const prepared = prepareReceipt(r);
  if ('problem' in prepared) return failure('RECEIPT_SIGNATURE_INVALID', `receipt: ${prepared.problem}`);
  if (!isObject(proof) || typeof proof['index'] !== 'number' || typeof proof['tree_size'] !== 'number') return failure('PROOF_MALFORMED', 'proof: malformed');
  const path = proofHashes(proof['path']);
  if (path === null) return failure('PROOF_MALFORMED', 'proof: path must be at most 64 hashes in lowercase hex');
  const head = headSignature(sth, 'tree_head', signer);
  if ('ok' in head) return head;
  if (proof['index'] !== r.index) return failure('PROOF_MISMATCH', `proof is for index ${proof['index']}, the receipt has index ${r.index}`);
  if (proof['tree_size'] !== head.head.size) return failure('PROOF_MISMATCH', `proof is for a tree of ${proof['tree_size']}, the tree head has ${head.head.size}`);
  // The bundle's own copies of the receipt id and leaf hash must be the receipt's: a verifier shows what it proved.
  if (proof['receipt_id'] !== r.receipt_id) return failure('PROOF_MISMATCH', "proof: receipt_id is not the receipt's");
  const leaf = leafHash(prepared.hash);
  if (proof['leaf_hash'] !== hexEncode(leaf)) return failure('PROOF_MISMATCH', "proof: leaf_hash is not the receipt's leaf hash");
  if (!verifyInclusion(leaf, r.index, head.head.size, path, treeHeadRoot(head.head))) return failure('INCLUSION_PROOF_INVALID', 'inclusion proof does not lead to the signed root');
  return {
    signatures: [
      { check: prepared.check, failure: failure('RECEIPT_SIGNATURE_INVALID', `receipt: ${BAD_SIGNATURE}`) },
      head.signature,
    ],
  };
}

function prepareConsistency(value: unknown, signer: string | undefined): Pending {
  if (!isObject(value)) return failure('BUNDLE_MALFORMED', 'not a JSON object');
  const first = headSignature(value['first'], 'first', signer);
  if ('ok' in first) return first;
  const second = headSignature(value['second'], 'second', signer ?? first.head.signer);
  if ('ok' in second) return second;
  const proof = proofHashes(value['proof']);
  if (proof === null) return failure('PROOF_MALFORMED', 'proof must be at most 64 hashes in lowercase hex');
  const [a, b] = [first.head, second.head];
  if (a.size > b.size) return failure('PROOF_MISMATCH', `the first head (size ${a.size}) is larger than the second (size ${b.size})`);
  if (!verifyConsistency(a.size, b.size, treeHeadRoot(a), treeHeadRoot(b), proof)) {
    return failure('CONSISTENCY_PROOF_INVALID', `the tree of size ${b.size} does not extend the tree of size ${a.size}`);
  }
  return { signatures: [first.signature, second.signature] };
}

function finishSync(pending: Pending): ProofVerdict {
  if ('ok' in pending) return pending;
  const left = unverified(pending.signatures);
  for (const s of left) if (!crypto.verify(s.check.publicKey, s.check.message, s.check.signature)) return s.failure;
  remember(left);
  return { ok: true };
}

async function finishAsync(pending: Pending): Promise<ProofVerdict> {
  if ('ok' in pending) return pending;
  const left = unverified(pending.signatures);
  const holds = await Promise.all(left.map((s) => crypto.verifyAsync(s.check.publicKey, s.check.message, s.check.signature)));
  const bad = left.find((_, i) => !holds[i]);
  if (bad !== undefined) return bad.failure;
  remember(left);
  return { ok: true };
}

export interface ProofOptions {
  /** Expected signer PeerId of the receipt and the tree head(s). */
  signer?: string;
}

/** Returns null when the bundle proves the receipt is in the signed tree, else the reason (synchronous). */
export function proofBundleProblem(value: unknown, opts: ProofOptions = {}): string | null {
  const verdict = finishSync(prepareBundle(value, opts.signer));
  return verdict.ok ? null : verdict.reason;
}

/**
 * A receipt is in the tree its signed head commits to: the receipt's step 1 (shape, id,
 * signature), the head's signature, and the RFC 9162 inclusion proof from the receipt's leaf
 * to the head's root. Steps 2-5 need the chain or the inputs: see verifyReceipt/verifyChain.
 */
export async function verifyProofBundle(value: unknown, opts: ProofOptions = {}): Promise<ProofVerdict> {
  return finishAsync(prepareBundle(value, opts.signer));
}

/** Both heads are signed by one signer, and the second tree extends the first (RFC 9162 consistency). */
export async function verifyConsistencyBundle(value: unknown, opts: ProofOptions = {}): Promise<ProofVerdict> {
  return finishAsync(prepareConsistency(value, opts.signer));
}

/** A signed tree head on its own: its shape and its signer's signature (`signer` pins the PeerId). */
export async function verifySignedTreeHead(value: unknown, opts: ProofOptions = {}): Promise<ProofVerdict> {
  const head = headSignature(value, 'tree_head', opts.signer);
  return finishAsync('ok' in head ? head : { signatures: [head.signature] });
}
