// The sync runtime between this peer's DocStore and its peers, over any transport that can
// send a JSON payload to one peer and broadcast one to all (the libp2p peer in src/net, the
// simulator's bus). It runs the seed's phases for a session: state exchange (root summary and
// version vector), diff computation (vectors when the responder can answer from them cheaply,
// range reconciliation otherwise), transfer (bounded record batches, at most
// MAX_INFLIGHT_BATCHES unacknowledged: backpressure), verification (every record's shape and
// signature on arrival; equal roots at the end, or another pass). Live writes go out as `live`
// broadcasts. No timers inside: the driver calls tick(now). Applied batches are durable, so a
// session cut short resumes for free: the next one only finds what is still missing.
import { parseJson, utf8Decode } from '../crypto/index.ts';
import type { Json, JsonObject } from '../ico/types.ts';
import type { DocRecord } from './record.ts';
import { MAX_APPLY_RECORDS, type DocStore, type VersionVector } from './docstore.ts';
import { SyncAbortedError, SyncError, type SyncErrorCode } from './errors.ts';
import { payloadBytes } from '../ico/frame.ts';
import { decodeBinarySyncMessage, encodeBinarySyncMessage, hasBinaryForm, isBinarySyncMessage, MAX_RANGE_PART_BYTES } from './binary.ts';
import { ByteWriter } from './varint.ts';
import { DEFAULT_WIRE_LANES, RangeReconciler, type RangeStep } from './reconcile.ts';
import { LANES } from './itemset.ts';
import { parseRecord, verifyRecordParallel } from './record.ts';
import { parseLogPart, parseTreeHead, type ReceiptMirror } from './receipt-mirror.ts';
import {
  decodeSyncMessage, encodeRoot, encodeSyncMessage, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RANGE_MESSAGE_BYTES,
  rootsEqual, type RootSummary, type SyncMessage, type SyncMode,
} from './wire.ts';

/** Record batches sent and not yet acknowledged, per session. */
export const MAX_INFLIGHT_BATCHES = 4;
/** A session with no message for this long is aborted. */
export const SESSION_IDLE_MS = 20_000;
/** Sessions open at once (both roles); more `open`s are refused. */
export const MAX_SESSIONS = 64;
/** Passes of one sync() before it reports divergence. */
export const MAX_PASSES = 3;
/** The responder answers from vectors when at most max(this, size/8) versions qualify. */
export const MIN_VECTOR_CAP = 256;
/** Records per live broadcast. */
export const MAX_LIVE_RECORDS = 64;
/**
 * Record batches whose signatures verify ahead of their turn in a session (engine-wide):
 * batch k+1 verifies on the thread pool while batch k is applied. Past this, a batch
 * verifies when its turn comes.
 */
export const MAX_VERIFYING_BATCHES = 2 * MAX_INFLIGHT_BATCHES;

export interface SyncTransport {
  /** A JSON payload, or the bytes of a binary session message (only where binary() said yes). */
  send(peer: string, payload: JsonObject | Uint8Array): Promise<void>;
  broadcast(payload: JsonObject): Promise<void>;
  /** True when session messages to `peer` may take their binary form (both sides negotiated it). */
  binary?(peer: string): boolean;
}

export type SessionPhase = 'exchange' | 'transfer' | 'verify' | 'done' | 'failed';

export interface SyncProgress {
  sid: string;
  peer: string;
  role: 'initiator' | 'responder';
  mode: 'pending' | 'equal' | 'vector' | 'range';
  phase: SessionPhase;
  pass: number;
  /** Records we sent, records we received (and verified), records still queued to send. */
  sent: number;
  received: number;
  queued: number;
  /** Range/vector messages (not record batches) sent and received. */
  rounds: number;
  bytesOut: number;
  bytesIn: number;
  startedAt: number;
}

export interface SyncReport extends SyncProgress {
  equal: boolean;
  ms: number;
  passes: number;
}

