// Self-contained proof bundles: a receipt, its inclusion proof and the signed tree head it is
// proven against. Anyone can check one offline (pure; works in the browser).
import { hexDecode, hexEncode, publicKeyFromPeerId } from '../crypto/index.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import { checkSignature, receiptHashBytes, receiptShapeProblem, type Receipt } from './receipt.ts';
import { verifyTreeHead, type InclusionProof, type SignedTreeHead } from './log.ts';

export interface ProofBundle {
  receipt: Receipt;
  proof: InclusionProof;
  tree_head: SignedTreeHead;
}

/** Returns null when the bundle proves the receipt is in the signed tree, else the reason. */
export function proofBundleProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const { receipt, proof, tree_head: sth } = value as Partial<ProofBundle>;
  const shape = receiptShapeProblem(receipt);
  if (shape !== null) return `receipt: ${shape}`;
  const r = receipt as Receipt;
  const sig = checkSignature(r);
  if (sig !== null) return `receipt: ${sig}`;
  if (typeof proof !== 'object' || proof === null || !Array.isArray(proof.path) || typeof proof.index !== 'number' || typeof proof.tree_size !== 'number') return 'proof: malformed';
  if (typeof sth !== 'object' || sth === null || typeof sth.root !== 'string' || typeof sth.signer !== 'string') return 'tree_head: malformed';
  if (proof.index !== r.index) return `proof is for index ${proof.index}, the receipt has index ${r.index}`;
  if (proof.tree_size !== sth.size) return `proof is for a tree of ${proof.tree_size}, the tree head has ${sth.size}`;
  if (proof.receipt_id !== r.receipt_id) return 'proof: receipt_id is not the receipt\'s';
  let key: Uint8Array;
  try {
    key = publicKeyFromPeerId(sth.signer);
  } catch {
    return 'tree_head: signer is not an ed25519 PeerId';
  }
  if (!verifyTreeHead(sth, key)) return 'tree_head: signature does not verify';
  let path: Uint8Array[];
  let root: Uint8Array;
  try {
    path = proof.path.map((h) => hexDecode(String(h)));
    root = hexDecode(sth.root.replace(/^sha256:/, ''));
  } catch {
    return 'proof: hashes must be lowercase hex';
  }
  const leaf = leafHash(receiptHashBytes(r));
  // The bundle's own copy of the leaf hash must be the receipt's: a verifier shows what it proved.
  if (proof.leaf_hash !== hexEncode(leaf)) return 'proof: leaf_hash is not the receipt\'s leaf hash';
  if (!verifyInclusion(leaf, r.index, sth.size, path, root)) return 'inclusion proof does not lead to the signed root';
  return null;
}
