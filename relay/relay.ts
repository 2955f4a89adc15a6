// The relay: a HyperSync peer with role 'relay' that runs a circuit relay v2 server for
// browsers, answers discovery, joins the cluster's gossipsub mesh, and serves HTTP
// (/healthz now, the REST/gRPC API later through relay/http.ts). Reservations, relayed
// connections and the peer list go to peers admitted by ICO HELLO only.
import { ADMISSION_WAIT_MS, CONNECTION_LIMITS, RELAY_LIMITS, startPeer } from '../src/net/peer.ts';
import { loadOrCreateKey } from '../src/net/platform-node.ts';
import { base64urlDecode } from '../src/crypto/index.ts';
import type { ClusterConfig } from '../src/net/cluster-config.ts';
import type { HyperSyncPeer } from '../src/net/types.ts';
import { createLogger } from '../src/log/logger.ts';
import { sendJson, startHttp, type HttpHandle } from './http.ts';

export interface RelayOptions {
  config: ClusterConfig;
  dataDir?: string;
  host?: string;
  /** libp2p WebSocket port (0 = random). */
  port?: number;
  /** HTTP port (0 = random). */
  httpPort?: number;
  heartbeatMs?: number;
}

export interface RelayHandle {
  readonly peer: HyperSyncPeer;
  readonly peerId: string;
  readonly multiaddrs: string[];
  readonly http: HttpHandle;
  stop(): Promise<void>;
}

export async function startRelay(opts: RelayOptions): Promise<RelayHandle> {
  const host = opts.host ?? '127.0.0.1';
  const log = createLogger('relay');
  const privateKey = await loadOrCreateKey(opts.dataDir);
  const peer = await startPeer({
    cluster: opts.config.cluster,
    roles: ['relay'],
    relays: [],
    allowlist: opts.config.allowlist,
    clusterPublicKey: base64urlDecode(opts.config.clusterPublicKey),
    privateKey,
    relayServer: true,
    listen: [`/ip4/${host}/tcp/${opts.port ?? 0}/ws`],
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
  });
  let http: HttpHandle;
  try {
    http = await startHttp({ host, port: opts.httpPort ?? 0 });
  } catch (e) {
    await peer.stop();
    throw e;
  }
  const started = Date.now();
  http.addRoute('GET', '/healthz', (_req, res) => {
    const peers = peer.peers();
    sendJson(res, 200, {
      status: 'ok',
      peerId: peer.peerId,
      cluster: peer.cluster,
      multiaddrs: peer.multiaddrs(),
      uptime_s: Math.round((Date.now() - started) / 1000),
      peers: { established: peers.filter((p) => p.state === 'established').length, total: peers.length },
      limits: { ...RELAY_LIMITS, dataLimitBytes: Number(RELAY_LIMITS.dataLimitBytes), ...CONNECTION_LIMITS, admissionWaitMs: ADMISSION_WAIT_MS },
    });
  });
  log.info({ peerId: peer.peerId, multiaddrs: peer.multiaddrs(), http: http.url }, 'relay listening');
  return {
    peer,
    peerId: peer.peerId,
    multiaddrs: peer.multiaddrs(),
    http,
    async stop() {
      await http.close();
      await peer.stop();
    },
  };
}
