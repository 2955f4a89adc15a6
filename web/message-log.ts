// The tab's ICO message log: what it sent and received, newest first, with per-type counters.
// HEARTBEATs are kept in their own bounded list so a second of liveness traffic never pushes
// the rare HELLO/STATE_SYNC/CONSENSUS/GOODBYE rows out of view. Pure (no DOM).
import type { Envelope, IcoType } from '../src/ico/types.ts';

/** Rows kept per list (messages, heartbeats); older rows are dropped. */
export const MAX_LOG_ENTRIES = 200;

export interface LogEntry {
  /** Order of arrival in this tab, to merge the two lists. */
  index: number;
  direction: 'in' | 'out';
  type: IcoType;
  from: string;
  to: string;
  seq: number;
  /** When this tab sent or received it (ms since epoch, our clock: rows stay in order). */
  at: number;
  /** Envelope timestamp (RFC 3339, the sender's clock). */
  timestamp: string;
}

export interface TypeCount {
  in: number;
  out: number;
}

export class MessageLog {
  readonly limit: number;
  private next = 0;
  private readonly messages: LogEntry[] = [];
  private readonly heartbeats: LogEntry[] = [];
  private readonly counts = new Map<IcoType, TypeCount>();

  constructor(limit = MAX_LOG_ENTRIES) {
    if (!(limit > 0)) throw new RangeError('log limit must be positive');
    this.limit = limit;
  }

  /** Records an envelope; `to` is our PeerId for incoming, the recipient (or '*' for gossip) outgoing. */
  record(direction: 'in' | 'out', envelope: Envelope, to: string, at: number): LogEntry {
    const entry: LogEntry = { index: this.next++, direction, type: envelope.type, from: envelope.sender, to, seq: envelope.seq, at, timestamp: envelope.timestamp };
    const list = envelope.type === 'HEARTBEAT' ? this.heartbeats : this.messages;
    list.unshift(entry);
    if (list.length > this.limit) list.length = this.limit;
    const count = this.counts.get(envelope.type) ?? { in: 0, out: 0 };
    count[direction]++;
    this.counts.set(envelope.type, count);
    return entry;
  }

  /** Newest first; at most `limit` rows. */
  entries(withHeartbeats: boolean): LogEntry[] {
    if (!withHeartbeats) return [...this.messages];
    const merged: LogEntry[] = [];
    let m = 0;
    let h = 0;
    while (merged.length < this.limit && (m < this.messages.length || h < this.heartbeats.length)) {
      const a = this.messages[m];
      const b = this.heartbeats[h];
      if (b === undefined || (a !== undefined && a.index > b.index)) {
        merged.push(a!);
        m++;
      } else {
        merged.push(b);
        h++;
      }
    }
    return merged;
  }

  /** Totals since the tab started (not bounded by `limit`). */
  totals(): Array<[IcoType, TypeCount]> {
    return [...this.counts.entries()].map(([type, c]) => [type, { ...c }]);
  }
}
