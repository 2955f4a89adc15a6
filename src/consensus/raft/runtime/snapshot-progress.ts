// Counters of snapshot transfers as the runtime sees them go out and come in: chunks, bytes,
// chunks sent again (an offset at or below one already sent). A line is logged at every tenth of
// the snapshot, so a transfer that stalls or loops shows in the log without a debugger. One
// entry per peer (only cluster members get this far), replaced when that peer's transfer moves
// to another snapshot.
import type { Logger } from '../../../log/logger.ts';
import type { SnapshotChunkMessage } from '../types.ts';

/** Progress lines per transfer (one per tenth of the snapshot). */
export const SNAPSHOT_PROGRESS_STEPS = 10;

export interface SnapshotTransfer {
  readonly index: number;
  readonly totalBytes: number;
  chunks: number;
  resent: number;
  /** Highest end offset seen (bytes). */
  reached: number;
  step: number;
}

export class SnapshotProgress {
  readonly #log: Logger;
  readonly #what: 'sent' | 'received';
  readonly #byPeer = new Map<string, SnapshotTransfer>();

  constructor(log: Logger, what: 'sent' | 'received') {
    this.#log = log;
    this.#what = what;
  }

  /** Counts one chunk to or from `peer`. */
  chunk(peer: string, m: SnapshotChunkMessage): void {
    let t = this.#byPeer.get(peer);
    if (t === undefined || t.index !== m.meta.index) {
      t = { index: m.meta.index, totalBytes: m.totalBytes, chunks: 0, resent: 0, reached: 0, step: 0 };
      this.#byPeer.set(peer, t);
    }
    const end = m.offset + m.chunk.byteLength;
    t.chunks++;
    if (end <= t.reached) t.resent++;
    t.reached = Math.max(t.reached, end);
    const step = t.totalBytes === 0 ? SNAPSHOT_PROGRESS_STEPS : Math.floor((t.reached * SNAPSHOT_PROGRESS_STEPS) / t.totalBytes);
    if (step > t.step) {
      t.step = step;
      this.#log.info({ peer, index: t.index, bytes: t.reached, totalBytes: t.totalBytes, chunks: t.chunks, resent: t.resent }, `snapshot chunks ${this.#what}`);
    }
  }

  /** The transfer to or from `peer`, if one was seen. */
  get(peer: string): Readonly<SnapshotTransfer> | undefined {
    return this.#byPeer.get(peer);
  }
}
