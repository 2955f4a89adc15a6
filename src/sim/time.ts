// Simulated time for the seeded simulator: one discrete event queue ordered by (time, seq), a
// FIFO of deferred callbacks (what setImmediate is to real time), and per-node Timers whose
// clocks run at a node's own rate and go silent when the node crashes (a fence per
// incarnation). Nothing here reads the real clock, so a run is a pure function of its seed.
import type { Cancel, Timers } from '../consensus/ports.ts';

/** Wall-clock time the simulated epoch starts at (stamps on commands look real). */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

interface QueuedEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void | Promise<void>;
}

function less(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** Binary min-heap on (time, seq): equal times run in the order they were scheduled. */
export class EventQueue {
  readonly #heap: QueuedEvent[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(time: number, run: () => void | Promise<void>): void {
    const h = this.#heap;
    h.push({ time, seq: this.#seq++, run });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p] as QueuedEvent, h[i] as QueuedEvent)) break;
      [h[p], h[i]] = [h[i] as QueuedEvent, h[p] as QueuedEvent];
      i = p;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l] as QueuedEvent, h[m] as QueuedEvent)) m = l;
        if (r < h.length && less(h[r] as QueuedEvent, h[m] as QueuedEvent)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as QueuedEvent, h[m] as QueuedEvent];
        i = m;
      }
    }
    return top;
  }
}

/** The simulation's clock: `now` (ms since the run began), the event queue and the deferred FIFO. */
export class SimClock {
  now = 0;
  readonly queue = new EventQueue();
  #deferred: Array<() => void> = [];

  at(time: number, run: () => void | Promise<void>): void {
    this.queue.push(Math.max(time, this.now), run);
  }

  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  get hasDeferred(): boolean {
    return this.#deferred.length > 0;
  }

  /** Runs deferred callbacks (and those they defer) in FIFO order, at most `max`. */
  runDeferred(max: number): number {
    let ran = 0;
    while (this.#deferred.length > 0 && ran < max) {
      const batch = this.#deferred;
      this.#deferred = [];
      for (const fn of batch) {
        fn();
        ran++;
      }
    }
    return ran;
  }
}

/**
 * One incarnation of one node's timers: its clock runs `rate` times as slow as simulated time
 * (1.1 = a slow clock), both what now() reads and how long after() waits; after fence()
 * nothing it scheduled runs any more.
 */
export class NodeTimers implements Timers {
  readonly #clock: SimClock;
  #rate: number;
  /** The node's clock reading at simulated time #anchorSim. */
  #anchorLocal: number;
  #anchorSim: number;
  #alive = true;

  constructor(clock: SimClock, rate: number) {
    this.#clock = clock;
    this.#rate = rate;
    this.#anchorLocal = SIM_EPOCH_MS + clock.now;
    this.#anchorSim = clock.now;
  }

  set rate(r: number) {
    this.#anchorLocal = this.now();
    this.#anchorSim = this.#clock.now;
    this.#rate = r;
  }

  now(): number {
    return this.#anchorLocal + Math.floor((this.#clock.now - this.#anchorSim) / this.#rate);
  }

  after(ms: number, fn: () => void): Cancel {
    if (!this.#alive) return () => undefined;
    let cancelled = false;
    this.#clock.at(this.#clock.now + Math.max(1, Math.round(ms * this.#rate)), () => {
      if (!cancelled && this.#alive) fn();
    });
    return () => {
      cancelled = true;
    };
  }

  defer(fn: () => void): void {
    if (!this.#alive) return;
    this.#clock.defer(() => {
      if (this.#alive) fn();
    });
  }

  /** The node crashed: nothing scheduled by this incarnation runs again. */
  fence(): void {
    this.#alive = false;
  }
}
