// The client side of a PBFT process: up to CLIENT_SLOTS PbftClients (`<PeerId>/<slot>`, one
// outstanding request each), a bounded queue in front of them, and each caller's signal and
// MAX_WAIT_MS. A request is "certified" once f+1 replicas sent matching signed replies; what
// the caller then gets is the owner's business (a replica waits for its own execution, the
// relay fetches a replica's receipt), so the owner settles each certified request itself.
// Requests are sent once the current turn's work is done (Timers.defer), all that found a free
// slot signed as one bundle (up to MAX_REQUEST_BUNDLE): a replica checks one signature per
// bundle. Invariants: at most MAX_PENDING_COMMANDS callers wait; none waits past its signal or
// MAX_WAIT_MS; a slot is reused only once its client has no request outstanding.
import { publicKeyFromPeerId } from '../../../crypto/index.ts';
import { abortError, MAX_PENDING_COMMANDS, MAX_WAIT_MS, onAbort, UnavailableError } from '../../engine.ts';
import type { Timers } from '../../ports.ts';
import type { PbftAuth } from '../auth.ts';
import { signRequests, type UnsignedRequest } from '../request-bundle.ts';
import { PbftClient, type ClientCompletion } from '../client.ts';
import { sha256Ed25519 } from '../auth.ts';
import { BROADCAST, MAX_REQUEST_BUNDLE, type Membership, type NodeId, type PbftSigner, type ReplyMessage, type RequestMessage } from '../types.ts';

/** Concurrent requests of one process (one PbftClient each: a client has one request outstanding). */
export const CLIENT_SLOTS = 64;
/** Ticks between a client's retransmissions (it then broadcasts the request to every replica). */
export const CLIENT_RETRANSMIT_TICKS = 10;

export function requestKey(client: string, timestamp: number): string {
  return `${client}\u0000${timestamp}`;
}

/** The client's PeerId (`<PeerId>/<slot>` or a bare PeerId). */
export function clientPeer(client: string): string {
  const slash = client.indexOf('/');
  return slash < 0 ? client : client.slice(0, slash);
}

/** The public key a client signs with: the ed25519 key inside its PeerId. */
export function clientKeyOf(client: string): Uint8Array | undefined {
  try {
    return publicKeyFromPeerId(clientPeer(client));
  } catch {
    return undefined;
  }
}

export interface Certified<T> {
  readonly key: string;
  readonly completion: ClientCompletion;
  /** Only the first settle counts. */
  settle(result: T | Error): void;
}

export interface RequesterDeps<T> {
  /** The process's PeerId: client ids are `<id>/<slot>` and sign with its key. */
  readonly id: NodeId;
  readonly membership: Membership;
  readonly signer: PbftSigner;
  readonly auth: PbftAuth;
  readonly timers: Timers;
  readonly tickMs: number;
  /** Sends a request to a member (this process's own replica included). */
  send(to: NodeId, request: RequestMessage): void;
  /** A request was certified: settle it now or later (certified() lists the unsettled ones). */
  onCertified(c: Certified<T>): void;
  /** Requests signed as one bundle at most, 1..MAX_REQUEST_BUNDLE (default); 1 signs each alone. */
  readonly maxBundle?: number;
}

interface Waiter<T> {
  readonly op: Uint8Array;
  readonly resolve: (o: T) => void;
  readonly reject: (e: Error) => void;
  detach: () => void;
  done: boolean;
  key?: string;
  certified?: Certified<T>;
}

/** A deadline passing before agreement is UNAVAILABLE (retryable), as etcd answers; a cancel stays a cancel. */
function abortAnswer(signal: AbortSignal): Error {
  const e = abortError(signal, 'pbft request');
  return e.code === 'DEADLINE_EXCEEDED' ? new UnavailableError('deadline passed before the replicas agreed') : e;
}

export class PbftRequester<T> {
  readonly #d: RequesterDeps<T>;
  readonly #clients: (PbftClient | undefined)[] = new Array<PbftClient | undefined>(CLIENT_SLOTS);
  readonly #byId = new Map<string, PbftClient>();
  readonly #queued: Waiter<T>[] = [];
  readonly #inflight = new Map<string, Waiter<T>>();
  readonly #firstTimestamp: number;
  #nextSlot = 0;
  #stopped: string | undefined;
  #dispatchScheduled = false;
  /** Signatures made on requests (one per bundle), for per-request accounting. */
  requestSignatures = 0;

  readonly #maxBundle: number;

