// Quorum certificates a receipt can carry, checkable offline by anyone holding the membership
// (ids, public keys, cluster id): f+1 matching signed REPLYs (the result is what at least one
// correct replica computed) or 2f+1 COMMITs (the request was ordered at seq). Pure and
// dependency-free apart from src/crypto: receipts, the CLI and the browser verifier call
// verifyCertificate(cert, membership). Binary form and its base64url text in PROTOCOL.md.
import { base64urlDecode, base64urlEncode } from '../../crypto/encoding.ts';
import { PbftAuth, bytesEqual, sha256Ed25519 } from './auth.ts';
import { ByteReader, ByteWriter, DIGEST_BYTES, PBFT_WIRE_VERSION, SIGNATURE_BYTES, decodeRequest, encodeRequest, type CodecLimits } from './codec.ts';
import { PbftDecodeError, PbftMembershipError } from './errors.ts';
import { inclusionPath, rootFromPath } from './merkle.ts';
import { MAX_REPLICAS, PBFT_DEFAULTS, type Endorsement, type Membership, type PbftVerifier, type ReplyMessage, type RequestMessage } from './types.ts';

/** One replica's signed reply root and the path from the request's leaf to it. */
export interface ReplySignature {
  readonly replica: number;
  readonly view: number;
  readonly root: Uint8Array;
  readonly index: number;
  readonly leafCount: number;
  readonly path: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

/** f+1 replicas executed request (client, timestamp) at `seq` with a result hashing to `resultDigest`. */
export interface ReplyCertificate {
  readonly kind: 'replies';
  readonly client: string;
  readonly timestamp: number;
  readonly seq: number;
  readonly resultDigest: Uint8Array;
  readonly replies: readonly ReplySignature[];
}

/** 2f+1 replicas committed the batch `batchDigest` at `seq`, and `request` is in it. */
export interface CommitCertificate {
  readonly kind: 'commits';
  readonly view: number;
  readonly seq: number;
  readonly batchDigest: Uint8Array;
  readonly request: RequestMessage;
  readonly index: number;
  readonly leafCount: number;
  readonly path: readonly Uint8Array[];
  readonly commits: readonly Endorsement[];
}

export type QuorumCertificate = ReplyCertificate | CommitCertificate;

export type CertificateProblem = 'membership' | 'tooFewSigners' | 'duplicateSigner' | 'nonMember' | 'badProof' | 'badSignature';

export type CertificateVerdict =
  | { readonly ok: true; readonly kind: QuorumCertificate['kind']; readonly seq: number; readonly client: string; readonly timestamp: number }
  | { readonly ok: false; readonly problem: CertificateProblem; readonly detail: string };

function fail(problem: CertificateProblem, detail: string): CertificateVerdict {
  return { ok: false, problem, detail };
}

const auths = new WeakMap<Membership, Map<PbftVerifier, PbftAuth>>();

/**
 * One PbftAuth per (membership object, verifier): a verifier checking many receipts validates
 * the membership once, and a client that shares it (the relay's gateway) has the reply roots it
 * already checked remembered when it checks their certificate.
 */
export function authFor(membership: Membership, verifier: PbftVerifier): PbftAuth {
  let byVerifier = auths.get(membership);
  if (byVerifier === undefined) {
    byVerifier = new Map();
    auths.set(membership, byVerifier);
  }
  let auth = byVerifier.get(verifier);
  if (auth === undefined) {
    auth = new PbftAuth(membership, verifier);
    byVerifier.set(verifier, auth);
  }
  return auth;
}

/** Signers: at least `need`, distinct, members. */
function signersProblem(replicas: readonly number[], need: number, n: number): CertificateVerdict | undefined {
  if (replicas.length < need) return fail('tooFewSigners', `${replicas.length} signatures, ${need} needed`);
  const seen = new Set<number>();
  for (const r of replicas) {
    if (!Number.isInteger(r) || r < 0 || r >= n) return fail('nonMember', `replica index ${r} not in a membership of ${n}`);
    if (seen.has(r)) return fail('duplicateSigner', `replica ${r} signs twice`);
    seen.add(r);
  }
  return undefined;
}

/**
 * Checks a certificate against a membership: the right number of distinct member signatures,
 * each valid over the rebuilt message in the membership's signing domain, and the Merkle path
 * from the request (or its reply leaf) to the signed root. Never throws.
 */
export function verifyCertificate(cert: QuorumCertificate, membership: Membership, verifier: PbftVerifier = sha256Ed25519): CertificateVerdict {
  let auth: PbftAuth;
  try {
    auth = authFor(membership, verifier);
  } catch (err) {
    if (err instanceof PbftMembershipError) return fail('membership', err.message);
    throw err;
  }
  const { n, f } = auth.quorums;
  if (cert.kind === 'replies') {
    const bad = signersProblem(cert.replies.map((r) => r.replica), f + 1, n);
    if (bad !== undefined) return bad;
    const leaf = auth.replyLeafFromDigest(cert.client, cert.timestamp, cert.resultDigest);
    for (const r of cert.replies) {
      const root = rootFromPath(verifier.digest, leaf, r.index, r.leafCount, r.path);
      if (root === undefined || !bytesEqual(root, r.root)) return fail('badProof', `replica ${r.replica}: the reply leaf is not under its signed root`);
      if (!auth.verifyReplyRoot(r.view, cert.seq, r.root, r.replica, r.signature)) return fail('badSignature', `replica ${r.replica}: reply signature`);
    }
    return { ok: true, kind: 'replies', seq: cert.seq, client: cert.client, timestamp: cert.timestamp };
  }
  const bad = signersProblem(cert.commits.map((c) => c.replica), 2 * f + 1, n);
  if (bad !== undefined) return bad;
  const root = rootFromPath(verifier.digest, auth.requestLeaf(cert.request), cert.index, cert.leafCount, cert.path);
  if (root === undefined || !bytesEqual(root, cert.batchDigest)) return fail('badProof', 'the request is not in the committed batch');
  for (const c of cert.commits) {
    if (!auth.verifyCommit(cert.view, cert.seq, cert.batchDigest, c.replica, c.signature)) return fail('badSignature', `replica ${c.replica}: commit signature`);
  }
  return { ok: true, kind: 'commits', seq: cert.seq, client: cert.request.client, timestamp: cert.request.timestamp };
}

/** The certificate of f+1 (or more) verified, matching replies (same request, seq and result digest). */
export function replyCertificate(replies: readonly ReplyMessage[], resultDigest: Uint8Array): ReplyCertificate {
  const first = replies[0];
  if (first === undefined) throw new RangeError('replyCertificate needs replies');
  return {
    kind: 'replies',
    client: first.client,
    timestamp: first.timestamp,
    seq: first.seq,
    resultDigest,
    replies: replies.map((r) => ({ replica: r.replica, view: r.view, root: r.root, index: r.index, leafCount: r.leafCount, path: r.path, signature: r.signature })),
  };
}

/** The commit certificate of request `index` of a decided batch (from PbftReplica.commitProof). */
export function commitCertificate(
  auth: PbftAuth,
  proof: { view: number; seq: number; digest: Uint8Array; commits: readonly Endorsement[]; batch: readonly RequestMessage[] },
  index: number,
): CommitCertificate {
  const request = proof.batch[index];
  if (request === undefined) throw new RangeError(`request ${index} of a batch of ${proof.batch.length}`);
  const leaves = proof.batch.map((r) => auth.requestLeaf(r));
  return {
    kind: 'commits',
    view: proof.view,
    seq: proof.seq,
    batchDigest: proof.digest,
    request,
    index,
    leafCount: leaves.length,
    path: inclusionPath(auth.verifier.digest, leaves, index),
    commits: proof.commits,
  };
}

// ---- binary form ---------------------------------------------------------------------------

const REPLY_CERT = 0x40;
const COMMIT_CERT = 0x41;
/** Path elements of one proof (batches hold at most 65,535 requests). */
const MAX_PATH = 16;

function writePath(w: ByteWriter, index: number, leafCount: number, path: readonly Uint8Array[]): void {
  w.u16(index);
  w.u16(leafCount);
  w.u8(path.length);
  for (const p of path) w.raw(p);
}

export function encodeCertificate(cert: QuorumCertificate): Uint8Array {
  const w = new ByteWriter();
  w.u8(PBFT_WIRE_VERSION);
  if (cert.kind === 'replies') {
    w.u8(REPLY_CERT);
    w.str(cert.client);
    w.u64(cert.timestamp);
    w.u64(cert.seq);
    w.raw(cert.resultDigest);
    w.u16(cert.replies.length);
    for (const r of cert.replies) {
      w.u16(r.replica);
      w.u64(r.view);
      w.raw(r.root);
      writePath(w, r.index, r.leafCount, r.path);
      w.raw(r.signature);
    }
  } else {
    w.u8(COMMIT_CERT);
    w.u64(cert.view);
    w.u64(cert.seq);
    w.raw(cert.batchDigest);
    w.bytes(encodeRequest(cert.request));
    writePath(w, cert.index, cert.leafCount, cert.path);
    w.u16(cert.commits.length);
    for (const c of cert.commits) {
      w.u16(c.replica);
      w.raw(c.signature);
    }
  }
  return w.finish();
}

const CERT_LIMITS: CodecLimits = { ...PBFT_DEFAULTS };

function readPath(r: ByteReader): { index: number; leafCount: number; path: Uint8Array[] } {
  const index = r.u16();
  const leafCount = r.u16();
  const n = r.u8();
  if (n > MAX_PATH) throw new PbftDecodeError(`proof path of ${n} over ${MAX_PATH}`);
  const path: Uint8Array[] = [];
  for (let i = 0; i < n; i++) path.push(r.raw(DIGEST_BYTES));
  return { index, leafCount, path };
}

/** Throws PbftDecodeError on anything malformed (signatures are checked by verifyCertificate). */
export function decodeCertificate(bytes: Uint8Array, limits: CodecLimits = CERT_LIMITS): QuorumCertificate {
  const r = new ByteReader(bytes);
  if (r.u8() !== PBFT_WIRE_VERSION) throw new PbftDecodeError('unknown certificate version');
  const kind = r.u8();
  if (kind === REPLY_CERT) {
    const client = r.str(limits.maxClientIdBytes, 'client id');
    const timestamp = r.u64();
    const seq = r.u64();
    const resultDigest = r.raw(DIGEST_BYTES);
    const n = r.count(MAX_REPLICAS, 'replies');
    const replies: ReplySignature[] = [];
    for (let i = 0; i < n; i++) {
      const replica = r.replica();
      const view = r.u64();
      const root = r.raw(DIGEST_BYTES);
      const p = readPath(r);
      replies.push({ replica, view, root, ...p, signature: r.raw(SIGNATURE_BYTES) });
    }
    r.end();
    return { kind: 'replies', client, timestamp, seq, resultDigest, replies };
  }
  if (kind === COMMIT_CERT) {
    const view = r.u64();
    const seq = r.u64();
    const batchDigest = r.raw(DIGEST_BYTES);
    const request = decodeRequest(r.bytes(1 << 20, 'request'), limits);
    const p = readPath(r);
    const n = r.count(MAX_REPLICAS, 'commits');
    const commits: Endorsement[] = [];
    for (let i = 0; i < n; i++) commits.push({ replica: r.replica(), signature: r.raw(SIGNATURE_BYTES) });
    r.end();
    return { kind: 'commits', view, seq, batchDigest, request, ...p, commits };
  }
  throw new PbftDecodeError(`unknown certificate kind ${kind}`);
}

/** The text form a receipt carries: base64url (no padding) of the binary certificate. */
export function certificateToText(cert: QuorumCertificate): string {
  return base64urlEncode(encodeCertificate(cert));
}

/** Throws PbftDecodeError when the text is not a certificate. */
export function certificateFromText(text: string): QuorumCertificate {
  let bytes: Uint8Array;
  try {
    bytes = base64urlDecode(text);
  } catch (err) {
    throw new PbftDecodeError(`certificate text: ${(err as Error).message}`);
  }
  return decodeCertificate(bytes);
}
