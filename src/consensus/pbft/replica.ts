// PbftReplica: the pure PBFT state machine of one replica (Castro & Liskov, OSDI 1999 and
// TOCS 2002, signature variant). It owns no clock, socket, disk or application: the driver calls
// step(from, message), tick() and submit-side step for REQUESTs, then drains ready()/advance().
//
// Normal case: the primary of view v cuts the requests it holds into batches (one three-phase
// round per batch) with seq in (h, h + L]; PRE-PREPARE → 2f PREPAREs (prepared) → 2f+1
// COMMITs (decided) → executed in seq order → one signed reply root per batch. Every K seqs a
// CHECKPOINT; 2f+1 matching ones make it stable (h moves, older slots are dropped). A backup
// whose oldest known request waits too long moves to view v+1 (VIEW-CHANGE with its stable
// checkpoint proof and prepared certificates); the new primary sends NEW-VIEW with 2f+1 of them
// and the recomputable order O. A replica behind the stable checkpoint fetches its state in
// chunks; one behind on a few slots gets commit certificates after its STATUS.
//
// Invariants: a decided (seq, digest) never changes; execution is in seq order without gaps;
// bad input is dropped and counted (stats().dropped), never thrown. The core keeps no durable
// state: a replica that restarts empty rejoins through state transfer and counts against f
// until then (its earlier votes are forgotten).
import { RequestVerifier } from './request-bundle.ts';
import { PbftAuth, bytesEqual, bytesKey } from './auth.ts';
import { ClientTable } from './client-table.ts';
import { requestSize, signedPart, utf8Within } from './codec.ts';
import { DROP_REASONS, invariant, type DropReason } from './errors.ts';
import { merkleLevels, pathFromLevels } from './merkle.ts';
import {
  BROADCAST,
  PBFT_DEFAULTS,
  type BatchExecution,
  type BatchMessage,
  type CheckpointMessage,
  type CheckpointProof,
  type ClientReply,
  type CommitCertificateMessage,
  type CommitMessage,
  type CommittedBatch,
  type Endorsement,
  type FetchBatchMessage,
  type FetchStateMessage,
  type NewViewMessage,
  type NodeId,
  type Outbound,
  type PbftConfig,
  type PbftLimits,
  type PbftMessage,
  type PbftReady,
  type PbftSigner,
  type PrePrepareMessage,
  type PrepareMessage,
  type PreparedCertificate,
  type ReplicaMessage,
  type ReplyMessage,
  type RequestMessage,
  type SoftState,
  type StateChunkMessage,
  type StateRestore,
  type StatusMessage,
  type ViewChangeMessage,
} from './types.ts';
import {
  GENESIS_DIGEST,
  checkCheckpointProof,
  checkNewView,
  computeNewViewOrder,
  primaryOf,
  viewChangeProblem,
  type NewViewOrder,
  type ProofContext,
} from './view-change.ts';

/** Batches kept per slot (one per view whose pre-prepare it accepted), oldest dropped first. */
export const MAX_BATCHES_PER_SLOT = 4;
/** VIEW-CHANGEs are kept for views in [view, view + VIEW_CHANGE_WINDOW); later ones are dropped. */
export const VIEW_CHANGE_WINDOW = 64;
/** Our own recent VIEW-CHANGEs, resent to replicas still collecting votes for those views. */
export const OWN_VIEW_CHANGES_KEPT = 4;

const EMPTY = new Uint8Array(0);
const NO_SIGNATURE = new Uint8Array(64);

export interface PbftStats {
  signaturesMade: number;
  signaturesVerified: number;
  clientSignaturesVerified: number;
  requestsExecuted: number;
  batchesExecuted: number;
  viewChangesStarted: number;
  viewsEntered: number;
  stateTransfers: number;
  stableCheckpoints: number;
  retransmissions: number;
  dropped: Record<DropReason, number>;
}

export interface PbftStatus {
  readonly id: NodeId;
  readonly index: number;
  readonly n: number;
  readonly f: number;
  readonly view: number;
  readonly primary: NodeId;
  readonly active: boolean;
  readonly lowWatermark: number;
  readonly highWatermark: number;
  readonly lastExecuted: number;
  readonly stableCheckpoint: { readonly seq: number; readonly digest: Uint8Array };
  readonly members: readonly NodeId[];
  readonly pendingRequests: number;
}

interface Vote {
  readonly key: string;
  readonly digest: Uint8Array;
  readonly signature: Uint8Array;
}

interface Decision {
  readonly view: number;
  readonly digest: Uint8Array;
  readonly key: string;
  readonly commits: readonly Endorsement[];
}

/** One sequence number in (h, h + L]. Votes are for the current view only. */
class Slot {
  readonly seq: number;
  /** View of the accepted pre-prepare (-1: none yet). */
  view = -1;
  digest: Uint8Array | undefined;
  key = '';
  prePrepareSig: Uint8Array | undefined;
  readonly batches = new Map<string, readonly RequestMessage[]>();
  prepares = new Map<number, Vote>();
  commits = new Map<number, Vote>();
  prepared = false;
  /** The prepared certificate of the highest view (carried into VIEW-CHANGEs). */
  preparedCert: PreparedCertificate | undefined;
  decided: Decision | undefined;
  executed = false;

  constructor(seq: number) {
    this.seq = seq;
  }

  addBatch(key: string, batch: readonly RequestMessage[]): void {
    if (this.batches.has(key)) return;
    if (this.batches.size >= MAX_BATCHES_PER_SLOT) {
      const oldest = this.batches.keys().next();
      if (oldest.done !== true) this.batches.delete(oldest.value);
    }
    this.batches.set(key, batch);
  }
}

interface OwnCheckpoint {
  readonly digest: Uint8Array;
  readonly key: string;
  readonly state: Uint8Array;
}

interface CheckpointVotes {
  readonly votes: Map<number, Vote>;
  own: OwnCheckpoint | undefined;
}

interface PendingRequest {
  readonly request: RequestMessage;
  readonly leafKey: string;
  readonly since: number;
}

interface Transfer {
  seq: number;
  digest: Uint8Array;
  proof: CheckpointProof;
  /** Replicas to ask, in turn (the proof's signers but us). */
  targets: number[];
  turn: number;
  total: number;
  parts: Uint8Array[];
  received: number;
  elapsed: number;
}

interface ReplyRoot {
  readonly view: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  /** The reply tree, leaves first (paths for retransmitted replies come from here). */
  readonly levels: readonly (readonly Uint8Array[])[];
}

interface Outstanding {
  readonly committed: readonly CommittedBatch[];
}

function requestKey(client: string, timestamp: number): string {
  return `${client}\u0000${timestamp}`;
}

export class PbftReplica {
  readonly id: NodeId;
  readonly index: number;
  readonly n: number;
  readonly f: number;
  readonly limits: PbftLimits;
  readonly auth: PbftAuth;
  /** Clients' request signatures (a bundle's checked once). */
  private readonly requestVerifier: RequestVerifier;
  private readonly signer: PbftSigner;
  private readonly clientKey: (client: string) => Uint8Array | undefined;
  private readonly ids: ReadonlyMap<NodeId, number>;
  private readonly memberIds: readonly NodeId[];
  private readonly proofs: ProofContext;

  private view = 0;
  private active = true;
  private now = 0;
  /** Tick at which the current view became active (request ages count from there). */
  private viewStart = 0;

  private low = 0;
  private stableDigest: Uint8Array = GENESIS_DIGEST;
  private stableProof: readonly Endorsement[] = [];
  private stableState: Uint8Array | undefined;
  private lastExec = 0;
  private nextSeq = 1;

