// Quorum certificates: where receipts ordered by a Byzantine-tolerant protocol plug in. A
// certificate (PBFT: f+1 matching signed replies, or 2f+1 commits) is checked against the
// cluster's membership by a *scheme* that the consensus layer defines (src/consensus/pbft
// owns the format); the verifier knows no protocol. It checks the receipt itself (the seed's
// five steps), hands the scheme the verified receipt and its own native signature check, and
// reports the scheme's verdict under one code. No scheme ships here yet: PBFT's lands with it.
import { crypto } from '../crypto/index.ts';
import { verifyReceipt, type Receipt, type ReceiptOptions, type VerifyFailure } from '../receipts/receipt.ts';

/** One ed25519 check (raw 32-byte key, message, 64-byte signature); never rejects. */
export type SignatureVerifier = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>;

export type CertificateVerdict = { ok: true } | { ok: false; reason: string };

/**
 * A certificate format and its check. `Certificate` and `Membership` are the scheme's own
 * typed values (parse untrusted JSON into them at the edge); `verify` must not throw.
 */
export interface QuorumCertificateScheme<Certificate, Membership> {
  /** Names the format (e.g. `pbft/1`); reported with every failure. */
  readonly id: string;
  /** Does `certificate` show a quorum of `membership` agreeing on exactly this (already verified) receipt's content? */
  verify(certificate: Certificate, membership: Membership, receipt: Receipt, verifySignature: SignatureVerifier): Promise<CertificateVerdict>;
}

export type CertifiedVerdict = { ok: true } | VerifyFailure | { ok: false; code: 'CERTIFICATE_INVALID'; scheme: string; reason: string };

/** The receipt's five steps (with `opts`), then its quorum certificate against the membership. */
export async function verifyCertifiedReceipt<Certificate, Membership>(
  receipt: unknown,
  certificate: Certificate,
  membership: Membership,
  scheme: QuorumCertificateScheme<Certificate, Membership>,
  opts: ReceiptOptions = {},
): Promise<CertifiedVerdict> {
  const own = await verifyReceipt(receipt, opts);
  if (!own.ok) return own;
  let verdict: CertificateVerdict;
  try {
    verdict = await scheme.verify(certificate, membership, receipt as Receipt, crypto.verifyAsync);
  } catch (e) {
    // A scheme that throws on hostile input is a bug there, but the verdict stays a verdict.
    verdict = { ok: false, reason: `scheme threw: ${e instanceof Error ? e.message : String(e)}` };
  }
  return verdict.ok ? { ok: true } : { ok: false, code: 'CERTIFICATE_INVALID', scheme: scheme.id, reason: verdict.reason };
}
