// View-change proofs (Castro & Liskov TOCS 2002 §4.4, signature variant): checking a
// checkpoint proof, a prepared certificate, a VIEW-CHANGE and a NEW-VIEW, and computing the
// NEW-VIEW's order O from its view-change set V. Pure: every signature check goes through
// `ProofContext.verified`, which the replica uses to count verifications.
import { bytesEqual, bytesKey, type PbftAuth } from './auth.ts';
import type { DropReason } from './errors.ts';
import type { CheckpointProof, Endorsement, NewViewMessage, PreparedCertificate, ViewChangeMessage } from './types.ts';

/** The digest of the initial state's checkpoint (seq 0 needs no signatures). */
export const GENESIS_DIGEST = new Uint8Array(32);

export interface ProofContext {
  readonly auth: PbftAuth;
  /** L: certificates above a checkpoint must lie in (seq, seq + L]. */
  readonly watermarkWindow: number;
  /** Records one signature verification and passes its result through. */
  readonly verified: (ok: boolean) => boolean;
}

export function primaryOf(view: number, n: number): number {
  return view % n;
}

/** At least `need` endorsements from distinct members, each verifying; `exclude` may not sign. */
function checkEndorsements(
  ctx: ProofContext,
  list: readonly Endorsement[],
  need: number,
  verify: (e: Endorsement) => boolean,
  exclude = -1,
): boolean {
  const { n } = ctx.auth.quorums;
  if (list.length < need || list.length > n) return false;
  const seen = new Set<number>();
  for (const e of list) {
    if (e.replica >= n || e.replica === exclude || seen.has(e.replica)) return false;
    seen.add(e.replica);
  }
  for (const e of list) if (!ctx.verified(verify(e))) return false;
  return true;
}

/** 2f+1 CHECKPOINTs for (seq, digest); seq 0 is the genesis state and carries none. */
export function checkCheckpointProof(ctx: ProofContext, p: CheckpointProof): boolean {
  if (p.seq === 0) return p.signatures.length === 0 && bytesEqual(p.digest, GENESIS_DIGEST);
  const { f } = ctx.auth.quorums;
  return checkEndorsements(ctx, p.signatures, 2 * f + 1, (e) => ctx.auth.verifyCheckpoint(p.seq, p.digest, e.replica, e.signature));
}

/** A pre-prepare by the primary of `c.view` and 2f prepares by other replicas, all for (view, seq, digest). */
export function checkPreparedCertificate(ctx: ProofContext, c: PreparedCertificate): boolean {
  const { n, f } = ctx.auth.quorums;
  const primary = primaryOf(c.view, n);
  if (!ctx.verified(ctx.auth.verifyPrePrepare(c.view, c.seq, c.digest, primary, c.prePrepare))) return false;
  return checkEndorsements(ctx, c.prepares, 2 * f, (e) => ctx.auth.verifyPrepare(c.view, c.seq, c.digest, e.replica, e.signature), primary);
}

/** Why a VIEW-CHANGE is invalid, or undefined when it is valid (signature included). */
export function viewChangeProblem(ctx: ProofContext, vc: ViewChangeMessage): DropReason | undefined {
  if (vc.replica >= ctx.auth.quorums.n) return 'nonMember';
  if (!ctx.verified(ctx.auth.verifyMessage(vc))) return 'badSignature';
  const low = vc.checkpoint.seq;
  if (vc.prepared.length > ctx.watermarkWindow) return 'badCertificate';
  const seqs = new Set<number>();
  for (const c of vc.prepared) {
    if (c.seq <= low || c.seq > low + ctx.watermarkWindow || c.view >= vc.view || seqs.has(c.seq)) return 'badCertificate';
    seqs.add(c.seq);
  }
  if (!checkCheckpointProof(ctx, vc.checkpoint)) return 'badCertificate';
  for (const c of vc.prepared) if (!checkPreparedCertificate(ctx, c)) return 'badCertificate';
  return undefined;
}

export interface NewViewOrder {
  /** The latest stable checkpoint in V (min-s) and its proof. */
  readonly checkpoint: CheckpointProof;
  /** max-s: the highest sequence number O covers (>= checkpoint.seq). */
  readonly maxSeq: number;
  /** One entry per seq in (min-s, max-s]: the digest prepared in the highest view, or the null digest. */
  readonly order: readonly { readonly seq: number; readonly digest: Uint8Array }[];
}

/** O from V (TOCS 2002 §4.4): deterministic, so every replica recomputes and checks it. */
export function computeNewViewOrder(viewChanges: readonly ViewChangeMessage[], nullDigest: Uint8Array): NewViewOrder {
  let checkpoint: CheckpointProof | undefined;
  for (const vc of viewChanges) if (checkpoint === undefined || vc.checkpoint.seq > checkpoint.seq) checkpoint = vc.checkpoint;
  if (checkpoint === undefined) throw new RangeError('computeNewViewOrder needs at least one view change');
  const minSeq = checkpoint.seq;
  const best = new Map<number, PreparedCertificate>();
  let maxSeq = minSeq;
  for (const vc of viewChanges) {
    for (const c of vc.prepared) {
      if (c.seq <= minSeq) continue;
      if (c.seq > maxSeq) maxSeq = c.seq;
      const cur = best.get(c.seq);
      // Two certificates of one view for different digests need > f faulty replicas; break the tie deterministically.
      if (cur === undefined || c.view > cur.view || (c.view === cur.view && bytesKey(c.digest) < bytesKey(cur.digest))) best.set(c.seq, c);
    }
  }
  const order: { seq: number; digest: Uint8Array }[] = [];
  for (let s = minSeq + 1; s <= maxSeq; s++) order.push({ seq: s, digest: best.get(s)?.digest ?? nullDigest });
  return { checkpoint, maxSeq, order };
}

/**
 * Checks a NEW-VIEW: 2f+1 valid VIEW-CHANGEs for its view from distinct replicas, and an order
 * equal to the recomputed O, each entry signed by the new primary. `known` returns true for a
 * VIEW-CHANGE already validated (skips its signatures). Returns the order or a drop reason.
 */
export function checkNewView(
  ctx: ProofContext,
  nv: NewViewMessage,
  known: (vc: ViewChangeMessage) => boolean,
): NewViewOrder | DropReason {
  const { n, f } = ctx.auth.quorums;
  const primary = primaryOf(nv.view, n);
  if (nv.replica !== primary) return 'notPrimary';
  if (!ctx.verified(ctx.auth.verifyMessage(nv))) return 'badSignature';
  if (nv.viewChanges.length < 2 * f + 1 || nv.viewChanges.length > n) return 'badCertificate';
  const senders = new Set<number>();
  for (const vc of nv.viewChanges) {
    if (vc.view !== nv.view || senders.has(vc.replica)) return 'badCertificate';
    senders.add(vc.replica);
    if (!known(vc) && viewChangeProblem(ctx, vc) !== undefined) return 'badCertificate';
  }
  const o = computeNewViewOrder(nv.viewChanges, ctx.auth.nullDigest);
  if (o.order.length !== nv.prePrepares.length) return 'badCertificate';
  for (let i = 0; i < o.order.length; i++) {
    const want = o.order[i] as { seq: number; digest: Uint8Array };
    const got = nv.prePrepares[i] as { seq: number; digest: Uint8Array; signature: Uint8Array };
    if (got.seq !== want.seq || !bytesEqual(got.digest, want.digest)) return 'badCertificate';
    if (!ctx.verified(ctx.auth.verifyPrePrepare(nv.view, got.seq, got.digest, primary, got.signature))) return 'badCertificate';
  }
  return o;
}
