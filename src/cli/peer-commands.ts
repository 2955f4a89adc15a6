// `hypersync node` and `hypersync relay`: long-running processes. With --json-events a node
// prints one JSON line per event on stdout (first a `ready` line); logs go to stderr.
// SIGINT/SIGTERM stop gracefully (GOODBYE to every peer); if the parent that spawned us
// (HYPERSYNC_PARENT_PID) disappears, we stop too, so a killed devnet leaves no orphans.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { base64urlDecode, crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { decodeJoinTokenParam } from '../ico/admission.ts';
import { readClusterConfig } from '../net/cluster-config.ts';
import { startPeer } from '../net/peer.ts';
import { loadOrCreateKey } from '../net/platform-node.ts';
import { consensusTransport, pbftPayload, raftPayload } from '../net/consensus-transport.ts';
import type { PbftAdversary, PbftRuntime } from '../consensus/pbft/runtime/runtime.ts';
import { Adversary, BEHAVIOURS, type Behaviour } from '../sim/pbft-byzantine.ts';
import { Xoshiro128 } from '../sim/prng.ts';
import { PbftAuth, sha256Ed25519 } from '../consensus/pbft/auth.ts';
import type { Membership } from '../consensus/pbft/types.ts';
import type { Ed25519Signer } from '../crypto/index.ts';
import { DEFAULT_PBFT_TICK_MS } from '../consensus/pbft/runtime/runtime.ts';
import { openPbftEngine, openRaftEngine, pbftMembership } from '../consensus/open.ts';
import type { RaftEvent, RaftRuntime } from '../consensus/raft/runtime/runtime.ts';
import type { Replica } from '../replica/replica.ts';
import type { HyperSyncPeer, PeerEvent, WireMode } from '../net/types.ts';
import { createLogger } from '../log/logger.ts';
import { startIdleGc } from './idle-gc.ts';
import { int, parse, required, str, UsageError } from './args.ts';
import { raftGroup, startNodeSync } from '../sync/node-service.ts';
import type { SyncService } from '../sync/service.ts';

/** The simulator's behaviours a real process can take ('twins' needs two processes under one identity). */
export const DEVNET_BEHAVIOURS: readonly Behaviour[] = BEHAVIOURS.filter((b) => b !== 'twins');

export const NODE_HELP = `usage: hypersync node --relay MULTIADDR --data-dir DIR [--cluster-config FILE] [options]

Runs a HyperSync peer: connects to the relay, discovers the cluster's peers, speaks ICO.
When cluster.json has a "raft" section listing this peer, it also runs its Raft member:
the log in <data-dir>/raft, the state machine, and its signed receipts in <data-dir>/store.
When its "pbft" section lists this peer, it also runs a PBFT replica (receipts in
<data-dir>/pbft, started afresh each time: it rejoins by state transfer).
Every node syncs the document store and mirrored receipt logs (<data-dir>/sync) with its
peers: at connection, live by gossip, and by anti-entropy.

options:
  --relay MULTIADDR        relay address with /p2p/<id> (repeatable)
  --data-dir DIR           where peer.key (identity) and the store live
  --cluster-config FILE    cluster.json (cluster id, cluster public key, allowlist);
                           default: DIR/cluster.json
  --join-token TOKEN       join token (URL-fragment form) when not on the allowlist
  --role voter|learner     role announced in HELLO (default voter)
  --heartbeat-ms N         heartbeat interval (default 1000); down after 3 missed
  --listen-host HOST       listen address (default 127.0.0.1)
  --tick-ms N              Raft tick (default 50; election timeout 8-16 ticks, heartbeat 2)
  --snapshot-every N       snapshot the state machine and compact the Raft log every N
                           applied entries (default 10000)
  --byzantine BEHAVIOUR    make this PBFT replica misbehave as the simulator's Byzantine replicas
                           do: ${DEVNET_BEHAVIOURS.join(', ')} (tests and demos)
  --pbft-max-batch N       requests one PBFT round orders at most (default 64; 1 turns batching
                           off; every replica of the group must use the same)
  --pbft-tick-ms N         PBFT tick when cluster.json's "pbft" section lists this peer
                           (default 25; a backup suspects the primary after 20 ticks)
  --wire binary|json       direct-stream encoding: binary frames with peers that offer them
                           (default), or JSON envelopes only (the reference form)
  --anti-entropy-ms N      sync with one random peer every N ms (default 30000)
  --json-events            print one JSON line per peer event on stdout (and sync:done,
                           sync:rejected, sync:conflict, docs:change lines)
  --fault-signals          fault injection for nemesis tests: each SIGUSR2 cuts this peer off
                           the network (its connection gater refuses every connection) or
                           lifts the cut, printing a fault:network-cut line
  --log-level LEVEL        trace|debug|info|warn|error (default info; logs go to stderr)
`;

