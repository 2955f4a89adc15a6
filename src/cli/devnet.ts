// `hypersync devnet` (= `npm start`): a whole cluster on this machine. One relay and four
// Node peers, each its own process, plus the Vite web app. Raft runs on the first three peers
// with the relay as learner; PBFT on all four (the relay is its client); everything a newcomer needs to
// call it lands in .devnet/ (endpoints.json, token, a dev CA with server and client
// certificates, cluster.json). The relay's API is HTTPS only. Ctrl-C stops every child;
// children also watch our pid, so even a SIGKILLed devnet leaves no orphans.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { base64urlEncode, crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam, MAX_JOIN_TOKEN_LIFETIME_MS } from '../ico/admission.ts';
import { readClusterConfig, type ClusterConfig } from '../net/cluster-config.ts';
import { loadOrCreateKey, readKeyFile } from '../net/platform-node.ts';
import { DEV_CLIENT_CN, generateDevCa } from '../../relay/api/tls.ts';
import { addCertificateMapping, readKeysFile } from '../../relay/api/keys-file.ts';
import { callApi, type ApiTarget } from './api-client.ts';
import { initCluster } from './keys.ts';
import { int, parse, str, UsageError, type Parsed } from './args.ts';
import { ensureNodeBuild } from './node-build.ts';
import { startIdleGc } from './idle-gc.ts';
import { byzantineBehaviour, DEVNET_BEHAVIOURS } from './peer-commands.ts';

export const DEVNET_HELP = `usage: hypersync devnet [options]   (npm start)

Starts a local cluster: one relay, four Node peers (separate processes) and the web app.
Raft runs on the first three peers with the relay as a learner; PBFT on all four, the relay
being its client (options.consensus "pbft").
Writes .devnet/endpoints.json, .devnet/token, .devnet/cluster.json and a dev CA (ca.pem,
server.pem, client.pem and their keys), prints the URL to open and curl examples.
Identities persist in .devnet/ across restarts; --fresh starts over. Ctrl-C stops everything.

options:
  --dir DIR          state folder (default .devnet)
  --port-base N      relay libp2p N, relay API (HTTPS: REST + gRPC) N+1, web app N+2 (default:
                     $HYPERSYNC_PORT_BASE when set, else 9090)
  --peers N          number of Node peers (default 4; Raft voters are the first three, PBFT
                     replicas the first 3f+1, none below four)
  --heartbeat-ms N   heartbeat interval of every process (default 1000)
  --snapshot-every N Raft snapshot/compaction interval of the peers (default 10000 entries)
  --byzantine I=B    make peer I (1-based, as printed) a Byzantine PBFT replica with behaviour B:
                     ${DEVNET_BEHAVIOURS.join(', ')}; repeatable, at most f peers
  --pbft-max-batch N requests per PBFT round at most (default 64; 1: no batching)
  --no-web           do not start the web app
  --from-source      run the relay and peers from the TypeScript sources (default: from the
                     JavaScript build in dist/node/, made on the first start and after changes)
  --fresh            delete the state folder first
`;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'hypersync.js');
/**
 * How long a child may take to print its ready line. A quiet machine needs 1-3 s; on a 2-core
 * machine at load 15 and more, loading the modules alone took over 30 s (the old bound), and the
 * devnet gave up on children that were about to be ready.
 */
export const CHILD_READY_TIMEOUT_MS = 90_000;
/** The web app's join token (the URL `npm start` prints) lives hours, not days. */
export const TAB_TOKEN_TTL_MS = 8 * 3_600_000;
/** How long children get to say GOODBYE before SIGKILL. */
export const CHILD_STOP_TIMEOUT_MS = 5_000;

/** The default of --port-base; HYPERSYNC_PORT_BASE overrides it (so `npm start` can move too). */
export const DEFAULT_PORT_BASE = 9090;
export const PORT_BASE_ENV = 'HYPERSYNC_PORT_BASE';

