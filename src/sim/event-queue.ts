// A binary min-heap of timed events ordered by (time, insertion order): equal times pop in the
// order they were pushed, so a simulation driven by it is a pure function of its seed.

interface Queued<T> {
  readonly time: number;
  readonly seq: number;
  readonly ev: T;
}

export class EventQueue<T> {
  private readonly heap: Queued<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, ev: T): void {
    const h = this.heap;
    h.push({ time, seq: this.seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Queued<T>, h[p] as Queued<T>)) break;
      [h[p], h[i]] = [h[i] as Queued<T>, h[p] as Queued<T>];
      i = p;
    }
  }

  pop(): { time: number; ev: T } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined) return undefined;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        let m = i;
        if (l < h.length && before(h[l] as Queued<T>, h[m] as Queued<T>)) m = l;
        if (l + 1 < h.length && before(h[l + 1] as Queued<T>, h[m] as Queued<T>)) m = l + 1;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as Queued<T>, h[m] as Queued<T>];
        i = m;
      }
    }
    return { time: top.time, ev: top.ev };
  }
}

function before<T>(a: Queued<T>, b: Queued<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
