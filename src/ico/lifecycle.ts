// The connection lifecycle with one remote peer, as a pure state machine: the caller feeds
// it verified envelopes and clock ticks and sends what it returns. Seed steps 3–7: HELLO
// both ways (version negotiation), authentication (the codec already bound sender to the
// Noise peer; admission here), normal operation with HEARTBEAT liveness, GOODBYE.
//   new → hello-sent → established → closed      (rejected on any handshake failure)
import { admit, type AdmissionPolicy } from './admission.ts';
import { ClusterMismatchError, IcoError, NotAdmittedError, ProtocolViolationError, VersionMismatchError } from './errors.ts';
import { ICO_VERSION, type Envelope, type HelloPayload, type IcoType, type JoinToken, type Json, type PeerRole, type TreeHeadSummary } from './types.ts';

export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_MISSED_BEATS = 3;
/** Bounds on what a HELLO may claim, so a peer cannot make us hold unbounded lists. */
export const MAX_HELLO_LIST = 32;

export type SessionState = 'new' | 'hello-sent' | 'established' | 'closed' | 'rejected';

export type SessionEvent =
  | { kind: 'established'; remote: HelloPayload; version: string }
  | { kind: 'rejected'; error: IcoError }
  | { kind: 'peer-down' }
  | { kind: 'peer-up' }
  | { kind: 'goodbye'; code: string; reason: string }
  | { kind: 'message'; envelope: Envelope };

export interface Outbound {
  type: IcoType;
  payload: { [key: string]: Json };
}

export interface SessionStep {
  out: Outbound[];
  events: SessionEvent[];
}

export interface LocalInfo {
  peerId: string;
  cluster: string;
  roles: PeerRole[];
  capabilities: string[];
  version?: string;
  treeHead?: TreeHeadSummary | null;
  /** The sync layer's state summary, read when our HELLO is built. */
  state?: () => { [key: string]: Json } | null;
}

export interface SessionOptions {
  local: LocalInfo;
  remotePeer: string;
  admission: AdmissionPolicy;
  heartbeatMs?: number;
  missedBeats?: number;
  joinToken?: JoinToken | null;
}

const ROLES: readonly string[] = ['voter', 'learner', 'relay', 'browser'];

function parseVersion(v: string): [number, number] | null {
  const m = /^(\d{1,6})\.(\d{1,6})$/.exec(v);
  return m === null ? null : [Number(m[1]), Number(m[2])];
}

/** Same major → compatible; the agreed version is the lower minor. Null when incompatible. */
export function negotiateVersion(local: string, remote: string): string | null {
  const a = parseVersion(local);
  const b = parseVersion(remote);
  if (a === null || b === null || a[0] !== b[0]) return null;
  return `${a[0]}.${Math.min(a[1], b[1])}`;
}

function isStringList(value: unknown, allowed?: readonly string[]): value is string[] {
  return Array.isArray(value) && value.length <= MAX_HELLO_LIST &&
    value.every((x) => typeof x === 'string' && x.length <= 64 && (allowed === undefined || allowed.includes(x)));
}

/** Shape check of a HELLO payload (the codec only checked that it is a JSON object). */
export function parseHello(payload: { [key: string]: Json }): HelloPayload | null {
  const p = payload;
  const th = p['tree_head'];
  const treeOk = th === null || (typeof th === 'object' && !Array.isArray(th) && typeof th['size'] === 'number' && typeof th['root'] === 'string');
  const jt = p['join_token'];
  const tokenOk = jt === null || (typeof jt === 'object' && !Array.isArray(jt));
  const hb = p['heartbeat_ms'];
  const st = p['state'];
  const stateOk = st === undefined || (typeof st === 'object' && st !== null && !Array.isArray(st) && Object.keys(st).length <= MAX_HELLO_LIST);
  if (
    !stateOk || typeof p['version'] !== 'string' || typeof p['cluster'] !== 'string' || !isStringList(p['roles'], ROLES) ||
    !isStringList(p['capabilities']) || !treeOk || !tokenOk || typeof hb !== 'number' || !(hb > 0 && hb <= 3_600_000)
  ) {
    return null;
  }
  return payload as HelloPayload;
}

