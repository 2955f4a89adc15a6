// Replay rejection: a sliding window per sender over `seq` (IPsec style). A new highest seq
// moves the window; an unseen seq inside the window is accepted once (gossip reorders);
// duplicates and anything older than the window are replays. Memory is bounded twice: the
// window width and the number of senders tracked (least recently used evicted).

export const DEFAULT_REPLAY_WINDOW = 1024;
/** Senders tracked at once; the least recently active is forgotten first. */
export const MAX_TRACKED_SENDERS = 4096;

interface Window {
  highest: number;
  /** bit i set ⇔ seq (highest - i) was seen; i in [0, width). */
  bits: Uint32Array;
}

export class ReplayGuard {
  readonly width: number;
  readonly maxSenders: number;
  readonly #senders = new Map<string, Window>();

  constructor(width = DEFAULT_REPLAY_WINDOW, maxSenders = MAX_TRACKED_SENDERS) {
    if (!Number.isInteger(width) || width < 32) throw new RangeError('replay window must be an integer >= 32');
    this.width = width;
    this.maxSenders = maxSenders;
  }

  #get(bits: Uint32Array, i: number): boolean {
    return ((bits[i >>> 5] as number) & (1 << (i & 31))) !== 0;
  }

  #set(bits: Uint32Array, i: number): void {
    bits[i >>> 5] = (bits[i >>> 5] as number) | (1 << (i & 31));
  }

  /** Would `seq` from `sender` be accepted? Does not record it. */
  check(sender: string, seq: number): boolean {
    const w = this.#senders.get(sender);
    if (w === undefined || seq > w.highest) return true;
    const offset = w.highest - seq;
    return offset < this.width && !this.#get(w.bits, offset);
  }

  /** Records `seq` as seen; returns false (and records nothing) when it is a replay. */
  accept(sender: string, seq: number): boolean {
    let w = this.#senders.get(sender);
    if (w === undefined) {
      if (this.#senders.size >= this.maxSenders) {
        const oldest = this.#senders.keys().next().value;
        if (oldest !== undefined) this.#senders.delete(oldest);
      }
      w = { highest: seq, bits: new Uint32Array(Math.ceil(this.width / 32)) };
      this.#set(w.bits, 0);
      this.#senders.set(sender, w);
      return true;
    }
    // Refresh recency (Map keeps insertion order).
    this.#senders.delete(sender);
    this.#senders.set(sender, w);
    if (seq > w.highest) {
      const shift = seq - w.highest;
      if (shift >= this.width) {
        w.bits.fill(0);
      } else {
        // Shift the bitmap towards older offsets word by word, high words first, in place.
        const words = w.bits.length;
        const wordShift = shift >>> 5;
        const bitShift = shift & 31;
        for (let j = words - 1; j >= 0; j--) {
          const src = j - wordShift;
          const hi = src >= 0 ? ((w.bits[src] as number) << bitShift) >>> 0 : 0;
          const lo = bitShift !== 0 && src - 1 >= 0 ? (w.bits[src - 1] as number) >>> (32 - bitShift) : 0;
          w.bits[j] = (hi | lo) >>> 0;
        }
        // Offsets at or beyond the width are outside the window: clear the tail bits.
        const tail = this.width & 31;
        if (tail !== 0) w.bits[words - 1] = (w.bits[words - 1] as number) & ((1 << tail) - 1);
      }
      w.highest = seq;
      this.#set(w.bits, 0);
      return true;
    }
    const offset = w.highest - seq;
    if (offset >= this.width || this.#get(w.bits, offset)) return false;
    this.#set(w.bits, offset);
    return true;
  }

  forget(sender: string): void {
    this.#senders.delete(sender);
  }
}

/** Senders not (yet) admitted whose windows are kept at once (their handshakes only). */
export const MAX_PENDING_SENDERS = 256;

/**
 * Replay windows split by admission, so the replay window is consulted for a sender's
 * traffic only once we know whether it is admitted: admitted senders' windows live in a guard
 * that no other envelope touches, so a flood from unadmitted keys (anyone can make keys and
 * sign) cannot evict them and reopen their old sequence numbers to replay. Envelopes from
 * peers not admitted yet (their HELLO, a stray HEARTBEAT) go through a small guard of their
 * own, which such peers may churn among themselves.
 */
export class AdmissionReplay {
  readonly admitted: ReplayGuard;
  readonly pending: ReplayGuard;
  readonly #isAdmitted: (sender: string) => boolean;

  constructor(isAdmitted: (sender: string) => boolean, width = DEFAULT_REPLAY_WINDOW, maxAdmitted = MAX_TRACKED_SENDERS, maxPending = MAX_PENDING_SENDERS) {
    this.#isAdmitted = isAdmitted;
    this.admitted = new ReplayGuard(width, maxAdmitted);
    this.pending = new ReplayGuard(width, maxPending);
  }

  /** The guard that envelopes from `sender` must pass now. */
  guardFor(sender: string): ReplayGuard {
    return this.#isAdmitted(sender) ? this.admitted : this.pending;
  }
}
