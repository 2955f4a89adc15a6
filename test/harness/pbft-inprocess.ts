// A PBFT cluster inside this process, on real time: real runtimes and replicas (operator state
// machine, signed receipts) on memory stores, joined by a loopback transport that delivers a
// JSON copy on a later turn of the event loop (as the wire does). `cut(id)` silences a member
// both ways (a crashed process, as far as the others can tell).
import type { EngineTransport } from '../../src/consensus/ports.ts';
import { PbftGateway } from '../../src/consensus/pbft/runtime/gateway.ts';
import { PbftRuntime, type PbftAdversary } from '../../src/consensus/pbft/runtime/runtime.ts';
import type { Membership, PbftLimits } from '../../src/consensus/pbft/types.ts';
import { crypto, peerIdFromPublicKeyBytes, type Ed25519Signer } from '../../src/crypto/index.ts';
import type { JsonObject } from '../../src/ico/types.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { Replica } from '../../src/replica/replica.ts';
import { MemoryStore } from '../../src/store/memory.ts';

type Handler = (from: string, payload: JsonObject) => void;

export interface InProcessPbft {
  readonly members: PbftRuntime[];
  readonly membership: Membership;
  /** The members' keys, in membership order (tests sign as a Byzantine member with them). */
  readonly signers: readonly Ed25519Signer[];
  /** Every payload sent goes through here first (tests inject bad input with `inject`). */
  inject(from: string, to: string, payload: JsonObject): void;
  cut(id: string): void;
  /** A started non-member client (the relay's side), closed with the cluster. */
  gateway(opts?: { maxBundle?: number }): PbftGateway;
  close(): Promise<void>;
}

export async function startInProcessPbft(opts: { n?: number; tickMs?: number; tap?: (from: string, to: string, payload: JsonObject) => void; limits?: Partial<PbftLimits>; adversary?: (index: number, membership: Membership, signer: Ed25519Signer) => PbftAdversary | undefined } = {}): Promise<InProcessPbft> {
  const n = opts.n ?? 4;
  const handlers = new Map<string, Handler>();
  const cut = new Set<string>();
  const deliver = (from: string, to: string, payload: JsonObject): void => {
    opts.tap?.(from, to, payload);
    const copy = JSON.parse(JSON.stringify(payload)) as JsonObject;
    setImmediate(() => {
      if (!cut.has(from) && !cut.has(to)) handlers.get(to)?.(from, copy);
    });
  };
  const transport = (self: string): EngineTransport => ({
    send(to, payload) {
      if (!handlers.has(to) || cut.has(to) || cut.has(self)) return Promise.reject(new Error(`${to} is not connected`));
      deliver(self, to, payload);
      return Promise.resolve();
    },
    onMessage(h) {
      handlers.set(self, h);
      return () => handlers.delete(self);
    },
  });
  const signers = Array.from({ length: n }, () => crypto.createSigner(crypto.randomBytes(32)));
  const membership: Membership = { cluster: 'inprocess', replicas: signers.map((s) => ({ id: peerIdFromPublicKeyBytes(s.publicKey), publicKey: s.publicKey })) };
  const members: PbftRuntime[] = [];
  const gateways: PbftGateway[] = [];
  for (const [i, s] of signers.entries()) {
    const id = membership.replicas[i]!.id;
    const replica = await Replica.open({ store: new MemoryStore(), signer: s, peerId: id });
    const adversary = opts.adversary?.(i, membership, s);
    members.push(new PbftRuntime({ id, membership, signer: s, transport: transport(id), replica, logger: silentLogger(), ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}), ...(opts.limits !== undefined ? { limits: opts.limits } : {}), ...(adversary !== undefined ? { adversary } : {}) }));
  }
  for (const m of members) await m.start();
  return {
    members,
    membership,
    signers,
    inject: (from, to, payload) => deliver(from, to, payload),
    cut: (id) => cut.add(id),
    gateway(gopts: { maxBundle?: number } = {}) {
      const s = crypto.createSigner(crypto.randomBytes(32));
      const id = peerIdFromPublicKeyBytes(s.publicKey);
      const g = new PbftGateway({ id, membership, signer: s, transport: transport(id), logger: silentLogger(), ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}), ...gopts });
      g.start();
      gateways.push(g);
      return g;
    },
    async close() {
      for (const g of gateways) g.close();
      for (const m of members) await m.close();
    },
  };
}
