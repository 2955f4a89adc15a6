// The web app: this tab becomes a HyperSync peer. It reads where to join from its URL
// (`?relay=<multiaddr>&cluster=<id>&key=<cluster key>#token=<join token>`, as `npm start`
// prints it), starts the same peer core the Node processes run, renders peers, transports,
// heartbeats and a bounded ICO log, and exposes `window.hypersync` for automation.
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
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
import type { Envelope, Json, PeerRole } from '../src/ico/types.ts';
import { parseJoinParams, type JoinParams } from './join-params.ts';
import { MAX_LOG_ENTRIES, MessageLog } from './message-log.ts';
import { byId, renderLog, renderPeers, renderRecipients, renderSelf, renderWebrtc, setBanner, setStatus, shortId, type SelfView } from './view.ts';
import { webrtcUsable } from './webrtc-probe.ts';
import { relayApi, type RelayApi } from './relay-api.ts';
import { renderGraph } from './panels/graph.ts';
import { refreshConsensus, renderTabGroup } from './panels/consensus.ts';
import { loadOperators } from './panels/operators.ts';
import { receiptsExplorer } from './panels/receipts.ts';
import { docsPanel, type DocsPanel } from './panels/docs.ts';
import { showError } from './panels/panel-state.ts';
import { tabRaft, type TabRaftApi } from './tab-raft.ts';

/**
 * What this tab is: a peer that signs and exchanges ICO messages and keeps a synced copy of
 * the cluster's documents (src/sync). It is not a Raft member: no vote and no copy of the Raft
 * log (`hypersync cluster status` lists the voters and the relay, the learner), so its HELLO
 * says only 'browser'.
 */
const TAB_ROLES: PeerRole[] = ['browser'];
const TAB_ROLE_TEXT = 'browser: signed ICO messages and a synced copy of the documents; not a Raft member (no vote, no Raft log)';

/** Without a session with any relay for this long, the page says the relay is unreachable. */
export const RELAY_GRACE_MS = 8_000;
/** How often the ICO message log is re-rendered at most (it changes many times a second). */
export const LOG_RENDER_MS = 250;
/** How often ages ("0.4 s ago") and relay status are recomputed without an event. */
const REFRESH_MS = 1_000;
/** Envelopes kept for `window.hypersync.received()` (HEARTBEATs are not kept). */
const MAX_RECEIVED = MAX_LOG_ENTRIES;
/** Peer events a starting tab keeps for its log until the page renders (a start sees a few dozen). */
export const MAX_EARLY_EVENTS = 1024;
/** How often the round trip to each established peer is measured. */
export const RTT_INTERVAL_MS = 5_000;
/** Peers pinged per round (one at a time); the rest show no RTT. */
export const MAX_RTT_PEERS = 16;
/** How often the consensus panel reads the relay. */
export const CONSENSUS_REFRESH_MS = 3_000;
/** Page subscriptions (`hypersync.on`, `hypersync.sync.on`) a tab keeps. */
const MAX_SUBSCRIPTIONS = 256;
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
  /** A Raft group of tabs over WebRTC, its log in IndexedDB (web/tab-raft.ts). */
  raft: TabRaftApi;
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
/** Page subscriptions (`hypersync.on`): attached to the peer, and again to each new one after working offline. */
const subscriptions = new Map<AnyHandler, { type: PeerEventType | '*'; off: (() => void) | null }>();
/** True while the person chose to work offline: the peer is stopped, documents stay writable. */
let offline = false;

function requirePeer(): HyperSyncPeer {
  if (peer === undefined) throw new Error('peer not started yet: await window.hypersync.ready');
  return peer;
}