/** --port-base, else $HYPERSYNC_PORT_BASE, else 9090; the same bounds for both. */
function portBase(p: Parsed): number {
  if (str(p, 'port-base') !== undefined) return int(p, 'port-base', DEFAULT_PORT_BASE, 1024, 65000);
  const env = process.env[PORT_BASE_ENV];
  if (env === undefined || env === '') return DEFAULT_PORT_BASE;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1024 || n > 65000) throw new UsageError(`${PORT_BASE_ENV}=${env}: must be an integer between 1024 and 65000`);
  return n;
}

interface Child {
  name: string;
  role: string;
  dataDir: string;
  proc: ChildProcess;
  ready: { peerId: string; pid: number; multiaddrs: string[]; http?: string };
}

async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const srv = createNetServer();
    srv.once('error', () => fail(new UsageError(`port ${port} (${what}) is busy: stop whatever uses it, or move the devnet with --port-base N (or ${PORT_BASE_ENV}=N npm start)`)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok()));
  });
}

/** `entry`: the CLI the child runs (the JavaScript build, or bin/hypersync.js). */
function spawnChild(entry: string, name: string, args: string[], logFile: string): Promise<{ proc: ChildProcess; ready: Child['ready'] }> {
  return new Promise((resolveReady, reject) => {
    const proc = spawn(process.execPath, [entry, ...args], {
      cwd: ROOT,
      // Each child's log goes to its file under logs/ (its stderr, piped below), not to a shared one.
      env: { ...process.env, HYPERSYNC_PARENT_PID: String(process.pid), HYPERSYNC_LOG_FILE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within ${CHILD_READY_TIMEOUT_MS / 1000} s (see ${logFile})`));
    }, CHILD_READY_TIMEOUT_MS);
    let settled = false;
    void import('node:fs').then(({ createWriteStream }) => {
      const sink = createWriteStream(logFile, { flags: 'a' });
      proc.stderr?.pipe(sink);
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (settled) return;
      try {
        const msg = JSON.parse(line) as { type?: string } & Child['ready'];
        if (msg.type === 'ready') {
          settled = true;
          clearTimeout(timer);
          resolveReady({ proc, ready: msg });
        }
      } catch {
        // Not JSON: ignore.
      }
    });
    proc.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal}); see ${logFile}`));
    });
  });
}

async function stopChildren(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((done) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return done();
          const force = setTimeout(() => c.proc.kill('SIGKILL'), CHILD_STOP_TIMEOUT_MS);
          c.proc.once('exit', () => {
            clearTimeout(force);
            done();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
}

/** Node peers by default: three Raft voters and a fourth for PBFT's n = 3f + 1 = 4. */
export const DEVNET_PEERS = 4;
/** Raft voters among the peers (the rest run PBFT only). */
export const RAFT_VOTERS = 3;

/** How long the devnet waits for the Raft group to elect a leader before it says it is up. */
export const DEVNET_LEADER_TIMEOUT_MS = 30_000;
/** Pause between two cluster status polls while waiting for a leader. */
const LEADER_POLL_MS = 100;

/** Polls the relay's GET /api/v1/cluster until it names a leader; null after `timeoutMs`. */
async function waitForLeader(target: ApiTarget, timeoutMs: number): Promise<string | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const { status, json } = await callApi(target, 'GET', '/api/v1/cluster');
      const leader = status === 200 ? (json as { leader?: string | null }).leader : undefined;
      if (typeof leader === 'string' && leader !== '') return leader;
    } catch {
      // The API may refuse connections for a moment while it starts: poll again.
    }
    await new Promise((r) => setTimeout(r, LEADER_POLL_MS));
  }
  return null;
}

/** A word as a POSIX shell reads it back: bare when it is safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_/.,:@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

interface BannerFacts {
  peerCount: number;
  /** A PBFT group runs (four peers or more). */
  pbft: boolean;
  dir: string;
  webUrl: string | null;
  rest: string;
  tokenPath: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  keysFile: string;
}

/**
 * What `npm start` prints once the cluster is up. Every line that starts with `curl` or `npx`
 * is a command that works when pasted into a shell in the current folder (a test runs each
 * one); remarks after a command are shell comments.
 */
