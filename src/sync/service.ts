// The sync service of a running peer (Node or browser): the DocStore and the SyncEngine on
// the peer's public API. STATE_SYNC envelopes travel on the direct ICO stream (sessions) and
// on the cluster's gossipsub topic (live writes). Phases: discovery is the peer's (relay and
// gossip); the HELLO carries our state summary, and a new session with a peer whose summary
// differs starts at establishment (the smaller PeerId starts it; the other follows after
// FOLLOW_UP_MS if nothing started); anti-entropy syncs with one random peer every
// `antiEntropyMs`; a rejected record or message scores its sender down through peer.report.
import type { HyperSyncPeer, PeerEventOf } from '../net/types.ts';
import type { JsonObject } from '../ico/types.ts';
import type { Json } from '../ico/types.ts';
import type { ReceiptLog } from '../receipts/log.ts';
import type { Store } from '../store/types.ts';
import type { Ed25519Signer } from '../crypto/index.ts';
import { DocStore, type DocChange, type DocEntry } from './docstore.ts';
import { SyncEngine, type SyncEvent, type SyncProgress, type SyncReport } from './engine.ts';
import { NotInConflictError, SyncError } from './errors.ts';
import { ConflictPolicies } from './policy.ts';
import type { DocRecord } from './record.ts';
import { ReceiptMirror } from './receipt-mirror.ts';
import { SYNC_BINARY_VERSION } from './binary.ts';
import { encodeRoot, rootsEqual, type RootSummary, type SyncMode } from './wire.ts';

/** Default period of anti-entropy (one random established peer per period). */
export const DEFAULT_ANTI_ENTROPY_MS = 30_000;
/** The larger PeerId starts the session itself if none started this long after HELLO. */
export const FOLLOW_UP_MS = 1_500;
/** Finished sync reports kept for status(). */
export const MAX_REPORTS = 32;
const TICK_MS = 1_000;

export interface SyncServiceOptions {
  peer: HyperSyncPeer;
  /** Where documents live (LevelDB on Node, IndexedDB in a tab, memory in tests). */
  store: Store;
  /** Where mirrored receipt logs live (may be the same kind of store, not the same instance). */
  mirrorStore?: Store;
  signer: Ed25519Signer;
  policies?: ConflictPolicies;
  /** This peer's own receipt logs, served to peers. */
  receiptLogs?: ReceiptLog[];
  /** Members of our own consensus group: receipt logs are not mirrored among them (ReceiptMirrorOptions). */
  sameGroup?: (peerId: string) => boolean;
  antiEntropyMs?: number;
  /** Sync at connection establishment (default true). */
  syncOnConnect?: boolean;
  /**
   * Offer the binary session messages (sync-bin/1) in our HELLO summary and use them with
   * peers that offer them too. Only for a peer on the binary ICO wire (default false: the
   * JSON reference form, what browsers speak).
   */
  binary?: boolean;
}

/** What our HELLO carries; `bin` (SYNC_BINARY_VERSION) too when we read and send binary session messages. */
export interface SyncSummary extends JsonObject {
  sync: number;
  n: number;
  h: string;
}

export interface SyncMetrics {
  sessions: number;
  sessionsFailed: number;
  recordsSent: number;
  recordsReceived: number;
  bytesOut: number;
  bytesIn: number;
  rejected: number;
  docs: number;
  conflicts: number;
  mirroredLogs: number;
}

export type SyncServiceEvent =
  | SyncEvent
  | { type: 'change'; change: DocChange }
  | { type: 'conflict'; keys: string[] };

export interface SyncService {
  readonly docs: DocStore;
  readonly engine: SyncEngine;
  readonly mirror: ReceiptMirror | undefined;
  /** What our HELLO carries. */
  summary(): SyncSummary;
  /** Syncs with one peer, or with every established peer. */
  sync(peer?: string, o?: { mode?: SyncMode }): Promise<SyncReport[]>;
  resolve(key: string, resolution: { value: Json } | { version: string }): Promise<DocRecord>;
  status(): { summary: SyncSummary; peers: string[]; sessions: SyncProgress[]; reports: SyncReport[]; conflicts: string[] };
  metrics(): SyncMetrics;
  on(handler: (e: SyncServiceEvent) => void): () => void;
  stop(): Promise<void>;
}

