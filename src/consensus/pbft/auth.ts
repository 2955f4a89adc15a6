// Who may say what, and how it is checked: the membership rules (n = 3f + 1, quorums), the
// signing digest of a message (digest(domain ‖ signed part), signed with ed25519 in production),
// batch digests (Merkle roots over request encodings), and the production SHA-256 + ed25519
// crypto from src/crypto. Digests of immutable message objects are cached by identity.
import adapter from '#crypto-adapter';
import { agreementSignedPart, checkpointSignedPart, encodeRequest, replyLeafData, replySignedPart, signedPart } from './codec.ts';
import { PbftMembershipError } from './errors.ts';
import { leafHash, merkleRoot } from './merkle.ts';
import { MAX_REPLICAS, type Membership, type PbftMessage, type PbftSigner, type PbftVerifier, type RequestMessage } from './types.ts';

/** Prefix of every signing input: signatures of PBFT never verify as anything else. */
export const SIGNING_DOMAIN = 'hypersync/pbft/1';
/** Bytes of the cluster id in the signing domain. */
export const MAX_CLUSTER_ID_BYTES = 255;
/**
 * Reply-root signatures one PbftAuth remembers as valid (oldest forgotten first): a batch's
 * replies share one root signature per replica, so a client collecting them (the relay) checks
 * it once per batch, not once per request, and once more when it checks the certificate.
 */
export const MAX_VERIFIED_REPLY_ROOTS = 4096;

export interface Quorums {
  readonly n: number;
  readonly f: number;
}

/** Checks n = 3f + 1 (n >= 4), distinct ids and 32-byte keys; returns n and f. */
export function checkMembership(m: Membership): Quorums {
  const n = m.replicas.length;
  if (n < 4 || (n - 1) % 3 !== 0 || n > MAX_REPLICAS) throw new PbftMembershipError(`need n = 3f + 1 replicas (4, 7, 10, ... up to ${MAX_REPLICAS}), got ${n}`);
  if (new TextEncoder().encode(m.cluster).byteLength > MAX_CLUSTER_ID_BYTES) throw new PbftMembershipError('cluster id over 255 bytes');
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const r of m.replicas) {
    if (r.publicKey.byteLength !== 32) throw new PbftMembershipError(`replica ${r.id}: public key must be 32 bytes`);
    ids.add(r.id);
    keys.add(bytesKey(r.publicKey));
  }
  if (ids.size !== n || keys.size !== n) throw new PbftMembershipError('replica ids and keys must be distinct');
  return { n, f: (n - 1) / 3 };
}

