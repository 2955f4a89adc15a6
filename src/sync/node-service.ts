// Node-only wiring of the sync service: documents and mirrored receipt logs in one LevelDB at
// <data-dir>/sync (the two use distinct key prefixes), or memory without a data dir.
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import type { HyperSyncPeer } from '../net/types.ts';
import type { ReceiptLog } from '../receipts/log.ts';
import { LevelStore } from '../store/level.ts';
import { MemoryStore } from '../store/memory.ts';
import type { Store } from '../store/types.ts';
import { policiesWith } from './policy.ts';
import { startSyncService, type SyncService } from './service.ts';
import type { EngineMember } from '../consensus/engine.ts';

/** `sameGroup` for the members of this peer's Raft group, if it runs one (read live: membership changes). */
export function raftGroup(engine: { members(): EngineMember[] } | undefined): { sameGroup?: (peerId: string) => boolean } {
  if (engine === undefined) return {};
  return { sameGroup: (peerId) => engine.members().some((m) => m.peerId === peerId) };
}

export interface NodeSyncOptions {
  peer: HyperSyncPeer;
  privateKey: PrivateKey;
  dataDir?: string | undefined;
  /** cluster.json `sync.policies`. */
  policies?: Record<string, string> | undefined;
  receiptLogs?: ReceiptLog[];
  /** Members of our own consensus group (their receipt logs are not mirrored). */
  sameGroup?: (peerId: string) => boolean;
  antiEntropyMs?: number;
  /** Binary session messages with peers that offer them (default true: Node peers speak the binary wire unless told `--wire json`). */
  binary?: boolean;
}

export async function startNodeSync(o: NodeSyncOptions): Promise<SyncService & { close(): Promise<void> }> {
  const store: Store = o.dataDir !== undefined ? await LevelStore.open(join(o.dataDir, 'sync')) : new MemoryStore();
  try {
    const service = await startSyncService({
      peer: o.peer,
      store,
      mirrorStore: store,
      signer: crypto.createSigner(seedFromLibp2pPrivateKey(o.privateKey)),
      policies: policiesWith(o.policies ?? {}),
      receiptLogs: o.receiptLogs ?? [],
      ...(o.sameGroup !== undefined ? { sameGroup: o.sameGroup } : {}),
      ...(o.antiEntropyMs !== undefined ? { antiEntropyMs: o.antiEntropyMs } : {}),
      binary: o.binary ?? true,
    });
    return Object.assign(service, {
      async close(): Promise<void> {
        await service.stop();
        await store.close();
      },
    });
  } catch (e) {
    await store.close();
    throw e;
  }
}
