// A Raft cluster inside this process, on real time: real runtimes and replicas (operator state
// machine, signed receipts) on memory stores, joined by a loopback transport that delivers on a
// later turn of the event loop. For tests that want the production timers without processes.
import type { EngineTransport } from '../../src/consensus/ports.ts';
import { DEFAULT_TICK_MS } from '../../src/consensus/raft/runtime/limits.ts';
import { RaftRuntime } from '../../src/consensus/raft/runtime/runtime.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import type { JsonObject } from '../../src/ico/types.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { mustSyncReceipts, Replica } from '../../src/replica/replica.ts';
import type { Store } from '../../src/store/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';

type Handler = (from: string, payload: JsonObject) => void;

export interface InProcessCluster {
  readonly members: RaftRuntime<Replica>[];
  /** Resolves with the leader once one is elected (bounded by `withinMs`). */
  leader(withinMs?: number): Promise<RaftRuntime<Replica>>;
  close(): Promise<void>;
}

export interface InProcessOptions {
  voters: number;
  learners?: number;
  tickMs?: number;
  leaseReads?: boolean;
  receiptSigning?: 'eager' | 'lazy';
  /** Each member's Raft log store and receipt store (default: memory stores); learners' receipts are fsynced as in production. */
  store?: (member: number, part: 'log' | 'receipts') => Promise<Store>;
}

export async function startInProcessCluster(opts: InProcessOptions): Promise<InProcessCluster> {
  const handlers = new Map<string, Handler>();
  const transport = (self: string): EngineTransport => ({
    send(to, payload) {
      if (!handlers.has(to)) return Promise.reject(new Error(`${to} is not connected`));
      // A JSON round trip, as on the wire, on a later turn.
      const copy = JSON.parse(JSON.stringify(payload)) as JsonObject;
      setImmediate(() => handlers.get(to)?.(self, copy));
      return Promise.resolve();
    },
    onMessage(h) {
      handlers.set(self, h);
      return () => handlers.delete(self);
    },
  });
  const signers = Array.from({ length: opts.voters + (opts.learners ?? 0) }, () => crypto.createSigner(crypto.randomBytes(32)));
  const ids = signers.map((s) => peerIdFromPublicKeyBytes(s.publicKey));
  const voters = ids.slice(0, opts.voters);
  const learners = ids.slice(opts.voters);
  const members: RaftRuntime<Replica>[] = [];
  for (const [i, id] of ids.entries()) {
    const store = (part: 'log' | 'receipts'): Promise<Store> => opts.store?.(i, part) ?? Promise.resolve(new MemoryStore());
    const learner = i >= opts.voters;
    const replica = await Replica.open({ store: await store('receipts'), signer: signers[i]!, peerId: id, syncReceipts: mustSyncReceipts(!learner), ...(opts.receiptSigning !== undefined ? { receiptSigning: opts.receiptSigning } : {}) });
    const rt = await RaftRuntime.open({ id, transport: transport(id), store: await store('log'), syncWhileLearner: false, replica, bootstrap: { voters, learners }, tickMs: opts.tickMs ?? DEFAULT_TICK_MS, ...(opts.leaseReads === false ? { leaseReads: false } : {}), logger: silentLogger() });
    members.push(rt);
  }
  for (const m of members) await m.start();
  return {
    members,
    leader(withinMs = 10_000) {
      const now = members.find((m) => m.status().leader === m.id);
      if (now !== undefined) return Promise.resolve(now);
      return new Promise((resolve, reject) => {
        const offs: Array<() => void> = [];
        const done = (m?: RaftRuntime<Replica>): void => {
          for (const off of offs) off();
          clearTimeout(timer);
          if (m === undefined) reject(new Error(`no leader within ${withinMs} ms`));
          else resolve(m);
        };
        const timer = setTimeout(() => done(), withinMs);
        for (const m of members) offs.push(m.onEvent((e) => e.type === 'raft:role' && e.role === 'leader' && done(m)));
      });
    },
    async close() {
      for (const m of members) await m.close();
    },
  };
}
