// e2e stack: a real relay (in this process) and the Vite dev server of the web app, both on
// loopback, plus a cluster key and a wildcard join token for the pages. Pages join with the
// same URL shape `npm start` prints; `joinUrl` builds deliberately wrong ones too.
import { createServer, type ViteDevServer } from 'vite';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { base64urlEncode, crypto, peerIdFromPublicKeyBytes, type Ed25519Signer } from '../src/crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam } from '../src/ico/admission.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import type { Envelope } from '../src/ico/types.ts';
import { relayApiProxy } from '../web/api-proxy.ts';
import type { ConnectionInfo, PeerInfo } from '../src/net/types.ts';
import type { BrowserContext, Page } from 'playwright-core';
// The in-process relay's log goes to a file, not the test reporter.
import '../test/harness/test-logs.ts';

export const ROOT = join(import.meta.dirname, '..');
export const CLUSTER = 'e2e';

/** Bounds for hooks and tests, so a stuck browser fails the run instead of hanging it. */
export const HOOK_TIMEOUT_MS = 90_000;
export const TEST_TIMEOUT_MS = 60_000;

export interface Web {
  vite: ViteDevServer;
  /** The app's address without join parameters, e.g. http://127.0.0.1:41234/ */
  base: string;
}

/** Serves web/ with its own Vite config on 127.0.0.1 and a free port; `api` is the relay API the page's /api/v1/ forwards to. */
export async function startWeb(opts: { api?: string } = {}): Promise<Web> {
  const proxy = opts.api !== undefined ? relayApiProxy(opts.api) : undefined;
  const vite = await createServer({ configFile: join(ROOT, 'web', 'vite.config.ts'), server: { host: '127.0.0.1', port: 0, strictPort: false, ...(proxy !== undefined ? { proxy } : {}) }, logLevel: 'error' });
  try {
    await vite.listen();
  } catch (e) {
    await vite.close();
    throw e;
  }
  const base = vite.resolvedUrls?.local[0];
  if (base === undefined) {
    await vite.close();
    throw new Error('vite did not report a URL');
  }
  return { vite, base };
}

export interface JoinUrlParts {
  relays: string[];
  cluster?: string;
  clusterSigner: Ed25519Signer;
  /** Whom the token admits: '*' (default) or one PeerId. */
  tokenPeer?: string;
  /** The relay API credential the page sends (`api=` in the fragment). */
  apiToken?: string;
}

/** A join URL like the one the devnet prints. */
export function joinUrl(base: string, parts: JoinUrlParts): string {
  const cluster = parts.cluster ?? CLUSTER;
  const token = createJoinToken({ clusterSigner: parts.clusterSigner, cluster, peer: parts.tokenPeer ?? '*', role: 'browser', ttlMs: 3_600_000 });
  const query = new URLSearchParams();
  for (const r of parts.relays) query.append('relay', r);
  query.set('cluster', cluster);
  query.set('key', base64urlEncode(parts.clusterSigner.publicKey));
  const api = parts.apiToken !== undefined ? `&api=${encodeURIComponent(parts.apiToken)}` : '';
  return `${base}?${query.toString()}#token=${encodeJoinTokenParam(token)}${api}`;
}

export interface Stack extends Web {
  relay: RelayHandle;
  clusterSigner: Ed25519Signer;
  /** The URL a tab opens to join the cluster. */
  pageUrl: string;
  stop(): Promise<void>;
}

export async function startStack(heartbeatMs = 500): Promise<Stack> {
  const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
  const relay = await startRelay({ config: { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] }, port: 0, httpPort: 0, heartbeatMs });
  let web: Web;
  try {
    web = await startWeb();
  } catch (e) {
    await relay.stop();
    throw e;
  }
  const relayAddr = relay.multiaddrs[0];
  if (relayAddr === undefined) throw new Error('relay reported no address');
  return {
    ...web,
    relay,
    clusterSigner,
    pageUrl: joinUrl(web.base, { relays: [relayAddr], clusterSigner }),
    async stop() {
      await web.vite.close();
      await relay.stop();
    },
  };
}

/** A loopback port that was free a moment ago (bound to port 0, then closed). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A well-formed relay multiaddr on which nothing listens (a port just closed, a made-up PeerId). */
export async function deadRelayAddr(): Promise<string> {
  const id = peerIdFromPublicKeyBytes(crypto.createSigner(crypto.randomBytes(32)).publicKey);
  return `/ip4/127.0.0.1/tcp/${await freePort()}/ws/p2p/${id}`;
}

/** Shapes returned by `window.hypersync` inside pages (evaluated in the browser). */
export interface PageView {
  peerId: string;
  peers: PeerInfo[];
  connections: ConnectionInfo[];
}

export type { Envelope };

/** A new page of `ctx` on `url`, its errors on stderr, once `window.hypersync` is ready. */
export async function openJoinedPage(ctx: BrowserContext, url: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  await page.goto(url);
  await page.evaluate(() => window.hypersync.ready);
  return page;
}

/** Polls `probe` until it returns a value, up to `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** True when `view` has an established ICO session with `other` over a direct, unlimited WebRTC connection. */
export function directWebrtcTo(view: PageView, other: string): boolean {
  const peer = view.peers.find((p) => p.peerId === other);
  const conns = view.connections.filter((c) => c.peerId === other);
  return peer?.state === 'established' && peer.transport === 'webrtc' && conns.some((c) => c.transport === 'webrtc' && !c.limited);
}
