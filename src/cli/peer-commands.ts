// `hypersync node` and `hypersync relay`: long-running processes. With --json-events a node
// prints one JSON line per event on stdout (first a `ready` line); logs go to stderr.
// SIGINT/SIGTERM stop gracefully (GOODBYE to every peer); if the parent that spawned us
// (HYPERSYNC_PARENT_PID) disappears, we stop too, so a killed devnet leaves no orphans.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { base64urlDecode } from '../crypto/index.ts';
import { decodeJoinTokenParam } from '../ico/admission.ts';
import { readClusterConfig } from '../net/cluster-config.ts';
import { startPeer } from '../net/peer.ts';
import type { HyperSyncPeer, PeerEvent } from '../net/types.ts';
import { createLogger } from '../log/logger.ts';
import { startRelay } from '../../relay/relay.ts';
import { int, parse, required, str, UsageError } from './args.ts';

export const NODE_HELP = `usage: hypersync node --relay MULTIADDR --data-dir DIR [--cluster-config FILE] [options]

Runs a HyperSync peer: connects to the relay, discovers the cluster's peers, speaks ICO.

options:
  --relay MULTIADDR        relay address with /p2p/<id> (repeatable)
  --data-dir DIR           where peer.key (identity) and the store live
  --cluster-config FILE    cluster.json (cluster id, cluster public key, allowlist);
                           default: DIR/cluster.json
  --join-token TOKEN       join token (URL-fragment form) when not on the allowlist
  --role voter|learner     role announced in HELLO (default voter)
  --heartbeat-ms N         heartbeat interval (default 1000); down after 3 missed
  --listen-host HOST       listen address (default 127.0.0.1)
  --json-events            print one JSON line per peer event on stdout
  --log-level LEVEL        trace|debug|info|warn|error (default info; logs go to stderr)
`;

export const RELAY_HELP = `usage: hypersync relay --cluster-config FILE [options]

Runs the relay: libp2p WebSocket listener, circuit relay v2, peer discovery, gossipsub,
and the HTTP endpoint (GET /healthz).

options:
  --cluster-config FILE    cluster.json
  --data-dir DIR           where the relay's peer.key lives (default: a fresh identity)
  --host HOST              listen host (default 127.0.0.1)
  --port N                 libp2p WebSocket port (default 9090; 0 = random)
  --http-port N            HTTP port (default 9091; 0 = random)
  --heartbeat-ms N         heartbeat interval (default 1000)
  --json-events            print a ready line and peer events as JSON lines on stdout
  --log-level LEVEL        log level (logs go to stderr)
`;

type Out = (s: string) => void;

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
  return new Promise((resolve) => {
    let stopping = false;
    const finish = (): void => {
      if (stopping) return;
      stopping = true;
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

function streamEvents(peer: HyperSyncPeer, out: Out): void {
  peer.on('*', (event: PeerEvent) => {
    // Heartbeats would drown everything else; they are visible as peer state instead.
    if ((event.type === 'ico:in' || event.type === 'ico:out') && event.envelope.type === 'HEARTBEAT') return;
    out(`${JSON.stringify({ ...event, at: new Date().toISOString() })}\n`);
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
    'json-events': { type: 'boolean' },
    'log-level': { type: 'string' },
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
  const dataDir = required(p, 'data-dir');
  const config = await readClusterConfig(str(p, 'cluster-config') ?? clusterConfigIn(dataDir));
  const token = str(p, 'join-token');
  const host = str(p, 'listen-host') ?? '127.0.0.1';
  const peer = await startPeer({
    cluster: config.cluster,
    roles: [role],
    relays,
    allowlist: config.allowlist,
    clusterPublicKey: base64urlDecode(config.clusterPublicKey),
    joinToken: token === undefined ? null : decodeJoinTokenParam(token),
    dataDir,
    heartbeatMs,
    listen: [`/ip4/${host}/tcp/0`, `/ip4/${host}/tcp/0/ws`, '/p2p-circuit', '/webrtc'],
  });
  if (p.values['json-events'] === true) {
    out(`${JSON.stringify({ type: 'ready', peerId: peer.peerId, pid: process.pid, multiaddrs: peer.multiaddrs() })}\n`);
    streamEvents(peer, out);
  } else {
    process.stderr.write(`hypersync node ${peer.peerId} running (Ctrl-C to stop)\n`);
  }
  return runUntilSignal(() => peer.stop());
}

export async function relayCommand(argv: string[], out: Out): Promise<number> {
  const p = parse(argv, {
    'cluster-config': { type: 'string' },
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'json-events': { type: 'boolean' },
    'log-level': { type: 'string' },
  });
  if (p.values['help'] === true) {
    out(RELAY_HELP);
    return 0;
  }
  // Flags are checked before any file is read, so a typo is a usage error.
  const port = int(p, 'port', 9090);
  const httpPort = int(p, 'http-port', 9091);
  const heartbeatMs = int(p, 'heartbeat-ms', 1000, 20, 60_000);
  const configPath = required(p, 'cluster-config');
  const dataDir = str(p, 'data-dir');
  const config = await readClusterConfig(configPath);
  const relay = await startRelay({ config, ...(dataDir !== undefined ? { dataDir } : {}), host: str(p, 'host') ?? '127.0.0.1', port, httpPort, heartbeatMs });
  const ready = { type: 'ready', peerId: relay.peerId, pid: process.pid, multiaddrs: relay.multiaddrs, http: relay.http.url };
  if (p.values['json-events'] === true) {
    out(`${JSON.stringify(ready)}\n`);
    streamEvents(relay.peer, out);
  } else {
    out(`relay ${relay.peerId}\n  libp2p: ${relay.multiaddrs.join(' ')}\n  http:   ${relay.http.url}/healthz\n`);
  }
  createLogger('cli').debug(ready, 'relay ready');
  return runUntilSignal(() => relay.stop());
}