export const RELAY_HELP = `usage: hypersync relay --cluster-config FILE [options]

Runs the relay: libp2p WebSocket listener, circuit relay v2, peer discovery, gossipsub,
and the API on one port: REST (/api/v1/…), OpenAPI (/docs), /metrics, /healthz; HTTPS with
HTTP/1.1 and HTTP/2, or plain HTTP with --insecure.

options:
  --cluster-config FILE    cluster.json
  --data-dir DIR           where the relay's peer.key and API state (DIR/api) live
                           (default: a fresh identity, state in memory)
  --host HOST              listen host (default 127.0.0.1)
  --port N                 libp2p WebSocket port (default 9090; 0 = random)
  --http-port N            API port (default 9091; 0 = random)
  --tls-cert FILE          server certificate (PEM)             \
  --tls-key FILE           server private key (PEM)              } HTTPS; one of these or --insecure
  --tls-ca FILE            cluster CA: verifies client certs    /  (optional: without it no client
                           certificate is asked for; with it one the keys file maps is a credential)
  --insecure               plain HTTP without TLS (local experiments only)
  --keys-file FILE         API keys and client-certificate mappings (hypersync keys create|revoke,
                           cert-add|cert-revoke); changes apply to the running relay
  --token-file FILE        a bearer token (one line) accepted with scopes execute and read
  --consensus MODE         how executions are ordered: auto (default: raft when cluster.json lists
                           this relay as a Raft learner, else none), raft, or none (this relay
                           applies them alone)
  --body-limit BYTES       largest request body (default 1048576)
  --rate-limit N           API requests per second per principal, burst 2N (default 1000)
  --heartbeat-ms N         heartbeat interval (default 1000)
  --raft-tick-ms N         Raft tick when cluster.json lists the relay as a Raft learner (default 50)
  --wire binary|json       direct-stream encoding (default binary with peers that offer it)
  --json-events            print a ready line and peer events as JSON lines on stdout
  --log-level LEVEL        log level (logs go to stderr)
`;

type Out = (s: string) => void;

