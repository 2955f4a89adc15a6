// PbftClient: the pure client side of PBFT for one client id. It signs a request, sends it to
// the primary it believes in, broadcasts it to every replica when no answer comes in time (so
// backups watch the primary), and accepts a result once f+1 replicas sent matching, verified
// replies; those replies form the ReplyCertificate a receipt carries. One request is
// outstanding at a time (Castro-Liskov's duplicate table keeps one reply per client): a
// process with many concurrent callers runs one PbftClient per slot (`<PeerId>/<slot>`).
import { PbftAuth, bytesKey } from './auth.ts';
import { signRequests, type UnsignedRequest } from './request-bundle.ts';
import { replyCertificate, type ReplyCertificate } from './certificate.ts';
import { PbftSubmitError } from './errors.ts';
import { rootFromPath } from './merkle.ts';
import { BROADCAST, PBFT_DEFAULTS, type Membership, type NodeId, type PbftSigner, type PbftVerifier, type ReplyMessage, type RequestMessage } from './types.ts';
import { primaryOf } from './view-change.ts';

/** Ticks before an unanswered request is broadcast to every replica (and again after as many). */
export const DEFAULT_RETRANSMIT_TICKS = 20;
/** Retransmissions before the client gives the request up. */
export const DEFAULT_MAX_RETRANSMITS = 1000;
/**
 * Each retransmission waits twice as long as the one before, up to 2^this × retransmitTicks: a
 * loaded cluster that answers in several retransmit periods is not flooded with broadcasts
 * (each one reaches every replica and is forwarded to the primary), while a dead primary is
 * still reported to the backups after the first period.
 */
export const DEFAULT_MAX_RETRANSMIT_BACKOFF = 3;
/**
 * The first retransmission waits at least this many times the client's smoothed latency (ticks
 * from submit to certificate, averaged 1/8 per sample as TCP does), between retransmitTicks and
 * the backoff cap: a request that merely waits in a loaded cluster is not broadcast (every
 * replica would take it in and forward it to the primary), a lost one still is, soon after.
 */
export const RETRANSMIT_LATENCY_FACTOR = 2;

export interface PbftClientConfig {
  readonly id: string;
  readonly membership: Membership;
  readonly signer: PbftSigner;
  readonly verifier: PbftVerifier;
  /** Timestamp of the first request; +1 per request (HyperSync: ms since epoch × 1024 at start). */
  readonly firstTimestamp: number;
  readonly retransmitTicks?: number;
  readonly maxRetransmits?: number;
  /** Doublings of the retransmit period at most (DEFAULT_MAX_RETRANSMIT_BACKOFF). */
  readonly maxRetransmitBackoff?: number;
  readonly maxOpBytes?: number;
  /** Share one PbftAuth between clients and replicas of one process (digest caches). */
  readonly auth?: PbftAuth;
}

export interface ClientCompletion {
  readonly request: RequestMessage;
  readonly result: Uint8Array;
  readonly seq: number;
  readonly certificate: ReplyCertificate;
}

export interface ClientOutput {
  /** `to` is a replica id, or BROADCAST for every replica. */
  readonly messages: readonly { readonly to: NodeId; readonly message: RequestMessage }[];
  readonly completed: readonly ClientCompletion[];
  /** Requests given up after maxRetransmits. */
  readonly failed: readonly RequestMessage[];
}

interface Outstanding {
  readonly request: RequestMessage;
  /** Ticks since it was submitted. */
  age: number;
  elapsed: number;
  retransmits: number;
  /** The latest verified reply per replica. */
  readonly replies: Map<number, { reply: ReplyMessage; group: string }>;
}

export class PbftClient {
  readonly id: string;
  readonly auth: PbftAuth;
  private readonly signer: PbftSigner;
  private readonly retransmitTicks: number;
  private readonly maxRetransmits: number;
  private readonly maxRetransmitBackoff: number;
  private readonly maxOpBytes: number;
  private nextTimestamp: number;
  private view = 0;
  /** Smoothed ticks from submit to certificate (undefined before the first). */
  private latency: number | undefined;
  private outstanding: Outstanding | undefined;
  private messages: { to: NodeId; message: RequestMessage }[] = [];
  private completed: ClientCompletion[] = [];
  private failed: RequestMessage[] = [];
  /** Signatures verified on replies (for per-request accounting). */
  verifications = 0;

  constructor(cfg: PbftClientConfig) {
    this.id = cfg.id;
    this.auth = cfg.auth ?? new PbftAuth(cfg.membership, cfg.verifier);
    this.signer = cfg.signer;
    this.nextTimestamp = cfg.firstTimestamp;
    this.retransmitTicks = cfg.retransmitTicks ?? DEFAULT_RETRANSMIT_TICKS;
    this.maxRetransmits = cfg.maxRetransmits ?? DEFAULT_MAX_RETRANSMITS;
    this.maxRetransmitBackoff = cfg.maxRetransmitBackoff ?? DEFAULT_MAX_RETRANSMIT_BACKOFF;
    this.maxOpBytes = cfg.maxOpBytes ?? PBFT_DEFAULTS.maxOpBytes;
    if (new TextEncoder().encode(cfg.id).byteLength > PBFT_DEFAULTS.maxClientIdBytes) throw new PbftSubmitError('tooLarge', 'client id over 128 bytes');
  }

