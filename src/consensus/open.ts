// Opens an engine for a Node process, on LevelDB under its data dir (the layout `hypersync
// node`, `hypersync relay` and `hypersync receipts` share). Node only.
//   raft: <data-dir>/raft  the Raft log          <data-dir>/store  this replica's receipts
//   pbft: <data-dir>/pbft  this PBFT replica's receipts (fresh at every start: see openPbftEngine)
//   none: <data-dir>/api   commands, snapshots and receipts of the single node (memory without a data dir)
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { publicKeyFromPeerId } from '../crypto/index.ts';
import { PbftRuntime, type PbftAdversary, type PbftWireCounters } from './pbft/runtime/runtime.ts';
import type { Membership, PbftLimits } from './pbft/types.ts';
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

/** The PBFT membership of a cluster.json with a `pbft` section (the keys are inside the PeerIds). */
export function pbftMembership(config: { cluster: string; pbft?: { replicas: readonly string[] } }): Membership {
  if (config.pbft === undefined) throw new EngineConfigError('cluster.json has no pbft section');
  return { cluster: config.cluster, replicas: config.pbft.replicas.map((id) => ({ id, publicKey: publicKeyFromPeerId(id) })) };
}

export interface OpenPbftOptions {
  dataDir: string;
  peerId: string;
  /** Signs protocol messages, replies and receipts (the peer's own identity key). */
  signer: Ed25519Signer;
  transport: EngineTransport;
  membership: Membership;
  tickMs?: number;
  registry?: OperatorRegistry;
  /** Makes this replica Byzantine (`hypersync node --byzantine`). */
  adversary?: PbftAdversary;
  /** Core limits (e.g. maxBatchRequests 1: no batching); every replica of a group must use the same. */
  limits?: Partial<PbftLimits>;
  /** This peer's direct-wire counters, shown in the replica's status (frames per request). */
  wireStats?: () => PbftWireCounters;
}

/**
 * A PBFT replica of the cluster's group: receipts in <data-dir>/pbft. The core keeps no durable
 * state: a replica that restarts rejoins by state transfer from the stable checkpoint (it counts
 * against f until then), so its store starts empty each time.
 */
export async function openPbftEngine(o: OpenPbftOptions): Promise<PbftRuntime> {
  if (!o.membership.replicas.some((r) => r.id === o.peerId)) throw new EngineConfigError(`this peer (${o.peerId}) is not in the cluster's pbft replicas`);
  const dir = join(o.dataDir, 'pbft');
  await rm(dir, { recursive: true, force: true });
  const store = await LevelStore.open(dir);
  try {
    const replica = await Replica.open({ store, signer: o.signer, peerId: o.peerId, ...(o.registry !== undefined ? { registry: o.registry } : {}) });
    return new PbftRuntime({ id: o.peerId, membership: o.membership, signer: o.signer, transport: o.transport, replica, ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}), ...(o.adversary !== undefined ? { adversary: o.adversary } : {}), ...(o.limits !== undefined ? { limits: o.limits } : {}), ...(o.wireStats !== undefined ? { wireStats: o.wireStats } : {}) });
  } catch (e) {
    await store.close().catch(() => undefined);
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
