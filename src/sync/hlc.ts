// Hybrid logical clock (Kulkarni et al. 2014): a (wall ms, counter) pair that never goes
// backwards, stays within MAX_HLC_DRIFT_MS of physical time, and orders every version a
// peer writes after every version it has seen. Pure: physical time is passed in.
import { ClockDriftError } from './errors.ts';

export type Hlc = readonly [wall: number, counter: number];

/** A remote timestamp further than this ahead of our physical clock is refused. */
export const MAX_HLC_DRIFT_MS = 60_000;
/** Counter ceiling within one millisecond (then the wall component is advanced by 1 ms). */
export const MAX_HLC_COUNTER = 0xffff;

export function compareHlc(a: Hlc, b: Hlc): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

export function isHlc(value: unknown): value is Hlc {
  return Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && value[0] >= 0 &&
    Number.isSafeInteger(value[1]) && value[1] >= 0 && value[1] <= MAX_HLC_COUNTER;
}

export class HybridClock {
  #wall = 0;
  #counter = 0;

  get last(): Hlc {
    return [this.#wall, this.#counter];
  }

  /** A timestamp for a local event, strictly above every one issued or observed before. */
  now(physicalMs: number): Hlc {
    if (physicalMs > this.#wall) {
      this.#wall = physicalMs;
      this.#counter = 0;
    } else if (this.#counter < MAX_HLC_COUNTER) {
      this.#counter++;
    } else {
      this.#wall++;
      this.#counter = 0;
    }
    return [this.#wall, this.#counter];
  }

  /**
   * Folds in a timestamp seen on a remote version, so our next write orders after it.
   * Throws ClockDriftError (and changes nothing) when it is too far in our future.
   */
  observe(remote: Hlc, physicalMs: number): void {
    if (remote[0] > physicalMs + MAX_HLC_DRIFT_MS) {
      throw new ClockDriftError(`timestamp ${remote[0]} is ${remote[0] - physicalMs} ms ahead of our clock (limit ${MAX_HLC_DRIFT_MS})`);
    }
    if (compareHlc(remote, [this.#wall, this.#counter]) > 0) {
      this.#wall = remote[0];
      this.#counter = remote[1];
    }
  }
}