export type SyncEvent =
  | { type: 'progress'; progress: SyncProgress }
  /** A session ended (either role); the initiator's sync() may run further passes. */
  | { type: 'done'; report: SyncReport }
  | { type: 'rejected'; peer: string; code: SyncErrorCode | string; reason: string };

export interface SyncEngineOptions {
  docs: DocStore;
  /** Receipt logs to serve and mirror (optional dataset). */
  receipts?: ReceiptMirror;
  transport: SyncTransport;
  /** ms clock (injected for the simulator). */
  now?: () => number;
  /** Session ids; seeded in the simulator. */
  newSid?: () => string;
}

interface Session {
  progress: SyncProgress;
  range?: RangeReconciler;
  rangeParts: Uint8Array[];
  rangeBytes: number;
  exchangeOver: boolean;
  queue: Uint8Array[];
  queued: Set<string>;
  nextBatch: number;
  inflight: number;
  pumping: boolean;
  sentFin: boolean;
  peerFin?: { root: RootSummary; vec: VersionVector };
  checking: boolean;
  chain: Promise<void>;
  lastActivity: number;
  settle?: { resolve: (r: SyncReport) => void; reject: (e: Error) => void };
}

function hexKey(id: Uint8Array): string {
  let s = '';
  for (let i = 0; i < id.length; i++) s += (id[i] as number).toString(16).padStart(2, '0');
  return s;
}

function jsonBytes(p: JsonObject): number {
  return JSON.stringify(p).length;
}

export class SyncEngine {
  readonly docs: DocStore;
  readonly receipts: ReceiptMirror | undefined;
  readonly #transport: SyncTransport;
  readonly #now: () => number;
  readonly #newSid: () => string;
  readonly #sessions = new Map<string, Session>();
  readonly #handlers = new Set<(e: SyncEvent) => void>();
  #live: DocRecord[] = [];
  #liveScheduled = false;
  #sidCounter = 0;
  #verifying = 0;
  #offChange: () => void;

