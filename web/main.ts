// The web app: this tab becomes a HyperSync peer. It reads where to join from its URL
// (`?relay=<multiaddr>&cluster=<id>#token=<join token>`, as `npm start` prints it), starts
// the same peer core the Node processes run, renders peers, transports, heartbeats and a
// bounded ICO log, and exposes `window.hypersync` for automation (Playwright, puppeteer).
import { startPeer } from '../src/net/index.ts';
import { decodeJoinTokenParam } from '../src/ico/admission.ts';
import { base64urlDecode } from '../src/crypto/index.ts';
import type { ConnectionInfo, HyperSyncPeer, PeerEvent, PeerEventOf, PeerEventType, PeerInfo } from '../src/net/types.ts';
import type { Envelope, Json } from '../src/ico/types.ts';

/** Log rows kept on the page; older ones are dropped. */
const MAX_LOG_ROWS = 200;

interface HyperSyncApi {
  readonly peerId: string;
  readonly ready: Promise<void>;
  peers(): PeerInfo[];
  connections(): ConnectionInfo[];
  send(to: string, type: 'STATE_SYNC' | 'CONSENSUS', payload: { [key: string]: Json }): Promise<void>;
  broadcast(type: 'STATE_SYNC' | 'CONSENSUS', payload: { [key: string]: Json }): Promise<void>;
  on(type: PeerEventType | '*', handler: (event: PeerEvent) => void): () => void;
  /** Envelopes received so far (bounded like the log), for tests that arrive late. */
  received(): Envelope[];
  stop(): Promise<void>;
}

declare global {
  interface Window {
    hypersync: HyperSyncApi;
  }
}

function el<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`missing element ${selector}`);
  return found;
}

function short(peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-6)}` : peerId;
}

function showError(message: string): void {
  const box = el<HTMLElement>('#error');
  box.textContent = message;
  box.hidden = false;
  const status = el<HTMLElement>('#status');
  status.textContent = 'error';
  status.className = 'badge bad';
}

function renderPeers(peers: PeerInfo[]): void {
  const body = el<HTMLTableSectionElement>('#peers tbody');
  body.replaceChildren(
    ...peers.map((p) => {
      const row = document.createElement('tr');
      row.dataset['peerId'] = p.peerId;
      const ago = p.lastSeen > 0 ? `${Math.max(0, Math.round((Date.now() - p.lastSeen) / 100) / 10)} s ago` : '—';
      const cells: Array<[string, string]> = [
        [p.peerId, 'mono'],
        [p.roles.join(', '), ''],
        [p.transport, `pill ${p.transport}`],
        [p.state, `pill ${p.state}`],
        [p.state === 'established' ? `up, last beat ${ago}` : p.state === 'down' ? `missed beats (last ${ago})` : '—', ''],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        if (cls.startsWith('pill')) {
          const span = document.createElement('span');
          span.className = cls;
          span.textContent = text;
          td.append(span);
        } else {
          td.className = cls;
          td.textContent = text;
        }
        row.append(td);
      }
      return row;
    }),
  );
  el<HTMLElement>('#peer-count').textContent = `(${peers.filter((p) => p.state === 'established').length} connected)`;
}

function appendLog(direction: 'in' | 'out', envelope: Envelope, peer: string): void {
  const body = el<HTMLTableSectionElement>('#log tbody');
  const row = document.createElement('tr');
  for (const text of [envelope.timestamp.slice(11, 23), direction === 'in' ? '←' : '→', envelope.type, short(peer), String(envelope.seq)]) {
    const td = document.createElement('td');
    td.textContent = text;
    row.append(td);
  }
  body.prepend(row);
  while (body.rows.length > MAX_LOG_ROWS) body.deleteRow(body.rows.length - 1);
}

interface JoinParams {
  relays: string[];
  cluster: string;
  /** base64url cluster public key: verifies the join tokens other peers present. */
  clusterKey: string | null;
  tokenParam: string | null;
}

function readJoinParams(): JoinParams {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  return { relays: query.getAll('relay'), cluster: query.get('cluster') ?? '', clusterKey: query.get('key'), tokenParam: fragment.get('token') };
}

async function boot(): Promise<HyperSyncPeer> {
  const params = readJoinParams();
  if (params.relays.length === 0 || params.cluster === '' || params.tokenParam === null || params.clusterKey === null) {
    throw new Error(
      'This page needs to know where to join: a relay address, a cluster id and key, and a join token.\n' +
        'Run `npm start` in the project and open the URL it prints (it looks like\n' +
        'http://127.0.0.1:9092/?relay=/ip4/127.0.0.1/tcp/…&cluster=…&key=…#token=…).',
    );
  }
  const joinToken = decodeJoinTokenParam(params.tokenParam);
  el<HTMLElement>('#cluster').textContent = params.cluster;
  el<HTMLElement>('#relay').textContent = params.relays.join('\n');
  let clusterPublicKey: Uint8Array;
  try {
    clusterPublicKey = base64urlDecode(params.clusterKey);
    if (clusterPublicKey.length !== 32) throw new Error('length');
  } catch {
    throw new Error('The cluster key in the URL (key=…) is not a 32-byte base64url key. Open the URL `npm start` prints.');
  }
  return startPeer({ cluster: params.cluster, roles: ['browser', 'learner'], relays: params.relays, allowlist: [], clusterPublicKey, joinToken });
}

const received: Envelope[] = [];
let resolveReady: () => void = () => undefined;
let rejectReady: (e: unknown) => void = () => undefined;
const ready = new Promise<void>((resolve, reject) => {
  resolveReady = resolve;
  rejectReady = reject;
});
let peer: HyperSyncPeer | undefined;

function requirePeer(): HyperSyncPeer {
  if (peer === undefined) throw new Error('peer not started yet: await window.hypersync.ready');
  return peer;
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
  on: (type, handler) => requirePeer().on(type as '*', handler),
  received: () => [...received],
  stop: async () => {
    await peer?.stop();
  },
};

boot()
  .then((started) => {
    peer = started;
    el<HTMLElement>('#peer-id').textContent = started.peerId;
    const status = el<HTMLElement>('#status');
    status.textContent = 'online';
    status.className = 'badge ok';
    started.on('*', (event: PeerEvent) => {
      if (event.type === 'ico:in') {
        received.push(event.envelope);
        if (received.length > MAX_LOG_ROWS) received.shift();
        appendLog('in', event.envelope, event.envelope.sender);
      } else if (event.type === 'ico:out') {
        appendLog('out', event.envelope, event.to);
      }
    });
    const refresh = (): void => renderPeers(started.peers());
    for (const type of ['peer:established', 'peer:down', 'peer:up', 'peer:goodbye', 'peer:rejected', 'peer:transport'] as const) {
      started.on(type, refresh as (e: PeerEventOf<typeof type>) => void);
    }
    setInterval(refresh, 1000);
    refresh();
    resolveReady();
  })
  .catch((error: unknown) => {
    showError(error instanceof Error ? error.message : String(error));
    rejectReady(error);
  });
// An unhandled rejection of `ready` would be noise when nobody awaits it.
ready.catch(() => undefined);