export function upBanner(f: BannerFacts): string {
  // Paths relative to where the devnet was started when inside it, quoted for the shell.
  const rel = (path: string): string => {
    const r = relative(process.cwd(), path);
    return shellQuote(r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : path);
  };
  const ca = rel(f.ca);
  const auth = `-H "Authorization: Bearer $(cat ${rel(f.tokenPath)})"`;
  const json = "-H 'content-type: application/json'";
  const devnetDir = resolve(f.dir) === resolve('.devnet') ? '' : ` --devnet ${rel(f.dir)}`;
  const receiptsFile = rel(join(f.dir, 'receipts.jsonl'));
  const proto = rel(join(ROOT, 'proto'));
  const mtls = `--cert ${rel(f.clientCert)} --key ${rel(f.clientKey)}`;
  return (
    `\nHyperSync devnet is up (${f.peerCount} peers + relay).\n` +
    (f.webUrl !== null ? `  open the web app:  ${f.webUrl}\n` : '') +
    `  API docs:          ${f.rest}/docs  (trust ${ca} or pass -k)\n` +
    `  endpoints:         ${join(f.dir, 'endpoints.json')}\n` +
    `  logs:              ${join(f.dir, 'logs')}/\n` +
    `\nTry the API (paste into another terminal, in this folder):\n` +
    `  curl --cacert ${ca} ${f.rest}/healthz\n` +
    `  curl --cacert ${ca} ${auth} ${json} -d '{"operator_id":"kv.put","inputs":{"key":"a","value":1}}' ${f.rest}/api/v1/operators/execute\n` +
    `  curl --cacert ${ca} ${auth} ${json} -d '{"operator_id":"kv.get","inputs":{"key":"a"}}' ${f.rest}/api/v1/operators/execute\n` +
    (f.pbft ? `  curl --cacert ${ca} ${auth} ${json} -d '{"operator_id":"kv.put","inputs":{"key":"b","value":2},"options":{"consensus":"pbft"}}' ${f.rest}/api/v1/operators/execute   # through PBFT: the answer carries a quorum certificate\n` : '') +
    `  curl --cacert ${ca} ${auth} '${f.rest}/api/v1/receipts?limit=10'\n` +
    `  curl --cacert ${ca} ${mtls} ${f.rest}/api/v1/tree-head   # mTLS: the client certificate, no token\n` +
    `  npx hypersync cluster status${devnetDir}   # leader, term, commit index, members\n` +
    `  npx hypersync receipts export${devnetDir} > ${receiptsFile}   # the relay's receipts, through the API\n` +
    `  npx hypersync receipts verify ${receiptsFile}\n` +
    `  npx hypersync keys create --keys-file ${rel(f.keysFile)} --name me   # an API key for X-API-Key\n` +
    `\nTry gRPC (same port; any gRPC client; the schema is in ${proto}):\n` +
    `  npx buf curl --schema ${proto} --protocol grpc --cacert ${ca} ${auth} -d '{"operator_id":"kv.get","inputs":{"key":"a"}}' ${f.rest}/hypersync.v1.HyperSync/ExecuteOperator\n` +
    `  npx buf curl --schema ${proto} --protocol grpc --cacert ${ca} ${mtls} -d '{"from_index":0}' ${f.rest}/hypersync.v1.HyperSync/StreamResults   # mTLS; streams until Ctrl-C\n` +
    `\nCtrl-C stops everything.\n`
  );
}

/** PBFT replicas among `peerCount` peers: the largest n = 3f + 1 that fits, none below four. */
export function pbftReplicaCount(peerCount: number): number {
  return peerCount < 4 ? 0 : peerCount - ((peerCount - 1) % 3);
}

