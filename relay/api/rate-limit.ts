// Token buckets keyed by a string (a principal id, a source address), with a bounded key set:
// beyond `maxKeys` the least recently used bucket is forgotten. Pure: time is passed in.
// A forgotten bucket comes back full, so eviction only ever errs towards letting a caller in.

export interface RateLimit {
  /** Sustained rate (tokens added per second). */
  perSecond: number;
  /** Bucket size (the burst a fresh caller gets). */
  burst: number;
  /** Buckets kept at most. */
  maxKeys: number;
}

interface Bucket {
  tokens: number;
  last: number;
}

export type Taken = { ok: true } | { ok: false; retryAfterSeconds: number };

export class TokenBuckets {
  readonly limit: Readonly<RateLimit>;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1) || !(limit.maxKeys >= 1)) throw new RangeError('a rate limit needs perSecond > 0, burst >= 1 and maxKeys >= 1');
    this.limit = { ...limit };
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Whether `key` could take one token now; creates nothing. */
  check(key: string, now: number): Taken {
    const b = this.#buckets.get(key);
    return b === undefined ? { ok: true } : this.#verdict(this.#refilled(b, now));
  }

  /** Takes one token from `key`'s bucket, or says how long until one is there. */
  take(key: string, now: number): Taken {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.limit.maxKeys) {
        const lru = this.#buckets.keys().next().value;
        if (lru !== undefined) this.#buckets.delete(lru);
      }
      b = { tokens: this.limit.burst, last: now };
    } else {
      // Re-inserted so the Map's order stays least recently used first.
      this.#buckets.delete(key);
    }
    this.#buckets.set(key, b);
    b.tokens = this.#refilled(b, now);
    b.last = Math.max(b.last, now);
    const verdict = this.#verdict(b.tokens);
    if (verdict.ok) b.tokens -= 1;
    return verdict;
  }

  #refilled(b: Bucket, now: number): number {
    return Math.min(this.limit.burst, b.tokens + (Math.max(0, now - b.last) / 1000) * this.limit.perSecond);
  }

  #verdict(tokens: number): Taken {
    return tokens >= 1 ? { ok: true } : { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.limit.perSecond)) };
  }
}
