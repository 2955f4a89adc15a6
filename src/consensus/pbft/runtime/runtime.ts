// Connects the pure PBFT core to time, a transport and the shared replica, all injected
// (production: the libp2p adapter, system timers, the operator state machine with receipts).
// One runtime is a replica of the cluster and also its own client: a submit is signed by one of
// CLIENT_SLOTS PbftClients (`<PeerId>/<slot>`), ordered by the three-phase protocol, executed
// by every replica, and resolves once f+1 replicas sent matching signed replies (the quorum
// certificate the outcome carries) and this replica executed it too (its own result and
// receipt). Reads go through the order as readonly operators (linearizable) or to the local
// replica (serializable). Invariants: Readies are handled one at a time, in order; nothing the
// network sends is trusted before the core checked it; bad input is dropped and counted.
import { type CommandOutcome, type Consensus, type EngineMember, type EngineStatus, type ReadOptions, type SubmitCommand, type SubmitOptions, abortError, InvalidCommandError, MAX_PENDING_COMMANDS, MAX_WAIT_MS, onAbort, UnavailableError } from '../../engine.ts';
import { fixedCadence, logSendFailure, systemTimers, type Cancel, type EngineTransport, type Timers } from '../../ports.ts';
import type { Json, JsonObject } from '../../../ico/types.ts';
import { createLogger, type Logger } from '../../../log/logger.ts';
import type { Replica } from '../../../replica/replica.ts';
import type { ApplyResult } from '../../../statemachine/types.ts';
import { publicKeyFromPeerId } from '../../../crypto/index.ts';
import { PbftAuth, sha256Ed25519 } from '../auth.ts';
import { certificateToText, type QuorumCertificate } from '../certificate.ts';
import { PBFT_CERTIFICATE_SCHEME, type CarriedCertificate } from '../receipt-certificate.ts';
import { base64urlEncode, hexEncode } from '../../../crypto/index.ts';
import { DROP_REASONS, type DropReason } from '../errors.ts';
import { PbftReplica, type PbftStats, type PbftStatus } from '../replica.ts';
import { BROADCAST, type BatchExecution, type CommittedBatch, type Membership, type NodeId, type PbftLimits, type PbftMessage, type PbftReady, type PbftSigner, type ReplyMessage, type RequestMessage } from '../types.ts';
import { CLIENT_SLOTS, PbftRequester, clientKeyOf, clientPeer, requestKey, type Certified } from './requester.ts';
import { decodeOp, decodeResult, isWriteOp, encodeReadOp, invalidResult, readResult, submitOp, writeResult } from './operations.ts';
import { decodePbftPayload, decodeQuery, encodeAnswer, encodePbftPayloads, isPbftPayload, isQueryPayload, type PbftAnswer, type PbftReplicaStatusJson, type ReceiptAnswer } from './wire.ts';

/** One PBFT tick of real time (request and view-change timeouts count ticks). */
export const DEFAULT_PBFT_TICK_MS = 25;
/** Local executions remembered so a submit that hears its certificate late still finds its receipt. */
export const EXECUTIONS_REMEMBERED = 4096;
/** Readies handled in one run of the loop before it yields to other work. */
export const MAX_READIES_PER_RUN = 1_000;
/** Messages to this replica from itself waiting to be stepped (the clients' requests to it). */
export const MAX_LOCAL_QUEUE = 4 * CLIENT_SLOTS;

export interface PbftOutcome extends CommandOutcome {
  readonly certificate: QuorumCertificate;
  readonly certifiedResult: Uint8Array;
}

