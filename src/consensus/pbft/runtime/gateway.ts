// The PBFT client a non-member runs (the relay): it signs requests as `<PeerId>/<slot>`, sends
// them to the replicas, and accepts a result once f+1 replicas sent matching signed replies
// (the quorum certificate). It then asks a replica that replied for its receipt of the
// execution and keeps it only if the certificate vouches for exactly that receipt's operation
// and the receipt's signer is a member, so what it answers needs no single replica's word.
// It also polls the replicas' status (view, primary, watermarks, stable checkpoint) for the
// cluster view. Invariants: every wait is bounded (caller's signal, MAX_WAIT_MS, RECEIPT_ASK_MS
// per replica asked); answers from non-members or for requests it did not make are dropped.
import { base64urlEncode } from '../../../crypto/index.ts';
import type { Json, JsonObject } from '../../../ico/types.ts';
import { createLogger, type Logger } from '../../../log/logger.ts';
import { verifyReceipt, type Receipt } from '../../../receipts/receipt.ts';
import type { ApplyResult } from '../../../statemachine/types.ts';
import { InvalidCommandError, UnavailableError, type SubmitCommand, type SubmitOptions } from '../../engine.ts';
import { systemTimers, type Cancel, type EngineTransport, type Timers } from '../../ports.ts';
import { sha256Ed25519, type PbftAuth } from '../auth.ts';
import { authFor, certificateToText } from '../certificate.ts';
import { PBFT_CERTIFICATE_SCHEME, verifyCarriedCertificate, type CarriedCertificate } from '../receipt-certificate.ts';
import { PBFT_DEFAULTS, type Membership, type NodeId, type PbftSigner } from '../types.ts';
import { decodeResult, encodeReadOp, isWriteOp, submitOp } from './operations.ts';
import { PbftRequester, requestKey, type Certified } from './requester.ts';
import { DEFAULT_PBFT_TICK_MS } from './runtime.ts';
import { decodeAnswer, decodePbftPayload, encodePbftPayloads, encodeQuery, isAnswerPayload, isPbftPayload, MAX_RECEIPTS_PER_QUERY, type PbftReplicaStatusJson, type RequestRef } from './wire.ts';

/** How long one replica is given to hand over its receipt before the next one is asked. */
export const RECEIPT_ASK_MS = 1_000;
/** How often the replicas' status is asked for (the cluster view is at most this old). */
export const STATUS_POLL_MS = 1_000;

export interface GatewayOutcome {
  readonly result: ApplyResult;
  /** A replica's receipt that the certificate vouches for; null for a read, or when none answered in time. */
  readonly receipt: Receipt | null;
  readonly certificate: CarriedCertificate;
}

export interface PbftGatewayOptions {
  /** This process's PeerId (not a member). */
  id: NodeId;
  membership: Membership;
  signer: PbftSigner;
  transport: EngineTransport;
  timers?: Timers;
  tickMs?: number;
  logger?: Logger;
  /** Requests signed as one bundle at most (default MAX_REQUEST_BUNDLE; 1: each alone, a bench's baseline). */
  maxBundle?: number;
}

export interface PbftClusterView {
  readonly cluster: string;
  readonly members: readonly string[];
  readonly f: number;
  /** The newest status heard from each replica (absent: none answered yet). */
  readonly replicas: readonly PbftReplicaStatusJson[];
  /** The highest view that f+1 replicas report (at least one of them correct), and its primary. */
  readonly view: number | null;
  readonly primary: string | null;
}

interface ReceiptAsk {
  readonly c: Certified<GatewayOutcome>;
  readonly carried: CarriedCertificate;
  readonly result: ApplyResult;
  readonly askOrder: readonly string[];
  turn: number;
  cancel: Cancel;
}

export class PbftGateway {
  readonly id: NodeId;
  readonly membership: Membership;
  readonly #auth: PbftAuth;
  readonly #transport: EngineTransport;
  readonly #timers: Timers;
  readonly #tickMs: number;
  readonly #log: Logger;
  readonly #requests: PbftRequester<GatewayOutcome>;
  readonly #asks = new Map<string, ReceiptAsk>();
  /** Receipt asks waiting for the end of this burst of work, per replica (each ask is one of #asks: bounded by them). */
  readonly #askQueue = new Map<string, RequestRef[]>();
  #askFlush = false;
  readonly #statuses = new Map<string, PbftReplicaStatusJson>();
  readonly #members: ReadonlySet<string>;
  #lastStamp = 0;
  #cancelTick: Cancel | undefined;
  #cancelPoll: Cancel | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  /** Replies, answers and messages dropped at this boundary (non-members, malformed, unasked). */
  dropped = 0;