export class IcoSession {
  readonly remotePeer: string;
  readonly heartbeatMs: number;
  readonly missedBeats: number;
  #state: SessionState = 'new';
  #local: LocalInfo;
  #admission: AdmissionPolicy;
  #joinToken: JoinToken | null;
  #remoteHello: HelloPayload | null = null;
  #agreedVersion: string | null = null;
  #lastReceived = 0;
  #lastSent = 0;
  #beat = 0;
  #down = false;
  /** When the join token that admitted the peer expires (allowlisted peers: never). */
  #admittedUntil: number | undefined;

  constructor(opts: SessionOptions) {
    this.remotePeer = opts.remotePeer;
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.missedBeats = opts.missedBeats ?? DEFAULT_MISSED_BEATS;
    this.#local = opts.local;
    this.#admission = opts.admission;
    this.#joinToken = opts.joinToken ?? null;
  }

  get state(): SessionState {
    return this.#state;
  }
  get remoteHello(): HelloPayload | null {
    return this.#remoteHello;
  }
  get agreedVersion(): string | null {
    return this.#agreedVersion;
  }
  get lastReceived(): number {
    return this.#lastReceived;
  }
  get isDown(): boolean {
    return this.#down;
  }
  /**
   * Silence after which the peer is reported down: `missedBeats` of the slower of our
   * interval and the one the peer announced in its HELLO (it only promised to beat that often).
   */
  get downAfterMs(): number {
    return this.missedBeats * Math.max(this.heartbeatMs, this.#remoteHello?.heartbeat_ms ?? 0);
  }

  #hello(): Outbound {
    const payload: HelloPayload = {
      version: this.#local.version ?? ICO_VERSION,
      cluster: this.#local.cluster,
      roles: this.#local.roles,
      capabilities: this.#local.capabilities,
      tree_head: this.#local.treeHead ?? null,
      join_token: this.#joinToken,
      heartbeat_ms: this.heartbeatMs,
    };
    const state = this.#local.state?.() ?? null;
    if (state !== null) payload['state'] = state;
    return { type: 'HELLO', payload };
  }

