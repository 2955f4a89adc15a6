// Starts this process's Raft membership: opens the Raft log (<data-dir>/raft) and the replica's
// receipt store (<data-dir>/store, the same one `hypersync receipts` reads), then the driver.
// Node-only (LevelDB); the relay (learner) and `hypersync node` (voter) both start here.
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { LevelStore } from '../store/level.ts';
import { RaftDriver, type RaftDriverOptions } from './raft-driver.ts';
import { RaftStorage } from './raft-storage.ts';
import { Replica } from './replica.ts';
import type { HyperSyncPeer } from './types.ts';

export interface RaftMemberOptions extends Pick<RaftDriverOptions, 'tickMs' | 'electionTicks' | 'heartbeatTicks' | 'snapshotEvery'> {
  peer: HyperSyncPeer;
  privateKey: PrivateKey;
  dataDir: string;
  voters: readonly string[];
  learners: readonly string[];
}

export interface RaftMember {
  readonly driver: RaftDriver;
  readonly replica: Replica;
  stop(): Promise<void>;
}

export async function startRaftMember(o: RaftMemberOptions): Promise<RaftMember> {
  if (![...o.voters, ...o.learners].includes(o.peer.peerId)) throw new Error(`this peer (${o.peer.peerId}) is not in the cluster's raft members`);
  const raftStore = await LevelStore.open(join(o.dataDir, 'raft'));
  const receiptStore = await LevelStore.open(join(o.dataDir, 'store'));
  const replica = await Replica.open({ store: receiptStore, signer: crypto.createSigner(seedFromLibp2pPrivateKey(o.privateKey)), peerId: o.peer.peerId });
  // A learner (the relay) writes its log without fsync: it never votes and never counts
  // towards a commit, so it can always fetch a lost suffix from the leader again.
  const learner = o.learners.includes(o.peer.peerId);
  const { storage, state, fresh } = await RaftStorage.open(raftStore, { durable: !learner });
  const driver = await RaftDriver.start({
    peer: o.peer,
    storage,
    state,
    fresh,
    replica,
    voters: o.voters,
    learners: o.learners,
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
    ...(o.electionTicks !== undefined ? { electionTicks: o.electionTicks } : {}),
    ...(o.heartbeatTicks !== undefined ? { heartbeatTicks: o.heartbeatTicks } : {}),
    ...(o.snapshotEvery !== undefined ? { snapshotEvery: o.snapshotEvery } : {}),
  });
  return {
    driver,
    replica,
    async stop() {
      await driver.stop();
      await replica.close();
      await raftStore.close();
      await receiptStore.close();
    },
  };
}