/** Shortest bearer token the relay accepts from a token file. */
export const MIN_TOKEN_LENGTH = 16;

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --token-file ${path}: ${(e as Error).message}`);
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) throw new UsageError(`--token-file ${path} must hold one token of at least ${MIN_TOKEN_LENGTH} characters`);
  return token;
}

/** Without --cluster-config a node reads the cluster.json kept in its data dir. */
function clusterConfigIn(dataDir: string): string {
  const path = join(dataDir, 'cluster.json');
  if (!existsSync(path)) throw new UsageError(`--cluster-config is required (no ${path})`);
  return path;
}

function watchParent(stop: () => Promise<void>): void {
  const parent = Number(process.env['HYPERSYNC_PARENT_PID']);
  if (!Number.isInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      void stop();
    }
  }, 1000);
  timer.unref();
}

function runUntilSignal(stop: () => Promise<void>): Promise<number> {
  const idleGc = startIdleGc();
  return new Promise((resolve) => {
    let stopping = false;
    const finish = (): void => {
      if (stopping) return;
      stopping = true;
      idleGc.stop();
      const force = setTimeout(() => resolve(1), 5000);
      force.unref();
      void stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    watchParent(async () => finish());
  });
}

/**
 * Heartbeats would drown everything else; they show as peer state instead. On a Raft member or
 * a PBFT replica, CONSENSUS envelopes are protocol traffic (hundreds per second under load,
 * entries or batches inside) and cost real CPU to print: Raft's show as the raft:* lines
 * instead, PBFT's as the replica's status (`GET /api/v1/cluster`).
 */
function streamEvents(peer: HyperSyncPeer, out: Out, hideConsensus = false, early: PeerEvent[] = []): void {
  const print = (event: PeerEvent): void => {
    if (event.type === 'ico:in' || event.type === 'ico:out') {
      const t = event.envelope.type;
      if (t === 'HEARTBEAT' || (hideConsensus && t === 'CONSENSUS')) return;
      // Sync protocol traffic (record batches up to 1 MiB) shows as the sync:* lines instead.
      if (t === 'STATE_SYNC' && typeof event.envelope.payload['k'] === 'string') return;
    }
    // Raw payload bytes are already in the envelope's JSON form ({"$bytes": …}).
    const { bytes: _bytes, ...shown } = event as PeerEvent & { bytes?: Uint8Array };
    out(`${JSON.stringify({ ...shown, at: new Date().toISOString() })}\n`);
  };
  for (const event of early) print(event);
  peer.on('*', print);
}

/** Events a peer may emit while the rest of the process starts, kept for --json-events. */
export const MAX_EARLY_EVENTS = 1024;

/** Records the peer's events from now until streamEvents takes over (bounded). */
function bufferEvents(peer: HyperSyncPeer): { events: PeerEvent[]; stop(): void } {
  const events: PeerEvent[] = [];
  const off = peer.on('*', (e: PeerEvent) => {
    if (events.length < MAX_EARLY_EVENTS) events.push(e);
  });
  return { events, stop: off };
}

/** Sync sessions, rejected records, conflicts and document changes as JSON lines. */
function streamSyncEvents(sync: SyncService, out: Out): void {
  const line = (o: Record<string, unknown>): void => out(`${JSON.stringify({ ...o, at: new Date().toISOString() })}\n`);
  sync.on((e) => {
    if (e.type === 'done') {
      const r = e.report;
      line({ type: 'sync:done', peer: r.peer, mode: r.mode, equal: r.equal, sent: r.sent, received: r.received, rounds: r.rounds, passes: r.passes, ms: r.ms, summary: sync.summary() });
    } else if (e.type === 'rejected') {
      line({ type: 'sync:rejected', peer: e.peer, code: e.code, reason: e.reason });
    } else if (e.type === 'conflict') {
      line({ type: 'sync:conflict', keys: e.keys });
    } else if (e.type === 'change') {
      line({ type: 'docs:change', source: e.change.source, keys: e.change.keys.slice(0, 64), count: e.change.records.length, summary: sync.summary() });
    }
  });
}

function wireMode(p: Parameters<typeof str>[0]): WireMode | undefined {
  const w = str(p, 'wire');
  if (w !== undefined && w !== 'binary' && w !== 'json') throw new UsageError('--wire must be binary or json');
  return w;
}

/** Raft role changes and snapshots as they happen, plus a status line every RAFT_STATUS_EVERY_MS. */
export const RAFT_STATUS_EVERY_MS = 500;

/** Raft's events as JSON lines, each stamped with when it happened. */
type StampedRaftEvent = RaftEvent & { at: string };

/**
 * Records Raft's events from its start until streamRaftEvents takes over (bounded): a restarted
 * member can take its role and install a leader's snapshot while sync still opens, before `ready`.
 */
function bufferRaftEvents(raft: RaftRuntime<Replica>): { events: StampedRaftEvent[]; stop(): void } {
  const events: StampedRaftEvent[] = [];
  const stop = raft.onEvent((e) => {
    if (events.length < MAX_EARLY_EVENTS) events.push({ ...e, at: new Date().toISOString() });
  });
  return { events, stop };
}

function streamRaftEvents(raft: RaftRuntime<Replica>, peer: HyperSyncPeer, out: Out, early: { events: StampedRaftEvent[]; stop(): void }): void {
  early.stop();
  for (const e of early.events) out(`${JSON.stringify(e)}\n`);
  raft.onEvent((e) => out(`${JSON.stringify({ ...e, at: new Date().toISOString() })}\n`));
  const timer = setInterval(() => {
    const s = raft.raftStatus();
    // `wire`: this peer's direct-stream counters, so frames per commit can be read off two lines.
    out(`${JSON.stringify({ type: 'raft:status', role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: s.applied, lastIndex: s.lastIndex, receipts: raft.replica.receiptCount, receiptSignatures: raft.replica.log.receiptSignatures, treeHeadSignatures: raft.replica.log.treeHeadSignatures, wire: peer.wireStats(), at: new Date().toISOString() })}\n`);
  }, RAFT_STATUS_EVERY_MS);
  timer.unref();
}

/** --fault-signals: SIGUSR2 flips the peer's network cut (SIGUSR1 belongs to Node's inspector). */
function toggleNetworkCutOnSignal(peer: HyperSyncPeer, out: Out): void {
  let cut = false;
  process.on('SIGUSR2', () => {
    cut = !cut;
    void peer.setNetworkCut(cut).then(() => out(`${JSON.stringify({ type: 'fault:network-cut', cut, at: new Date().toISOString() })}\n`));
  });
}

export async function nodeCommand(argv: string[], out: Out): Promise<number> {
  const p = parse(argv, {
    relay: { type: 'string', multiple: true },
    'data-dir': { type: 'string' },
    'cluster-config': { type: 'string' },
    'join-token': { type: 'string' },
    role: { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'listen-host': { type: 'string' },
    'tick-ms': { type: 'string' },
    'snapshot-every': { type: 'string' },
    wire: { type: 'string' },
    'json-events': { type: 'boolean' },
    'log-level': { type: 'string' },
    'anti-entropy-ms': { type: 'string' },
    'pbft-tick-ms': { type: 'string' },
    byzantine: { type: 'string' },
    'pbft-max-batch': { type: 'string' },
    'fault-signals': { type: 'boolean' },
  });
  if (p.values['help'] === true) {
    out(NODE_HELP);
    return 0;
  }
  const relays = (p.values['relay'] as string[] | undefined) ?? [];
  if (relays.length === 0) throw new UsageError('--relay is required');
  const role = str(p, 'role') ?? 'voter';
  if (role !== 'voter' && role !== 'learner') throw new UsageError('--role must be voter or learner');
  const heartbeatMs = int(p, 'heartbeat-ms', 1000, 20, 60_000);
  const tickMs = int(p, 'tick-ms', 50, 5, 10_000);
  const snapshotEvery = int(p, 'snapshot-every', 10_000, 10, 100_000_000);
  const pbftTickMs = int(p, 'pbft-tick-ms', DEFAULT_PBFT_TICK_MS, 5, 10_000);
  const byzantine = byzantineBehaviour(str(p, 'byzantine'));
  const maxBatch = str(p, 'pbft-max-batch') === undefined ? undefined : int(p, 'pbft-max-batch', 64, 1, 4096);
  const dataDir = required(p, 'data-dir');
  const config = await readClusterConfig(str(p, 'cluster-config') ?? clusterConfigIn(dataDir));
  const token = str(p, 'join-token');
  const host = str(p, 'listen-host') ?? '127.0.0.1';
  const antiEntropyMs = int(p, 'anti-entropy-ms', 30_000, 100, 3_600_000);
  let sync: SyncService | undefined;
  const wire = wireMode(p);
  const peer = await startPeer({
    helloState: () => sync?.summary() ?? null,
    cluster: config.cluster,
    roles: [role],
    relays,
    allowlist: config.allowlist,
    clusterPublicKey: base64urlDecode(config.clusterPublicKey),
    ...(config.revokedTokens !== undefined ? { revokedTokens: config.revokedTokens } : {}),
    joinToken: token === undefined ? null : decodeJoinTokenParam(token),
    dataDir,
    heartbeatMs,
    listen: [`/ip4/${host}/tcp/0`, `/ip4/${host}/tcp/0/ws`, '/p2p-circuit', '/webrtc'],
    ...(wire !== undefined ? { wire } : {}),
  });
  // Starting Raft and sync takes a while (LevelDB opens); sessions come up meanwhile.
  const early = bufferEvents(peer);
  let raft: RaftRuntime<Replica> | undefined;
  let raftEarly: ReturnType<typeof bufferRaftEvents> | undefined;
  if (config.raft !== undefined && [...config.raft.voters, ...config.raft.learners].includes(peer.peerId)) {
    try {
      const signer = crypto.createSigner(seedFromLibp2pPrivateKey(await loadOrCreateKey(dataDir)));
      raft = await openRaftEngine({ dataDir, peerId: peer.peerId, signer, transport: consensusTransport(peer, raftPayload), voters: config.raft.voters, learners: config.raft.learners, tickMs, snapshotEvery });
      raftEarly = bufferRaftEvents(raft);
      await raft.start();
    } catch (e) {
      await raft?.close();
      await peer.stop();
      throw e;
    }
  }
  let pbft: PbftRuntime | undefined;
  if (config.pbft !== undefined && config.pbft.replicas.includes(peer.peerId)) {
    try {
      const signer = crypto.createSigner(seedFromLibp2pPrivateKey(await loadOrCreateKey(dataDir)));
      const membership = pbftMembership(config);
      const adversary = byzantine === undefined ? undefined : byzantineAdversary(byzantine, membership, peer.peerId, signer, config.raft?.learners[0]);
      pbft = await openPbftEngine({ dataDir, peerId: peer.peerId, signer, transport: consensusTransport(peer, pbftPayload), membership, tickMs: pbftTickMs, wireStats: () => peer.wireStats(), ...(adversary !== undefined ? { adversary } : {}), ...(maxBatch !== undefined ? { limits: { maxBatchRequests: maxBatch } } : {}) });
      await pbft.start();
    } catch (e) {
      await pbft?.close();
      await raft?.close();
      await peer.stop();
      throw e;
    }
  }
  let nodeSync: Awaited<ReturnType<typeof startNodeSync>>;
  try {
    nodeSync = await startNodeSync({ peer, privateKey: await loadOrCreateKey(dataDir), dataDir, policies: config.sync?.policies, receiptLogs: raft !== undefined ? [raft.replica.log] : [], ...raftGroup(raft), antiEntropyMs, binary: wire !== 'json' });
  } catch (e) {
    await pbft?.close();
    await raft?.close();
    await peer.stop();
    throw e;
  }
  sync = nodeSync;
  if (p.values['json-events'] === true) {
    out(`${JSON.stringify({ type: 'ready', peerId: peer.peerId, pid: process.pid, multiaddrs: peer.multiaddrs(), raft: raft !== undefined, pbft: pbft !== undefined })}\n`);
    early.stop();
    streamEvents(peer, out, raft !== undefined || pbft !== undefined, early.events);
    streamSyncEvents(nodeSync, out);
    if (raft !== undefined && raftEarly !== undefined) streamRaftEvents(raft, peer, out, raftEarly);
  } else {
    early.stop();
    raftEarly?.stop();
    process.stderr.write(`hypersync node ${peer.peerId} running${raft !== undefined ? ' (raft member)' : ''}${pbft !== undefined ? ' (pbft replica)' : ''} (Ctrl-C to stop)\n`);
  }
  if (p.values['fault-signals'] === true) toggleNetworkCutOnSignal(peer, out);
  return runUntilSignal(async () => {
    await nodeSync.close();
    await pbft?.close();
    await raft?.close();
    await peer.stop();
  });
}

export function byzantineBehaviour(v: string | undefined): Behaviour | undefined {
  if (v === undefined) return undefined;
  const b = DEVNET_BEHAVIOURS.find((x) => x === v);
  if (b === undefined) throw new UsageError(`--byzantine ${v.slice(0, 40)}: one of ${DEVNET_BEHAVIOURS.join(', ')}`);
  return b;
}

/** The simulator's Adversary around this replica; a censor ignores the relay's first client slot. */
function byzantineAdversary(behaviour: Behaviour, membership: Membership, self: string, signer: Ed25519Signer, relay: string | undefined): PbftAdversary {
  const index = membership.replicas.findIndex((r) => r.id === self);
  const seed = crypto.randomBytes(4);
  const rng = new Xoshiro128(new DataView(seed.buffer, seed.byteOffset).getUint32(0));
  return new Adversary(behaviour, index, { sign: (d) => signer.sign(d) }, new PbftAuth(membership, sha256Ed25519), rng, `${relay ?? ''}/0`);
}

export async function relayCommand(argv: string[], out: Out): Promise<number> {
  const p = parse(argv, {
    'cluster-config': { type: 'string' },
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'raft-tick-ms': { type: 'string' },
    wire: { type: 'string' },
    'json-events': { type: 'boolean' },
    'log-level': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    insecure: { type: 'boolean' },
    'keys-file': { type: 'string' },
    'token-file': { type: 'string' },
    consensus: { type: 'string' },
    'body-limit': { type: 'string' },
    'rate-limit': { type: 'string' },
  });
  if (p.values['help'] === true) {
    out(RELAY_HELP);
    return 0;
  }
  // The relay's HTTP stack (Fastify, OpenAPI, gRPC/Connect, X.509) is loaded only here: a
  // `hypersync node` peer never loads it, which keeps it out of every peer's memory.
  const [{ startRelay }, { readTlsFiles }, { DEFAULT_BODY_LIMIT }, { DEFAULT_RATE_PER_SECOND, MAX_RATE_PER_SECOND, RATE_BURST_SECONDS }] = await Promise.all([
    import('../../relay/relay.ts'),
    import('../../relay/api/tls.ts'),
    import('../../relay/api/server.ts'),
    import('../../relay/api/auth.ts'),
  ]);
  // Flags are checked before any file is read, so a typo is a usage error.
  const port = int(p, 'port', 9090);
  const httpPort = int(p, 'http-port', 9091);
  const heartbeatMs = int(p, 'heartbeat-ms', 1000, 20, 60_000);
  const raftTickMs = int(p, 'raft-tick-ms', 50, 5, 10_000);
  const wire = wireMode(p);
  const bodyLimit = int(p, 'body-limit', DEFAULT_BODY_LIMIT, 1024, 64 * 1024 * 1024);
  const ratePerSecond = int(p, 'rate-limit', DEFAULT_RATE_PER_SECOND, 1, MAX_RATE_PER_SECOND);
  const configPath = required(p, 'cluster-config');
  const dataDir = str(p, 'data-dir');
  const consensus = str(p, 'consensus') ?? 'auto';
  if (consensus !== 'auto' && consensus !== 'none' && consensus !== 'raft') throw new UsageError(`--consensus ${consensus} is not available (use auto, none or raft; pbft is not built yet)`);
  const certPath = str(p, 'tls-cert');
  const keyPath = str(p, 'tls-key');
  const caPath = str(p, 'tls-ca');
  const insecure = p.values['insecure'] === true;
  if ((certPath === undefined) !== (keyPath === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (certPath !== undefined && insecure) throw new UsageError('--insecure contradicts --tls-cert/--tls-key');
  if (certPath === undefined && !insecure) throw new UsageError('the API needs TLS: pass --tls-cert FILE --tls-key FILE [--tls-ca FILE], or --insecure for plain HTTP');
  if (caPath !== undefined && certPath === undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key');
  const tokenFile = str(p, 'token-file');
  const keysFile = str(p, 'keys-file');
  const config = await readClusterConfig(configPath);
  const tls = certPath !== undefined && keyPath !== undefined ? await readTlsFiles({ cert: certPath, key: keyPath, ca: caPath }) : undefined;
  const tokens = tokenFile !== undefined ? [{ name: basename(tokenFile), token: await readTokenFile(tokenFile), scopes: ['execute', 'read'] as const }] : [];
  const relay = await startRelay({
    config,
    ...(dataDir !== undefined ? { dataDir } : {}),
    host: str(p, 'host') ?? '127.0.0.1',
    port,
    httpPort,
    heartbeatMs,
    raftTickMs,
    ...(wire !== undefined ? { wire } : {}),
    api: { tls, insecure, keysFile, tokens, consensus, bodyLimit, ratePerSecond, rateBurst: RATE_BURST_SECONDS * ratePerSecond },
  });
  const ready = { type: 'ready', peerId: relay.peerId, pid: process.pid, multiaddrs: relay.multiaddrs, http: relay.http.url };
  if (p.values['json-events'] === true) {
    out(`${JSON.stringify(ready)}\n`);
    streamEvents(relay.peer, out, relay.raft !== undefined);
    streamSyncEvents(relay.sync, out);
  } else {
    out(`relay ${relay.peerId}\n  libp2p: ${relay.multiaddrs.join(' ')}\n  api:    ${relay.http.url}/api/v1 (docs ${relay.http.url}/docs, health ${relay.http.url}/healthz)\n`);
  }
  createLogger('cli').debug(ready, 'relay ready');
  return runUntilSignal(() => relay.stop());
}
