// Opens an engine for a Node process, on LevelDB under its data dir (the layout `hypersync
// node`, `hypersync relay` and `hypersync receipts` share). Node only.
//   raft: <data-dir>/raft  the Raft log          <data-dir>/store  this replica's receipts
//   none: <data-dir>/api   commands, snapshots and receipts of the single node (memory without a data dir)
import { join } from 'node:path';
import type { Ed25519Signer } from '../crypto/index.ts';
import { mustSyncReceipts, Replica } from '../replica/replica.ts';
import type { OperatorRegistry } from '../statemachine/registry.ts';
import { LevelStore } from '../store/level.ts';
import { MemoryStore } from '../store/memory.ts';
import type { Store } from '../store/types.ts';
import type { EngineTransport } from './ports.ts';
import { RaftRuntime, type RaftRuntimeOptions } from './raft/runtime/runtime.ts';
import { SingleEngine } from './single/engine.ts';

export class EngineConfigError extends Error {
  readonly code = 'ENGINE_CONFIG';
  override name = 'EngineConfigError';
}

export interface OpenRaftOptions extends Pick<RaftRuntimeOptions<Replica>, 'tickMs' | 'electionTicks' | 'heartbeatTicks' | 'snapshotEvery'> {
  dataDir: string;
  peerId: string;
  /** Signs this replica's receipts (the peer's own identity key). */
  signer: Ed25519Signer;
  transport: EngineTransport;
  /** The initial members (cluster.json's "raft" section); this peer must be one of them. */
  voters: readonly string[];
  learners: readonly string[];
  registry?: OperatorRegistry;
}

export async function openRaftEngine(o: OpenRaftOptions): Promise<RaftRuntime<Replica>> {
  if (![...o.voters, ...o.learners].includes(o.peerId)) throw new EngineConfigError(`this peer (${o.peerId}) is not in the cluster's raft members`);
  const opened: Store[] = [];
  try {
    const raftStore = await LevelStore.open(join(o.dataDir, 'raft'));
    opened.push(raftStore);
    const receiptStore = await LevelStore.open(join(o.dataDir, 'store'));
    opened.push(receiptStore);
    // A learner's log is not durable (below), so its receipts are: the relay acknowledges them to clients.
    const learner = o.learners.includes(o.peerId);
    const replica = await Replica.open({ store: receiptStore, signer: o.signer, peerId: o.peerId, syncReceipts: mustSyncReceipts(!learner), ...(o.registry !== undefined ? { registry: o.registry } : {}) });
    return await RaftRuntime.open({
      id: o.peerId,
      transport: o.transport,
      store: raftStore,
      // A learner (the relay) writes its log without fsync: it never votes and never counts
      // towards a commit, so it can always fetch a lost suffix from the leader again.
      syncWhileLearner: false,
      bootstrap: { voters: o.voters, learners: o.learners },
      replica,
      ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
      ...(o.electionTicks !== undefined ? { electionTicks: o.electionTicks } : {}),
      ...(o.heartbeatTicks !== undefined ? { heartbeatTicks: o.heartbeatTicks } : {}),
      ...(o.snapshotEvery !== undefined ? { snapshotEvery: o.snapshotEvery } : {}),
    });
  } catch (e) {
    for (const s of opened) await s.close().catch(() => undefined);
    throw e;
  }
}

export interface OpenSingleOptions {
  /** Absent: state in memory (gone at exit). */
  dataDir?: string;
  peerId: string;
  signer: Ed25519Signer;
  registry?: OperatorRegistry;
}

export async function openSingleEngine(o: OpenSingleOptions): Promise<SingleEngine> {
  const store: Store = o.dataDir !== undefined ? await LevelStore.open(join(o.dataDir, 'api')) : new MemoryStore();
  try {
    return await SingleEngine.open({ store, signer: o.signer, peerId: o.peerId, ...(o.registry !== undefined ? { registry: o.registry } : {}) });
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
}
