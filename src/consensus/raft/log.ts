// The in-memory Raft log: a snapshot boundary, the entries after it, and the stable/unstable
// split (`stableIndex`: entries at or below it are durable on the driver's store).
// Invariants: snapshot.index <= applied <= committed <= lastIndex; entries are contiguous.
import { invariant } from './errors.ts';
import type { ConfState, Entry, Snapshot } from './types.ts';

export class RaftLog {
  /** The latest snapshot (sent to followers that are too far behind). */
  snapshot: Snapshot;
  /** A snapshot received from the leader and not yet handed to the driver. */
  unstableSnapshot: Snapshot | undefined;
  /** entries[i] has index snapshot.meta.index + 1 + i. */
  entries: Entry[];
  stableIndex: number;
  committed: number;
  /** Highest index handed out in Ready.committedEntries. */
  applied: number;

  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number, applied: number) {
    const snapIndex = snapshot.meta.index;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      invariant(e.index === snapIndex + 1 + i, () => `log: entry ${e.index} not contiguous after ${snapIndex + i}`);
      const prevTerm = i === 0 ? snapshot.meta.term : (entries[i - 1] as Entry).term;
      invariant(e.term >= prevTerm, `log: term goes down at index ${e.index}`);
    }
    this.snapshot = snapshot;
    this.unstableSnapshot = undefined;
    this.entries = entries.slice();
    this.stableIndex = this.lastIndex();
    invariant(committed >= snapIndex && committed <= this.lastIndex(), () => `log: commit ${committed} outside [${snapIndex}, ${this.lastIndex()}]`);
    invariant(applied >= snapIndex && applied <= committed, () => `log: applied ${applied} outside [${snapIndex}, ${committed}]`);
    this.committed = committed;
    this.applied = applied;
  }

  snapIndex(): number {
    return this.snapshot.meta.index;
  }

  firstIndex(): number {
    return this.snapshot.meta.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.snapshot.meta.term : (this.entries[n - 1] as Entry).term;
  }

  /** Term at `i`, or undefined when compacted away or beyond the end. */
  term(i: number): number | undefined {
    const s = this.snapshot.meta.index;
    if (i === s) return this.snapshot.meta.term;
    if (i < s || i > s + this.entries.length) return undefined;
    return (this.entries[i - s - 1] as Entry).term;
  }

  entry(i: number): Entry | undefined {
    const s = this.snapshot.meta.index;
    if (i <= s) return undefined;
    return this.entries[i - s - 1];
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** §5.4.1: is a candidate whose log ends at (index, term) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index <= `index` whose term is <= `term` (or the snapshot boundary), with its
   * term: everything above it cannot match a leader whose log has `term` at `index`.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    const s = this.snapshot.meta.index;
    let i = Math.min(index, this.lastIndex());
    while (i > s) {
      const t = (this.entries[i - s - 1] as Entry).term;
      if (t <= term) return [i, t];
      i--;
    }
    return [s, this.snapshot.meta.term];
  }

  /** Entries [lo, hi) limited to `maxEntries` and `maxBytes` (at least one entry when lo < hi). */
  slice(lo: number, hi: number, maxEntries: number, maxBytes: number): Entry[] {
    const s = this.snapshot.meta.index;
    invariant(lo > s && hi <= this.lastIndex() + 1, () => `log: slice [${lo}, ${hi}) outside (${s}, ${this.lastIndex()}]`);
    let end = Math.min(hi, lo + maxEntries);
    if (maxBytes > 0) {
      let bytes = 0;
      for (let i = lo; i < end; i++) {
        bytes += (this.entries[i - s - 1] as Entry).data.byteLength;
        if (bytes > maxBytes && i > lo) {
          end = i;
          break;
        }
      }
    }
    return this.entries.slice(lo - s - 1, end - s - 1);
  }

  /**
   * Follower side of AppendEntries: if our log has `prevTerm` at `prevIndex`, make it hold
   * `entries` after it (truncating only a conflicting suffix) and return the last index the
   * message vouches for; otherwise undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    let k = 0;
    for (; k < entries.length; k++) {
      const e = entries[k] as Entry;
      // Entries at or below the snapshot are committed, hence identical: skip them.
      if (e.index <= this.snapshot.meta.index) continue;
      const t = this.term(e.index);
      if (t !== e.term) break;
    }
    if (k < entries.length) {
      const first = entries[k] as Entry;
      invariant(first.index > this.committed, () => `log: conflict at ${first.index} at or below commit ${this.committed}`);
      this.truncateAndAppend(entries.slice(k));
    }
    return lastNew;
  }

  /** Leader/follower append: replaces everything from entries[0].index on. */
  truncateAndAppend(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = (entries[0] as Entry).index;
    const s = this.snapshot.meta.index;
    invariant(first > s && first <= this.lastIndex() + 1, () => `log: append at ${first} outside (${s}, ${this.lastIndex() + 1}]`);
    invariant(first > this.committed, () => `log: append at ${first} would overwrite committed ${this.committed}`);
    if (first <= this.lastIndex()) {
      this.entries.length = first - s - 1;
      if (this.stableIndex >= first) this.stableIndex = first - 1;
    }
    const prevTerm = this.lastTerm();
    invariant((entries[0] as Entry).term >= prevTerm, `log: appended term goes down at ${first}`);
    for (const e of entries) this.entries.push(e);
  }

  commitTo(i: number): boolean {
    if (i <= this.committed) return false;
    invariant(i <= this.lastIndex(), () => `log: commit ${i} beyond last index ${this.lastIndex()}`);
    this.committed = i;
    return true;
  }

  unstableEntries(): Entry[] {
    const s = this.snapshot.meta.index;
    return this.entries.slice(Math.max(this.stableIndex, s) - s);
  }

  hasUnstableEntries(): boolean {
    return this.stableIndex < this.lastIndex();
  }

  /** The driver made entries up to (index, term) durable; ignored if since overwritten. */
  stableTo(index: number, term: number): void {
    if (index > this.stableIndex && this.matchTerm(index, term)) this.stableIndex = index;
  }

  hasNextCommitted(): boolean {
    return this.applied < this.committed;
  }

  nextCommitted(maxBytes: number): Entry[] {
    if (this.applied >= this.committed) return [];
    return this.slice(this.applied + 1, this.committed + 1, Number.MAX_SAFE_INTEGER, maxBytes);
  }

  appliedTo(i: number): void {
    invariant(i <= this.committed && i >= this.applied, () => `log: applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  /** Replace the whole log by a snapshot from the leader (it is past our commit). */
  restore(s: Snapshot): void {
    invariant(s.meta.index > this.committed, 'log: restoring a snapshot at or below commit');
    this.snapshot = s;
    this.unstableSnapshot = s;
    this.entries = [];
    this.stableIndex = s.meta.index;
    this.committed = s.meta.index;
    this.applied = s.meta.index;
  }

  /** The application compacted its state at `index` (applied and durable). */
  compact(index: number, data: Uint8Array, conf: ConfState): void {
    const s = this.snapshot.meta.index;
    invariant(index > s, () => `log: compact ${index} at or below snapshot ${s}`);
    invariant(index <= this.applied, () => `log: compact ${index} beyond applied ${this.applied}`);
    invariant(index <= this.stableIndex, () => `log: compact ${index} beyond stable ${this.stableIndex}`);
    const term = this.term(index) as number;
    this.entries = this.entries.slice(index - s);
    this.snapshot = { meta: { index, term, conf }, data };
  }
}
