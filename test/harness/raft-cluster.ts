// A real Raft cluster on loopback for tests and benches: one relay (a Raft learner serving the
// API) and N `hypersync node` voters, each its own process with its own LevelDB data dir.
// Keys and cluster.json are made with the CLI, as an operator would.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, Proc, run, tempDir, type JsonEvent } from './processes.ts';

export interface ClusterNode {
  name: string;
  peerId: string;
  dataDir: string;
  proc: Proc;
}

export interface RaftCluster {
  dir: string;
  configPath: string;
  relay: Proc;
  relayAddr: string;
  /** Starts the relay again on the same ports, identity and data dir (after it was killed). */
  restartRelay(): Promise<Proc>;
  api: string;
  /** Bearer token the relay API accepts (execute + read). */
  token: string;
  nodes: ClusterNode[];
  /** (Re)starts node i with the same identity and data dir. */
  startNode(i: number): Promise<ClusterNode>;
}

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' }).trim();
}

export interface ClusterOptions {
  voters?: number;
  snapshotEvery?: number;
  tickMs?: number;
  /** Extra relay flags (e.g. TLS once the API needs it). */
  relayArgs?: string[];
  /** Extra flags for every node (e.g. `--wire json`). */
  nodeArgs?: string[];
  /** How long a (re)started process gets to print its ready line (default 30 s). */
  readyTimeoutMs?: number;
}

export async function startRaftCluster(o: ClusterOptions = {}): Promise<RaftCluster> {
  const dir = tempDir('hypersync-raft-');
  const count = o.voters ?? 3;
  const relayDir = join(dir, 'relay');
  const nodeDirs = Array.from({ length: count }, (_, i) => join(dir, `node-${i + 1}`));
  for (const d of [relayDir, ...nodeDirs]) mkdirSync(d, { recursive: true });
  const relayId = cli('keys', 'gen', '--out', join(relayDir, 'peer.key'));
  const ids = nodeDirs.map((d) => cli('keys', 'gen', '--out', join(d, 'peer.key')));
  cli('keys', 'cluster-init', '--out', dir, '--cluster', 'raft-test', ...[relayId, ...ids].flatMap((id) => ['--allow', id]));
  const configPath = join(dir, 'cluster.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  config['raft'] = { voters: ids, learners: [relayId] };
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  // Plain HTTP on loopback keeps the load generators simple; TLS is covered by the API tests.
  const token = `t-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const relayArgs = (port: string, httpPort: string): string[] => ['relay', '--cluster-config', configPath, '--data-dir', relayDir, '--port', port, '--http-port', httpPort, '--insecure', '--token-file', join(dir, 'token'), '--json-events', ...(o.tickMs !== undefined ? ['--raft-tick-ms', String(o.tickMs)] : []), ...(o.relayArgs ?? [])];
  const relay = run('relay', relayArgs('0', '0'));
  const ready = await relay.ready(o.readyTimeoutMs);
  const relayAddr = (ready['multiaddrs'] as string[]).find((a) => a.includes('/ws')) as string;
  const api = ready['http'] as string;
  tokens.set(api, token);
  const restartRelay = async (): Promise<Proc> => {
    const wsPort = /\/tcp\/(\d+)\/ws/.exec(relayAddr)?.[1] as string;
    const httpPort = new URL(api).port;
    const again = run('relay', relayArgs(wsPort, httpPort));
    await again.ready(o.readyTimeoutMs);
    cluster.relay = again;
    return again;
  };
  const nodes: ClusterNode[] = [];
  const startNode = async (i: number): Promise<ClusterNode> => {
    const args = ['node', '--relay', relayAddr, '--data-dir', nodeDirs[i] as string, '--cluster-config', configPath, '--snapshot-every', String(o.snapshotEvery ?? 10_000), '--json-events'];
    if (o.tickMs !== undefined) args.push('--tick-ms', String(o.tickMs));
    args.push(...(o.nodeArgs ?? []));
    const proc = run(`node-${i + 1}`, args);
    await proc.ready(o.readyTimeoutMs);
    const n: ClusterNode = { name: `node-${i + 1}`, peerId: ids[i] as string, dataDir: nodeDirs[i] as string, proc };
    nodes[i] = n;
    return n;
  };
  await Promise.all(nodeDirs.map((_, i) => startNode(i)));
  const cluster: RaftCluster = { dir, configPath, relay, relayAddr, restartRelay, api, token, nodes, startNode };
  return cluster;
}

const tokens = new Map<string, string>();

function authHeaders(api: string): Record<string, string> {
  const t = tokens.get(api);
  return t === undefined ? {} : { authorization: `Bearer ${t}` };
}

/** The latest `raft:status` line a node printed, if any. */
export function lastStatus(p: Proc): JsonEvent | undefined {
  for (let i = p.events.length - 1; i >= 0; i--) if (p.events[i]?.type === 'raft:status') return p.events[i];
  return undefined;
}

export interface ExecuteReply {
  httpStatus: number;
  body: { status: string; outputs?: unknown; receipt_id?: string | null; replayed?: boolean; error?: { code: string; message: string } };
}

/** POST /api/v1/operators/execute; network errors come back as httpStatus 0. */
export async function execute(api: string, operator_id: string, inputs: unknown, options: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<ExecuteReply> {
  try {
    const r = await fetch(`${api}/api/v1/operators/execute`, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(api), ...headers }, body: JSON.stringify({ operator_id, inputs, options }) });
    return { httpStatus: r.status, body: (await r.json()) as ExecuteReply['body'] };
  } catch (e) {
    return { httpStatus: 0, body: { status: 'error', error: { code: 'NETWORK', message: (e as Error).message } } };
  }
}

export async function clusterStatus(api: string): Promise<{ leader: string | null; term: number; commit_index: number; applied_index: number; members: Array<{ peerId: string; role: string }> }> {
  const r = await fetch(`${api}/api/v1/cluster`, { headers: authHeaders(api) });
  return (await r.json()) as Awaited<ReturnType<typeof clusterStatus>>;
}

/** Polls until `pred` holds (bounded). */
export async function until<T>(what: string, fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (pred(last)) return last;
    } catch {
      // not reachable yet
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
}