  private readonly slots = new Map<number, Slot>();
  private readonly checkpoints = new Map<number, CheckpointVotes>();
  private readonly pending = new Map<string, PendingRequest>();
  /** The one pending timestamp of each client with a pending request. */
  private readonly pendingByClient = new Map<string, number>();
  /** Primary: requests in batches of the current view not yet executed. */
  private readonly assigned = new Set<string>();
  private clients: ClientTable;
  private readonly replyRoots = new Map<number, ReplyRoot>();

  /** Valid VIEW-CHANGEs by view, then by replica, for views in [view, view + VIEW_CHANGE_WINDOW). */
  private readonly viewChanges = new Map<number, Map<number, ViewChangeMessage>>();
  /** Our VIEW-CHANGEs of the last OWN_VIEW_CHANGES_KEPT views we moved to. */
  private readonly ownViewChanges = new Map<number, ViewChangeMessage>();
  private newView: NewViewMessage | undefined;
  private viewChangeElapsed: number | undefined;
  private backoff = 0;

  private readonly peerStatus = new Map<number, StatusMessage>();
  private readonly lastHelp = new Map<number, number>();
  /** STATE-CHUNKs served per replica in the current tick. */
  private readonly chunkBudget = new Map<number, { tick: number; sent: number }>();
  /** NEW-VIEWs checked per view (views at or above ours). */
  private readonly newViewChecks = new Map<number, number>();
  private statusElapsed = 0;

  private transfer: Transfer | undefined;
  /** A finished transfer, installed at the next ready() with no Ready outstanding. */
  private transferred: { seq: number; digest: Uint8Array; proof: CheckpointProof; state: Uint8Array } | undefined;
  private readonly missing = new Map<string, { digest: Uint8Array; elapsed: number }>();
  private early: (PrePrepareMessage | PrepareMessage | CommitMessage)[] = [];

  private msgs: Outbound[] = [];
  private replies: ClientReply[] = [];
  private restore: StateRestore | undefined;
  private outstanding: Outstanding | undefined;
  private prevSoft: SoftState;
  private readonly counters: PbftStats;

  constructor(cfg: PbftConfig, auth?: PbftAuth) {
    this.auth = auth ?? new PbftAuth(cfg.membership, cfg.verifier);
    this.requestVerifier = new RequestVerifier(this.auth);
    invariant(this.auth.membership === cfg.membership, 'pbft: auth of another membership');
    this.n = this.auth.quorums.n;
    this.f = this.auth.quorums.f;
    this.memberIds = cfg.membership.replicas.map((r) => r.id);
    this.ids = new Map(this.memberIds.map((id, i) => [id, i]));
    const index = this.ids.get(cfg.id);
    invariant(index !== undefined, () => `pbft: ${cfg.id} is not a member`);
    this.id = cfg.id;
    this.index = index;
    this.signer = cfg.signer;
    this.clientKey = cfg.clientKey;
    this.limits = { ...PBFT_DEFAULTS, ...cfg.limits };
    const l = this.limits;
    invariant(l.checkpointInterval > 0 && l.watermarkWindow >= l.checkpointInterval && l.watermarkWindow % l.checkpointInterval === 0, 'pbft: need 0 < K <= L with L a multiple of K');
    invariant(l.maxBatchRequests > 0 && l.maxBatchRequests <= 0xffff && l.maxInflightBatches > 0, 'pbft: batch limits must be positive (max 65535 requests)');
    invariant(l.statusTicks > 0 && l.requestTimeoutTicks > 0 && l.viewChangeTimeoutTicks > 0 && l.fetchTimeoutTicks > 0, 'pbft: timeouts must be positive');
    invariant(l.maxClientIdBytes <= 255 && l.stateChunkBytes > 0, 'pbft: client ids are at most 255 bytes; chunks non-empty');
    this.clients = new ClientTable(l.maxClients);
    this.proofs = { auth: this.auth, watermarkWindow: l.watermarkWindow, verified: (ok) => this.verified(ok) };
    this.prevSoft = { view: 0, primary: this.memberIds[0] as NodeId, active: true };
    const dropped = {} as Record<DropReason, number>;
    for (const r of DROP_REASONS) dropped[r] = 0;
    this.counters = {
      signaturesMade: 0,
      signaturesVerified: 0,
      clientSignaturesVerified: 0,
      requestsExecuted: 0,
      batchesExecuted: 0,
      viewChangesStarted: 0,
      viewsEntered: 0,
      stateTransfers: 0,
      stableCheckpoints: 0,
      retransmissions: 0,
      dropped,
    };
  }

  // ---- public API -------------------------------------------------------------------------

  /** A message from transport peer `from` (a member, or a client for REQUESTs). */
  step(from: NodeId, m: PbftMessage): void {
    if (m.type === 'request') {
      this.onRequest(from, m);
      return;
    }
    if (m.type === 'reply') {
      this.drop('unexpected');
      return;
    }
    if (!this.ids.has(from) || m.replica >= this.n) {
      this.drop('nonMember');
      return;
    }
    if (from === this.id || m.replica === this.index) {
      // Our own words coming back (a replay, or a twin under our identity): nothing to learn.
      this.drop('unexpected');
      return;
    }
    switch (m.type) {
      case 'prePrepare':
        this.onPrePrepare(m);
        return;
      case 'prepare':
      case 'commit':
        this.onVote(m);
        return;
      case 'checkpoint':
        this.onCheckpoint(m);
        return;
      case 'viewChange':
        this.onViewChange(m);
        return;
      case 'newView':
        this.onNewView(m);
        return;
      case 'status':
        this.onStatus(m);
        return;
      case 'fetchState':
        this.onFetchState(m);
        return;
      case 'stateChunk':
        this.onStateChunk(m);
        return;
      case 'fetchBatch':
        this.onFetchBatch(m);
        return;
      case 'batch':
        this.onBatch(m);
        return;
      case 'commitCertificate':
        this.onCommitCertificate(m);
        return;
    }
  }