/** `--byzantine I=B` flags: peer index (1-based) → behaviour; at most f of the PBFT replicas. */
export function byzantinePeers(flags: readonly string[], peerCount: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const flag of flags) {
    const m = /^(\d+)=([A-Za-z]+)$/.exec(flag);
    if (m === null) throw new UsageError(`--byzantine ${flag.slice(0, 40)}: expected PEER=BEHAVIOUR, e.g. 2=equivocate`);
    const index = Number(m[1]);
    const behaviour = byzantineBehaviour(m[2]);
    if (index < 1 || index > peerCount) throw new UsageError(`--byzantine ${flag}: peer ${index} does not exist (peers 1..${peerCount})`);
    out.set(index, behaviour as string);
  }
  const n = pbftReplicaCount(peerCount);
  if (out.size > 0 && n === 0) throw new UsageError('--byzantine needs a PBFT group: at least 4 peers');
  if ([...out.keys()].some((i) => i > n)) throw new UsageError(`--byzantine: only peers 1..${n} are PBFT replicas`);
  if (out.size > (n - 1) / 3) throw new UsageError(`--byzantine: ${out.size} Byzantine peers, but ${n} replicas tolerate f = ${(n - 1) / 3}`);
  return out;
}

export async function devnetCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const p = parse(argv, {
    dir: { type: 'string' },
    'port-base': { type: 'string' },
    peers: { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'snapshot-every': { type: 'string' },
    'no-web': { type: 'boolean' },
    fresh: { type: 'boolean' },
    'log-level': { type: 'string' },
    byzantine: { type: 'string', multiple: true },
    'pbft-max-batch': { type: 'string' },
    'from-source': { type: 'boolean' },
  });
  if (p.values['help'] === true) {
    out(DEVNET_HELP);
    return 0;
  }
  const dir = resolve(str(p, 'dir') ?? '.devnet');
  const base = portBase(p);
  const peerCount = int(p, 'peers', DEVNET_PEERS, 1, 16);
  const heartbeat = String(int(p, 'heartbeat-ms', 1000, 20, 60_000));
  const snapshotEvery = String(int(p, 'snapshot-every', 10_000, 10, 100_000_000));
  const withWeb = p.values['no-web'] !== true;
  const pbftMaxBatch = str(p, 'pbft-max-batch') === undefined ? [] : ['--pbft-max-batch', String(int(p, 'pbft-max-batch', 64, 1, 4096))];
  const byzantine = byzantinePeers((p.values['byzantine'] as string[] | undefined) ?? [], peerCount);
  await assertPortFree(base, 'relay libp2p');
  await assertPortFree(base + 1, 'relay API');
  if (withWeb) await assertPortFree(base + 2, 'web app');

  if (p.values['fresh'] === true) await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'logs'), { recursive: true });
  // endpoints.json says "up and ready": a previous run's must not be read while this one starts.
  const endpointsPath = join(dir, 'endpoints.json');
  await rm(endpointsPath, { force: true });
  const relayDir = join(dir, 'relay');
  const peerDirs = Array.from({ length: peerCount }, (_, i) => join(dir, 'peers', String(i + 1)));
  const ids: string[] = [];
  for (const d of [relayDir, ...peerDirs]) ids.push(peerIdFromPrivateKey(await loadOrCreateKey(d)).toString());

  // The cluster (key + config) persists too; the allowlist always matches the identities.
  const configPath = join(dir, 'cluster.json');
  let config: ClusterConfig;
  // The Node peers are the Raft voters; the relay is a learner (it serves the API from its
  // own replica). Raft membership is fixed at bootstrap, so it must not drift across restarts.
  const raft = { voters: ids.slice(1, 1 + Math.min(RAFT_VOTERS, peerCount)), learners: [ids[0] as string] };
  // PBFT on the first 3f+1 peers (n >= 4); the relay is its client, not a replica.
  const pbftCount = pbftReplicaCount(peerCount);
  const pbft = pbftCount === 0 ? undefined : { replicas: ids.slice(1, 1 + pbftCount) };
  if (existsSync(configPath) && existsSync(join(dir, 'cluster.key'))) {
    const previous = await readClusterConfig(configPath);
    if (previous.raft !== undefined && JSON.stringify([...previous.raft.voters].sort()) !== JSON.stringify([...raft.voters].sort())) {
      throw new UsageError(`${dir} holds a Raft group of ${previous.raft.voters.length} voters; --peers ${peerCount} would change its membership. Start over with --fresh.`);
    }
    const { pbft: _previousPbft, ...rest } = previous;
    config = { ...rest, allowlist: ids, raft, ...(pbft !== undefined ? { pbft } : {}) };
  } else {
    config = { ...(await initCluster(dir, 'devnet', ids)), raft, ...(pbft !== undefined ? { pbft } : {}) };
  }
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const clusterKey = await readKeyFile(join(dir, 'cluster.key'));
  // TLS material and the API bearer token persist too, so clients keep working across restarts.
  const tls = await generateDevCa(dir);
  const tokenPath = join(dir, 'token');
  const bearer = existsSync(tokenPath) ? (await readFile(tokenPath, 'utf8')).trim() : base64urlEncode(crypto.randomBytes(32));
  await writeFile(tokenPath, `${bearer}\n`, { mode: 0o600 });
  const keysFile = join(dir, 'api-keys.json');
  // The devnet's client certificate is a credential only through a mapping in the keys file.
  if (!(await readKeysFile(keysFile)).certificates.some((c) => c.name === DEV_CLIENT_CN)) {
    await addCertificateMapping(keysFile, { name: DEV_CLIENT_CN, match: `cn:${DEV_CLIENT_CN}`, scopes: ['execute', 'read'] });
  }

  // The relay and peers run from the JavaScript build (less memory per process); from the
  // sources when asked, or when the build fails (said on the terminal, not fatal).
  let entry = BIN;
  if (p.values['from-source'] !== true) {
    try {
      entry = await ensureNodeBuild(ROOT, out);
    } catch (e) {
      out(`devnet: ${(e as Error).message}; running the relay and peers from the sources\n`);
    }
  }

  const children: Child[] = [];
  let shuttingDown = false;
  const shutdown = async (code: number): Promise<number> => {
    if (shuttingDown) return code;
    shuttingDown = true;
    out('\ndevnet: stopping…\n');
    await rm(endpointsPath, { force: true });
    await stopChildren(children);
    return code;
  };

  try {
    const relayArgs = ['relay', '--cluster-config', configPath, '--data-dir', relayDir, '--port', String(base), '--http-port', String(base + 1), '--heartbeat-ms', heartbeat, '--json-events'];
    relayArgs.push('--tls-cert', tls.serverCert, '--tls-key', tls.serverKey, '--tls-ca', tls.ca, '--token-file', tokenPath, '--keys-file', keysFile);
    const relay = await spawnChild(entry, 'relay', relayArgs, join(dir, 'logs', 'relay.log'));
    children.push({ name: 'relay', role: 'relay', dataDir: relayDir, ...relay });
    const relayAddr = relay.ready.multiaddrs.find((a) => a.includes('/ws')) ?? relay.ready.multiaddrs[0];
    if (relayAddr === undefined) throw new Error('relay reported no address');
    out(`devnet: relay ${relay.ready.peerId} on ${relayAddr}\n`);
    // Each Node peer also carries a token bound to its PeerId, so peers that only know the
    // cluster key (browser tabs) can admit it without a copy of the allowlist.
    const clusterSigner = crypto.createSigner(seedFromLibp2pPrivateKey(clusterKey));
    const started = await Promise.all(
      peerDirs.map((d, i) => {
        const peerToken = encodeJoinTokenParam(createJoinToken({ clusterSigner, cluster: config.cluster, peer: ids[i + 1]!, role: 'voter', ttlMs: MAX_JOIN_TOKEN_LIFETIME_MS }));
        const args = ['node', '--relay', relayAddr, '--data-dir', d, '--cluster-config', configPath, '--join-token', peerToken, '--heartbeat-ms', heartbeat, '--snapshot-every', snapshotEvery, '--json-events'];
        const behaviour = byzantine.get(i + 1);
        if (behaviour !== undefined) args.push('--byzantine', behaviour);
        args.push(...pbftMaxBatch);
        return spawnChild(entry, `peer ${i + 1}`, args, join(dir, 'logs', `peer-${i + 1}.log`));
      }),
    );
    started.forEach((s, i) => {
      // 'voter': a Raft voter (and PBFT replica when n >= 4); 'replica': a PBFT replica only.
      children.push({ name: `peer ${i + 1}`, role: raft.voters.includes(s.ready.peerId) ? 'voter' : 'replica', dataDir: peerDirs[i]!, ...s });
      out(`devnet: peer ${i + 1} ${s.ready.peerId} (pid ${s.ready.pid})\n`);
    });

    const token = createJoinToken({ clusterSigner, cluster: config.cluster, peer: '*', role: 'browser', ttlMs: TAB_TOKEN_TTL_MS });
    const rest = relay.ready.http ?? `https://127.0.0.1:${base + 1}`;
    let webUrl: string | null = null;
    let closeWeb: (() => Promise<void>) | undefined;
    if (withWeb) {
      const { createServer } = await import('vite');
      const { relayApiProxy } = await import('../../web/api-proxy.ts');
      // The page reaches the relay API on its own origin (/api/v1/…), forwarded here with the
      // devnet CA; the API token travels in the URL fragment (never sent to the web server).
      const proxy = relayApiProxy(rest, await readFile(tls.ca, 'utf8'));
      const server = await createServer({ configFile: join(ROOT, 'web', 'vite.config.ts'), server: { host: '127.0.0.1', port: base + 2, strictPort: true, proxy }, logLevel: 'warn' });
      await server.listen();
      closeWeb = () => server.close();
      webUrl = `http://127.0.0.1:${base + 2}/?relay=${encodeURIComponent(relayAddr)}&cluster=${encodeURIComponent(config.cluster)}&key=${config.clusterPublicKey}#token=${encodeJoinTokenParam(token)}&api=${encodeURIComponent(bearer)}`;
    }

    // The commands printed below must work when pasted: wait until the relay knows a leader.
    const leader = await waitForLeader({ url: rest, ca: await readFile(tls.ca), token: bearer }, DEVNET_LEADER_TIMEOUT_MS);
    if (leader === null) out(`devnet: no Raft leader after ${DEVNET_LEADER_TIMEOUT_MS / 1000} s; writes answer 503 until one is elected (see ${join(dir, 'logs')})\n`);
    const endpoints = {
      rest,
      grpc: new URL(rest).host,
      libp2p: relay.ready.multiaddrs,
      web: webUrl,
      token: bearer,
      ca: tls.ca,
      clientCert: tls.clientCert,
      clientKey: tls.clientKey,
      keysFile,
      cluster: config.cluster,
      peers: children.map((c) => ({ peerId: c.ready.peerId, pid: c.ready.pid, dataDir: c.dataDir, role: c.role })),
    };
    // Written whole (temp file, then rename): a client polling for the file never reads half of it.
    await writeFile(`${endpointsPath}.tmp`, `${JSON.stringify(endpoints, null, 2)}\n`);
    await rename(`${endpointsPath}.tmp`, endpointsPath);
    out(upBanner({ peerCount, pbft: pbft !== undefined, dir, webUrl, rest, tokenPath, ca: tls.ca, clientCert: tls.clientCert, clientKey: tls.clientKey, keysFile }));

    const idleGc = startIdleGc();
    return await new Promise<number>((resolveExit) => {
      const stop = (code: number): void => {
        idleGc.stop();
        void (async () => {
          await closeWeb?.().catch(() => undefined);
          resolveExit(await shutdown(code));
        })();
      };
      process.once('SIGINT', () => stop(0));
      process.once('SIGTERM', () => stop(0));
      for (const c of children) {
        c.proc.once('exit', (code, signal) => {
          if (!shuttingDown) out(`devnet: ${c.name} exited unexpectedly (code ${code}, signal ${signal}); see ${join(dir, 'logs')}\n`);
        });
      }
    });
  } catch (e) {
    await shutdown(1);
    throw e;
  }
}