export interface PbftRuntimeOptions {
  /** This member's id (its PeerId); must be in the membership. */
  id: NodeId;
  membership: Membership;
  /** Signs protocol messages, replies and this runtime's requests (the peer's identity key). */
  signer: PbftSigner;
  transport: EngineTransport;
  replica: Replica;
  timers?: Timers;
  tickMs?: number;
  limits?: Partial<PbftLimits>;
  logger?: Logger;
  /**
   * Makes this replica Byzantine (tests and `hypersync devnet --byzantine`): it filters what the
   * replica hears and rewrites what it sends, per destination (src/sim/pbft-byzantine.ts).
   */
  adversary?: PbftAdversary;
  /** This peer's direct-wire counters (all its traffic), shown in statusJson for frames per request. */
  wireStats?: () => PbftWireCounters;
}

/** The part of a peer's wire counters a replica's status shows. */
export interface PbftWireCounters {
  readonly framesOut: number;
  readonly envelopesOut: number;
  readonly bytesOut: number;
  readonly signatures: number;
  readonly verifications: number;
}

/** A misbehaviour wrapped around an honest replica (the simulator's Adversary fits). */
export interface PbftAdversary {
  /** False: the replica does not take `m` in. */
  incoming(m: PbftMessage): boolean;
  /** What goes to replica `to` (its index; -1 for a client) instead of `m`. */
  outgoing(to: number, m: PbftMessage): PbftMessage[];
}

/** Dropped and counted at the runtime boundary, before the core (the core counts its own in stats().dropped). */
export interface BoundaryDrops {
  /** Payload entries that were not well-formed PBFT messages. */
  malformed: number;
  /** A REPLY for a client slot this runtime does not have. */
  unknownClient: number;
  /** Local queue full. */
  queueFull: number;
}

export interface PbftRuntimeStatus extends PbftStatus {
  readonly stats: PbftStats;
  readonly boundary: BoundaryDrops;
  /** Core drops and boundary drops, summed per reason. */
  readonly droppedTotal: number;
  readonly pendingSubmits: number;
}

export class PbftRuntime implements Consensus<Replica> {
  readonly kind = 'pbft' as const;
  readonly id: NodeId;
  readonly replica: Replica;
  readonly core: PbftReplica;
  readonly membership: Membership;
  readonly #auth: PbftAuth;
  readonly #transport: EngineTransport;
  readonly #timers: Timers;
  readonly #tickMs: number;
  readonly #log: Logger;
  readonly #members: readonly NodeId[];
  readonly #requests: PbftRequester<PbftOutcome>;
  readonly #adversary: PbftAdversary | undefined;
  readonly #wireStats: (() => PbftWireCounters) | undefined;
  /** This replica's recent executions by request key (outcome, result bytes). */
  readonly #executed = new Map<string, { outcome: CommandOutcome }>();
  readonly #local: PbftMessage[] = [];
  readonly #boundary: BoundaryDrops = { malformed: 0, unknownClient: 0, queueFull: 0 };
  #cancelTick: Cancel | undefined;
  #unsubscribe: (() => void) | undefined;
  #started = false;
  #stopped = false;
  #running = false;
  #scheduled = false;
  #idle: Array<() => void> = [];
  #closing: Promise<void> | undefined;
  #lastStamp = 0;

