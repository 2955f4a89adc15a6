// What a Byzantine replica does in the PBFT simulator. Each runs the honest core (so it knows
// views, slots and requests) and an Adversary rewrites what it sends, per destination, and
// filters what it hears: it can equivocate, lie about digests and results, forge (it holds only
// its own key, so forgeries carry bad signatures or bad certificates), replay old traffic,
// go silent, censor one client, or be two replicas under one identity (twins, done by the
// network in pbft-simulator.ts). Every rewrite builds new objects (digests are cached by identity).
import { agreementSignedPart, replySignedPart, signedPart } from '../consensus/pbft/codec.ts';
import type { PbftAuth } from '../consensus/pbft/auth.ts';
import type { Endorsement, PbftMessage, PbftSigner, PreparedCertificate, ReplicaMessage, RequestMessage } from '../consensus/pbft/types.ts';
import type { Xoshiro128 } from './prng.ts';

export const BEHAVIOURS = ['equivocate', 'wrongDigest', 'forge', 'replay', 'silent', 'censor', 'twins', 'mixed'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/** Messages of others a replaying replica keeps to send again (oldest dropped first). */
export const REPLAY_BUFFER = 256;
/** Valid client requests an equivocating primary keeps to build alternative batches from. */
export const REQUEST_POOL = 32;
/** Distinct garbage signatures a forging replica uses. */
export const JUNK_SIGNATURES = 16;

type Rewrite = 'equivocate' | 'wrongDigest' | 'forge' | 'replay' | 'pass';
const MIXED: readonly Rewrite[] = ['equivocate', 'wrongDigest', 'forge', 'replay', 'pass'];

export class Adversary {
  readonly behaviour: Behaviour;
  private readonly index: number;
  private readonly n: number;
  private readonly signer: PbftSigner;
  private readonly auth: PbftAuth;
  private readonly rng: Xoshiro128;
  /** The client a censoring replica never serves. */
  private readonly victim: string;
  private readonly seen: PbftMessage[] = [];
  private readonly requests: RequestMessage[] = [];
  private readonly junk: Uint8Array[] = [];
  /** Messages rewritten (the simulator reports that the behaviour really acted). */
  rewrites = 0;

  constructor(behaviour: Behaviour, index: number, signer: PbftSigner, auth: PbftAuth, rng: Xoshiro128, victim: string) {
    this.behaviour = behaviour;
    this.index = index;
    this.n = auth.quorums.n;
    this.signer = signer;
    this.auth = auth;
    this.rng = rng;
    this.victim = victim;
  }

  /** False: the Byzantine replica does not take the message in. */
  incoming(m: PbftMessage): boolean {
    if (this.behaviour === 'silent') {
      this.rewrites++;
      return false;
    }
    if (m.type === 'request') {
      if (this.requests.length >= REQUEST_POOL) this.requests.shift();
      this.requests.push(m);
      if (this.behaviour === 'censor' && m.client === this.victim) {
        this.rewrites++;
        return false;
      }
    } else if (this.behaviour === 'replay' || this.behaviour === 'mixed') {
      if (this.seen.length >= REPLAY_BUFFER) this.seen.splice(0, this.seen.length - REPLAY_BUFFER + 1);
      this.seen.push(m);
    }
    return true;
  }

  /** What goes to `to` (a replica index, or -1 for a client) instead of `m`. */
  outgoing(to: number, m: PbftMessage): PbftMessage[] {
    switch (this.behaviour) {
      case 'silent':
        this.rewrites++;
        return [];
      case 'censor':
      case 'twins':
        return [m];
      case 'mixed':
        return this.rewrite(this.rng.pick(MIXED), to, m);
      default:
        return this.rewrite(this.behaviour, to, m);
    }
  }

  private rewrite(how: Rewrite, to: number, m: PbftMessage): PbftMessage[] {
    let out: PbftMessage[];
    switch (how) {
      case 'equivocate':
        out = [this.equivocate(to, m)];
        break;
      case 'wrongDigest':
        out = [this.wrongDigest(m)];
        break;
      case 'forge':
        out = [this.forge(m)];
        break;
      case 'replay': {
        out = [m];
        const old = this.seen.length > 0 && this.rng.chance(0.5) ? this.rng.pick(this.seen) : undefined;
        if (old !== undefined) out.push(old);
        break;
      }
      case 'pass':
        out = [m];
        break;
    }
    if (out.length !== 1 || out[0] !== m) this.rewrites++;
    return out;
  }

  private randomBytes(length: number): Uint8Array {
    const words = new Uint32Array(length / 4);
    for (let i = 0; i < words.length; i++) words[i] = this.rng.nextU32();
    return new Uint8Array(words.buffer);
  }

  private randomDigest(): Uint8Array {
    return this.randomBytes(32);
  }

  /** A garbage signature: drawn from a small pool made once (forging is frequent, its bytes do not matter). */
  private randomSignature(): Uint8Array {
    if (this.junk.length < JUNK_SIGNATURES) this.junk.push(this.randomBytes(64));
    return this.rng.pick(this.junk);
  }

  private signPart(part: Uint8Array): Uint8Array {
    return this.signer.sign(this.auth.digestSignedPart(part));
  }

  private resign<T extends ReplicaMessage>(m: T): T {
    return { ...m, signature: this.signPart(signedPart(m)) };
  }

  private agreement(type: 'prepare' | 'commit', view: number, seq: number, digest: Uint8Array): PbftMessage {
    return { type, view, seq, digest, replica: this.index, signature: this.signPart(agreementSignedPart(type, view, seq, digest, this.index)) };
  }

  /** Different replicas hear different things (split by destination and seq). */
  private equivocate(to: number, m: PbftMessage): PbftMessage {
    if (m.type === 'request' || m.type === 'reply' || m.replica !== this.index) return m;
    const seqOf = 'seq' in m ? m.seq : m.type === 'viewChange' ? m.view : 0;
    if ((to + seqOf) % 2 === 0) return m;
    switch (m.type) {
      case 'prePrepare': {
        let batch: readonly RequestMessage[] = m.batch.length > 1 ? m.batch.slice(1) : [];
        if (batch.length === 0) {
          const other = this.requests.find((r) => !m.batch.includes(r));
          if (other === undefined) return m;
          batch = [other];
        }
        const digest = this.auth.batchDigest(batch);
        return { ...m, digest, batch, signature: this.signPart(agreementSignedPart('prePrepare', m.view, m.seq, digest, this.index)) };
      }
      case 'prepare':
      case 'commit':
        return this.agreement(m.type, m.view, m.seq, this.randomDigest());
      case 'checkpoint':
        return this.resign({ ...m, digest: this.randomDigest() });
      case 'viewChange':
        // Hide what prepared: quorum intersection must still carry it into the new view.
        return this.resign({ ...m, prepared: [] });
      default:
        return m;
    }
  }

  private wrongDigest(m: PbftMessage): PbftMessage {
    switch (m.type) {
      case 'prePrepare': {
        const digest = this.randomDigest();
        return { ...m, digest, signature: this.signPart(agreementSignedPart('prePrepare', m.view, m.seq, digest, this.index)) };
      }
      case 'prepare':
      case 'commit':
        return m.replica === this.index ? this.agreement(m.type, m.view, m.seq, this.randomDigest()) : m;
      case 'checkpoint':
        return m.replica === this.index ? this.resign({ ...m, digest: this.randomDigest() }) : m;
      case 'reply': {
        // A validly signed reply with a made-up result: clients need f+1 matching ones.
        const result = new TextEncoder().encode(`{"forged":${this.rng.nextU32()}}`);
        const root = this.auth.replyLeaf(m.client, m.timestamp, result);
        return { ...m, result, root, index: 0, leafCount: 1, path: [], signature: this.signPart(replySignedPart(m.view, m.seq, root, this.index)) };
      }
      default:
        return m;
    }
  }

  private forge(m: PbftMessage): PbftMessage {
    if (m.type === 'request') return m;
    if (m.type === 'reply') return { ...m, signature: this.randomSignature() };
    const f = (this.n - 1) / 3;
    const fakeEndorsements = (k: number): Endorsement[] => Array.from({ length: k }, (_, i) => ({ replica: i, signature: this.randomSignature() }));
    switch (this.rng.nextInt(4)) {
      case 0:
        // Claim to be someone else (our signature does not verify as theirs).
        return { ...m, replica: (this.index + 1 + this.rng.nextInt(this.n - 1)) % this.n };
      case 1:
        return { ...m, signature: this.randomSignature() };
      case 2: {
        // A commit certificate for a batch nobody ordered.
        const digest = this.randomDigest();
        const seq = 'seq' in m && typeof m.seq === 'number' ? m.seq + 1 : 1;
        return this.resign({ type: 'commitCertificate', view: 0, seq, digest, commits: fakeEndorsements(2 * f + 1), batch: [], replica: this.index, signature: m.signature });
      }
      default: {
        if (m.type === 'viewChange') {
          const cert: PreparedCertificate = { view: 0, seq: m.checkpoint.seq + 1, digest: this.randomDigest(), prePrepare: this.randomSignature(), prepares: fakeEndorsements(2 * f) };
          return this.resign({ ...m, prepared: [cert] });
        }
        // Announce a checkpoint far ahead with a made-up proof.
        return this.resign({
          type: 'stateChunk',
          proof: { seq: 1_000_000, digest: this.randomDigest(), signatures: fakeEndorsements(2 * f + 1) },
          totalBytes: 0,
          offset: 0,
          data: new Uint8Array(0),
          replica: this.index,
          signature: m.signature,
        });
      }
    }
  }
}