  tick(): void {
    this.now++;
    if (this.active) this.tickRequestTimer();
    else this.tickViewChangeTimer();
    if (++this.statusElapsed >= this.limits.statusTicks) {
      this.statusElapsed = 0;
      this.broadcastStatus();
    }
    this.tickFetches();
  }

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.replies.length > 0 ||
      this.restore !== undefined ||
      this.transferred !== undefined ||
      this.canExecute() ||
      this.canPropose() ||
      this.softChanged()
    );
  }

  /** The next batch of work, or null. Call advance(ready, executions) before asking again. */
  ready(): PbftReady | null {
    invariant(this.outstanding === undefined, 'pbft: ready() called before advance() of the previous Ready');
    this.installTransfer();
    this.proposeBatches();
    const committed = this.collectCommitted();
    const soft = this.softChanged() ? this.soft() : undefined;
    if (this.msgs.length === 0 && this.replies.length === 0 && this.restore === undefined && committed.length === 0 && soft === undefined) return null;
    const rd: { softState?: SoftState; messages: Outbound[]; replies: ClientReply[]; restore?: StateRestore; committed: CommittedBatch[] } = {
      messages: this.msgs,
      replies: this.replies,
      committed,
    };
    if (soft !== undefined) {
      this.prevSoft = soft;
      rd.softState = soft;
    }
    if (this.restore !== undefined) rd.restore = this.restore;
    this.msgs = [];
    this.replies = [];
    this.restore = undefined;
    this.outstanding = { committed };
    return rd;
  }

  /** The driver sent `ready`'s messages and executed its batches; `executions` match `ready.committed`. */
  advance(ready: PbftReady, executions: readonly BatchExecution[]): void {
    const o = this.outstanding;
    invariant(o !== undefined && o.committed === ready.committed, 'pbft: advance() without its Ready');
    invariant(executions.length === o.committed.length, () => `pbft: ${executions.length} executions for ${o.committed.length} batches`);
    this.outstanding = undefined;
    for (let i = 0; i < o.committed.length; i++) this.finishBatch(o.committed[i] as CommittedBatch, executions[i] as BatchExecution);
  }

  status(): PbftStatus {
    return {
      id: this.id,
      index: this.index,
      n: this.n,
      f: this.f,
      view: this.view,
      primary: this.memberIds[primaryOf(this.view, this.n)] as NodeId,
      active: this.active,
      lowWatermark: this.low,
      highWatermark: this.low + this.limits.watermarkWindow,
      lastExecuted: this.lastExec,
      stableCheckpoint: { seq: this.low, digest: this.stableDigest },
      members: this.memberIds,
      pendingRequests: this.pending.size,
    };
  }

  stats(): PbftStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  currentView(): number {
    return this.view;
  }

  isActive(): boolean {
    return this.active;
  }

  isPrimary(): boolean {
    return primaryOf(this.view, this.n) === this.index;
  }

  lastExecuted(): number {
    return this.lastExec;
  }

  /**
   * 2f+1 COMMITs proving request `index` of the batch decided at `seq` (while the slot is above
   * the stable checkpoint), for a receipt's commit certificate; undefined otherwise.
   */
  commitProof(seq: number): { view: number; digest: Uint8Array; commits: readonly Endorsement[]; batch: readonly RequestMessage[] } | undefined {
    const s = this.slots.get(seq);
    const d = s?.decided;
    const batch = d === undefined ? undefined : s?.batches.get(d.key);
    if (d === undefined || batch === undefined) return undefined;
    return { view: d.view, digest: d.digest, commits: d.commits, batch };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private drop(reason: DropReason): void {
    this.counters.dropped[reason]++;
  }

  private verified(ok: boolean): boolean {
    this.counters.signaturesVerified++;
    return ok;
  }

  private primaryIndex(): number {
    return primaryOf(this.view, this.n);
  }

  private memberId(i: number): NodeId {
    return this.memberIds[i] as NodeId;
  }

  private soft(): SoftState {
    return { view: this.view, primary: this.memberId(this.primaryIndex()), active: this.active };
  }

  private softChanged(): boolean {
    return this.prevSoft.view !== this.view || this.prevSoft.active !== this.active;
  }

  private send(to: NodeId, message: ReplicaMessage | RequestMessage): void {
    this.msgs.push({ to, message });
  }

  private broadcast(message: ReplicaMessage): void {
    this.msgs.push({ to: BROADCAST, message });
  }

  private sign(digest: Uint8Array): Uint8Array {
    this.counters.signaturesMade++;
    return this.signer.sign(digest);
  }

  /** Signs a message of any type (its signed part is built with a placeholder signature). */
  private signMessage<T extends ReplicaMessage>(unsigned: T): T {
    const digest = this.auth.digestSignedPart(signedPart(unsigned));
    const m = { ...unsigned, signature: this.sign(digest) };
    this.auth.remember(m, digest);
    return m;
  }

  /** Our PREPARE or COMMIT for (view, seq, digest), signed, its digest remembered. */
  private vote(type: 'prepare' | 'commit', seq: number, digest: Uint8Array): PrepareMessage | CommitMessage {
    const d = this.auth.agreementDigest(type, this.view, seq, digest, this.index);
    const m = { type, view: this.view, seq, digest, replica: this.index, signature: this.sign(d) };
    this.auth.remember(m, d);
    return m;
  }

  private inWindow(seq: number): boolean {
    return seq > this.low && seq <= this.low + this.limits.watermarkWindow;
  }

  private slot(seq: number): Slot {
    let s = this.slots.get(seq);
    if (s === undefined) {
      invariant(this.inWindow(seq), () => `pbft: slot ${seq} outside (${this.low}, ${this.low + this.limits.watermarkWindow}]`);
      s = new Slot(seq);
      this.slots.set(seq, s);
    }
    return s;
  }

  /**
   * Checks view and activity for agreement messages; false when not for the current view. Those
   * for the view we are entering (or the next one) may have overtaken its NEW-VIEW: they are kept
   * (up to maxEarlyMessages) and stepped again once that view starts.
   */
  private current(m: PrePrepareMessage | PrepareMessage | CommitMessage): boolean {
    if (m.view < this.view) return this.dropFalse('staleView');
    if (m.view === this.view && this.active) return true;
    if (m.view > this.view + 1) return this.dropFalse('futureView');
    if (this.early.length >= this.limits.maxEarlyMessages) return this.dropFalse(m.view > this.view ? 'futureView' : 'inactive');
    // Only signed words take room in the buffer (forgeries would crowd real ones out).
    if (!this.verified(this.auth.verifyMessage(m))) return this.dropFalse('badSignature');
    this.early.push(m);
    return false;
  }

  private replayEarly(): void {
    const early = this.early;
    this.early = [];
    for (const m of early) if (m.view >= this.view) this.step(this.memberId(m.replica), m);
  }

  private dropFalse(reason: DropReason): false {
    this.drop(reason);
    return false;
  }

  // ---- requests -----------------------------------------------------------------------------

  private requestProblem(r: RequestMessage): DropReason | undefined {
    if (r.op.byteLength > this.limits.maxOpBytes || !utf8Within(r.client, this.limits.maxClientIdBytes)) return 'invalidRequest';
    if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0) return 'invalidRequest';
    const key = this.clientKey(r.client);
    if (key === undefined) return 'invalidRequest';
    const before = this.requestVerifier.verifications;
    const ok = this.requestVerifier.verify(r, key);
    this.counters.clientSignaturesVerified += this.requestVerifier.verifications - before;
    return ok ? undefined : 'badSignature';
  }

  private onRequest(from: NodeId, r: RequestMessage): void {
    const entry = this.clients.get(r.client);
    if (entry !== undefined && r.timestamp <= entry.timestamp) {
      // A retransmission of the last executed request gets its reply again.
      if (r.timestamp === entry.timestamp && entry.result !== undefined) this.resendReply(r.client, entry.timestamp);
      this.drop('duplicate');
      return;
    }
    const key = requestKey(r.client, r.timestamp);
    const known = this.pending.get(key);
    if (known !== undefined) {
      // The client retransmits: it has no reply, so make sure the primary has it.
      if (bytesEqual(this.auth.requestLeaf(known.request), this.auth.requestLeaf(r)) && !this.ids.has(from)) this.forwardToPrimary(known.request);
      this.drop('duplicate');
      return;
    }
    const problem = this.requestProblem(r);
    if (problem !== undefined) {
      this.drop(problem);
      return;
    }
    const older = this.pendingByClient.get(r.client);
    if (older !== undefined && older > r.timestamp) {
      // The client already moved on to a later request.
      this.drop('duplicate');
      return;
    }
    if (older !== undefined) this.forgetExecuted(r.client, older);
    if (this.pending.size >= this.limits.maxPendingRequests) {
      this.drop('queueFull');
      return;
    }
    this.pending.set(key, { request: r, leafKey: bytesKey(this.auth.requestLeaf(r)), since: this.now });
    this.pendingByClient.set(r.client, r.timestamp);
    // Backups pass a client's request to the primary and watch it (Castro-Liskov §4.4).
    if (!this.ids.has(from)) this.forwardToPrimary(r);
  }

  private forwardToPrimary(r: RequestMessage): void {
    if (this.active && !this.isPrimary()) this.send(this.memberId(this.primaryIndex()), r);
  }

  private forgetExecuted(client: string, timestamp: number): void {
    const key = requestKey(client, timestamp);
    this.pending.delete(key);
    this.assigned.delete(key);
    if (this.pendingByClient.get(client) === timestamp) this.pendingByClient.delete(client);
  }

  // ---- primary: batching -------------------------------------------------------------------

  private canPropose(): boolean {
    if (!this.active || !this.isPrimary() || this.pending.size <= this.assigned.size) return false;
    return this.nextSeq - 1 - this.lastExec < this.limits.maxInflightBatches && this.nextSeq <= this.low + this.limits.watermarkWindow;
  }

  /** Cuts every held request into batches while the pipeline and the watermarks allow. */
  private proposeBatches(): void {
    while (this.canPropose()) {
      const batch: RequestMessage[] = [];
      let bytes = 0;
      for (const [key, p] of this.pending) {
        if (this.assigned.has(key)) continue;
        if (this.clients.executed(p.request.client, p.request.timestamp)) {
          // The client moved past it (a newer request of its executed): it can never run.
          this.forgetExecuted(p.request.client, p.request.timestamp);
          continue;
        }
        const size = requestSize(p.request);
        if (batch.length > 0 && (batch.length >= this.limits.maxBatchRequests || bytes + size > this.limits.maxBatchBytes)) break;
        batch.push(p.request);
        bytes += size;
        this.assigned.add(key);
      }
      if (batch.length === 0) return;
      // A primary that missed a view change may learn decisions of later views (commit
      // certificates) for seqs it has not used yet: never order anything there.
      while (this.slots.get(this.nextSeq)?.decided !== undefined) this.nextSeq++;
      if (!this.inWindow(this.nextSeq)) {
        for (const r of batch) this.assigned.delete(requestKey(r.client, r.timestamp));
        return;
      }
      const seq = this.nextSeq++;
      const digest = this.auth.batchDigest(batch);
      const d = this.auth.agreementDigest('prePrepare', this.view, seq, digest, this.index);
      const m: PrePrepareMessage = { type: 'prePrepare', view: this.view, seq, digest, replica: this.index, signature: this.sign(d), batch };
      this.auth.remember(m, d);
      this.acceptPrePrepare(this.slot(seq), digest, m.signature, batch);
      this.broadcast(m);
    }
  }

  // ---- agreement ------------------------------------------------------------------------------

  private acceptPrePrepare(s: Slot, digest: Uint8Array, signature: Uint8Array, batch: readonly RequestMessage[] | undefined): void {
    const key = bytesKey(digest);
    if (s.decided !== undefined) invariant(s.decided.key === key, () => `pbft ${this.id}: pre-prepare at ${s.seq} conflicts with the decided batch`);
    s.view = this.view;
    s.digest = digest;
    s.key = key;
    s.prePrepareSig = signature;
    s.prepared = false;
    if (batch !== undefined) s.addBatch(key, batch);
    else if (bytesEqual(digest, this.auth.nullDigest)) s.addBatch(key, []);
    if (!s.batches.has(key)) this.needBatch(digest);
    if (this.index !== this.primaryIndex()) {
      const m = this.vote('prepare', s.seq, digest);
      s.prepares.set(this.index, { key, digest, signature: m.signature });
      this.broadcast(m);
    }
    this.checkPrepared(s);
  }

  private onPrePrepare(m: PrePrepareMessage): void {
    if (!this.current(m)) return;
    if (m.replica !== this.primaryIndex()) {
      this.drop('notPrimary');
      return;
    }
    if (!this.inWindow(m.seq)) {
      this.drop('outsideWatermarks');
      return;
    }
    const s = this.slot(m.seq);
    const key = bytesKey(m.digest);
    if (s.view === this.view && s.key !== '') {
      if (s.key === key) {
        // A retransmission: it may bring the batch we lacked.
        if (!s.batches.has(key) && this.batchMatches(m.digest, m.batch)) this.gotBatch(key, m.batch);
        this.drop('duplicate');
        return;
      }
      // Two signed pre-prepares for one (view, seq): the primary equivocates; replace it.
      if (!this.verified(this.auth.verifyMessage(m))) {
        this.drop('badSignature');
        return;
      }
      this.drop('conflict');
      this.startViewChange(this.view + 1);
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    if (s.decided !== undefined && s.decided.key !== key) {
      // Ordering something else where a batch is already decided: only a faulty primary does that.
      this.drop('conflict');
      this.startViewChange(this.view + 1);
      return;
    }
    if (m.batch.length > this.limits.maxBatchRequests || m.batch.length === 0) {
      this.drop('invalidRequest');
      return;
    }
    if (!this.batchMatches(m.digest, m.batch)) {
      this.drop('digestMismatch');
      return;
    }
    for (const r of m.batch) {
      const p = this.pending.get(requestKey(r.client, r.timestamp));
      if (p !== undefined && p.leafKey === bytesKey(this.auth.requestLeaf(r))) continue;
      const problem = this.requestProblem(r);
      if (problem !== undefined) {
        this.drop('invalidRequest');
        return;
      }
    }
    this.acceptPrePrepare(s, m.digest, m.signature, m.batch);
  }

  private batchMatches(digest: Uint8Array, batch: readonly RequestMessage[]): boolean {
    return bytesEqual(this.auth.batchDigest(batch), digest);
  }

  private onVote(m: PrepareMessage | CommitMessage): void {
    if (!this.current(m)) return;
    if (m.type === 'prepare' && m.replica === this.primaryIndex()) {
      this.drop('notPrimary');
      return;
    }
    if (!this.inWindow(m.seq)) {
      this.drop('outsideWatermarks');
      return;
    }
    const s = this.slot(m.seq);
    const votes = m.type === 'prepare' ? s.prepares : s.commits;
    const key = bytesKey(m.digest);
    const had = votes.get(m.replica);
    if (had !== undefined) {
      this.drop(had.key === key ? 'duplicate' : 'conflict');
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    votes.set(m.replica, { key, digest: m.digest, signature: m.signature });
    if (m.type === 'prepare') this.checkPrepared(s);
    else this.checkCommitted(s, key);
  }

  private matching(votes: Map<number, Vote>, key: string, exclude: number): Endorsement[] {
    const out: Endorsement[] = [];
    for (const [replica, v] of votes) if (v.key === key && replica !== exclude) out.push({ replica, signature: v.signature });
    return out;
  }

  private checkPrepared(s: Slot): void {
    if (s.prepared || s.view !== this.view || s.digest === undefined || s.prePrepareSig === undefined) return;
    const primary = this.primaryIndex();
    const prepares = this.matching(s.prepares, s.key, primary);
    if (prepares.length < 2 * this.f) return;
    s.prepared = true;
    s.preparedCert = { view: this.view, seq: s.seq, digest: s.digest, prePrepare: s.prePrepareSig, prepares: prepares.slice(0, 2 * this.f) };
    const m = this.vote('commit', s.seq, s.digest);
    s.commits.set(this.index, { key: s.key, digest: s.digest, signature: m.signature });
    this.broadcast(m);
    this.checkCommitted(s, s.key);
  }

  private checkCommitted(s: Slot, key: string): void {
    if (s.decided !== undefined) return;
    const commits = this.matching(s.commits, key, -1);
    if (commits.length < 2 * this.f + 1) return;
    this.decide(s, this.view, (s.commits.get(commits[0]?.replica as number) as Vote).digest, commits.slice(0, 2 * this.f + 1));
  }

  private decide(s: Slot, view: number, digest: Uint8Array, commits: readonly Endorsement[]): void {
    const key = bytesKey(digest);
    if (s.decided !== undefined) {
      invariant(s.decided.key === key, () => `pbft ${this.id}: two batches decided at ${s.seq}`);
      return;
    }
    s.decided = { view, digest, key, commits };
    if (!s.batches.has(key)) this.needBatch(digest);
  }

  // ---- execution ----------------------------------------------------------------------------

  private executable(): Slot | undefined {
    const s = this.slots.get(this.lastExec + 1);
    if (s?.decided === undefined || !s.batches.has(s.decided.key)) return undefined;
    return s;
  }

  private canExecute(): boolean {
    return this.outstanding === undefined && this.executable() !== undefined;
  }

  /** Hands out decided batches in order; a checkpoint batch ends the list (its state is taken at advance). */
  private collectCommitted(): CommittedBatch[] {
    const out: CommittedBatch[] = [];
    for (let s = this.executable(); s !== undefined; s = this.executable()) {
      const d = s.decided as Decision;
      const requests = s.batches.get(d.key) as readonly RequestMessage[];
      const execute: boolean[] = [];
      let index = 0;
      for (const r of requests) {
        const fresh = !this.clients.executed(r.client, r.timestamp);
        execute.push(fresh);
        if (fresh) this.clients.record(r.client, r.timestamp, s.seq, index++);
        this.forgetExecuted(r.client, r.timestamp);
      }
      s.executed = true;
      this.lastExec = s.seq;
      const checkpoint = s.seq % this.limits.checkpointInterval === 0;
      out.push({ seq: s.seq, view: d.view, digest: d.digest, requests, execute, checkpoint });
      if (checkpoint) break;
    }
    // Progress in this view: view-change timeouts start from their base again.
    if (out.length > 0 && this.active) this.backoff = 0;
    return out;
  }

  private finishBatch(b: CommittedBatch, ex: BatchExecution): void {
    invariant(ex.seq === b.seq, () => `pbft: execution for ${ex.seq} where ${b.seq} was expected`);
    const leafData: { client: string; timestamp: number; result: Uint8Array }[] = [];
    let r = 0;
    for (let i = 0; i < b.requests.length; i++) {
      if (!b.execute[i]) continue;
      const req = b.requests[i] as RequestMessage;
      const result = ex.results[r++];
      invariant(result !== undefined, () => `pbft: batch ${b.seq} is missing result ${r - 1}`);
      this.clients.setResult(req.client, req.timestamp, result);
      leafData.push({ client: req.client, timestamp: req.timestamp, result });
    }
    invariant(r === ex.results.length, () => `pbft: batch ${b.seq} has ${ex.results.length} results for ${r} executed requests`);
    this.counters.batchesExecuted++;
    this.counters.requestsExecuted += leafData.length;
    if (leafData.length > 0) this.replyBatch(b.seq, leafData);
    if (b.checkpoint) {
      invariant(ex.appSnapshot !== undefined, () => `pbft: checkpoint batch ${b.seq} without an application snapshot`);
      this.takeCheckpoint(b.seq, ex.appSnapshot);
    }
  }

  /** One signature for the whole batch: every reply proves its leaf under the signed root. */
  private replyBatch(seq: number, items: readonly { client: string; timestamp: number; result: Uint8Array }[]): void {
    const leaves = items.map((it) => this.auth.replyLeaf(it.client, it.timestamp, it.result));
    const levels = merkleLevels(this.auth.verifier.digest, leaves);
    const root = (levels[levels.length - 1] as readonly Uint8Array[])[0] as Uint8Array;
    const signature = this.sign(this.auth.replyDigest(this.view, seq, root, this.index));
    const rr: ReplyRoot = { view: this.view, root, signature, levels };
    this.replyRoots.set(seq, rr);
    if (this.replyRoots.size > this.limits.maxReplyCacheBatches) {
      const oldest = this.replyRoots.keys().next();
      if (oldest.done !== true) this.replyRoots.delete(oldest.value);
    }
    items.forEach((it, i) => this.pushReply(seq, rr, i, it.client, it.timestamp, it.result));
  }

  private pushReply(seq: number, rr: ReplyRoot, index: number, client: string, timestamp: number, result: Uint8Array): void {
    const message: ReplyMessage = {
      type: 'reply',
      view: rr.view,
      seq,
      root: rr.root,
      replica: this.index,
      signature: rr.signature,
      client,
      timestamp,
      result,
      index,
      leafCount: (rr.levels[0] as readonly Uint8Array[]).length,
      path: pathFromLevels(rr.levels, index),
    };
    this.replies.push({ to: client, message });
  }

  private resendReply(client: string, timestamp: number): void {
    const e = this.clients.get(client);
    if (e === undefined || e.result === undefined || e.timestamp !== timestamp) return;
    let rr = this.replyRoots.get(e.seq);
    let index = e.index;
    if (rr === undefined || index >= (rr.levels[0] as readonly Uint8Array[]).length) {
      // The batch's root is gone (evicted, or we got here by state transfer): sign this leaf alone.
      const leaf = this.auth.replyLeaf(client, timestamp, e.result);
      const signature = this.sign(this.auth.replyDigest(this.view, e.seq, leaf, this.index));
      rr = { view: this.view, root: leaf, signature, levels: [[leaf]] };
      index = 0;
    }
    this.pushReply(e.seq, rr, index, client, timestamp, e.result);
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  private checkpointVotes(seq: number): CheckpointVotes {
    let c = this.checkpoints.get(seq);
    if (c === undefined) {
      c = { votes: new Map(), own: undefined };
      this.checkpoints.set(seq, c);
    }
    return c;
  }

  private takeCheckpoint(seq: number, appSnapshot: Uint8Array): void {
    const state = this.clients.encodeState(appSnapshot);
    invariant(state.byteLength <= this.limits.maxStateBytes, () => `pbft: checkpoint state of ${state.byteLength} bytes over maxStateBytes`);
    const digest = this.auth.verifier.digest(state);
    const key = bytesKey(digest);
    if (seq <= this.low) return;
    const c = this.checkpointVotes(seq);
    c.own = { digest, key, state };
    const d = this.auth.checkpointDigest(seq, digest, this.index);
    const m: CheckpointMessage = { type: 'checkpoint', seq, digest, replica: this.index, signature: this.sign(d) };
    this.auth.remember(m, d);
    c.votes.set(this.index, { key, digest, signature: m.signature });
    this.broadcast(m);
    this.checkStable(seq);
  }

  private onCheckpoint(m: CheckpointMessage): void {
    if (m.seq % this.limits.checkpointInterval !== 0) {
      this.drop('unexpected');
      return;
    }
    if (!this.inWindow(m.seq)) {
      // A late vote for a checkpoint already stable is no fault.
      this.drop(m.seq <= this.low ? 'duplicate' : 'outsideWatermarks');
      return;
    }
    const c = this.checkpointVotes(m.seq);
    const key = bytesKey(m.digest);
    const had = c.votes.get(m.replica);
    if (had !== undefined) {
      this.drop(had.key === key ? 'duplicate' : 'conflict');
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    c.votes.set(m.replica, { key, digest: m.digest, signature: m.signature });
    this.checkStable(m.seq);
  }

  private checkStable(seq: number): void {
    const c = this.checkpoints.get(seq);
    if (c === undefined || seq <= this.low) return;
    const counts = new Map<string, number>();
    let winner: string | undefined;
    for (const v of c.votes.values()) {
      const k = (counts.get(v.key) ?? 0) + 1;
      counts.set(v.key, k);
      if (k >= 2 * this.f + 1) winner = v.key;
    }
    if (winner === undefined) return;
    const signatures = this.matching(c.votes, winner, -1).slice(0, 2 * this.f + 1);
    const digest = (c.votes.get(signatures[0]?.replica as number) as Vote).digest;
    const proof: CheckpointProof = { seq, digest, signatures };
    if (c.own !== undefined) {
      invariant(c.own.key === winner, () => `pbft ${this.id}: own state at ${seq} differs from the stable checkpoint (non-deterministic application?)`);
      this.makeStable(proof, c.own.state);
    } else if (this.lastExec < seq) {
      this.startTransfer(proof);
    }
    // Otherwise our own checkpoint at seq comes with the outstanding Ready's advance().
  }

  private makeStable(proof: CheckpointProof, state: Uint8Array): void {
    if (proof.seq <= this.low) return;
    this.low = proof.seq;
    this.stableDigest = proof.digest;
    this.stableProof = proof.signatures;
    this.stableState = state;
    this.counters.stableCheckpoints++;
    for (const seq of this.slots.keys()) if (seq <= this.low) this.slots.delete(seq);
    for (const seq of this.checkpoints.keys()) if (seq <= this.low) this.checkpoints.delete(seq);
    if (this.nextSeq <= this.low) this.nextSeq = this.low + 1;
    if (this.transfer !== undefined && this.transfer.seq <= this.low) this.transfer = undefined;
    this.pruneMissing();
  }

  // ---- state transfer -------------------------------------------------------------------------

  private startTransfer(proof: CheckpointProof, ask = true): void {
    if (proof.seq === 0 || proof.seq <= this.lastExec || (this.transfer !== undefined && this.transfer.seq >= proof.seq)) return;
    if (this.transferred !== undefined && this.transferred.seq >= proof.seq) return;
    const targets = proof.signatures.map((e) => e.replica).filter((r) => r !== this.index);
    if (targets.length === 0) return;
    this.transfer = { seq: proof.seq, digest: proof.digest, proof, targets, turn: 0, total: -1, parts: [], received: 0, elapsed: 0 };
    if (ask) this.askState();
  }

  private askState(): void {
    const t = this.transfer;
    if (t === undefined) return;
    t.elapsed = 0;
    const target = t.targets[t.turn % t.targets.length] as number;
    this.send(this.memberId(target), this.signMessage({ type: 'fetchState', seq: t.seq, offset: t.received, replica: this.index, signature: NO_SIGNATURE }));
  }

  private onFetchState(m: FetchStateMessage): void {
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    const state = this.stableState;
    if (state === undefined || this.low < m.seq || this.low === 0) {
      this.drop('unexpected');
      return;
    }
    const budget = this.chunkBudget.get(m.replica);
    if (budget !== undefined && budget.tick === this.now && budget.sent >= this.limits.maxStateChunksPerTick) {
      this.drop('queueFull');
      return;
    }
    if (budget === undefined || budget.tick !== this.now) this.chunkBudget.set(m.replica, { tick: this.now, sent: 1 });
    else budget.sent++;
    // Asked for an older checkpoint than ours: start over with ours.
    const offset = this.low === m.seq ? m.offset : 0;
    if (offset > state.byteLength) {
      this.drop('unexpected');
      return;
    }
    this.send(this.memberId(m.replica), this.stateChunk(offset, this.limits.stateChunkBytes));
  }

  private stateChunk(offset: number, length: number): StateChunkMessage {
    const state = this.stableState ?? EMPTY;
    const proof: CheckpointProof = { seq: this.low, digest: this.stableDigest, signatures: this.stableProof };
    const data = state.subarray(offset, Math.min(state.byteLength, offset + length));
    return this.signMessage({ type: 'stateChunk', proof, totalBytes: state.byteLength, offset, data, replica: this.index, signature: NO_SIGNATURE });
  }

  private onStateChunk(m: StateChunkMessage): void {
    const p = m.proof;
    if (p.seq <= this.lastExec || (this.transferred !== undefined && p.seq <= this.transferred.seq)) {
      this.drop('duplicate');
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    let t = this.transfer;
    if (t === undefined || p.seq !== t.seq || !bytesEqual(p.digest, t.digest)) {
      if (t !== undefined && p.seq < t.seq) {
        this.drop('unexpected');
        return;
      }
      // An announcement, or a reply carrying a newer checkpoint: follow it if its proof holds.
      if (!checkCheckpointProof(this.proofs, p)) {
        this.drop('badCertificate');
        return;
      }
      this.transfer = undefined;
      this.startTransfer(p, m.data.byteLength === 0);
      t = this.transfer;
      if (t === undefined) return;
    }
    if (m.data.byteLength === 0 && m.totalBytes > 0) return;
    if (t.total < 0) t.total = m.totalBytes;
    if (m.totalBytes !== t.total || m.totalBytes > this.limits.maxStateBytes) {
      this.drop('badState');
      this.resetTransfer(t);
      return;
    }
    if (m.offset !== t.received) {
      this.drop('unexpected');
      return;
    }
    t.parts.push(m.data);
    t.received += m.data.byteLength;
    if (t.received < t.total) {
      this.askState();
      return;
    }
    const state = new Uint8Array(t.total);
    let off = 0;
    for (const part of t.parts) {
      state.set(part, off);
      off += part.byteLength;
    }
    if (!bytesEqual(this.auth.verifier.digest(state), t.digest)) {
      // Someone sent bytes that are not the proven state: start over with the next replica.
      this.drop('badState');
      this.resetTransfer(t);
      return;
    }
    this.transfer = undefined;
    this.transferred = { seq: t.seq, digest: t.digest, proof: t.proof, state };
  }

  private resetTransfer(t: Transfer): void {
    t.parts = [];
    t.received = 0;
    t.total = -1;
    t.turn++;
    this.askState();
  }

  /** Installs a finished transfer: the client table and stable checkpoint now; the application via Ready.restore. */
  private installTransfer(): void {
    const done = this.transferred;
    if (done === undefined) return;
    this.transferred = undefined;
    if (done.seq <= this.lastExec) return;
    const decoded = ClientTable.decodeState(done.state, this.limits.maxClients, this.limits.maxClientIdBytes);
    this.clients = decoded.clients;
    this.lastExec = done.seq;
    this.checkpointVotes(done.seq).own = { digest: done.digest, key: bytesKey(done.digest), state: done.state };
    this.makeStable(done.proof, done.state);
    for (const p of [...this.pending.values()]) if (this.clients.executed(p.request.client, p.request.timestamp)) this.forgetExecuted(p.request.client, p.request.timestamp);
    this.restore = { seq: done.seq, appSnapshot: decoded.appSnapshot };
    this.counters.stateTransfers++;
  }

  // ---- batches by digest ----------------------------------------------------------------------

  private needBatch(digest: Uint8Array): void {
    const key = bytesKey(digest);
    if (this.missing.has(key) || this.missing.size >= this.limits.maxMissingBatches) return;
    this.missing.set(key, { digest, elapsed: this.limits.fetchTimeoutTicks });
  }

  private gotBatch(key: string, batch: readonly RequestMessage[]): void {
    this.missing.delete(key);
    for (const s of this.slots.values()) if (s.key === key || s.decided?.key === key) s.addBatch(key, batch);
  }

  private pruneMissing(): void {
    for (const [key] of this.missing) {
      let wanted = false;
      for (const s of this.slots.values()) if ((s.key === key || s.decided?.key === key) && !s.batches.has(key)) wanted = true;
      if (!wanted) this.missing.delete(key);
    }
  }

  private onFetchBatch(m: FetchBatchMessage): void {
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    const key = bytesKey(m.digest);
    for (const s of this.slots.values()) {
      const batch = s.batches.get(key);
      if (batch === undefined) continue;
      this.send(this.memberId(m.replica), this.signMessage({ type: 'batch', digest: m.digest, batch, replica: this.index, signature: NO_SIGNATURE }));
      return;
    }
    this.drop('unexpected');
  }

  private onBatch(m: BatchMessage): void {
    const key = bytesKey(m.digest);
    if (!this.missing.has(key)) {
      this.drop('unexpected');
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    if (m.batch.length > this.limits.maxBatchRequests || !this.batchMatches(m.digest, m.batch)) {
      this.drop('digestMismatch');
      return;
    }
    // No client signature checks: the digest was prepared by 2f+1 replicas, f+1 of them honest.
    this.gotBatch(key, m.batch);
  }

  private onCommitCertificate(m: CommitCertificateMessage): void {
    if (m.seq <= this.lastExec) {
      this.drop('duplicate');
      return;
    }
    if (!this.inWindow(m.seq)) {
      this.drop('outsideWatermarks');
      return;
    }
    const s = this.slot(m.seq);
    const key = bytesKey(m.digest);
    if (s.decided !== undefined && s.batches.has(s.decided.key)) {
      this.drop('duplicate');
      return;
    }
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    const q = 2 * this.f + 1;
    const seen = new Set<number>();
    let ok = m.commits.length >= q && m.commits.length <= this.n;
    for (const e of m.commits) {
      if (!ok) break;
      ok = e.replica < this.n && !seen.has(e.replica);
      seen.add(e.replica);
    }
    if (ok) for (const e of m.commits) if (ok) ok = this.verified(this.auth.verifyCommit(m.view, m.seq, m.digest, e.replica, e.signature));
    if (!ok) {
      this.drop('badCertificate');
      return;
    }
    if (m.batch.length > this.limits.maxBatchRequests || !this.batchMatches(m.digest, m.batch)) {
      this.drop('digestMismatch');
      return;
    }
    s.addBatch(key, m.batch);
    this.decide(s, m.view, m.digest, m.commits.slice(0, q));
    this.missing.delete(key);
  }

  // ---- view change ----------------------------------------------------------------------------

  private tickRequestTimer(): void {
    if (this.isPrimary()) return;
    let oldest: PendingRequest | undefined;
    for (const p of this.pending.values()) {
      if (!this.clients.executed(p.request.client, p.request.timestamp)) {
        oldest = p;
        break;
      }
      this.forgetExecuted(p.request.client, p.request.timestamp);
    }
    if (oldest === undefined) return;
    const age = this.now - Math.max(oldest.since, this.viewStart);
    if (age >= this.limits.requestTimeoutTicks * 2 ** this.backoff) this.startViewChange(this.view + 1);
  }

  private tickViewChangeTimer(): void {
    if (this.viewChangeElapsed === undefined) return;
    if (++this.viewChangeElapsed >= this.limits.viewChangeTimeoutTicks * 2 ** this.backoff) {
      // The new primary did not deliver: try the next one, waiting longer.
      if (this.backoff < this.limits.maxViewChangeBackoff) this.backoff++;
      this.startViewChange(this.view + 1);
    }
  }

  private startViewChange(view: number): void {
    invariant(view > this.view, () => `pbft: view change to ${view} from ${this.view}`);
    this.counters.viewChangesStarted++;
    this.enterView(view);
    this.active = false;
    this.viewChangeElapsed = undefined;
    const prepared: PreparedCertificate[] = [];
    for (const seq of [...this.slots.keys()].sort((a, b) => a - b)) {
      const c = (this.slots.get(seq) as Slot).preparedCert;
      if (seq > this.low && c !== undefined) prepared.push(c);
    }
    const vc = this.signMessage<ViewChangeMessage>({
      type: 'viewChange',
      view,
      checkpoint: { seq: this.low, digest: this.stableDigest, signatures: this.stableProof },
      prepared,
      replica: this.index,
      signature: NO_SIGNATURE,
    });
    this.ownViewChanges.set(view, vc);
    if (this.ownViewChanges.size > OWN_VIEW_CHANGES_KEPT) this.ownViewChanges.delete(this.ownViewChanges.keys().next().value as number);
    this.storeViewChange(vc);
    this.broadcast(vc);
    this.statusElapsed = 0;
    this.afterViewChangeVote();
  }

  /** Moves to `view`: per-view agreement state is dropped, certificates and decisions stay. */
  private enterView(view: number): void {
    this.view = view;
    this.assigned.clear();
    for (const v of this.viewChanges.keys()) if (v < view) this.viewChanges.delete(v);
    for (const s of this.slots.values()) {
      s.prepares = new Map();
      s.commits = new Map();
      s.prepared = false;
    }
  }

  private storeViewChange(vc: ViewChangeMessage): void {
    let byReplica = this.viewChanges.get(vc.view);
    if (byReplica === undefined) {
      byReplica = new Map();
      this.viewChanges.set(vc.view, byReplica);
    }
    byReplica.set(vc.replica, vc);
  }

  private viewChangesFor(view: number): ViewChangeMessage[] {
    return [...(this.viewChanges.get(view)?.values() ?? [])];
  }

  /**
   * The highest view at least f+1 replicas have moved to (so at least one correct replica), above
   * ours, or undefined. `views` maps a replica to the highest view it claims.
   */
  private joinableView(views: ReadonlyMap<number, number>): number | undefined {
    const above = [...views.values()].filter((v) => v > this.view).sort((a, b) => b - a);
    return above.length >= this.f + 1 ? above[this.f] : undefined;
  }

  private onViewChange(m: ViewChangeMessage): void {
    if (m.view < this.view || (m.view === this.view && this.active)) {
      // A replica still moving to a view we are past: it needs the NEW-VIEW, or our vote for its view.
      if (this.mayHelp(m.replica)) this.helpViewChange(m.replica, m.view);
      this.drop('staleView');
      return;
    }
    if (m.view >= this.view + VIEW_CHANGE_WINDOW) {
      this.drop('futureView');
      return;
    }
    if (this.viewChanges.get(m.view)?.has(m.replica) === true) {
      this.drop('duplicate');
      return;
    }
    const problem = viewChangeProblem(this.proofs, m);
    if (problem !== undefined) {
      this.drop(problem);
      return;
    }
    this.storeViewChange(m);
    if (m.view > this.view) {
      // f+1 replicas want a later view: at least one is correct, so follow.
      const highest = new Map<number, number>();
      for (const [view, byReplica] of this.viewChanges) for (const r of byReplica.keys()) if (view > (highest.get(r) ?? -1)) highest.set(r, view);
      const join = this.joinableView(highest);
      if (join !== undefined) this.startViewChange(join);
      return;
    }
    this.afterViewChangeVote();
  }

  /** Helps a replica waiting in `view` (below or at ours): our NEW-VIEW, or our own vote for its view. */
  private helpViewChange(replica: number, view: number): void {
    const to = this.memberId(replica);
    if (this.active && this.newView !== undefined && this.newView.view === this.view && view <= this.view) {
      this.send(to, this.newView);
      this.counters.retransmissions++;
      return;
    }
    const theirs = this.ownViewChanges.get(view);
    if (theirs !== undefined) {
      this.send(to, theirs);
      this.counters.retransmissions++;
    }
    const ours = this.ownViewChanges.get(this.view);
    if (!this.active && view < this.view && ours !== undefined) {
      this.send(to, ours);
      this.counters.retransmissions++;
    }
  }

  /** With 2f+1 VIEW-CHANGEs for our view: start waiting for the NEW-VIEW, or send it as its primary. */
  private afterViewChangeVote(): void {
    if (this.active) return;
    const vcs = this.viewChangesFor(this.view);
    if (vcs.length < 2 * this.f + 1) return;
    if (this.viewChangeElapsed === undefined) this.viewChangeElapsed = 0;
    if (!this.isPrimary()) return;
    // Our own view change first, then the others in replica order (deterministic).
    const chosen = vcs.sort((a, b) => (a.replica === this.index ? -1 : b.replica === this.index ? 1 : a.replica - b.replica)).slice(0, 2 * this.f + 1);
    const order = computeNewViewOrder(chosen, this.auth.nullDigest);
    const prePrepares = order.order.map((o) => ({
      seq: o.seq,
      digest: o.digest,
      signature: this.sign(this.auth.agreementDigest('prePrepare', this.view, o.seq, o.digest, this.index)),
    }));
    const nv = this.signMessage<NewViewMessage>({ type: 'newView', view: this.view, viewChanges: chosen, prePrepares, replica: this.index, signature: NO_SIGNATURE });
    this.broadcast(nv);
    this.installNewView(nv, order);
  }

  private onNewView(m: NewViewMessage): void {
    if (m.view < this.view || (m.view === this.view && this.active)) {
      this.drop(m.view < this.view ? 'staleView' : 'duplicate');
      return;
    }
    if (m.view >= this.view + VIEW_CHANGE_WINDOW) {
      this.drop('futureView');
      return;
    }
    const checks = this.newViewChecks.get(m.view) ?? 0;
    if (checks >= this.limits.maxNewViewChecks) {
      // Its primary keeps sending NEW-VIEWs that fail: the view-change timer moves us on.
      this.drop('queueFull');
      return;
    }
    this.newViewChecks.set(m.view, checks + 1);
    for (const v of this.newViewChecks.keys()) if (v < this.view) this.newViewChecks.delete(v);
    const known = (vc: ViewChangeMessage): boolean => {
      const had = this.viewChanges.get(vc.view)?.get(vc.replica);
      return had !== undefined && (had === vc || bytesEqual(had.signature, vc.signature));
    };
    const result = checkNewView(this.proofs, m, known);
    if (typeof result === 'string') {
      this.drop(result);
      return;
    }
    if (m.view > this.view) this.enterView(m.view);
    this.installNewView(m, result);
  }

  private installNewView(nv: NewViewMessage, o: NewViewOrder): void {
    this.active = true;
    this.viewStart = this.now;
    this.viewChangeElapsed = undefined;
    this.newView = nv;
    this.counters.viewsEntered++;
    for (const v of this.viewChanges.keys()) if (v <= this.view) this.viewChanges.delete(v);
    // The stable checkpoint of V: adopt it (we hold its state) or fetch it.
    const cp = o.checkpoint;
    if (cp.seq > this.low) {
      const own = this.checkpoints.get(cp.seq)?.own;
      if (own !== undefined && bytesEqual(own.digest, cp.digest)) this.makeStable(cp, own.state);
      else if (this.lastExec < cp.seq) this.startTransfer(cp);
    }
    const primary = this.primaryIndex();
    const ordered = new Set<string>();
    for (let i = 0; i < o.order.length; i++) {
      const e = o.order[i] as { seq: number; digest: Uint8Array };
      if (!this.inWindow(e.seq)) continue;
      const s = this.slot(e.seq);
      const sig = (nv.prePrepares[i] as { signature: Uint8Array }).signature;
      this.acceptPrePrepare(s, e.digest, sig, undefined);
      for (const r of s.batches.get(s.key) ?? []) ordered.add(requestKey(r.client, r.timestamp));
    }
    if (this.index === primary) {
      this.nextSeq = Math.max(o.maxSeq, this.low, this.lastExec) + 1;
      for (const k of ordered) if (this.pending.has(k)) this.assigned.add(k);
    } else {
      // Requests we know the old primary never ordered go to the new one.
      let forwarded = 0;
      for (const [k, p] of this.pending) {
        if (forwarded >= this.limits.maxForwardOnNewView) break;
        if (ordered.has(k)) continue;
        this.send(this.memberId(primary), p.request);
        forwarded++;
      }
    }
    this.replayEarly();
  }

  // ---- status and retransmission --------------------------------------------------------------

  private broadcastStatus(): void {
    this.broadcast(
      this.signMessage<StatusMessage>({
        type: 'status',
        view: this.view,
        active: this.active,
        stableSeq: this.low,
        lastExecuted: this.lastExec,
        replica: this.index,
        signature: NO_SIGNATURE,
      }),
    );
    // Unanswered votes whose loss would stall us: our VIEW-CHANGE, our unstable checkpoints.
    const own = this.ownViewChanges.get(this.view);
    if (!this.active && own !== undefined) this.broadcast(own);
    for (const [seq, c] of this.checkpoints) {
      const mine = c.votes.get(this.index);
      if (seq > this.low && mine !== undefined) this.broadcast({ type: 'checkpoint', seq, digest: mine.digest, replica: this.index, signature: mine.signature });
    }
  }

  private onStatus(m: StatusMessage): void {
    if (!this.verified(this.auth.verifyMessage(m))) {
      this.drop('badSignature');
      return;
    }
    const prev = this.peerStatus.get(m.replica);
    this.peerStatus.set(m.replica, m);
    if (!this.mayHelp(m.replica)) return;
    const to = this.memberId(m.replica);
    // A replica behind our view, or waiting in it, gets our NEW-VIEW or our votes.
    if (m.view < this.view || (m.view === this.view && !m.active)) this.helpViewChange(m.replica, m.view);
    // f+1 replicas report later views: join them even if their VIEW-CHANGEs were lost.
    const views = new Map<number, number>();
    for (const [r, st] of this.peerStatus) views.set(r, st.view);
    const join = this.joinableView(views);
    if (join !== undefined) {
      this.startViewChange(join);
      return;
    }
    // Behind our stable checkpoint: announce it (an empty STATE-CHUNK carries the proof).
    if (m.lastExecuted < this.low && this.stableState !== undefined) {
      this.send(to, this.stateChunk(0, 0));
      this.counters.retransmissions++;
      return;
    }
    // Stuck on slots we are past (no progress between two of its STATUS): resend what decides them.
    const stuck = prev !== undefined && prev.lastExecuted === m.lastExecuted;
    if (!stuck) return;
    let budget = this.limits.maxRetransmitPerStatus;
    const sameView = this.active && m.active && m.view === this.view;
    for (let seq = Math.max(m.lastExecuted, this.low) + 1; budget > 0 && seq <= this.low + this.limits.watermarkWindow; seq++) {
      const s = this.slots.get(seq);
      if (s === undefined) continue;
      if (s.decided !== undefined) {
        const batch = s.batches.get(s.decided.key);
        if (batch !== undefined) {
          const d = s.decided;
          this.send(to, this.signMessage<CommitCertificateMessage>({ type: 'commitCertificate', view: d.view, seq, digest: d.digest, commits: d.commits, batch, replica: this.index, signature: NO_SIGNATURE }));
          budget--;
          this.counters.retransmissions++;
          continue;
        }
      }
      if (!sameView || s.view !== this.view || s.digest === undefined || s.prePrepareSig === undefined) continue;
      const batch = s.batches.get(s.key);
      if (batch !== undefined && batch.length > 0) {
        this.send(to, { type: 'prePrepare', view: this.view, seq, digest: s.digest, replica: this.primaryIndex(), signature: s.prePrepareSig, batch });
      }
      const prep = s.prepares.get(this.index);
      if (prep !== undefined) this.send(to, { type: 'prepare', view: this.view, seq, digest: prep.digest, replica: this.index, signature: prep.signature });
      const com = s.commits.get(this.index);
      if (com !== undefined) this.send(to, { type: 'commit', view: this.view, seq, digest: com.digest, replica: this.index, signature: com.signature });
      budget--;
      this.counters.retransmissions++;
    }
  }

  /** Retransmissions to one replica at most once per statusTicks: replays cannot amplify. */
  private mayHelp(replica: number): boolean {
    const last = this.lastHelp.get(replica);
    if (last !== undefined && this.now - last < this.limits.statusTicks) return false;
    this.lastHelp.set(replica, this.now);
    return true;
  }

  private tickFetches(): void {
    const t = this.transfer;
    if (t !== undefined && ++t.elapsed >= this.limits.fetchTimeoutTicks) {
      t.turn++;
      this.askState();
    }
    for (const m of this.missing.values()) {
      if (++m.elapsed < this.limits.fetchTimeoutTicks) continue;
      m.elapsed = 0;
      this.broadcast(this.signMessage({ type: 'fetchBatch', digest: m.digest, replica: this.index, signature: NO_SIGNATURE }));
    }
  }
}

export { requestKey };