  constructor(opts: PbftRuntimeOptions) {
    this.id = opts.id;
    this.replica = opts.replica;
    this.membership = opts.membership;
    this.#transport = opts.transport;
    this.#timers = opts.timers ?? systemTimers;
    this.#tickMs = opts.tickMs ?? DEFAULT_PBFT_TICK_MS;
    this.#log = opts.logger ?? createLogger('pbft');
    this.#auth = new PbftAuth(opts.membership, sha256Ed25519);
    this.#members = opts.membership.replicas.map((r) => r.id);
    this.#adversary = opts.adversary;
    this.#wireStats = opts.wireStats;
    this.core = new PbftReplica({ id: opts.id, membership: opts.membership, signer: opts.signer, verifier: sha256Ed25519, clientKey: clientKeyOf, ...(opts.limits !== undefined ? { limits: opts.limits } : {}) }, this.#auth);
    this.#requests = new PbftRequester<PbftOutcome>({
      id: opts.id,
      membership: opts.membership,
      signer: opts.signer,
      auth: this.#auth,
      timers: this.#timers,
      tickMs: this.#tickMs,
      send: (to, request) => this.#deliver(to, [request]),
      onCertified: (c) => this.#settle(c),
    });
  }

  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#unsubscribe = this.#transport.onMessage((from, payload) => this.#onPayload(from, payload));
    this.#cancelTick = fixedCadence(this.#timers, this.#tickMs, () => {
      if (this.#stopped) return;
      this.core.tick();
      this.#requests.tick();
      this.#schedule();
    });
    this.#schedule();
  }

  // ---- status -------------------------------------------------------------------------------

  pbftStatus(): PbftRuntimeStatus {
    const stats = this.core.stats();
    const core = DROP_REASONS.reduce((sum, r: DropReason) => sum + stats.dropped[r], 0);
    const b = this.#boundary;
    return { ...this.core.status(), stats, boundary: { ...b }, droppedTotal: core + b.malformed + b.unknownClient + b.queueFull, pendingSubmits: this.#requests.pending };
  }

  status(): EngineStatus {
    const s = this.core.status();
    return { kind: 'pbft', self: this.id, leader: s.active ? s.primary : null, term: s.view, commitIndex: s.lastExecuted, appliedIndex: s.lastExecuted };
  }

  members(): EngineMember[] {
    const s = this.core.status();
    return this.#members.map((peerId) => ({ peerId, role: 'voter' as const, state: peerId === s.primary ? 'primary' : 'backup' }));
  }

  // ---- client API ---------------------------------------------------------------------------

  submit(cmd: SubmitCommand, opts: SubmitOptions = {}): Promise<PbftOutcome> {
    const op = submitOp(cmd, this.#stamp());
    return op instanceof InvalidCommandError ? Promise.reject(op) : this.#order(op, opts.signal);
  }

  async read(operator_id: string, inputs: Json, opts: ReadOptions = {}): Promise<ApplyResult> {
    if (this.#stopped) throw new UnavailableError('pbft runtime stopped');
    if (opts.consistency === 'serializable') return this.replica.query(operator_id, inputs);
    const o = await this.#order(encodeReadOp(operator_id, inputs, this.#stamp()), opts.signal);
    return o.result;
  }

  /** Wall time for a command, never going back (receipt times follow it). */
  #stamp(): number {
    this.#lastStamp = Math.max(this.#lastStamp, this.#timers.now());
    return this.#lastStamp;
  }

  #order(op: Uint8Array, signal: AbortSignal | undefined): Promise<PbftOutcome> {
    if (this.#stopped) return Promise.reject(new UnavailableError('pbft runtime stopped'));
    if (op.byteLength > this.core.limits.maxOpBytes) return Promise.reject(new InvalidCommandError(`command of ${op.byteLength} bytes over ${this.core.limits.maxOpBytes}`));
    return this.#requests.order(op, signal);
  }

  /** Settles a certified request once (for a write) this replica executed it too. */
  #settle(c: Certified<PbftOutcome>): void {
    const done = c.completion;
    const local = this.#executed.get(c.key);
    const write = isWriteOp(done.request.op);
    if (write && local === undefined && this.core.lastExecuted() < done.seq) return; // settled when this replica executes it
    const certified = decodeResult(done.result);
    if (certified === null) {
      c.settle(new UnavailableError('the replicas certified a result this runtime cannot read'));
      return;
    }
    // A replica that skipped the seq by state transfer has no receipt of its own for it.
    const outcome = local?.outcome ?? { result: certified, receipt: null };
    c.settle({ ...outcome, certificate: done.certificate, certifiedResult: done.result });
  }

  // ---- inbound ------------------------------------------------------------------------------

  #onPayload(from: string, payload: JsonObject): void {
    if (this.#stopped) return;
    if (isQueryPayload(payload)) {
      this.#answer(from, payload);
      return;
    }
    if (!isPbftPayload(payload)) return;
    const { messages, malformed } = decodePbftPayload(payload, this.core.limits);
    this.#boundary.malformed += malformed;
    if (malformed > 0) this.#log.debug({ from, malformed }, 'malformed PBFT messages dropped');
    for (const m of messages) this.#stepOne(from, m);
    this.#schedule();
  }

  /** Serves a client's query: its own requests' receipts (to that client's peer only, in one answer), or this replica's status. */
  #answer(from: string, payload: JsonObject): void {
    const q = decodeQuery(payload);
    if (q === null) {
      this.#boundary.malformed++;
      return;
    }
    const reply = (a: PbftAnswer): void => void this.#transport.send(from, encodeAnswer(a)).catch(() => undefined);
    if (q.q === 'status') {
      reply({ q: 'status', status: this.statusJson() });
      return;
    }
    const asked = q.r.filter((x) => clientPeer(x.c) === from);
    this.#boundary.unknownClient += q.r.length - asked.length;
    if (asked.length === 0) return;
    void Promise.all(
      asked.map(async ({ c, t }): Promise<ReceiptAnswer> => {
        const receipt = this.#executed.get(requestKey(c, t))?.outcome.receipt ?? null;
        const r = receipt === null ? null : await receipt.catch(() => null);
        return { c, t, receipt: r === null ? null : { ...r, operation: { ...r.operation } } };
      }),
    ).then((r) => reply({ q: 'receipts', r }));
  }

  /** This replica's view, watermarks, stable checkpoint and drops, as the API shows them. */
  statusJson(): PbftReplicaStatusJson {
    const s = this.pbftStatus();
    const w = this.#wireStats?.();
    return {
      self: this.id,
      view: s.view,
      primary: s.primary,
      active: s.active,
      low_watermark: s.lowWatermark,
      high_watermark: s.highWatermark,
      last_executed: s.lastExecuted,
      stable_checkpoint: { seq: s.stableCheckpoint.seq, digest: hexEncode(s.stableCheckpoint.digest) },
      dropped_total: s.droppedTotal,
      requests_executed: s.stats.requestsExecuted,
      signatures_made: s.stats.signaturesMade,
      signatures_verified: s.stats.signaturesVerified + s.stats.clientSignaturesVerified,
      batches_executed: s.stats.batchesExecuted,
      retransmissions: s.stats.retransmissions,
      wire: w === undefined ? null : { frames_out: w.framesOut, envelopes_out: w.envelopesOut, bytes_out: w.bytesOut, signatures: w.signatures, verifications: w.verifications },
    };
  }

  #stepOne(from: string, m: PbftMessage): void {
    if (m.type === 'reply') {
      if (from !== this.#members[m.replica] || !this.#requests.onReply(m)) this.#boundary.unknownClient++;
      return;
    }
    if (this.#adversary !== undefined && !this.#adversary.incoming(m)) return;
    this.core.step(from, m);
  }

  /** To a member (this one included: queued and stepped on the next run, never re-entrantly). */
  #deliver(to: string, messages: readonly PbftMessage[]): void {
    if (to === this.id) {
      for (const m of messages) {
        if (this.#local.length >= MAX_LOCAL_QUEUE) this.#boundary.queueFull++;
        else this.#local.push(m);
      }
      this.#schedule();
      return;
    }
    for (const p of encodePbftPayloads(messages)) {
      this.#transport.send(to, p).catch((e: unknown) => logSendFailure(this.#log, 'PBFT', to, e));
    }
  }

  // ---- the Ready loop -----------------------------------------------------------------------

  #schedule(): void {
    if (this.#scheduled || this.#stopped || !this.#started) return;
    this.#scheduled = true;
    this.#timers.defer(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      for (const m of this.#local.splice(0)) this.#stepOne(this.id, m);
      for (let i = 0; i < MAX_READIES_PER_RUN && !this.#stopped; i++) {
        const rd = this.core.ready();
        if (rd === null) break;
        await this.#handle(rd);
        for (const m of this.#local.splice(0)) this.#stepOne(this.id, m);
      }
    } catch (e) {
      this.#fail(e as Error);
    } finally {
      this.#running = false;
      for (const wake of this.#idle.splice(0)) wake();
    }
    if (this.#local.length > 0 || this.core.hasReady()) this.#schedule();
  }

  async #handle(rd: PbftReady): Promise<void> {
    this.#send(rd);
    if (rd.softState !== undefined) this.#log.info({ view: rd.softState.view, primary: rd.softState.primary, active: rd.softState.active }, 'pbft view');
    if (rd.restore !== undefined) {
      await this.replica.restore(rd.restore.appSnapshot);
      if (this.#stopped) return;
      this.#log.info({ seq: rd.restore.seq }, 'state transferred from the stable checkpoint');
    }
    const executions = rd.committed.map((b) => this.#execute(b));
    this.core.advance(rd, executions);
    // Writes certified before this replica executed them settle now.
    for (const c of [...this.#requests.certified()]) this.#settle(c);
  }

  #send(rd: PbftReady): void {
    const byPeer = new Map<string, PbftMessage[]>();
    const adversary = this.#adversary;
    const add = (to: string, m: PbftMessage): void => {
      let l = byPeer.get(to);
      if (l === undefined) byPeer.set(to, (l = []));
      if (adversary === undefined) l.push(m);
      else l.push(...adversary.outgoing(this.#members.indexOf(to), m));
    };
    for (const o of rd.messages) {
      if (o.to === BROADCAST) {
        for (const id of this.#members) if (id !== this.id) add(id, o.message);
      } else add(o.to, o.message);
    }
    for (const r of rd.replies) this.#reply(r.to, r.message, add);
    for (const [to, msgs] of byPeer) this.#deliver(to, msgs);
  }

  #reply(client: string, m: ReplyMessage, add: (to: string, m: PbftMessage) => void): void {
    if (this.#requests.isOurs(client)) this.#requests.onReply(m);
    else add(clientPeer(client), m);
  }

  #execute(b: CommittedBatch): BatchExecution {
    const results: Uint8Array[] = [];
    b.requests.forEach((r: RequestMessage, i) => {
      if (b.execute[i] !== true) return;
      results.push(this.#executeOne(r));
    });
    return b.checkpoint ? { seq: b.seq, results, appSnapshot: this.replica.snapshot() } : { seq: b.seq, results };
  }

  #executeOne(r: RequestMessage): Uint8Array {
    const op = decodeOp(r.op);
    if (typeof op === 'string') return invalidResult(op);
    if (op.kind === 'read') return readResult(this.replica.query(op.operator_id, op.inputs, op.timestamp));
    const outcome = this.replica.execute(op.command);
    const key = requestKey(r.client, r.timestamp);
    this.#executed.set(key, { outcome });
    if (this.#executed.size > EXECUTIONS_REMEMBERED) this.#executed.delete(this.#executed.keys().next().value as string);
    return writeResult(outcome.result, op.command);
  }

  /** An invariant broke (or storage failed): this replica stops rather than diverge. */
  #fail(e: Error): void {
    if (this.#stopped) return;
    this.#log.fatal({ err: e.message, stack: e.stack }, 'pbft runtime failed; stopping');
    this.#halt(`pbft runtime failed: ${e.message}`);
  }

  #halt(reason: string): void {
    this.#stopped = true;
    this.#cancelTick?.();
    this.#unsubscribe?.();
    this.#requests.stop(reason);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#stopped) this.#halt('node stopping');
      if (this.#running) await new Promise<void>((resolve) => this.#idle.push(resolve));
      await this.replica.close();
    })();
    return this.#closing;
  }
}

/** The certificate an outcome carries, in the JSON form receipts and the API use. */
export function carriedCertificate(o: PbftOutcome): CarriedCertificate {
  return { scheme: PBFT_CERTIFICATE_SCHEME, certificate: certificateToText(o.certificate), result: base64urlEncode(o.certifiedResult) };
}
