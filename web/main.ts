// The web app: this tab becomes a HyperSync peer. It reads where to join from its URL
// (`?relay=<multiaddr>&cluster=<id>&key=<cluster key>#token=<join token>`, as `npm start`
// prints it), starts the same peer core the Node processes run, renders peers, transports,
// heartbeats and a bounded ICO log, and exposes `window.hypersync` for automation.
import { startPeer } from '../src/net/index.ts';
import * as verifier from '../src/verify/index.ts';
import { loadOrCreateKey } from '#net-platform';
import { crypto, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { IdbStore } from '../src/store/idb.ts';
import type { DocEntry } from '../src/sync/docstore.ts';
import type { SyncReport } from '../src/sync/engine.ts';
import { policiesWith } from '../src/sync/policy.ts';
import { startSyncService, type SyncService, type SyncServiceEvent } from '../src/sync/service.ts';
import type { SyncMode } from '../src/sync/wire.ts';
import type { ConnectionInfo, HyperSyncPeer, PeerEvent, PeerEventType, PeerInfo } from '../src/net/types.ts';
import type { Envelope, Json } from '../src/ico/types.ts';
import { parseJoinParams, type JoinParams } from './join-params.ts';
import { MAX_LOG_ENTRIES, MessageLog } from './message-log.ts';
import { byId, renderLog, renderPeers, renderRecipients, renderSelf, setBanner, setStatus, shortId, type SelfView } from './view.ts';

/** Without a session with any relay for this long, the page says the relay is unreachable. */
export const RELAY_GRACE_MS = 8_000;
/** How often ages ("0.4 s ago") and relay status are recomputed without an event. */
const REFRESH_MS = 1_000;
/** Envelopes kept for `window.hypersync.received()` (HEARTBEATs are not kept). */
const MAX_RECEIVED = MAX_LOG_ENTRIES;
/** Subscriptions made before the peer exists, attached when it starts. */
const MAX_EARLY_HANDLERS = 256;
/** Sync events a page may subscribe to through `hypersync.sync.on`. */
type SyncEventType = SyncServiceEvent['type'];
type SyncHandler = (event: SyncServiceEvent) => void;

type SendType = 'STATE_SYNC' | 'CONSENSUS';
type Payload = { [key: string]: Json };
type AnyHandler = (event: PeerEvent) => void;

export interface HyperSyncApi {
  /** '' until `ready` resolves. */
  readonly peerId: string;
  /** Resolves once the peer runs (the relay may still be dialing); rejects on bad URL parameters. */
  readonly ready: Promise<void>;
  peers(): PeerInfo[];
  connections(): ConnectionInfo[];
  send(to: string, type: SendType, payload: Payload): Promise<void>;
  broadcast(type: SendType, payload: Payload): Promise<void>;
  /** Subscribes to a peer event ('*' for all); allowed before `ready`. Returns the unsubscribe function. */
  on(type: PeerEventType | '*', handler: AnyHandler): () => void;
  /** STATE_SYNC/CONSENSUS/HELLO/GOODBYE envelopes received so far (last 200), for late observers. */
  received(): Envelope[];
  /** The standalone verifier (`hypersync/verify`), as this tab uses it: receipts, chains, proofs, certificates. */
  readonly verify: typeof verifier;
  /** How this tab signs and verifies: `webcrypto` (native Ed25519, detected at load) or `noble`. */
  readonly crypto: typeof verifier.cryptoBackend;
  /** The synced document store of this tab (IndexedDB): works offline, syncs when peers are reachable. */
  docs: {
    put(key: string, value: Json): Promise<{ key: string; op: string; origin: string; seq: number }>;
    get(key: string): Promise<DocEntry | null>;
    delete(key: string): Promise<{ key: string; op: string; origin: string; seq: number }>;
    list(options?: { prefix?: string; after?: string; limit?: number }): Promise<DocEntry[]>;
  };
  sync: {
    /** Syncs now with one peer, or every established one. */
    run(peerId?: string, options?: { mode?: SyncMode }): Promise<SyncReport[]>;
    status(): ReturnType<SyncService['status']>;
    /** 'progress' | 'done' | 'change' | 'conflict' | 'rejected' (or '*'); allowed before `ready`. */
    on(type: SyncEventType | '*', handler: SyncHandler): () => void;
  };
  conflicts: {
    list(): Promise<DocEntry[]>;
    /** A signed resolution record: a new value, or one of the concurrent versions by id. */
    resolve(key: string, resolution: { value: Json } | { version: string }): Promise<{ key: string; value: Json }>;
  };
  stop(): Promise<void>;
}

declare global {
  interface Window {
    hypersync: HyperSyncApi;
  }
}

const { promise: ready, resolve: resolveReady, reject: rejectReady } = Promise.withResolvers<void>();
// Nobody may await `ready` (a person opening the page): an unhandled rejection is just noise.
ready.catch(() => undefined);

let peer: HyperSyncPeer | undefined;
let sync: SyncService | undefined;
const syncHandlers = new Set<{ type: SyncEventType | '*'; handler: SyncHandler }>();
const received: Envelope[] = [];
const early = new Map<AnyHandler, { type: PeerEventType | '*'; off: (() => void) | null }>();

function requirePeer(): HyperSyncPeer {
  if (peer === undefined) throw new Error('peer not started yet: await window.hypersync.ready');
  return peer;
}

function subscribe(type: PeerEventType | '*', handler: AnyHandler): () => void {
  if (peer !== undefined) return peer.on(type as '*', handler);
  if (early.size >= MAX_EARLY_HANDLERS) throw new RangeError(`more than ${MAX_EARLY_HANDLERS} subscriptions before the peer started`);
  const entry = { type, off: null as (() => void) | null };
  early.set(handler, entry);
  return () => {
    entry.off?.();
    early.delete(handler);
  };
}

function requireSync(): SyncService {
  if (sync === undefined) throw new Error('sync not started yet: await window.hypersync.ready');
  return sync;
}

function recordView(r: { key: string; op: string; origin: string; seq: number }): { key: string; op: string; origin: string; seq: number } {
  return { key: r.key, op: r.op, origin: r.origin, seq: r.seq };
}

window.hypersync = {
  get peerId(): string {
    return peer?.peerId ?? '';
  },
  ready,
  peers: () => peer?.peers() ?? [],
  connections: () => peer?.connections() ?? [],
  send: (to, type, payload) => requirePeer().send(to, type, payload),
  broadcast: (type, payload) => requirePeer().broadcast(type, payload),
  on: subscribe,
  received: () => [...received],
  verify: verifier,
  crypto: verifier.cryptoBackend,
  docs: {
    put: async (key, value) => recordView(await requireSync().docs.put(key, value)),
    get: async (key) => (await requireSync().docs.get(key)) ?? null,
    delete: async (key) => recordView(await requireSync().docs.delete(key)),
    list: (options = {}) => requireSync().docs.list(options),
  },
  sync: {
    run: (peerId, options = {}) => requireSync().sync(peerId, options),
    status: () => requireSync().status(),
    on: (type, handler) => {
      if (syncHandlers.size >= MAX_EARLY_HANDLERS) throw new RangeError(`more than ${MAX_EARLY_HANDLERS} sync subscriptions`);
      const entry = { type, handler };
      syncHandlers.add(entry);
      return () => syncHandlers.delete(entry);
    },
  },
  conflicts: {
    list: () => requireSync().docs.conflicts(),
    resolve: async (key, resolution) => {
      const r = await requireSync().resolve(key, resolution);
      return { key: r.key, value: r.value };
    },
  },
  stop: async () => {
    await sync?.stop();
    await peer?.stop();
  },
};

/** The documents card: how many versions, the last sync, open conflicts. */
function renderDocs(service: SyncService): void {
  const status = service.status();
  byId('docs-count').textContent = `(${status.summary.n} versions)`;
  const last = status.reports.at(-1);
  const running = status.sessions.length;
  byId('docs-sync').textContent = running > 0
    ? `syncing with ${running} peer(s)…`
    : last === undefined ? 'not synced yet' : `last sync with ${shortId(last.peer)}: ${last.mode}, ${last.received} received, ${last.sent} sent, ${last.equal ? 'in sync' : 'not in sync'}`;
  const conflicts = status.conflicts;
  const el = byId('docs-conflicts');
  el.textContent = conflicts.length === 0 ? 'no open conflicts' : `${conflicts.length} open conflict(s): ${conflicts.slice(0, 5).join(', ')} (resolve with hypersync.conflicts.resolve or \`hypersync conflicts resolve\`)`;
  el.className = conflicts.length === 0 ? 'muted' : 'bad';
}

/** What the tab knows about each relay it was told to use. */
interface RelayTrack {
  addr: string;
  peerId: string;
  /** Last time a session with it was established (0: never). */
  lastUp: number;
  /** Why it sent us away, if it did (GOODBYE other than a shutdown). */
  refusal: string | null;
}

function relayView(track: RelayTrack, info: PeerInfo | undefined, startedAt: number, now: number): SelfView['relays'][number] {
  const base = { addr: track.addr, peerId: track.peerId };
  if (info?.state === 'established') return { ...base, state: 'connected', detail: `ICO session up over ${info.transport}` };
  if (track.refusal !== null) return { ...base, state: 'rejected', detail: track.refusal };
  const since = Math.max(startedAt, track.lastUp);
  if (now - since > RELAY_GRACE_MS) return { ...base, state: 'unreachable', detail: `no session for ${Math.round((now - since) / 1000)} s; still retrying` };
  return { ...base, state: 'connecting', detail: 'dialing' };
}

function run(params: JoinParams, started: HyperSyncPeer): void {
  const startedAt = Date.now();
  const relayIds = new Set(params.relayIds);
  const relays = params.relays.map((addr, i): RelayTrack => ({ addr, peerId: params.relayIds[i]!, lastUp: 0, refusal: null }));
  const log = new MessageLog();
  const showHeartbeats = byId<HTMLInputElement>('show-heartbeats');
  const name = (id: string): string => (id === started.peerId ? 'this tab' : relayIds.has(id) ? `relay ${shortId(id)}` : shortId(id));

  let logDirty = true;
  const refresh = (): void => {
    const now = Date.now();
    const peers = started.peers();
    const views = relays.map((r) => relayView(r, peers.find((p) => p.peerId === r.peerId), startedAt, now));
    renderSelf({ peerId: started.peerId, cluster: started.cluster, roles: ['browser', 'learner'], relays: views });
    renderPeers(peers, relayIds, now);
    renderRecipients(peers, name);
    const list = params.relays.join(', ');
    if (views.some((v) => v.state === 'connected')) {
      setStatus('online', 'online');
      setBanner('warning', null);
    } else if (views.some((v) => v.state === 'rejected')) {
      setStatus('error', 'refused');
      const why = views.find((v) => v.state === 'rejected')?.detail ?? '';
      setBanner('error', `The relay refused this tab: ${why}\nThe join token in the URL may be stale: open the URL that \`npm start\` prints now.`);
    } else if (views.every((v) => v.state === 'unreachable')) {
      setStatus('error', 'relay unreachable');
      setBanner('warning', `Cannot reach the relay at ${list} (still retrying with backoff).\nIs the devnet running? Start it with \`npm start\` in the project folder and open the URL it prints.`);
    } else {
      setStatus('connecting', 'connecting…');
    }
  };
  const renderLogNow = (): void => {
    if (!logDirty) return;
    logDirty = false;
    renderLog(log.entries(showHeartbeats.checked), log.totals(), name);
  };

  started.on('*', (event: PeerEvent) => {
    switch (event.type) {
      case 'ico:in':
        log.record('in', event.envelope, started.peerId, Date.now());
        if (event.envelope.type !== 'HEARTBEAT') {
          received.push(event.envelope);
          if (received.length > MAX_RECEIVED) received.shift();
        }
        logDirty = true;
        return;
      case 'ico:out':
        log.record('out', event.envelope, event.to, Date.now());
        logDirty = true;
        return;
      case 'peer:established': {
        const track = relays.find((r) => r.peerId === event.peer.peerId);
        if (track !== undefined) {
          track.lastUp = Date.now();
          track.refusal = null;
        }
        break;
      }
      case 'peer:goodbye': {
        const track = relays.find((r) => r.peerId === event.peerId);
        if (track !== undefined) {
          if (event.code === 'shutdown') track.lastUp = Date.now();
          else track.refusal = `${event.code}: ${event.reason}`;
        }
        break;
      }
      default:
        break;
    }
    refresh();
  });
  showHeartbeats.addEventListener('change', () => {
    logDirty = true;
    renderLogNow();
  });
  // Logs change many times a second under heartbeats: render them at most once a frame.
  const frame = (): void => {
    renderLogNow();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  setInterval(refresh, REFRESH_MS);
  refresh();
  wireSendForm(started);
}

function wireSendForm(started: HyperSyncPeer): void {
  const form = byId<HTMLFormElement>('send-form');
  const result = byId<HTMLElement>('send-result');
  byId<HTMLButtonElement>('send-button').disabled = false;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = byId<HTMLSelectElement>('send-to').value;
    const type = byId<HTMLSelectElement>('send-type').value as SendType;
    let payload: Payload;
    try {
      const parsed: unknown = JSON.parse(byId<HTMLInputElement>('send-payload').value);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the payload must be a JSON object');
      payload = parsed as Payload;
    } catch (e) {
      result.textContent = e instanceof Error ? e.message : String(e);
      result.className = 'bad';
      return;
    }
    result.textContent = 'sending…';
    result.className = 'muted';
    const sent = to === '*' ? started.broadcast(type, payload) : started.send(to, type, payload);
    sent.then(
      () => {
        result.textContent = `sent ${type} to ${to === '*' ? 'all peers' : shortId(to)}`;
        result.className = 'ok';
      },
      (e: unknown) => {
        result.textContent = e instanceof Error ? e.message : String(e);
        result.className = 'bad';
      },
    );
  });
}