  /** The view the client believes current (from the replies it accepted). */
  currentView(): number {
    return this.view;
  }

  busy(): boolean {
    return this.outstanding !== undefined;
  }

  /** Signs and sends `op`; throws PbftSubmitError while another request is outstanding. */
  submit(op: Uint8Array): RequestMessage {
    const [request] = signRequests(this.auth, [this.prepare(op)], this.signer);
    return this.send(request as RequestMessage);
  }

  /**
   * The next request for `op`, not signed yet (a process signs several clients' requests as
   * one bundle, then hands each its own with send()). Throws PbftSubmitError like submit().
   */
  prepare(op: Uint8Array): UnsignedRequest {
    if (this.outstanding !== undefined) throw new PbftSubmitError('outstanding', `request ${this.outstanding.request.timestamp} is still waiting`);
    if (op.byteLength > this.maxOpBytes) throw new PbftSubmitError('tooLarge', `op of ${op.byteLength} bytes over ${this.maxOpBytes}`);
    if (!Number.isSafeInteger(this.nextTimestamp)) throw new PbftSubmitError('timestamp', 'timestamps exhausted');
    return { client: this.id, timestamp: this.nextTimestamp, op };
  }

  /** Sends the signed form of what prepare() returned last; it becomes the outstanding request. */
  send(request: RequestMessage): RequestMessage {
    if (this.outstanding !== undefined) throw new PbftSubmitError('outstanding', `request ${this.outstanding.request.timestamp} is still waiting`);
    if (request.client !== this.id || request.timestamp !== this.nextTimestamp) throw new PbftSubmitError('timestamp', `request ${request.client}@${request.timestamp} is not this client's next (${this.nextTimestamp})`);
    this.nextTimestamp++;
    this.outstanding = { request, age: 0, elapsed: 0, retransmits: 0, replies: new Map() };
    const primary = this.auth.membership.replicas[primaryOf(this.view, this.auth.quorums.n)];
    this.messages.push({ to: primary?.id ?? BROADCAST, message: request });
    return request;
  }

  tick(): void {
    const o = this.outstanding;
    if (o === undefined) return;
    o.age++;
    if (++o.elapsed < this.retransmitPeriod(o.retransmits)) return;
    o.elapsed = 0;
    if (++o.retransmits > this.maxRetransmits) {
      this.outstanding = undefined;
      this.failed.push(o.request);
      return;
    }
    this.messages.push({ to: BROADCAST, message: o.request });
  }

  /** Ticks before retransmission `k` + 1 (k made so far): from the latency, doubling, capped. */
  retransmitPeriod(k: number): number {
    const cap = this.retransmitTicks * 2 ** this.maxRetransmitBackoff;
    const first = Math.min(cap, Math.max(this.retransmitTicks, Math.ceil(RETRANSMIT_LATENCY_FACTOR * (this.latency ?? 0))));
    return Math.min(cap, first * 2 ** k);
  }

  /** A REPLY from the network; anything unverifiable or for another request is ignored. */
  step(m: ReplyMessage): void {
    const o = this.outstanding;
    if (o === undefined || m.client !== this.id || m.timestamp !== o.request.timestamp || m.replica >= this.auth.quorums.n) return;
    const resultDigest = this.auth.verifier.digest(m.result);
    const leaf = this.auth.replyLeafFromDigest(m.client, m.timestamp, resultDigest);
    const root = rootFromPath(this.auth.verifier.digest, leaf, m.index, m.leafCount, m.path);
    if (root === undefined || bytesKey(root) !== bytesKey(m.root)) return;
    this.verifications++;
    if (!this.auth.verifyReplyRoot(m.view, m.seq, m.root, m.replica, m.signature)) return;
    const group = `${m.seq}:${bytesKey(resultDigest)}`;
    o.replies.set(m.replica, { reply: m, group });
    const matching: ReplyMessage[] = [];
    for (const r of o.replies.values()) if (r.group === group) matching.push(r.reply);
    if (matching.length < this.auth.quorums.f + 1) return;
    this.outstanding = undefined;
    // PBFT executes a request once, whichever copy arrived: the age is its latency (no Karn ambiguity).
    this.latency = this.latency === undefined ? o.age : this.latency + (o.age - this.latency) / 8;
    this.view = Math.max(this.view, ...matching.map((r) => r.view));
    this.completed.push({ request: o.request, result: m.result, seq: m.seq, certificate: replyCertificate(matching, resultDigest) });
  }

  /** Anything for drain() to hand out (an idle client is ticked often and has nothing). */
  hasOutput(): boolean {
    return this.messages.length > 0 || this.completed.length > 0 || this.failed.length > 0;
  }

  /** Requests to send, results certified, requests given up; empty arrays when idle. */
  drain(): ClientOutput {
    const out = { messages: this.messages, completed: this.completed, failed: this.failed };
    this.messages = [];
    this.completed = [];
    this.failed = [];
    return out;
  }
}