export async function startSyncService(o: SyncServiceOptions): Promise<SyncService> {
  const { peer } = o;
  const docs = await DocStore.open({ store: o.store, self: peer.peerId, signer: o.signer, ...(o.policies ? { policies: o.policies } : {}) });
  const mirror = o.mirrorStore !== undefined ? await ReceiptMirror.open(o.mirrorStore, o.receiptLogs ?? [], o.sameGroup !== undefined ? { sameGroup: o.sameGroup } : {}) : undefined;
  const engine = new SyncEngine({
    docs,
    ...(mirror ? { receipts: mirror } : {}),
    transport: {
      send: (to, payload) => peer.send(to, 'STATE_SYNC', payload),
      broadcast: async (payload) => {
        try {
          await peer.broadcast('STATE_SYNC', payload);
        } catch (e) {
          // Nobody subscribed yet: anti-entropy will carry the write.
          if ((e as { code?: string }).code !== 'NET_NO_SUBSCRIBERS') throw e;
        }
      },
      // Binary session messages only to a peer whose HELLO summary offers them too.
      binary: (to) => o.binary === true && peer.peers().find((p) => p.peerId === to)?.sync?.['bin'] === SYNC_BINARY_VERSION,
    },
  });
  const handlers = new Set<(e: SyncServiceEvent) => void>();
  const emit = (e: SyncServiceEvent): void => {
    for (const h of handlers) h(e);
  };
  const reports: SyncReport[] = [];
  const m = { sessions: 0, sessionsFailed: 0, recordsSent: 0, recordsReceived: 0, bytesOut: 0, bytesIn: 0, rejected: 0 };
  const lastSession = new Map<string, number>();
  engine.on((e) => {
    if (e.type === 'rejected') {
      m.rejected++;
      peer.report(e.peer, e.code, e.reason);
    } else if (e.type === 'progress') {
      lastSession.set(e.progress.peer, Date.now());
      if (e.progress.phase === 'done' || e.progress.phase === 'failed') {
        m.sessions++;
        if (e.progress.phase === 'failed') m.sessionsFailed++;
        m.recordsSent += e.progress.sent;
        m.recordsReceived += e.progress.received;
        m.bytesOut += e.progress.bytesOut;
        m.bytesIn += e.progress.bytesIn;
      }
    } else if (e.type === 'done') {
      reports.push(e.report);
      if (reports.length > MAX_REPORTS) reports.shift();
    }
    emit(e);
  });
  docs.onChange((change) => {
    emit({ type: 'change', change });
    const conflicted = change.keys.filter((k) => docs.conflictKeys().includes(k));
    if (conflicted.length > 0) emit({ type: 'conflict', keys: conflicted });
  });

  const summary = (): SyncSummary => {
    const r = encodeRoot(docs.items.fingerprint(0, 0));
    return { sync: 1, n: r.n, h: r.h, ...(o.binary === true ? { bin: SYNC_BINARY_VERSION } : {}) };
  };
  const remoteSummary = (peerId: string): RootSummary | null => {
    const s = peer.peers().find((p) => p.peerId === peerId)?.sync;
    if (s === undefined || typeof s['n'] !== 'number' || typeof s['h'] !== 'string') return null;
    return { n: s['n'], h: s['h'] };
  };
  const established = (): string[] => peer.peers().filter((p) => p.state === 'established').map((p) => p.peerId);

  const syncWith = (peerId: string, mode?: SyncMode): Promise<SyncReport> => {
    lastSession.set(peerId, Date.now());
    return engine.sync(peerId, mode ? { mode } : {});
  };
  const background = (peerId: string): void => {
    void syncWith(peerId).catch(() => undefined);
  };

  const offs: Array<() => void> = [];
  offs.push(peer.on('ico:in', (e) => {
    if (e.envelope.type !== 'STATE_SYNC' || e.envelope.sender === peer.peerId) return;
    void engine.receive(e.envelope.sender, e.envelope.payload, e.bytes);
  }));
  if (o.syncOnConnect !== false) {
    offs.push(peer.on('peer:established', (e: PeerEventOf<'peer:established'>) => {
      const remote = e.peer.peerId;
      const theirs = remoteSummary(remote);
      if (theirs !== null && rootsEqual(theirs, summary())) return;
      const at = Date.now();
      if (peer.peerId < remote) {
        background(remote);
        return;
      }
      setTimeout(() => {
        if ((lastSession.get(remote) ?? 0) < at && established().includes(remote)) background(remote);
      }, FOLLOW_UP_MS);
    }));
  }
  offs.push(peer.on('peer:down', (e) => engine.peerGone(e.peerId)));
  offs.push(peer.on('peer:goodbye', (e) => engine.peerGone(e.peerId)));
  const tick = setInterval(() => engine.tick(Date.now()), TICK_MS);
  const antiEntropyMs = o.antiEntropyMs ?? DEFAULT_ANTI_ENTROPY_MS;
  const antiEntropy = setInterval(() => {
    const peers = established();
    if (peers.length === 0) return;
    background(peers[Math.floor(Math.random() * peers.length)] as string);
  }, antiEntropyMs);
  (tick as { unref?: () => void }).unref?.();
  (antiEntropy as { unref?: () => void }).unref?.();

  return {
    docs,
    engine,
    mirror,
    summary,
    async sync(peerId, opts = {}) {
      const targets = peerId !== undefined ? [peerId] : established();
      return Promise.all(targets.map((t) => syncWith(t, opts.mode)));
    },
    async resolve(key, resolution) {
      const entry: DocEntry | undefined = await docs.get(key);
      if (entry === undefined || !entry.conflict) throw new NotInConflictError(`${key} has no open conflict`);
      if ('version' in resolution) {
        const chosen = entry.versions.find((v) => v.id === resolution.version);
        if (chosen === undefined) throw new SyncError('SYNC_NOT_FOUND', `${key} has no version ${resolution.version}`);
        return docs.resolve(key, chosen.value);
      }
      return docs.resolve(key, resolution.value);
    },
    status() {
      return { summary: summary(), peers: established(), sessions: engine.sessions(), reports: [...reports], conflicts: docs.conflictKeys() };
    },
    metrics() {
      return { ...m, docs: docs.size, conflicts: docs.conflictKeys().length, mirroredLogs: mirror?.heads().length ?? 0 };
    },
    on(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async stop() {
      clearInterval(tick);
      clearInterval(antiEntropy);
      for (const off of offs) off();
      engine.close();
    },
  };
}
