// e2e stack: a real relay (in this process) and the Vite dev server of the web app, both on
// loopback, plus a cluster key and a wildcard join token for the pages. Pages join with the
// same URL shape `npm start` prints.
import { createServer, type ViteDevServer } from 'vite';
import { join } from 'node:path';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam } from '../src/ico/admission.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import type { Envelope } from '../src/ico/types.ts';
import type { ConnectionInfo, PeerInfo } from '../src/net/types.ts';

export const ROOT = join(import.meta.dirname, '..');

export interface Stack {
  relay: RelayHandle;
  vite: ViteDevServer;
  /** The URL a tab opens to join the cluster. */
  pageUrl: string;
  stop(): Promise<void>;
}

export async function startStack(heartbeatMs = 500): Promise<Stack> {
  // The in-process relay logs to this test's stderr; keep it to warnings unless asked.
  process.env['HYPERSYNC_LOG'] ??= 'warn';
  const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
  const cluster = 'e2e';
  const relay = await startRelay({ config: { cluster, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] }, port: 0, httpPort: 0, heartbeatMs });
  const vite = await createServer({ configFile: join(ROOT, 'web', 'vite.config.ts'), server: { host: '127.0.0.1', port: 0, strictPort: false }, logLevel: 'error' });
  await vite.listen();
  const base = vite.resolvedUrls?.local[0];
  if (base === undefined) throw new Error('vite did not report a URL');
  const token = createJoinToken({ clusterSigner, cluster, peer: '*', expires: new Date(Date.now() + 3_600_000) });
  const relayAddr = relay.multiaddrs[0]!;
  const pageUrl = `${base}?relay=${encodeURIComponent(relayAddr)}&cluster=${cluster}&key=${base64urlEncode(clusterSigner.publicKey)}#token=${encodeJoinTokenParam(token)}`;
  return {
    relay,
    vite,
    pageUrl,
    async stop() {
      await vite.close();
      await relay.stop();
    },
  };
}

/** Shapes returned by `window.hypersync` inside pages (evaluated in the browser). */
export interface PageView {
  peerId: string;
  peers: PeerInfo[];
  connections: ConnectionInfo[];
}

export type { Envelope };

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
