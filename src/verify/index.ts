// `hypersync/verify`: the standalone verifier for receipts, chains, proofs and quorum
// certificates. No libp2p, storage or network code: it runs in a page, a worker and Node.
//
//   import { verifyProofBundle, verifyChain } from 'hypersync/verify';
//   const bundle = await (await fetch(url)).json();       // GET /api/v1/receipts/:id, or `hypersync receipts prove`
//   const v = await verifyProofBundle(bundle);             // {ok: true} | {ok: false, code, reason}
//   const chain = await verifyChain(receipts, { signer }); // the seed's five steps on every receipt, in order
//
// Every check resolves to a verdict and never throws on hostile input. Signatures go through
// the platform adapter picked at build time (package.json `imports`): node:crypto on Node,
// WebCrypto Ed25519 in browsers that have it (detected once, at load), @noble otherwise.
import { crypto } from '../crypto/index.ts';
import type { CryptoAdapter } from '../crypto/types.ts';

export {
  ChainVerifier, DEFAULT_MAX_FUTURE_SKEW_MS, GENESIS_HASH, MAX_SIGNATURES_IN_FLIGHT, receiptHash, STEP_CODES, STEPS, verifyChain, verifyReceipt,
  type ChainOptions, type Evidence, type Receipt, type ReceiptFailureCode, type ReceiptOptions, type StepName, type VerifyFailure, type VerifyResult,
} from '../receipts/receipt.ts';
export {
  verifyConsistencyBundle, verifyProofBundle, verifySignedTreeHead,
  type ConsistencyBundle, type ProofBundle, type ProofFailure, type ProofFailureCode, type ProofOptions, type ProofVerdict,
} from '../receipts/proof.ts';
export { MAX_PROOF_HASHES, type InclusionProof, type SignedTreeHead } from '../receipts/tree-head.ts';
export { leafHash, nodeHash, verifyConsistency, verifyInclusion } from '../receipts/merkle.ts';
export { verifyCertifiedReceipt, type CertificateVerdict, type CertifiedVerdict, type QuorumCertificateScheme, type SignatureVerifier } from './certificate.ts';

/** Which ed25519 implementation this build verifies with: `node`, `webcrypto` or `noble`. */
export const cryptoBackend: CryptoAdapter['name'] = crypto.name;
// PBFT's certificate scheme: a receipt of a PBFT execution and the certificate it travels with,
// checked against the cluster's membership ({cluster, replicas: [PeerId, ...]}).
export {
  carriedCertificateFromJson, membershipFromJson, pbftCertificateScheme, PBFT_CERTIFICATE_SCHEME, verifyCarriedCertificate,
  type CarriedCertificate, type MembershipJson,
} from '../consensus/pbft/receipt-certificate.ts';