async function boot(): Promise<void> {
  let params: JoinParams;
  try {
    params = parseJoinParams(location.search, location.hash, Date.now());
  } catch (e) {
    setStatus('error', 'not joined');
    setBanner('error', e instanceof Error ? e.message : String(e));
    throw e;
  }
  byId('cluster').textContent = params.cluster;
  renderSelf({ peerId: '', cluster: params.cluster, roles: ['browser', 'learner'], relays: params.relays.map((addr, i) => ({ addr, peerId: params.relayIds[i]!, state: 'connecting', detail: 'starting' })) });
  let started: HyperSyncPeer;
  try {
    // The key is loaded here (not inside startPeer) so the document signer is the tab's identity.
    const privateKey = await loadOrCreateKey();
    started = await startPeer({
      cluster: params.cluster, roles: ['browser', 'learner'], relays: params.relays, allowlist: [], clusterPublicKey: params.clusterPublicKey, joinToken: params.joinToken,
      privateKey, helloState: () => sync?.summary() ?? null,
    });
    // One document database per identity, so a reloaded tab finds its own documents again.
    sync = await startSyncService({ peer: started, store: await IdbStore.open(`hypersync-docs-${started.peerId}`), signer: crypto.createSigner(seedFromLibp2pPrivateKey(privateKey)), policies: policiesWith() });
    const service = sync;
    service.on((event) => {
      for (const { type, handler } of syncHandlers) if (type === '*' || type === event.type) handler(event);
      if (event.type === 'done' || event.type === 'change' || event.type === 'conflict') renderDocs(service);
    });
    renderDocs(service);
  } catch (e) {
    setStatus('error', 'error');
    setBanner('error', `This tab could not start its peer: ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }
  peer = started;
  for (const [handler, entry] of early) entry.off = started.on(entry.type as '*', handler);
  run(params, started);
}

boot().then(resolveReady, rejectReady);
