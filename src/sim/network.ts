// The simulator's faulty network: every node incarnation gets an EngineTransport endpoint;
// a payload is delivered after a random delay, or dropped, duplicated, reordered (by the
// delays) or cut by a partition. Sending to a crashed node fails at once (no connection);
// a partition looks like loss. Payloads are JSON objects handed over as they are (the
// codec on either side still checks them); nothing here reads the real clock.
import type { EngineTransport } from '../consensus/ports.ts';
import type { JsonObject } from '../ico/types.ts';
import type { Xoshiro128 } from './prng.ts';
import type { SimClock } from './time.ts';

export class NotConnectedError extends Error {
  readonly code = 'SIM_NOT_CONNECTED';
  override name = 'NotConnectedError';
}

type Handler = (from: string, payload: JsonObject) => void;

export interface NetworkStats {
  payloads: number;
  snapshotChunks: number;
}

export class SimNetwork {
  readonly #clock: SimClock;
  readonly #rng: Xoshiro128;
  /** Live endpoints: node id → (incarnation, handler). */
  readonly #endpoints = new Map<string, { incarnation: number; handler: Handler | undefined }>();
  readonly blocked = new Set<string>();
  dropRate = 0;
  dupRate = 0;
  /** Longest one-way delay in ms (at least 1). */
  maxDelay = 40;
  readonly stats: NetworkStats = { payloads: 0, snapshotChunks: 0 };
  /** One error for every refused send (an Error's stack costs more than the send). */
  readonly #notConnected = new NotConnectedError('the member is not reachable');
  /** Called for every delivered payload (tracing). */
  onDeliver: ((from: string, to: string, payload: JsonObject) => void) | undefined;

  constructor(clock: SimClock, rng: Xoshiro128) {
    this.#clock = clock;
    this.#rng = rng;
  }

  /** The transport of one incarnation of node `id` (the previous one stops hearing anything). */
  endpoint(id: string, incarnation: number): EngineTransport {
    this.#endpoints.set(id, { incarnation, handler: undefined });
    const live = (): boolean => this.#endpoints.get(id)?.incarnation === incarnation;
    return {
      send: (to, payload) => {
        if (!live()) return Promise.resolve();
        if (this.#endpoints.get(to)?.handler === undefined) return Promise.reject(this.#notConnected);
        this.#send(id, to, payload);
        return Promise.resolve();
      },
      onMessage: (handler) => {
        const ep = this.#endpoints.get(id);
        if (ep !== undefined && ep.incarnation === incarnation) ep.handler = handler;
        return () => {
          const now = this.#endpoints.get(id);
          if (now !== undefined && now.incarnation === incarnation) now.handler = undefined;
        };
      },
    };
  }

  /** Node `id` crashed: it neither sends nor receives until its next incarnation. */
  down(id: string): void {
    this.#endpoints.delete(id);
  }

  heal(): void {
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelay = 40;
  }

  #send(from: string, to: string, payload: JsonObject): void {
    this.stats.payloads++;
    if (payload['k'] === 'raft' && Array.isArray(payload['msgs'])) {
      for (const m of payload['msgs']) if (typeof m === 'object' && m !== null && !Array.isArray(m) && m['type'] === 'snapshot') this.stats.snapshotChunks++;
    }
    if (this.blocked.has(`${from}>${to}`)) return;
    if (this.dropRate > 0 && this.#rng.chance(this.dropRate)) return;
    this.#deliverLater(from, to, payload, this.#rng.range(1, this.maxDelay));
    if (this.dupRate > 0 && this.#rng.chance(this.dupRate)) this.#deliverLater(from, to, payload, this.#rng.range(1, this.maxDelay * 3));
  }

  #deliverLater(from: string, to: string, payload: JsonObject, delay: number): void {
    this.#clock.at(this.#clock.now + delay, () => {
      const ep = this.#endpoints.get(to);
      if (ep?.handler === undefined) return;
      this.onDeliver?.(from, to, payload);
      ep.handler(from, payload);
    });
  }
}