function subscribe(type: PeerEventType | '*', handler: AnyHandler): () => void {
  if (subscriptions.size >= MAX_SUBSCRIPTIONS) throw new RangeError(`more than ${MAX_SUBSCRIPTIONS} subscriptions`);
  const entry = { type, off: peer !== undefined && !offline ? peer.on(type as '*', handler) : null };
  subscriptions.set(handler, entry);
  return () => {
    entry.off?.();
    subscriptions.delete(handler);
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
      if (syncHandlers.size >= MAX_SUBSCRIPTIONS) throw new RangeError(`more than ${MAX_SUBSCRIPTIONS} sync subscriptions`);
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
  raft: tabRaft({
    self: () => requirePeer().peerId,
    port: {
      send: (to, payload) => requirePeer().send(to, 'CONSENSUS', payload),
      onEnvelope: (handler) => subscribe('ico:in', (event) => {
        if (event.type === 'ico:in') handler(event.envelope);
      }),
    },
  }),
  stop: async () => {
    await window.hypersync.raft.leave();
    await sync?.stop();
    await peer?.stop();
  },
};

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

/** The page's view of whichever peer runs now (none while working offline). */
interface Live {
  peer(): HyperSyncPeer | undefined;
  peerId: string;
  cluster: string;
}

/** Renders the peer and its log; returns the event handler to attach to each peer started. */
function run(params: JoinParams, live: Live): (event: PeerEvent) => void {
  const startedAt = Date.now();
  const relayIds = new Set(params.relayIds);
  const rtts = new Map<string, number>();
  const relays = params.relays.map((addr, i): RelayTrack => ({ addr, peerId: params.relayIds[i]!, lastUp: 0, refusal: null }));
  const log = new MessageLog();
  const showHeartbeats = byId<HTMLInputElement>('show-heartbeats');
  const name = (id: string): string => (id === live.peerId ? 'this tab' : relayIds.has(id) ? `relay ${shortId(id)}` : shortId(id));

  let logDirty = true;
  const refresh = (): void => {
    const now = Date.now();
    const current = live.peer();
    const peers = current?.peers() ?? [];
    const views = relays.map((r) => relayView(r, peers.find((p) => p.peerId === r.peerId), startedAt, now));
    renderSelf({ peerId: live.peerId, cluster: live.cluster, role: TAB_ROLE_TEXT, relays: views });
    renderPeers(peers, relayIds, now);
    renderRecipients(peers, name);
    renderGraph(peers, relayIds);
    renderTransports(current);
    renderRtts(rtts, name);
    const list = params.relays.join(', ');
    if (current === undefined) {
      setStatus('connecting', 'working offline');
      setBanner('warning', null);
    } else if (views.some((v) => v.state === 'connected')) {
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

  const onEvent = (event: PeerEvent): void => {
    switch (event.type) {
      case 'ico:in':
        log.record('in', event.envelope, live.peerId, Date.now());
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
  };
  showHeartbeats.addEventListener('change', () => {
    logDirty = true;
    renderLogNow();
  });
  // Logs change many times a second under heartbeats and Raft traffic (a tab group's leader
  // sends ten heartbeats a second to each member): render them at most every LOG_RENDER_MS.
  // Once a frame was too often: on a loaded machine rebuilding the log 60 times a second
  // starved the tab's Raft ticks and delayed elections by hundreds of milliseconds.
  setInterval(renderLogNow, LOG_RENDER_MS);
  setInterval(refresh, REFRESH_MS);
  setInterval(() => renderTabGroup(window.hypersync.raft.status()), REFRESH_MS);
  refresh();
  wireSendForm(live);
  void measureRtts(live, rtts);
  return onEvent;
}

/** Connections by transport, e.g. "WebSocket 1 · WebRTC 3 · relayed 1". */
function renderTransports(current: HyperSyncPeer | undefined): void {
  const counts = new Map<string, number>();
  for (const c of current?.connections() ?? []) {
    const t = c.limited ? 'relayed' : c.transport;
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  byId('transports').textContent = counts.size === 0 ? 'no connection' : [...counts].map(([t, n]) => `${t} ${n}`).join(' · ');
}

function renderRtts(rtts: ReadonlyMap<string, number>, name: (id: string) => string): void {
  const node = byId('rtts');
  node.textContent = rtts.size === 0 ? 'measuring…' : [...rtts].map(([id, ms]) => `${name(id)} ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`).join(' · ');
}

/** Pings the established peers one at a time, every RTT_INTERVAL_MS, for as long as the tab runs. */
async function measureRtts(live: Live, rtts: Map<string, number>): Promise<void> {
  for (;;) {
    const current = live.peer();
    const up = (current?.peers() ?? []).filter((p) => p.state === 'established').slice(0, MAX_RTT_PEERS);
    for (const id of rtts.keys()) if (!up.some((p) => p.peerId === id)) rtts.delete(id);
    for (const p of up) {
      if (current === undefined) break;
      try {
        rtts.set(p.peerId, await current.ping(p.peerId));
      } catch {
        rtts.delete(p.peerId);
      }
    }
    await new Promise((r) => setTimeout(r, RTT_INTERVAL_MS));
  }
}

/** The offline indicator: offline when the browser has no network or the person chose to work offline. */
function renderOnline(): void {
  const on = navigator.onLine && !offline;
  const badge = byId('offline');
  badge.dataset['online'] = String(on);
  badge.textContent = on ? 'online' : offline ? 'working offline: edits are kept and sync when back' : 'no network: edits are kept and sync when back';
  badge.className = `badge ${on ? 'online' : 'offline'}`;
}

/**
 * The panel links move focus to their panel without touching the URL: the fragment carries
 * the join token and API credential, and a link that replaced it would break the next reload.
 */
function wireNav(): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[href^="#"]')) {
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      const target = document.getElementById(a.getAttribute('href')!.slice(1));
      if (target === null) return;
      target.tabIndex = -1;
      target.scrollIntoView({ block: 'start' });
      target.focus({ preventScroll: true });
    });
  }
}

function watchOnline(): void {
  window.addEventListener('online', renderOnline);
  window.addEventListener('offline', renderOnline);
  renderOnline();
}

/** The "Work offline" switch: stops the peer (GOODBYE to all) and keeps the documents writable; "Go online" starts it again with the same identity. */
function wireOfflineToggle(mode: { goOffline(): Promise<void>; goOnline(): Promise<void> }): void {
  const button = byId<HTMLButtonElement>('offline-toggle');
  button.disabled = false;
  button.onclick = () => {
    button.disabled = true;
    const going = offline ? mode.goOnline() : mode.goOffline();
    going.then(
      () => {
        button.textContent = offline ? 'Go online' : 'Work offline';
        button.setAttribute('aria-pressed', String(offline));
      },
      (e: unknown) => setBanner('error', `Could not ${offline ? 'go online' : 'work offline'}: ${e instanceof Error ? e.message : String(e)}`),
    ).finally(() => {
      button.disabled = false;
      renderOnline();
    });
  };
}

/** The panels that read the relay API: consensus (polled), operators and receipts. */
function startApiPanels(api: RelayApi): void {
  const receipts = receiptsExplorer(api);
  void loadOperators(api, (id) => void receipts.show(id));
  void receipts.refresh();
  const poll = async (): Promise<void> => {
    for (;;) {
      await refreshConsensus(api);
      await new Promise((r) => setTimeout(r, CONSENSUS_REFRESH_MS));
    }
  };
  if (api.available) void poll();
  else void refreshConsensus(api);
}

function wireSendForm(live: Live): void {
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
    const current = live.peer();
    if (current === undefined) {
      result.textContent = 'working offline: go online to send';
      result.className = 'bad';
      return;
    }
    const sent = to === '*' ? current.broadcast(type, payload) : current.send(to, type, payload);
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
  wireNav();
  let params: JoinParams;
  try {
    params = parseJoinParams(location.search, location.hash, Date.now());
  } catch (e) {
    setStatus('error', 'not joined');
    setBanner('error', e instanceof Error ? e.message : String(e));
    throw e;
  }
  byId('cluster').textContent = params.cluster;
  renderSelf({ peerId: '', cluster: params.cluster, role: TAB_ROLE_TEXT, relays: params.relays.map((addr, i) => ({ addr, peerId: params.relayIds[i]!, state: 'connecting', detail: 'starting' })) });
  renderWebrtc(null);
  watchOnline();
  startApiPanels(relayApi(location.origin, params.apiToken));
  const webrtc = await webrtcUsable();
  renderWebrtc(webrtc);
  let privateKey: PrivateKey;
  let store: IdbStore;
  let first: { peer: HyperSyncPeer; sync: SyncService };
  // The page's handler sees every event from the first dial on: a relay's HELLO can arrive while
  // the sync service is still opening, before `attach`. Until the page renders (after the first
  // start) events wait here, at most MAX_EARLY_EVENTS of them (the oldest go first).
  const early: PeerEvent[] = [];
  let onEvent = (event: PeerEvent): void => {
    early.push(event);
    if (early.length > MAX_EARLY_EVENTS) early.shift();
  };
  const start = async (): Promise<{ peer: HyperSyncPeer; sync: SyncService }> => {
    const started = await startPeer({
      cluster: params.cluster, roles: TAB_ROLES, relays: params.relays, allowlist: [], clusterPublicKey: params.clusterPublicKey, joinToken: params.joinToken,
      privateKey, helloState: () => sync?.summary() ?? null, webrtc, onEvent: (event) => onEvent(event),
    });
    try {
      // The document store outlives the peer: working offline stops the peer, not the store.
      const service = await startSyncService({ peer: started, store, signer: crypto.createSigner(seedFromLibp2pPrivateKey(privateKey)), policies: policiesWith() });
      return { peer: started, sync: service };
    } catch (e) {
      await started.stop();
      throw e;
    }
  };
  try {
    // The key is loaded here (not inside startPeer) so the document signer is the tab's identity.
    privateKey = await loadOrCreateKey();
    // One document database per identity, so a reloaded tab finds its own documents again.
    store = await IdbStore.open(`hypersync-docs-${peerIdFromPrivateKey(privateKey).toString()}`);
    first = await start();
  } catch (e) {
    setStatus('error', 'error');
    setBanner('error', `This tab could not start its peer: ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }
  const live: Live = { peer: () => (offline ? undefined : peer), peerId: first.peer.peerId, cluster: first.peer.cluster };
  const panel: DocsPanel = docsPanel(() => requireSync());
  const render = run(params, live);
  const attach = (next: { peer: HyperSyncPeer; sync: SyncService }): void => {
    peer = next.peer;
    sync = next.sync;
    next.sync.on((event) => {
      for (const { type, handler } of syncHandlers) if (type === '*' || type === event.type) handler(event);
      if (event.type === 'progress') panel.renderStatus();
      else if (event.type === 'done' || event.type === 'change' || event.type === 'conflict') panel.render().catch((e: unknown) => showError('docs-sync', e));
    });
    for (const [handler, entry] of subscriptions) entry.off = next.peer.on(entry.type as '*', handler);
  };
  attach(first);
  for (const event of early.splice(0)) render(event);
  onEvent = render;
  await panel.render();
  wireOfflineToggle({
    async goOffline() {
      offline = true;
      for (const entry of subscriptions.values()) entry.off?.();
      await sync?.stop();
      await peer?.stop();
    },
    async goOnline() {
      attach(await start());
      offline = false;
    },
  });
}

boot().then(resolveReady, rejectReady);