  constructor(o: SyncEngineOptions) {
    this.docs = o.docs;
    this.receipts = o.receipts;
    this.#transport = o.transport;
    this.#now = o.now ?? Date.now;
    this.#newSid = o.newSid ?? (() => `${Date.now().toString(36)}${(++this.#sidCounter).toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`.slice(0, 32));
    this.#offChange = this.docs.onChange((c) => {
      if (c.source === 'local') this.#queueLive(c.records);
    });
  }

  on(handler: (e: SyncEvent) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #emit(e: SyncEvent): void {
    for (const h of this.#handlers) h(e);
  }

  sessions(): SyncProgress[] {
    return [...this.#sessions.values()].map((s) => ({ ...s.progress, queued: s.queue.length }));
  }

  close(): void {
    this.#offChange();
    for (const s of [...this.#sessions.values()]) this.#fail(s, new SyncAbortedError('sync engine closed'), false);
  }

  // --- initiator ------------------------------------------------------------------------

  /** Synchronizes with `peer` until both hold the same state (or MAX_PASSES passes). */
  async sync(peer: string, o: { mode?: SyncMode } = {}): Promise<SyncReport> {
    let mode: SyncMode = o.mode ?? 'auto';
    let lanes = DEFAULT_WIRE_LANES;
    const startedAt = this.#now();
    let total: SyncReport | undefined;
    for (let pass = 1; pass <= MAX_PASSES; pass++) {
      const report = await this.#pass(peer, mode, lanes, pass);
      total = total === undefined ? report : { ...report, sent: total.sent + report.sent, received: total.received + report.received, rounds: total.rounds + report.rounds, bytesIn: total.bytesIn + report.bytesIn, bytesOut: total.bytesOut + report.bytesOut };
      if (report.equal) break;
      // Writes during the pass, or a fingerprint collision: reconcile what is left by ranges, full lanes.
      mode = 'range';
      lanes = LANES;
    }
    return { ...(total as SyncReport), passes: (total as SyncReport).pass, startedAt, ms: this.#now() - startedAt };
  }

  /** Receipt logs: tell the peer our heads; it sends what we lack and its own heads back. */
  #offerHeads(peer: string, reply: boolean): void {
    if (this.receipts === undefined || this.receipts.inGroup(peer)) return;
    const heads = this.receipts.heads(this.#now()) as unknown as Json[];
    this.#transport.send(peer, encodeSyncMessage({ k: 'rheads', heads, reply })).catch(() => undefined);
  }

  async #onHeads(from: string, heads: Json[], reply: boolean): Promise<void> {
    const mirror = this.receipts;
    if (mirror === undefined || mirror.inGroup(from)) return;
    const theirs = new Map<string, number>();
    for (const h of heads) {
      try {
        const sth = parseTreeHead(h);
        theirs.set(sth.signer, sth.size);
      } catch (e) {
        this.#emit({ type: 'rejected', peer: from, code: (e as SyncError).code, reason: (e as Error).message });
      }
    }
    if (reply) this.#offerHeads(from, false);
    for (const mine of mirror.heads(this.#now())) {
      const have = theirs.get(mine.signer) ?? 0;
      if (mine.size <= have) continue;
      for await (const part of mirror.serve(mine.signer, have)) {
        await this.#transport.send(from, encodeSyncMessage({ k: 'rlog', part: part as unknown as Json }));
      }
    }
  }

  async #onLogPart(from: string, raw: Json): Promise<void> {
    if (this.receipts === undefined) return;
    try {
      await this.receipts.accept(parseLogPart(raw), this.#now());
    } catch (e) {
      if (!(e instanceof SyncError)) throw e;
      this.#emit({ type: 'rejected', peer: from, code: e.code, reason: e.message });
    }
  }

  #pass(peer: string, mode: SyncMode, lanes: number, pass: number): Promise<SyncReport> {
    if (pass === 1) this.#offerHeads(peer, true);
    if (this.#sessions.size >= MAX_SESSIONS) return Promise.reject(new SyncError('SYNC_LIMIT', `${MAX_SESSIONS} sync sessions already open`));
    const sid = this.#newSid();
    const s = this.#session(sid, peer, 'initiator', pass);
    const range = new RangeReconciler(this.docs.items, lanes);
    s.range = range;
    const promise = new Promise<SyncReport>((resolve, reject) => {
      s.settle = { resolve, reject };
    });
    const d = range.initiate();
    this.#send(s, { k: 'open', sid, mode, vec: this.docs.vector(), root: this.#root(), d, lanes });
    return promise;
  }

  #session(sid: string, peer: string, role: 'initiator' | 'responder', pass: number): Session {
    const now = this.#now();
    const s: Session = {
      progress: { sid, peer, role, mode: 'pending', phase: 'exchange', pass, sent: 0, received: 0, queued: 0, rounds: 0, bytesOut: 0, bytesIn: 0, startedAt: now },
      rangeParts: [], rangeBytes: 0, exchangeOver: false, queue: [], queued: new Set(), nextBatch: 0, inflight: 0, pumping: false,
      sentFin: false, checking: false, chain: Promise.resolve(), lastActivity: now,
    };
    this.#sessions.set(`${peer}/${sid}`, s);
    return s;
  }

  #root(): RootSummary {
    return encodeRoot(this.docs.items.fingerprint(0, 0));
  }

  /** The message in the form `peer` negotiated: binary where both sides speak it, else JSON. */
  #encodeFor(peer: string, m: SyncMessage): { payload: JsonObject | Uint8Array; bytes: number } {
    if (hasBinaryForm(m) && this.#transport.binary?.(peer) === true) {
      const payload = encodeBinarySyncMessage(m);
      return { payload, bytes: payload.length };
    }
    const payload = encodeSyncMessage(m);
    return { payload, bytes: jsonBytes(payload) };
  }

  /** Sends a message outside a session's accounting (answers to closed or refused sessions). */
  #sendLoose(peer: string, m: SyncMessage): void {
    void this.#transport.send(peer, this.#encodeFor(peer, m).payload).catch(() => undefined);
  }

  #send(s: Session, m: SyncMessage): void {
    const { payload, bytes } = this.#encodeFor(s.progress.peer, m);
    s.progress.bytesOut += bytes;
    if (m.k !== 'recs' && m.k !== 'ack') s.progress.rounds++;
    this.#transport.send(s.progress.peer, payload).catch((e: unknown) => {
      this.#fail(s, new SyncAbortedError(`cannot reach ${s.progress.peer}: ${(e as Error).message}`), false);
    });
  }

  // --- both roles -----------------------------------------------------------------------

  /**
   * Feeds one STATE_SYNC payload from `from` (the authenticated sender): its JSON form, and
   * its raw bytes when it is a bytes payload (else they are read from the `$bytes` JSON form).
   * Never throws.
   */
  receive(from: string, payload: JsonObject, raw?: Uint8Array): Promise<void> {
    const bytes = raw ?? payloadBytes(payload);
    // Payloads without a kind (or bytes without our magic) are not addressed to this protocol (apps may send their own).
    if (bytes === undefined ? payload['k'] === undefined : !isBinarySyncMessage(bytes)) return Promise.resolve();
    let m: SyncMessage;
    try {
      m = bytes !== undefined ? decodeBinarySyncMessage(bytes) : decodeSyncMessage(payload);
    } catch (e) {
      this.#emit({ type: 'rejected', peer: from, code: (e as SyncError).code ?? 'SYNC_MALFORMED', reason: (e as Error).message });
      return Promise.resolve();
    }
    if (m.k === 'live') return this.#receiveLive(from, m.recs);
    if (m.k === 'rheads') return this.#onHeads(from, m.heads, m.reply).catch(() => undefined);
    if (m.k === 'rlog') return this.#onLogPart(from, m.part);
    let s = this.#sessions.get(`${from}/${m.sid}`);
    if (s === undefined) {
      if (m.k === 'open') {
        if (this.#sessions.size >= MAX_SESSIONS) {
          this.#sendLoose(from, { k: 'err', sid: m.sid, code: 'SYNC_LIMIT', message: 'too many sync sessions' });
          return Promise.resolve();
        }
        s = this.#session(m.sid, from, 'responder', 1);
      } else if (m.k === 'recs') {
        // Records of a session we already closed are still signed records: keep them.
        return this.#receiveRecords(undefined, from, this.#verified(from, m.recs)).then(() => undefined);
      } else if (m.k === 'check') {
        this.#answerClosedCheck(from, m.sid);
        return Promise.resolve();
      } else {
        return Promise.resolve();
      }
    }
    const session = s;
    session.progress.bytesIn += bytes !== undefined ? bytes.length : jsonBytes(payload);
    session.lastActivity = this.#now();
    const ahead = m.k === 'recs' ? this.#verifyAhead(from, m.recs) : undefined;
    session.chain = session.chain.then(() => this.#handle(session, m, ahead)).catch((e: unknown) => {
      this.#fail(session, e instanceof Error ? e : new Error(String(e)), true);
    });
    return session.chain;
  }

  /**
   * We may have closed the session on the initiator's FIN (our roots were equal then), also
   * while its CHECK already waited behind that FIN: the answer needs no session.
   */
  #answerClosedCheck(peer: string, sid: string): void {
    this.#sendLoose(peer, { k: 'checked', sid, root: this.#root(), vec: this.docs.vector() });
  }

  async #handle(s: Session, m: SyncMessage, ahead?: () => Promise<DocRecord[]>): Promise<void> {
    if (s.progress.phase === 'done' || s.progress.phase === 'failed') {
      if (m.k === 'check' && s.progress.phase === 'done') this.#answerClosedCheck(s.progress.peer, m.sid);
      return;
    }
    if (m.k !== 'recs' && m.k !== 'ack') s.progress.rounds++;
    switch (m.k) {
      case 'open':
        return this.#onOpen(s, m);
      case 'vec':
        s.progress.mode = 'vector';
        await this.#enqueue(s, (await this.docs.idsAbove(m.vec, Number.MAX_SAFE_INTEGER)) ?? []);
        s.exchangeOver = true;
        return this.#pump(s);
      case 'rng': {
        if (s.range === undefined) throw new SyncError('SYNC_MALFORMED', 'range message outside a range session');
        s.progress.mode = 'range';
        s.rangeParts.push(m.d);
        s.rangeBytes += m.d.length;
        if (s.rangeBytes > MAX_RANGE_MESSAGE_BYTES) throw new SyncError('SYNC_LIMIT', `range message over ${MAX_RANGE_MESSAGE_BYTES} bytes`);
        if (m.more) return;
        const whole = concat(s.rangeParts);
        s.rangeParts = [];
        s.rangeBytes = 0;
        return this.#onRangeStep(s, s.range.receive(whole));
      }
      case 'recs': {
        const received = await this.#receiveRecords(s, s.progress.peer, ahead !== undefined ? ahead() : this.#verified(s.progress.peer, m.recs));
        s.progress.received += received;
        this.#send(s, { k: 'ack', sid: s.progress.sid, n: m.n });
        this.#progress(s);
        return;
      }
      case 'ack':
        s.inflight = Math.max(0, s.inflight - 1);
        return this.#pump(s);
      case 'fin':
        s.peerFin = { root: m.root, vec: m.vec };
        if (!s.exchangeOver && s.progress.mode === 'pending') {
          // The responder found our roots equal and answered with its FIN at once.
          s.progress.mode = 'equal';
          s.exchangeOver = true;
        }
        // Our held-back records go now (the pump ends with our FIN and the verification).
        return this.#pump(s);
      case 'check': {
        const root = this.#root();
        this.#send(s, { k: 'checked', sid: s.progress.sid, root, vec: this.docs.vector() });
        return this.#finish(s, rootsEqual(root, m.root), m.vec);
      }
      case 'checked':
        return this.#finish(s, rootsEqual(this.#root(), m.root), m.vec);
      case 'err':
        throw new SyncAbortedError(`peer ended the session: ${m.code}: ${m.message}`);
    }
  }

  async #onOpen(s: Session, m: Extract<SyncMessage, { k: 'open' }>): Promise<void> {
    const mine = this.#root();
    if (rootsEqual(mine, m.root)) {
      s.progress.mode = 'equal';
      s.exchangeOver = true;
      return this.#pump(s);
    }
    if (m.mode !== 'range') {
      const cap = m.mode === 'vector' ? Number.MAX_SAFE_INTEGER : Math.max(MIN_VECTOR_CAP, Math.floor(this.docs.items.size / 8));
      const ids = await this.docs.idsAbove(m.vec, cap);
      if (ids !== null) {
        s.progress.mode = 'vector';
        this.#send(s, { k: 'vec', sid: s.progress.sid, vec: this.docs.vector() });
        await this.#enqueue(s, ids);
        s.exchangeOver = true;
        return this.#pump(s);
      }
    }
    s.progress.mode = 'range';
    s.range = new RangeReconciler(this.docs.items, m.lanes);
    return this.#onRangeStep(s, s.range.receive(m.d));
  }

  async #onRangeStep(s: Session, step: RangeStep): Promise<void> {
    const ids = [...step.pushIds];
    for (const n of step.pushNodes) ids.push(...this.docs.items.idsIn(n.depth, n.prefix));
    await this.#enqueue(s, ids);
    if (step.message !== null) {
      const b64Max = MAX_RANGE_PART_BYTES;
      for (let off = 0; off < step.message.length || off === 0; off += b64Max) {
        const part = step.message.subarray(off, off + b64Max);
        this.#send(s, { k: 'rng', sid: s.progress.sid, d: part, more: off + b64Max < step.message.length });
        if (step.message.length === 0) break;
      }
    }
    if (step.finished) s.exchangeOver = true;
    return this.#pump(s);
  }

  async #enqueue(s: Session, ids: Uint8Array[]): Promise<void> {
    for (const id of ids) {
      const k = hexKey(id);
      if (s.queued.has(k)) continue;
      s.queued.add(k);
      s.queue.push(id);
    }
    if (s.queue.length > 0 && s.progress.phase === 'exchange') s.progress.phase = 'transfer';
  }

  /**
   * Sends queued records while fewer than MAX_INFLIGHT_BATCHES await acks; then FIN. The
   * initiator pulls before it pushes: it holds its records until the responder's FIN, so
   * versions the responder's newer ones superseded meanwhile are not sent at all.
   */
  async #pump(s: Session): Promise<void> {
    if (s.pumping) return;
    if (s.progress.role === 'initiator' && s.peerFin === undefined && s.queue.length > 0) return;
    s.pumping = true;
    try {
      while (s.inflight < MAX_INFLIGHT_BATCHES && s.queue.length > 0) {
        const ids = s.queue.splice(0, MAX_BATCH_RECORDS);
        const raw = await this.docs.recordBytesOf(ids);
        // Bytes bound: a batch over MAX_BATCH_BYTES goes back to the queue in part.
        const recs: Json[] = [];
        let bytes = 0;
        for (let i = 0; i < raw.length; i++) {
          const b = raw[i] as Uint8Array;
          if (recs.length > 0 && bytes + b.length > MAX_BATCH_BYTES) {
            s.queue.unshift(...ids.slice(i));
            break;
          }
          bytes += b.length;
          recs.push(parseJson(utf8Decode(b)) as Json);
        }
        if (recs.length === 0) continue;
        s.inflight++;
        s.progress.sent += recs.length;
        this.#send(s, { k: 'recs', sid: s.progress.sid, n: s.nextBatch++, recs });
        this.#progress(s);
      }
    } finally {
      s.pumping = false;
    }
    if (s.exchangeOver && s.queue.length === 0 && s.inflight === 0 && !s.sentFin) {
      s.sentFin = true;
      s.progress.phase = 'verify';
      this.#send(s, { k: 'fin', sid: s.progress.sid, root: this.#root(), vec: this.docs.vector() });
      this.#progress(s);
    }
    return this.#verify(s);
  }

  async #verify(s: Session): Promise<void> {
    if (!s.sentFin || s.peerFin === undefined || s.checking) return;
    if (rootsEqual(this.#root(), s.peerFin.root)) return this.#finish(s, true, s.peerFin.vec);
    // Their FIN may predate our last records reaching them: the initiator asks once more.
    if (s.progress.role === 'initiator') {
      s.checking = true;
      this.#send(s, { k: 'check', sid: s.progress.sid, root: this.#root(), vec: this.docs.vector() });
    }
  }

  async #finish(s: Session, equal: boolean, peerVec: VersionVector): Promise<void> {
    if (s.progress.phase === 'done' || s.progress.phase === 'failed') return;
    if (equal) await this.docs.mergeVector(peerVec);
    s.progress.phase = 'done';
    this.#sessions.delete(`${s.progress.peer}/${s.progress.sid}`);
    this.#progress(s);
    const report: SyncReport = { ...s.progress, queued: 0, equal, ms: this.#now() - s.progress.startedAt, passes: s.progress.pass };
    this.#emit({ type: 'done', report });
    s.settle?.resolve(report);
  }

  #fail(s: Session, e: Error, tellPeer: boolean): void {
    if (s.progress.phase === 'done' || s.progress.phase === 'failed') return;
    s.progress.phase = 'failed';
    this.#sessions.delete(`${s.progress.peer}/${s.progress.sid}`);
    const code = (e as SyncError).code ?? 'SYNC_ABORTED';
    if (code === 'SYNC_MALFORMED') this.#emit({ type: 'rejected', peer: s.progress.peer, code, reason: e.message });
    if (tellPeer) this.#sendLoose(s.progress.peer, { k: 'err', sid: s.progress.sid, code, message: e.message.slice(0, 200) });
    this.#progress(s);
    s.settle?.reject(e instanceof SyncError ? e : new SyncAbortedError(e.message));
  }

  #progress(s: Session): void {
    this.#emit({ type: 'progress', progress: { ...s.progress, queued: s.queue.length } });
  }

  /**
   * Checks each record's shape and signature, the signatures across the cores
   * (verifyRecordParallel); reports each bad one. Resolves to the good ones, in order.
   */
  async #verified(peer: string, recs: Json[]): Promise<DocRecord[]> {
    const results = await Promise.allSettled(recs.map(async (raw) => {
      const r = parseRecord(raw);
      await verifyRecordParallel(r);
      return r;
    }));
    const good: DocRecord[] = [];
    for (const res of results) {
      if (res.status === 'fulfilled') {
        good.push(res.value);
        continue;
      }
      const e: unknown = res.reason;
      if (!(e instanceof SyncError)) throw e;
      this.#emit({ type: 'rejected', peer, code: e.code, reason: e.message });
    }
    return good;
  }

  /** Starts verifying a batch now, if fewer than MAX_VERIFYING_BATCHES are; its session awaits the result in turn. */
  #verifyAhead(peer: string, recs: Json[]): () => Promise<DocRecord[]> {
    if (this.#verifying >= MAX_VERIFYING_BATCHES) return () => this.#verified(peer, recs);
    this.#verifying++;
    const pending = this.#verified(peer, recs).finally(() => this.#verifying--);
    // Handled when the session's turn comes (or dropped with a failed session).
    pending.catch(() => undefined);
    return () => pending;
  }

  /** Applies verified records from `peer`; returns how many verified. */
  async #receiveRecords(s: Session | undefined, peer: string, verified: Promise<DocRecord[]>): Promise<number> {
    const good = await verified;
    for (let i = 0; i < good.length; i += MAX_APPLY_RECORDS) {
      const result = await this.docs.apply(good.slice(i, i + MAX_APPLY_RECORDS));
      for (const r of result.refused) this.#emit({ type: 'rejected', peer, code: r.error.code, reason: r.error.message });
    }
    if (s !== undefined) s.lastActivity = this.#now();
    return good.length;
  }

  async #receiveLive(from: string, recs: Json[]): Promise<void> {
    await this.#receiveRecords(undefined, from, this.#verified(from, recs));
  }

  #queueLive(records: DocRecord[]): void {
    this.#live.push(...records);
    if (this.#liveScheduled) return;
    this.#liveScheduled = true;
    queueMicrotask(() => {
      this.#liveScheduled = false;
      const all = this.#live;
      this.#live = [];
      for (let i = 0; i < all.length; i += MAX_LIVE_RECORDS) {
        const recs = all.slice(i, i + MAX_LIVE_RECORDS) as unknown as Json[];
        this.#transport.broadcast(encodeSyncMessage({ k: 'live', recs })).catch(() => undefined);
      }
    });
  }

  /** Clock input: aborts sessions silent for SESSION_IDLE_MS. */
  tick(now: number): void {
    for (const s of [...this.#sessions.values()]) {
      if (now - s.lastActivity > SESSION_IDLE_MS) this.#fail(s, new SyncAbortedError(`no message from ${s.progress.peer} for ${SESSION_IDLE_MS} ms`), true);
    }
  }

  /** The peer went away: its sessions end (what they applied stays applied). */
  peerGone(peer: string): void {
    for (const s of [...this.#sessions.values()]) if (s.progress.peer === peer) this.#fail(s, new SyncAbortedError(`${peer} disconnected`), false);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const w = new ByteWriter();
  for (const p of parts) for (const b of p) w.byte(b);
  return w.finish();
}