  constructor(opts: PbftGatewayOptions) {
    this.id = opts.id;
    this.membership = opts.membership;
    // Shared with verifyCarriedCertificate (same membership object): roots checked once.
    this.#auth = authFor(opts.membership, sha256Ed25519);
    this.#transport = opts.transport;
    this.#timers = opts.timers ?? systemTimers;
    this.#tickMs = opts.tickMs ?? DEFAULT_PBFT_TICK_MS;
    this.#log = opts.logger ?? createLogger('pbft-gateway');
    this.#members = new Set(opts.membership.replicas.map((r) => r.id));
    this.#requests = new PbftRequester<GatewayOutcome>({
      id: opts.id,
      membership: opts.membership,
      signer: opts.signer,
      auth: this.#auth,
      timers: this.#timers,
      tickMs: this.#tickMs,
      send: (to, request) => this.#send(to, encodePbftPayloads([request])),
      onCertified: (c) => this.#onCertified(c),
      ...(opts.maxBundle !== undefined ? { maxBundle: opts.maxBundle } : {}),
    });
  }

  /** Request signatures made so far (one per bundle). */
  get requestSignatures(): number {
    return this.#requests.requestSignatures;
  }

  start(): void {
    if (this.#unsubscribe !== undefined || this.#stopped) return;
    this.#unsubscribe = this.#transport.onMessage((from, payload) => this.#onPayload(from, payload));
    const tick = (): void => {
      if (this.#stopped) return;
      this.#requests.tick();
      this.#cancelTick = this.#timers.after(this.#tickMs, tick);
    };
    this.#cancelTick = this.#timers.after(this.#tickMs, tick);
    const poll = (): void => {
      if (this.#stopped) return;
      for (const id of this.#members) this.#send(id, [encodeQuery({ q: 'status' })]);
      this.#cancelPoll = this.#timers.after(STATUS_POLL_MS, poll);
    };
    poll();
  }

  /** Orders a command; resolves with the certified result, the certificate and a receipt it vouches for. */
  submit(cmd: SubmitCommand, opts: SubmitOptions = {}): Promise<GatewayOutcome> {
    const op = submitOp(cmd, this.#stamp());
    return op instanceof InvalidCommandError ? Promise.reject(op) : this.#order(op, opts.signal);
  }

  /** A readonly operator ordered like a write (linearizable), certified by f+1 replies. */
  read(operator_id: string, inputs: Json, opts: SubmitOptions = {}): Promise<GatewayOutcome> {
    return this.#order(encodeReadOp(operator_id, inputs, this.#stamp()), opts.signal);
  }

  #order(op: Uint8Array, signal: AbortSignal | undefined): Promise<GatewayOutcome> {
    if (this.#stopped) return Promise.reject(new UnavailableError('pbft gateway stopped'));
    if (op.byteLength > PBFT_DEFAULTS.maxOpBytes) return Promise.reject(new InvalidCommandError(`command of ${op.byteLength} bytes over ${PBFT_DEFAULTS.maxOpBytes}`));
    return this.#requests.order(op, signal);
  }

  #stamp(): number {
    this.#lastStamp = Math.max(this.#lastStamp, this.#timers.now());
    return this.#lastStamp;
  }

  view(): PbftClusterView {
    const replicas = [...this.#statuses.values()];
    const f = this.#auth.quorums.f;
    // The highest view at least f+1 replicas are in or past.
    const views = replicas.map((s) => s.view).sort((a, b) => b - a);
    const view = views.length > f ? (views[f] as number) : null;
    const primary = view === null ? null : (this.membership.replicas[view % this.membership.replicas.length]?.id ?? null);
    return { cluster: this.membership.cluster, members: this.membership.replicas.map((r) => r.id), f, replicas, view, primary };
  }

  // ---- certified requests: fetch a receipt the certificate vouches for ----------------------

  #onCertified(c: Certified<GatewayOutcome>): void {
    const done = c.completion;
    const result = decodeResult(done.result);
    if (result === null) {
      c.settle(new UnavailableError('the replicas certified a result this gateway cannot read'));
      return;
    }
    const carried: CarriedCertificate = { scheme: PBFT_CERTIFICATE_SCHEME, certificate: certificateToText(done.certificate), result: base64urlEncode(done.result) };
    if (!isWriteOp(done.request.op) || !result.ok) {
      c.settle({ result, receipt: null, certificate: carried });
      return;
    }
    // Ask the replicas that signed the certificate first, one at a time.
    const signers = done.certificate.replies.map((r) => r.replica);
    const askOrder = [...new Set([...signers, ...this.membership.replicas.keys()])].map((i) => this.membership.replicas[i]?.id).filter((id): id is string => id !== undefined);
    const ask: ReceiptAsk = { c, carried, result, askOrder, turn: 0, cancel: () => undefined };
    this.#asks.set(c.key, ask);
    this.#askNext(ask);
  }

  #askNext(ask: ReceiptAsk): void {
    const to = ask.askOrder[ask.turn++];
    if (to === undefined) {
      this.#asks.delete(ask.c.key);
      this.#log.warn({ request: ask.c.key }, 'no replica handed over a receipt the certificate vouches for');
      ask.c.settle({ result: ask.result, receipt: null, certificate: ask.carried });
      return;
    }
    const r = ask.c.completion.request;
    this.#queueAsk(to, { c: r.client, t: r.timestamp });
    ask.cancel = this.#timers.after(RECEIPT_ASK_MS, () => this.#askNext(ask));
  }

  /** Asks of one burst of work go to each replica together (MAX_RECEIPTS_PER_QUERY per query). */
  #queueAsk(to: string, ref: RequestRef): void {
    let list = this.#askQueue.get(to);
    if (list === undefined) this.#askQueue.set(to, (list = []));
    list.push(ref);
    if (this.#askFlush) return;
    this.#askFlush = true;
    this.#timers.defer(() => {
      this.#askFlush = false;
      if (this.#stopped) return;
      for (const [id, refs] of this.#askQueue) {
        for (let i = 0; i < refs.length; i += MAX_RECEIPTS_PER_QUERY) this.#send(id, [encodeQuery({ q: 'receipts', r: refs.slice(i, i + MAX_RECEIPTS_PER_QUERY) })]);
      }
      this.#askQueue.clear();
    });
  }

  async #onReceipt(from: string, c: string, t: number, value: JsonObject | null): Promise<void> {
    const key = requestKey(c, t);
    const ask = this.#asks.get(key);
    if (ask === undefined || ask.askOrder[ask.turn - 1] !== from) {
      this.dropped++;
      return;
    }
    if (value === null) {
      ask.cancel();
      this.#askNext(ask);
      return;
    }
    const own = await verifyReceipt(value);
    const receipt = value as unknown as Receipt;
    const vouched = own.ok && receipt.signer === from ? verifyCarriedCertificate(ask.carried, this.membership, receipt) : { ok: false as const, reason: 'the receipt does not verify or is not the sender’s' };
    if (this.#asks.get(key) !== ask) return;
    ask.cancel();
    if (!vouched.ok) {
      this.dropped++;
      this.#log.warn({ from, reason: vouched.reason }, 'a replica handed over a receipt the certificate does not vouch for');
      this.#askNext(ask);
      return;
    }
    this.#asks.delete(key);
    ask.c.settle({ result: ask.result, receipt, certificate: ask.carried });
  }

  // ---- wire ---------------------------------------------------------------------------------

  #send(to: string, payloads: readonly JsonObject[]): void {
    for (const p of payloads) this.#transport.send(to, p).catch((e: unknown) => this.#log.debug({ to, err: (e as Error).message }, 'PBFT send failed'));
  }

  #onPayload(from: string, payload: JsonObject): void {
    if (this.#stopped) return;
    if (!this.#members.has(from)) {
      if (isPbftPayload(payload) || isAnswerPayload(payload)) this.dropped++;
      return;
    }
    if (isAnswerPayload(payload)) {
      const a = decodeAnswer(payload);
      if (a === null) this.dropped++;
      else if (a.q === 'status') {
        if (a.status.self === from) this.#statuses.set(from, a.status);
        else this.dropped++;
      } else for (const x of a.r) void this.#onReceipt(from, x.c, x.t, x.receipt);
      return;
    }
    if (!isPbftPayload(payload)) return;
    const { messages, malformed } = decodePbftPayload(payload, PBFT_DEFAULTS);
    this.dropped += malformed;
    for (const m of messages) {
      if (m.type !== 'reply' || from !== this.membership.replicas[m.replica]?.id || !this.#requests.onReply(m)) this.dropped++;
    }
  }

  close(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelTick?.();
    this.#cancelPoll?.();
    this.#unsubscribe?.();
    for (const a of this.#asks.values()) a.cancel();
    this.#asks.clear();
    this.#askQueue.clear();
    this.#requests.stop('pbft gateway stopping');
  }
}
