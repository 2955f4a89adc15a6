// The relay: a HyperSync peer with role 'relay' that runs a circuit relay v2 server for
// browsers, answers discovery, joins the cluster's gossipsub mesh, and serves the API (REST,
// OpenAPI, metrics; gRPC mounts through `apiExtensions`) on ONE port: HTTPS with HTTP/1.1 and
// HTTP/2 by ALPN, or plain HTTP only when the caller says `insecure`. Reservations, relayed
// connections and the peer list go to peers admitted by ICO HELLO only.
import type { FastifyInstance } from 'fastify';
import { ADMISSION_WAIT_MS, CONNECTION_LIMITS, RELAY_LIMITS, startPeer } from '../src/net/peer.ts';
import { loadOrCreateKey } from '../src/net/platform-node.ts';
import { base64urlDecode, crypto, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import type { ClusterConfig } from '../src/net/cluster-config.ts';
import type { HyperSyncPeer, WireMode } from '../src/net/types.ts';
import { createLogger } from '../src/log/logger.ts';
import type { Consensus } from '../src/consensus/engine.ts';
import { openRaftEngine, openSingleEngine } from '../src/consensus/open.ts';
import type { RaftRuntime } from '../src/consensus/raft/runtime/runtime.ts';
import { consensusTransport, pbftPayload, raftPayload } from '../src/net/consensus-transport.ts';
import { PbftGateway } from '../src/consensus/pbft/runtime/gateway.ts';
import { pbftMembership } from '../src/consensus/open.ts';
import type { Replica } from '../src/replica/replica.ts';
import { KeyStoreAuthenticator, type BearerTokenSpec } from './api/auth.ts';
import type { Authenticator } from './api/auth-types.ts';
import type { ApiBackend } from './api/backend.ts';
import { buildApi, type ApiTimeouts } from './api/server.ts';
import { EngineBackend } from './api/engine-backend.ts';
import { raftGroup, startNodeSync } from '../src/sync/node-service.ts';
import type { SyncService } from '../src/sync/service.ts';
import { registerSyncRoutes, renderSyncMetrics } from './api/sync-routes.ts';

export interface RelayApiOptions {
  /** PEM contents. Required unless `insecure`. */
  tls?: { cert: string; key: string; ca?: string | undefined } | undefined;
  /** Plain HTTP (no TLS): only with an explicit --insecure. */
  insecure?: boolean;
  keysFile?: string | undefined;
  /** Bearer tokens accepted with both scopes (e.g. the devnet token file's). */
  tokens?: readonly BearerTokenSpec[];
  /** 'auto' (default): raft when cluster.json lists this relay as a Raft member, else none. */
  consensus?: 'auto' | 'none' | 'raft';
  bodyLimit?: number;
  timeouts?: ApiTimeouts;
  ratePerSecond?: number;
  rateBurst?: number;
  /** Mounted on the same Fastify app before it listens (the gRPC/Connect routes). */
  apiExtensions?: ReadonlyArray<(app: FastifyInstance, ctx: { backend: ApiBackend; auth: Authenticator }) => Promise<void>>;
}

export interface RelayOptions {
  config: ClusterConfig;
  dataDir?: string;
  host?: string;
  /** libp2p WebSocket port (0 = random). */
  port?: number;
  /** API port (0 = random). */
  httpPort?: number;
  heartbeatMs?: number;
  /** Wire encoding on direct ICO streams (default binary with peers that offer it). */
  wire?: WireMode;
  /** Raft tick (ms) when the relay is a member of the cluster's Raft group (a learner). */
  raftTickMs?: number;
  api?: RelayApiOptions;
}

export interface RelayHandle {
  readonly peer: HyperSyncPeer;
  readonly peerId: string;
  readonly multiaddrs: string[];
  /** `url`: https://host:port (or http:// with insecure). */
  readonly http: { readonly url: string; readonly tls: boolean };
  readonly api: FastifyInstance;
  readonly backend: ApiBackend;
  /** Present when the relay runs as a member of the cluster's Raft group (a learner). */
  readonly raft: RaftRuntime<Replica> | undefined;
  /** Documents and receipt logs synced with the cluster's peers. */
  readonly sync: SyncService;
  stop(): Promise<void>;
}

export class RelayConfigError extends Error {
  readonly code = 'RELAY_CONFIG';
  override name = 'RelayConfigError';
}

export async function startRelay(opts: RelayOptions): Promise<RelayHandle> {
  const host = opts.host ?? '127.0.0.1';
  const apiOpts = opts.api ?? { insecure: true };
  if (apiOpts.tls === undefined && apiOpts.insecure !== true) throw new RelayConfigError('the relay API needs TLS (cert and key) or an explicit insecure flag');
  const log = createLogger('relay');
  const privateKey = await loadOrCreateKey(opts.dataDir);
  const auth = await KeyStoreAuthenticator.open({
    ...(apiOpts.keysFile !== undefined ? { keysFile: apiOpts.keysFile } : {}),
    tokens: apiOpts.tokens ?? [],
    ...(apiOpts.ratePerSecond !== undefined ? { ratePerSecond: apiOpts.ratePerSecond } : {}),
    ...(apiOpts.rateBurst !== undefined ? { rateBurst: apiOpts.rateBurst } : {}),
  });
  let syncRef: SyncService | undefined;
  const peer = await startPeer({
    helloState: () => syncRef?.summary() ?? null,
    cluster: opts.config.cluster,
    roles: ['relay'],
    relays: [],
    allowlist: opts.config.allowlist,
    clusterPublicKey: base64urlDecode(opts.config.clusterPublicKey),
    ...(opts.config.revokedTokens !== undefined ? { revokedTokens: opts.config.revokedTokens } : {}),
    privateKey,
    relayServer: true,
    listen: [`/ip4/${host}/tcp/${opts.port ?? 0}/ws`],
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    ...(opts.wire !== undefined ? { wire: opts.wire } : {}),
  }).catch((e: unknown) => {
    auth.close();
    throw e;
  });
  const cleanup: Array<() => Promise<void>> = [async () => auth.close(), () => peer.stop()];
  const unwind = async (): Promise<void> => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };
  try {
    const members = opts.config.raft;
    const isMember = members !== undefined && [...members.voters, ...members.learners].includes(peer.peerId);
    const mode = apiOpts.consensus ?? 'auto';
    if (mode === 'raft' && !isMember) throw new RelayConfigError(`consensus raft: cluster.json does not list this relay (${peer.peerId}) as a Raft member`);
    // The relay signs receipts with its libp2p identity: receipts name its PeerId as signer.
    const signer = crypto.createSigner(seedFromLibp2pPrivateKey(privateKey));
    let engine: Consensus<Replica>;
    let raft: RaftRuntime<Replica> | undefined;
    if (isMember && mode !== 'none') {
      if (opts.dataDir === undefined) throw new RelayConfigError('the relay is a Raft member: it needs a data dir for its log and identity');
      // The relay is a learner: it keeps a replica, forwards writes to the leader, and answers
      // with its own receipts. Its Raft log and receipts live in <data-dir>/raft and /store.
      raft = await openRaftEngine({ dataDir: opts.dataDir, peerId: peer.peerId, signer, transport: consensusTransport(peer, raftPayload), voters: members.voters, learners: members.learners, ...(opts.raftTickMs !== undefined ? { tickMs: opts.raftTickMs } : {}) });
      engine = raft;
    } else {
      engine = await openSingleEngine({ ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}), peerId: peer.peerId, signer });
    }
    // The cluster's PBFT group, when it has one: the relay is its client (options.consensus 'pbft').
    const pbft = opts.config.pbft === undefined ? undefined : new PbftGateway({ id: peer.peerId, membership: pbftMembership(opts.config), signer, transport: consensusTransport(peer, pbftPayload) });
    const backend = new EngineBackend({ engine, peers: () => peer.peers().filter((p) => p.state === 'established').length, ...(pbft !== undefined ? { pbft } : {}) });
    cleanup.push(() => backend.close());
    await engine.start();
    pbft?.start();
    const sync = await startNodeSync({ peer, privateKey, dataDir: opts.dataDir, policies: opts.config.sync?.policies, receiptLogs: raft !== undefined ? [raft.replica.log] : [], ...raftGroup(raft), binary: opts.wire !== 'json' });
    syncRef = sync;
    cleanup.push(() => sync.close());
    const started = Date.now();
    const app = await buildApi({
      extraMetrics: () => renderSyncMetrics(sync),
      backend,
      auth,
      tls: apiOpts.tls,
      ...(apiOpts.bodyLimit !== undefined ? { bodyLimit: apiOpts.bodyLimit } : {}),
      ...(apiOpts.timeouts !== undefined ? { timeouts: apiOpts.timeouts } : {}),
      status: () => {
        const peers = peer.peers();
        return {
          peerId: peer.peerId,
          cluster: peer.cluster,
          multiaddrs: peer.multiaddrs(),
          uptime_s: Math.round((Date.now() - started) / 1000),
          peers: { established: peers.filter((p) => p.state === 'established').length, total: peers.length },
          limits: { ...RELAY_LIMITS, dataLimitBytes: Number(RELAY_LIMITS.dataLimitBytes), ...CONNECTION_LIMITS, admissionWaitMs: ADMISSION_WAIT_MS },
          api: { consensus: backend.consensus, tls: apiOpts.tls !== undefined },
        };
      },
    });
    cleanup.push(() => app.close());
    await registerSyncRoutes(app, sync);
    for (const ext of apiOpts.apiExtensions ?? []) await ext(app, { backend, auth });
    await app.listen({ host, port: opts.httpPort ?? 0 });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const tls = apiOpts.tls !== undefined;
    const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    log.info({ peerId: peer.peerId, multiaddrs: peer.multiaddrs(), api: url, tls, consensus: backend.consensus }, 'relay listening');
    let stopped: Promise<void> | undefined;
    return {
      peer,
      peerId: peer.peerId,
      multiaddrs: peer.multiaddrs(),
      http: { url, tls },
      api: app,
      backend,
      raft,
      sync,
      stop() {
        stopped ??= unwind();
        return stopped;
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}
