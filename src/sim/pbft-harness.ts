// A synchronous in-memory PBFT cluster for paper tests and the core benchmark: n replicas
// (r0..r{n-1}) with the KV application, PbftClients, explicit message delivery or "until
// quiet", and a drop filter. Crypto is the simulator's fake (fast) or real SHA-256 + ed25519.
// No faults beyond the filter: the Byzantine simulator (pbft-simulator.ts) does the rest.
import { PbftAuth, ed25519Signer, sha256Ed25519 } from '../consensus/pbft/auth.ts';
import { PbftClient, type ClientCompletion } from '../consensus/pbft/client.ts';
import { BROADCAST, type Membership, type NodeId, type PbftLimits, type PbftMessage, type PbftSigner, type PbftVerifier, type ReplyMessage } from '../consensus/pbft/types.ts';
import { fakeKey, fakeVerifier } from './pbft-crypto.ts';
import { PbftHost, type HostSink } from './pbft-host.ts';
import { Xoshiro128 } from './prng.ts';

/** Delivery rounds before deliverAll gives up (a livelock is a test failure). */
export const MAX_DELIVERY_ROUNDS = 10_000;

export interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly message: PbftMessage;
}

export interface PbftClusterOptions {
  readonly n: number;
  readonly clients?: number;
  readonly crypto?: 'fake' | 'ed25519';
  readonly limits?: Partial<PbftLimits>;
  readonly seed?: number;
  readonly clientRetransmitTicks?: number;
}

interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly signer: PbftSigner;
}

function keyFor(kind: 'fake' | 'ed25519', rng: Xoshiro128): KeyPair {
  if (kind === 'fake') return fakeKey(rng);
  const seed = new Uint8Array(32);
  const view = new DataView(seed.buffer);
  for (let i = 0; i < 8; i++) view.setUint32(i * 4, rng.nextU32());
  const s = ed25519Signer(seed);
  return { publicKey: s.publicKey, signer: s };
}

function lookup<T>(map: ReadonlyMap<string, T>, id: string, what: string): T {
  const v = map.get(id);
  if (v === undefined) throw new Error(`no ${what} ${id}`);
  return v;
}

export class PbftMemoryCluster implements HostSink {
  readonly membership: Membership;
  readonly verifier: PbftVerifier;
  readonly auth: PbftAuth;
  readonly hosts = new Map<NodeId, PbftHost>();
  readonly clients = new Map<string, PbftClient>();
  readonly completed = new Map<string, ClientCompletion[]>();
  /** Messages sent and not yet delivered, in send order. */
  inflight: Envelope[] = [];
  /** Return true to drop a message at delivery. */
  drop: (e: Envelope) => boolean = () => false;
  readonly ids: readonly NodeId[];
  private readonly signers = new Map<NodeId, PbftSigner>();
  private readonly clientSigners = new Map<string, PbftSigner>();

  constructor(opts: PbftClusterOptions) {
    const rng = new Xoshiro128(opts.seed ?? 1);
    const kind = opts.crypto ?? 'fake';
    this.verifier = kind === 'fake' ? fakeVerifier : sha256Ed25519;
    this.ids = Array.from({ length: opts.n }, (_, i) => `r${i}`);
    const keys = this.ids.map(() => keyFor(kind, rng));
    this.membership = { cluster: 'memory', replicas: this.ids.map((id, i) => ({ id, publicKey: (keys[i] as KeyPair).publicKey })) };
    this.auth = new PbftAuth(this.membership, this.verifier);
    const clientKeys = new Map<string, Uint8Array>();
    for (let c = 1; c <= (opts.clients ?? 1); c++) {
      const id = `c${c}`;
      const key = keyFor(kind, rng);
      clientKeys.set(id, key.publicKey);
      this.clientSigners.set(id, key.signer);
      this.clients.set(
        id,
        new PbftClient({
          id,
          membership: this.membership,
          signer: key.signer,
          verifier: this.verifier,
          firstTimestamp: 1,
          auth: this.auth,
          ...(opts.clientRetransmitTicks === undefined ? {} : { retransmitTicks: opts.clientRetransmitTicks }),
        }),
      );
      this.completed.set(id, []);
    }
    this.ids.forEach((id, i) => {
      this.signers.set(id, (keys[i] as KeyPair).signer);
      const host = new PbftHost(
        {
          id,
          membership: this.membership,
          signer: (keys[i] as KeyPair).signer,
          verifier: this.verifier,
          clientKey: (c) => clientKeys.get(c),
          ...(opts.limits === undefined ? {} : { limits: opts.limits }),
        },
        this.auth,
      );
      this.hosts.set(id, host);
    });
  }