  /** Opens the session: our HELLO goes first, whoever dialed. */
  start(now: number): SessionStep {
    if (this.#state !== 'new') return { out: [], events: [] };
    this.#state = 'hello-sent';
    this.#lastReceived = now;
    this.#lastSent = now;
    return { out: [this.#hello()], events: [] };
  }

  #reject(error: IcoError, code: string): SessionStep {
    this.#state = 'rejected';
    return { out: [{ type: 'GOODBYE', payload: { code, reason: error.message } }], events: [{ kind: 'rejected', error }] };
  }

  receive(envelope: Envelope, now: number): SessionStep {
    if (this.#state === 'closed' || this.#state === 'rejected') return { out: [], events: [] };
    const events: SessionEvent[] = [];
    this.#lastReceived = now;
    if (this.#down) {
      this.#down = false;
      events.push({ kind: 'peer-up' });
    }
    if (envelope.type === 'GOODBYE') {
      this.#state = 'closed';
      const code = typeof envelope.payload['code'] === 'string' ? envelope.payload['code'] : 'unspecified';
      const reason = typeof envelope.payload['reason'] === 'string' ? envelope.payload['reason'] : '';
      events.push({ kind: 'goodbye', code, reason });
      return { out: [], events };
    }
    if (envelope.type === 'HELLO') {
      if (this.#state === 'established') return this.#reject(new ProtocolViolationError('second HELLO on an established session'), 'protocol-violation');
      const out: Outbound[] = [];
      if (this.#state === 'new') {
        this.#state = 'hello-sent';
        out.push(this.#hello());
      }
      let hello = parseHello(envelope.payload);
      if (hello === null) return merge(out, this.#reject(new ProtocolViolationError('malformed HELLO payload'), 'protocol-violation'));
      const agreed = negotiateVersion(this.#local.version ?? ICO_VERSION, hello.version);
      if (agreed === null) {
        return merge(out, this.#reject(new VersionMismatchError(`incompatible protocol version ${hello.version} (we speak ${this.#local.version ?? ICO_VERSION})`), 'version-mismatch'));
      }
      if (hello.cluster !== this.#local.cluster) {
        return merge(out, this.#reject(new ClusterMismatchError(`peer is in cluster '${hello.cluster}', we are in '${this.#local.cluster}'`), 'cluster-mismatch'));
      }
      const admitted = admit(this.#admission, this.remotePeer, hello.join_token, now);
      if (!admitted.ok) return merge(out, this.#reject(admitted.error, 'not-admitted'));
      if (admitted.via === 'token') {
        // The token says what the peer is: a HELLO claiming any other role is refused.
        const claimed = hello.roles.filter((r) => r !== admitted.role);
        if (claimed.length > 0) return merge(out, this.#reject(new NotAdmittedError(`the join token grants the role '${admitted.role}', not ${claimed.map((r) => `'${r}'`).join(', ')}`), 'not-admitted'));
        this.#admittedUntil = admitted.expiresAt;
        hello = { ...hello, roles: [admitted.role] };
      }
      this.#remoteHello = hello;
      this.#agreedVersion = agreed;
      this.#state = 'established';
      events.push({ kind: 'established', remote: hello, version: agreed });
      return { out, events };
    }
    if (this.#state !== 'established') {
      // A HEARTBEAT can still be in flight from the peer's previous session when it starts
      // over; it proves liveness and nothing else, so it is tolerated, not a violation.
      if (envelope.type === 'HEARTBEAT') return { out: [], events };
      return this.#reject(new ProtocolViolationError(`${envelope.type} before the HELLO exchange completed`), 'protocol-violation');
    }
    if (envelope.type === 'STATE_SYNC' || envelope.type === 'CONSENSUS') events.push({ kind: 'message', envelope });
    return { out: [], events };
  }

  /** Clock input: sends a HEARTBEAT when one is due; reports the peer down after missed beats. */
  tick(now: number): SessionStep {
    const out: Outbound[] = [];
    const events: SessionEvent[] = [];
    if (this.#state !== 'established' && this.#state !== 'hello-sent') return { out, events };
    if (this.#state === 'established' && this.#admittedUntil !== undefined && now >= this.#admittedUntil) {
      return this.#reject(new NotAdmittedError(`the join token that admitted ${this.remotePeer} expired at ${new Date(this.#admittedUntil).toISOString()}`), 'token-expired');
    }
    if (this.#state === 'established' && now - this.#lastSent >= this.heartbeatMs) {
      this.#lastSent = now;
      out.push({ type: 'HEARTBEAT', payload: { beat: ++this.#beat } });
    }
    if (!this.#down && now - this.#lastReceived > this.downAfterMs) {
      this.#down = true;
      events.push({ kind: 'peer-down' });
    }
    return { out, events };
  }

  /** Any outbound message counts as a beat, so busy links send no extra heartbeats. */
  noteSent(now: number): void {
    this.#lastSent = now;
  }

  close(code: string, reason: string): SessionStep {
    if (this.#state === 'closed' || this.#state === 'rejected') return { out: [], events: [] };
    const wasOpen = this.#state !== 'new';
    this.#state = 'closed';
    return { out: wasOpen ? [{ type: 'GOODBYE', payload: { code, reason } }] : [], events: [] };
  }
}

function merge(first: Outbound[], step: SessionStep): SessionStep {
  return { out: [...first, ...step.out], events: step.events };
}