  constructor(deps: RequesterDeps<T>) {
    this.#d = deps;
    this.#maxBundle = deps.maxBundle ?? MAX_REQUEST_BUNDLE;
    if (!Number.isInteger(this.#maxBundle) || this.#maxBundle < 1 || this.#maxBundle > MAX_REQUEST_BUNDLE) throw new RangeError(`maxBundle must be 1..${MAX_REQUEST_BUNDLE}, got ${this.#maxBundle}`);
    // Client timestamps grow per client across restarts: ms since the epoch × 1024 at start.
    this.#firstTimestamp = deps.timers.now() * 1024;
  }

  get pending(): number {
    return this.#queued.length + this.#inflight.size;
  }

  /** Orders `op` (already within the op size limit); resolves with what the owner settles it to. */
  order(op: Uint8Array, signal: AbortSignal | undefined): Promise<T> {
    if (this.#stopped !== undefined) return Promise.reject(new UnavailableError(this.#stopped));
    if (signal?.aborted === true) return Promise.reject(abortError(signal, 'pbft request'));
    if (this.pending >= MAX_PENDING_COMMANDS) return Promise.reject(new UnavailableError('pbft requests overloaded'));
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = { op, resolve, reject, detach: () => undefined, done: false };
      const cancelWait = this.#d.timers.after(MAX_WAIT_MS, () => this.#finish(w, new UnavailableError(`no quorum answered within ${MAX_WAIT_MS} ms`)));
      const off = onAbort(signal, () => this.#finish(w, signal === undefined ? new UnavailableError('aborted') : abortAnswer(signal)));
      w.detach = () => {
        cancelWait();
        off();
      };
      this.#queued.push(w);
      this.#scheduleDispatch();
    });
  }

  /** Certified requests not settled yet (a replica settles them as it executes). */
  *certified(): Iterable<Certified<T>> {
    for (const w of this.#inflight.values()) if (w.certified !== undefined) yield w.certified;
  }

  tick(): void {
    for (const c of this.#clients) {
      if (c === undefined || !c.busy()) continue;
      c.tick();
      if (c.hasOutput()) this.#drain(c);
    }
  }

  /** A REPLY for one of our clients (false: no such client, the caller counts it). */
  onReply(m: ReplyMessage): boolean {
    const c = this.#byId.get(m.client);
    if (c === undefined) return false;
    c.step(m);
    this.#drain(c);
    return true;
  }

  isOurs(client: string): boolean {
    return this.#byId.has(client);
  }

  stop(reason: string): void {
    this.#stopped = reason;
    for (const w of [...this.#queued, ...this.#inflight.values()]) this.#finish(w, new UnavailableError(reason));
    this.#queued.length = 0;
    this.#inflight.clear();
  }

  #finish(w: Waiter<T>, result: T | Error): void {
    if (w.done) return;
    w.done = true;
    w.detach();
    const i = this.#queued.indexOf(w);
    if (i >= 0) this.#queued.splice(i, 1);
    if (w.key !== undefined) this.#inflight.delete(w.key);
    if (result instanceof Error) w.reject(result);
    else w.resolve(result);
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    this.#d.timers.defer(() => this.#dispatch());
  }

  /** Every queued caller that finds a free slot is sent, in bundles of up to maxBundle signed once each. */
  #dispatch(): void {
    this.#dispatchScheduled = false;
    while (this.#queued.length > 0 && this.#stopped === undefined) {
      const picked: { slot: PbftClient; w: Waiter<T>; unsigned: UnsignedRequest }[] = [];
      const taken = new Set<PbftClient>();
      while (picked.length < this.#maxBundle && this.#queued.length > 0) {
        const slot = this.#freeSlot(taken);
        if (slot === undefined) break;
        const w = this.#queued.shift() as Waiter<T>;
        if (w.done) continue;
        try {
          picked.push({ slot, w, unsigned: slot.prepare(w.op) });
          taken.add(slot);
        } catch (e) {
          this.#finish(w, e as Error);
        }
      }
      if (picked.length === 0) return;
      const signed = signRequests(
        this.#d.auth,
        picked.map((p) => p.unsigned),
        this.#d.signer,
      );
      this.requestSignatures++;
      picked.forEach(({ slot, w }, i) => {
        const request = slot.send(signed[i] as RequestMessage);
        w.key = requestKey(request.client, request.timestamp);
        this.#inflight.set(w.key, w);
      });
      for (const { slot } of picked) this.#drain(slot);
    }
  }

  #freeSlot(taken: ReadonlySet<PbftClient>): PbftClient | undefined {
    for (let k = 0; k < CLIENT_SLOTS; k++) {
      const i = (this.#nextSlot + k) % CLIENT_SLOTS;
      let c = this.#clients[i];
      if (c === undefined) {
        const d = this.#d;
        c = new PbftClient({ id: `${d.id}/${i}`, membership: d.membership, signer: d.signer, verifier: sha256Ed25519, firstTimestamp: this.#firstTimestamp, retransmitTicks: CLIENT_RETRANSMIT_TICKS, maxRetransmits: Math.ceil(MAX_WAIT_MS / (CLIENT_RETRANSMIT_TICKS * d.tickMs)), auth: d.auth });
        this.#clients[i] = c;
        this.#byId.set(c.id, c);
      }
      if (!c.busy() && !taken.has(c)) {
        this.#nextSlot = (i + 1) % CLIENT_SLOTS;
        return c;
      }
    }
    return undefined;
  }

  #drain(c: PbftClient): void {
    const out = c.drain();
    for (const m of out.messages) {
      if (m.to === BROADCAST) for (const r of this.#d.membership.replicas) this.#d.send(r.id, m.message);
      else this.#d.send(m.to, m.message);
    }
    for (const done of out.completed) {
      const key = requestKey(done.request.client, done.request.timestamp);
      const w = this.#inflight.get(key);
      if (w === undefined || w.done) continue;
      const certified: Certified<T> = { key, completion: done, settle: (r) => this.#finish(w, r) };
      w.certified = certified;
      this.#d.onCertified(certified);
    }
    for (const r of out.failed) {
      const w = this.#inflight.get(requestKey(r.client, r.timestamp));
      if (w !== undefined) this.#finish(w, new UnavailableError('no f+1 matching replies after every retransmission'));
    }
    if (out.completed.length > 0 || out.failed.length > 0) this.#scheduleDispatch();
  }
}