/** A Map key for digests and keys (latin1, one char per byte). */
export function bytesKey(b: Uint8Array): string {
  // apply() over a typed array is several times faster than a spread here (hot path: every vote).
  return String.fromCharCode.apply(null, b as unknown as number[]);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The signing domain of a cluster: SIGNING_DOMAIN ‖ 0x00 ‖ u8 len ‖ cluster id (UTF-8). */
export function signingPrefix(cluster: string): Uint8Array {
  const tag = new TextEncoder().encode(SIGNING_DOMAIN);
  const id = new TextEncoder().encode(cluster);
  const out = new Uint8Array(tag.byteLength + 2 + id.byteLength);
  out.set(tag, 0);
  out[tag.byteLength] = 0;
  out[tag.byteLength + 1] = id.byteLength;
  out.set(id, tag.byteLength + 2);
  return out;
}

/**
 * Message digests for one cluster over one verifier. Caches by object identity, so messages
 * must never be mutated after creation (every field is readonly; the simulator's Byzantine
 * replicas build new objects).
 */
export class PbftAuth {
  readonly membership: Membership;
  readonly verifier: PbftVerifier;
  readonly quorums: Quorums;
  private readonly prefix: Uint8Array;
  private readonly signing = new WeakMap<object, Uint8Array>();
  private readonly leaves = new WeakMap<RequestMessage, Uint8Array>();
  /** digest ‖ signature of reply roots that verified (the digest binds view, seq, root, replica and cluster). */
  private readonly verifiedRoots = new Set<string>();
  /** Digest of the empty batch (a null request in a new view). */
  readonly nullDigest: Uint8Array;

  constructor(membership: Membership, verifier: PbftVerifier) {
    this.quorums = checkMembership(membership);
    this.membership = membership;
    this.verifier = verifier;
    this.prefix = signingPrefix(membership.cluster);
    this.nullDigest = merkleRoot(verifier.digest, []);
  }

  /** digest(domain ‖ signed part). */
  digestSignedPart(part: Uint8Array): Uint8Array {
    const buf = new Uint8Array(this.prefix.byteLength + part.byteLength);
    buf.set(this.prefix, 0);
    buf.set(part, this.prefix.byteLength);
    return this.verifier.digest(buf);
  }

  /** digest(domain ‖ (view, seq, digest, replica)) of a PRE-PREPARE, PREPARE or COMMIT. */
  agreementDigest(type: 'prePrepare' | 'prepare' | 'commit', view: number, seq: number, digest: Uint8Array, replica: number): Uint8Array {
    return this.verifier.digest(agreementSignedPart(type, view, seq, digest, replica, this.prefix));
  }

  checkpointDigest(seq: number, digest: Uint8Array, replica: number): Uint8Array {
    return this.verifier.digest(checkpointSignedPart(seq, digest, replica, this.prefix));
  }

  replyDigest(view: number, seq: number, root: Uint8Array, replica: number): Uint8Array {
    return this.verifier.digest(replySignedPart(view, seq, root, replica, this.prefix));
  }

  signingDigest(m: PbftMessage): Uint8Array {
    let d = this.signing.get(m);
    if (d === undefined) {
      switch (m.type) {
        case 'prePrepare':
        case 'prepare':
        case 'commit':
          d = this.agreementDigest(m.type, m.view, m.seq, m.digest, m.replica);
          break;
        case 'checkpoint':
          d = this.checkpointDigest(m.seq, m.digest, m.replica);
          break;
        case 'reply':
          d = this.replyDigest(m.view, m.seq, m.root, m.replica);
          break;
        default:
          d = this.digestSignedPart(signedPart(m));
      }
      this.signing.set(m, d);
    }
    return d;
  }

  /** Records the signing digest of a message just signed (saves recomputing it at receivers in one process). */
  remember(m: PbftMessage, digest: Uint8Array): void {
    this.signing.set(m, digest);
  }

  /** Does `signature` by member `replica` verify over `digest`? (false for a non-member index) */
  verifyDigest(replica: number, digest: Uint8Array, signature: Uint8Array): boolean {
    const member = this.membership.replicas[replica];
    if (member === undefined) return false;
    return this.verifier.verify(member.publicKey, digest, signature);
  }

  /** Verifies a replica message's own signature (`m.replica` signed it). */
  verifyMessage(m: Exclude<PbftMessage, RequestMessage>): boolean {
    return this.verifyDigest(m.replica, this.signingDigest(m), m.signature);
  }

  /** A plain (unbundled) request's signature; request-bundle.ts's RequestVerifier checks both kinds. */
  verifyRequest(r: RequestMessage, clientKey: Uint8Array): boolean {
    return this.verifier.verify(clientKey, this.signingDigest(r), r.signature);
  }

  verifyCommit(view: number, seq: number, digest: Uint8Array, replica: number, signature: Uint8Array): boolean {
    return this.verifyDigest(replica, this.agreementDigest('commit', view, seq, digest, replica), signature);
  }

  verifyPrepare(view: number, seq: number, digest: Uint8Array, replica: number, signature: Uint8Array): boolean {
    return this.verifyDigest(replica, this.agreementDigest('prepare', view, seq, digest, replica), signature);
  }

  verifyPrePrepare(view: number, seq: number, digest: Uint8Array, replica: number, signature: Uint8Array): boolean {
    return this.verifyDigest(replica, this.agreementDigest('prePrepare', view, seq, digest, replica), signature);
  }

  verifyCheckpoint(seq: number, digest: Uint8Array, replica: number, signature: Uint8Array): boolean {
    return this.verifyDigest(replica, this.checkpointDigest(seq, digest, replica), signature);
  }

  /** Remembers valid ones (MAX_VERIFIED_REPLY_ROOTS): only a signature that verified is ever taken on trust. */
  verifyReplyRoot(view: number, seq: number, root: Uint8Array, replica: number, signature: Uint8Array): boolean {
    const digest = this.replyDigest(view, seq, root, replica);
    const key = bytesKey(digest) + bytesKey(signature);
    if (this.verifiedRoots.has(key)) return true;
    if (!this.verifyDigest(replica, digest, signature)) return false;
    remember(this.verifiedRoots, key, MAX_VERIFIED_REPLY_ROOTS);
    return true;
  }

  /** Reply roots remembered as verified (bounded by MAX_VERIFIED_REPLY_ROOTS). */
  get verifiedReplyRoots(): number {
    return this.verifiedRoots.size;
  }

  /** Merkle leaf of a request: H(0x00 ‖ its encoding). */
  requestLeaf(r: RequestMessage): Uint8Array {
    let leaf = this.leaves.get(r);
    if (leaf === undefined) {
      leaf = leafHash(this.verifier.digest, encodeRequest(r));
      this.leaves.set(r, leaf);
    }
    return leaf;
  }

  batchDigest(batch: readonly RequestMessage[]): Uint8Array {
    return merkleRoot(
      this.verifier.digest,
      batch.map((r) => this.requestLeaf(r)),
    );
  }

  replyLeaf(client: string, timestamp: number, result: Uint8Array): Uint8Array {
    return this.replyLeafFromDigest(client, timestamp, this.verifier.digest(result));
  }

  /** Reply leaf: H(0x00 ‖ client ‖ timestamp ‖ digest(result)). */
  replyLeafFromDigest(client: string, timestamp: number, resultDigest: Uint8Array): Uint8Array {
    return leafHash(this.verifier.digest, replyLeafData(client, timestamp, resultDigest));
  }
}

/** Adds `key` to a set of signatures that verified, forgetting the oldest beyond `limit`. */
export function remember(set: Set<string>, key: string, limit: number): void {
  set.add(key);
  if (set.size > limit) {
    const oldest = set.values().next();
    if (oldest.done !== true) set.delete(oldest.value);
  }
}

/** SHA-256 and ed25519 from src/crypto (node:crypto on Node, @noble in browsers). */
export const sha256Ed25519: PbftVerifier = {
  digest: (bytes) => adapter.sha256(bytes),
  verify: (publicKey, digest, signature) => adapter.verify(publicKey, digest, signature),
};

/** An ed25519 signer from a 32-byte seed, with its public key. */
export function ed25519Signer(seed: Uint8Array): PbftSigner & { readonly publicKey: Uint8Array } {
  const s = adapter.createSigner(seed);
  return { publicKey: s.publicKey, sign: (digest) => s.sign(digest) };
}
