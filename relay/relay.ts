// The relay: a HyperSync peer with role 'relay' that runs a circuit relay v2 server for
// browsers, answers discovery, joins the cluster's gossipsub mesh, and serves HTTP
// (/healthz now, the REST/gRPC API later through relay/http.ts).
import { startPeer, RELAY_LIMITS } from '../src/net/peer.ts';
import { loadOrCreateKey } from '../src/net/platform-node.ts';
import { base64urlDecode } from '../src/crypto/index.ts';
import type { ClusterConfig } from '../src/net/cluster-config.ts';
import type { HyperSyncPeer } from '../src/net/types.ts';
import { createLogger } from '../src/log/logger.ts';
import { sendJson, startHttp, type HttpHandle } from './http.ts';
import { startRaftMember, type RaftMember } from '../src/net/raft-member.ts';
import { RaftBackend } from './api/raft-backend.ts';
import type { ApiBackend } from './api/backend.ts';
import { ApiError } from './api/backend.ts';

export interface RelayOptions {
  config: ClusterConfig;
  dataDir?: string;
  host?: string;
  /** libp2p WebSocket port (0 = random). */
  port?: number;
  /** HTTP port (0 = random). */
  httpPort?: number;
  heartbeatMs?: number;
  /** Raft tick (ms) when the relay is a member of the cluster's Raft group (a learner). */
  raftTickMs?: number;
}

export interface RelayHandle {
  readonly peer: HyperSyncPeer;
  readonly peerId: string;
  readonly multiaddrs: string[];
  readonly http: HttpHandle;
  /** Present when cluster.json lists the relay in its Raft group (needs a data dir). */
  readonly raft: RaftMember | undefined;
  readonly backend: ApiBackend | undefined;
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
  let raft: RaftMember | undefined;
  try {
    const members = opts.config.raft;
    if (members !== undefined && [...members.voters, ...members.learners].includes(peer.peerId)) {
      if (opts.dataDir === undefined) throw new Error('the relay is a Raft member: it needs --data-dir to keep its log and identity');
      raft = await startRaftMember({ peer, privateKey, dataDir: opts.dataDir, voters: members.voters, learners: members.learners, ...(opts.raftTickMs !== undefined ? { tickMs: opts.raftTickMs } : {}) });
    }
    http = await startHttp({ host, port: opts.httpPort ?? 0 });
  } catch (e) {
    await raft?.stop();
    await peer.stop();
    throw e;
  }
  const backend = raft === undefined ? undefined : new RaftBackend(raft.driver, peer);
  if (backend !== undefined) mountInterimApi(http, backend);
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
      limits: { ...RELAY_LIMITS, dataLimitBytes: Number(RELAY_LIMITS.dataLimitBytes) },
    });
  });
  log.info({ peerId: peer.peerId, multiaddrs: peer.multiaddrs(), http: http.url }, 'relay listening');
  return {
    peer,
    peerId: peer.peerId,
    multiaddrs: peer.multiaddrs(),
    http,
    raft,
    backend,
    async stop() {
      await http.close();
      await raft?.stop();
      await peer.stop();
    },
  };
}

/** Until the Fastify API lands: execute and cluster status as plain JSON routes (no auth). */
function mountInterimApi(http: HttpHandle, backend: ApiBackend): void {
  http.addRoute('GET', '/api/v1/cluster', (_req, res) => sendJson(res, 200, backend.cluster()));
  http.addRoute('POST', '/api/v1/operators/execute', async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: { operator_id?: unknown; inputs?: unknown; options?: Record<string, unknown> };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      sendJson(res, 400, { status: 'error', error: { code: 'INVALID_REQUEST', message: 'body is not JSON' } });
      return;
    }
    try {
      const r = await backend.execute({ operator_id: String(body.operator_id), inputs: (body.inputs ?? {}) as never, options: (body.options ?? {}) as never, principal: 'interim' });
      sendJson(res, 200, { status: 'success', outputs: r.outputs, receipt_id: r.receipt?.receipt_id ?? null, execution_time_ms: r.execution_time_ms, replayed: r.replayed, receipt: r.receipt });
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError('UNAVAILABLE', (e as Error).message);
      sendJson(res, err.code === 'UNAVAILABLE' ? 503 : err.code === 'DEADLINE_EXCEEDED' ? 504 : 400, { status: 'error', error: { code: err.code, message: err.message } });
    }
  });
}
