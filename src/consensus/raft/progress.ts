// Leader-side view of one follower: how far its log matches (`match`), what to send next
// (`next`), and the flow-control state. Probe: one message per round trip until a match is
// found; replicate: optimistic pipelining bounded by Inflights; snapshot: sending chunks.
import { invariant } from './errors.ts';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A ring of the last index (and bytes) of each AppendEntries still unacknowledged. */
export class Inflights {
  private readonly maxMsgs: number;
  private readonly maxBytes: number;
  private readonly lastIndex: number[] = [];
  private readonly sizes: number[] = [];
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(maxMsgs: number, maxBytes: number) {
    invariant(maxMsgs >= 1, 'inflights: maxMsgs must be >= 1');
    this.maxMsgs = maxMsgs;
    this.maxBytes = maxBytes;
  }

  full(): boolean {
    return this.count >= this.maxMsgs || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  size(): number {
    return this.count;
  }

  add(index: number, bytes: number): void {
    invariant(!this.full(), 'inflights: add to a full window');
    const slot = (this.start + this.count) % this.maxMsgs;
    this.lastIndex[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Acknowledge every message whose last index is <= `to`. */
  freeLE(to: number): void {
    while (this.count > 0 && (this.lastIndex[this.start] as number) <= to) {
      this.bytes -= this.sizes[this.start] as number;
      this.start = (this.start + 1) % this.maxMsgs;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: a message was sent and we wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** Heard from this peer since the last CheckQuorum round. */
  recentActive = false;
  isLearner: boolean;
  /** Highest commit index sent to this peer (to tell it about a newer one promptly). */
  sentCommit = 0;
  /** Highest ReadIndex round this peer acknowledged. */
  readAck = 0;
  readonly inflights: Inflights;
  /** Snapshot state: the snapshot index being sent, and the chunk window (in chunks). */
  pendingSnapshot = 0;
  snapSentChunks = 0;
  snapAckedChunks = 0;
  /** Heartbeat responses in a row that came with chunks out and none acknowledged since. */
  snapIdleHeartbeats = 0;
  /**
   * The chunk a rejection already made us resend from. Every chunk in flight behind a gap is
   * rejected with the same offset; resending a window per rejection multiplies the traffic.
   */
  snapResentFrom = -1;

  constructor(next: number, isLearner: boolean, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapSentChunks = 0;
    this.snapAckedChunks = 0;
    this.snapIdleHeartbeats = 0;
    this.snapResentFrom = -1;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = index;
  }

  /** A successful response: returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`: move `next` back towards
   * `hint + 1`. Returns false for a stale rejection (already superseded).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.isLearner && rejected <= this.match && hint < this.match) {
      // A learner may write its log without fsync and lose a suffix to a power cut: it then
      // rejects at or below its match. Nothing counts on a learner's match, so take its word
      // and probe from where its log ends (a stale rejection only costs a resend).
      this.resetState('probe');
      this.match = 0;
      this.next = hint + 1;
      return true;
    }
    if (this.state === 'replicate') {
      // In replicate state a rejection of anything at or below match is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the last probe (prevIndex = next - 1) is meaningful.
    if (this.next - 1 !== rejected) return false;
    const next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    // A rejection at match itself moves nothing (only a lost log does that): probe again on
    // the next heartbeat response rather than at once, in a loop.
    if (next === this.next) return false;
    this.next = next;
    this.probeSent = false;
    return true;
  }

  /** Record that `entries` entries (`bytes` bytes) ending at `lastIndex` were sent. */
  sentEntries(entries: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      invariant(false, 'progress: sending entries in snapshot state');
    }
  }

  /** Whether an AppendEntries may not be sent now (flow control). */
  paused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