  host(id: NodeId): PbftHost {
    return lookup(this.hosts, id, 'replica');
  }

  /** Replica `id`'s signing key (tests forge what a faulty replica would send). */
  signer(id: NodeId): PbftSigner {
    return lookup(this.signers, id, 'replica');
  }

  /** Client `id`'s signing key (tests forge what a misbehaving client would send). */
  clientSigner(id: string): PbftSigner {
    return lookup(this.clientSigners, id, 'client');
  }

  client(id: string): PbftClient {
    return lookup(this.clients, id, 'client');
  }

  // HostSink
  send(from: NodeId, to: NodeId, message: PbftMessage): void {
    if (to !== BROADCAST) {
      this.inflight.push({ from, to, message });
      return;
    }
    for (const id of this.ids) if (id !== from) this.inflight.push({ from, to: id, message });
  }

  reply(from: NodeId, to: string, message: ReplyMessage): void {
    this.inflight.push({ from, to, message });
  }

  /** Signs and queues a request from `client`; returns its timestamp. */
  submit(client: string, op: Uint8Array): number {
    const c = this.client(client);
    const r = c.submit(op);
    this.flushClient(c);
    return r.timestamp;
  }

  private flushClient(c: PbftClient): void {
    const out = c.drain();
    for (const m of out.messages) this.send(c.id, m.to, m.message);
    (this.completed.get(c.id) as ClientCompletion[]).push(...out.completed);
  }

  process(id: NodeId): void {
    this.host(id).drain(this);
  }

  processAll(): void {
    for (const id of this.ids) this.process(id);
  }

  /** Takes the queued messages (after processing every replica), optionally only those matching. */
  take(filter: (e: Envelope) => boolean = () => true): Envelope[] {
    this.processAll();
    const out = this.inflight.filter(filter);
    this.inflight = this.inflight.filter((e) => !filter(e));
    return out;
  }

  deliver(e: Envelope): void {
    if (this.drop(e)) return;
    const host = this.hosts.get(e.to);
    if (host !== undefined) {
      host.replica.step(e.from, e.message);
      host.drain(this);
      return;
    }
    const client = this.clients.get(e.to);
    if (client !== undefined && e.message.type === 'reply') {
      client.step(e.message);
      this.flushClient(client);
    }
  }

  /** Delivers until no message is left; returns how many were delivered. */
  deliverAll(): number {
    let n = 0;
    this.processAll();
    for (let round = 0; this.inflight.length > 0; round++) {
      if (round >= MAX_DELIVERY_ROUNDS) throw new Error('deliverAll: no quiescence');
      const batch = this.inflight;
      this.inflight = [];
      for (const e of batch) {
        this.deliver(e);
        n++;
      }
      this.processAll();
    }
    return n;
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.host(id).replica.tick();
      this.process(id);
    }
  }

  /** Ticks every replica and client once, then delivers everything; `times` rounds. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.ids) this.tick(id);
      for (const c of this.clients.values()) {
        c.tick();
        this.flushClient(c);
      }
      this.deliverAll();
    }
  }

  /** Drops every message to or from the given replicas (until heal). */
  isolate(...ids: NodeId[]): void {
    const cut = new Set(ids);
    this.drop = (e) => cut.has(e.from) !== cut.has(e.to);
  }

  heal(): void {
    this.drop = () => false;
  }
}
