// The cluster configuration file every process of a cluster reads (`--cluster-config`):
// cluster id, the cluster's public key (verifies join tokens) and the allowlist of PeerIds.
// Node-only (reads a file); validated strictly with readable errors.
import { readFile } from 'node:fs/promises';
import { base64urlDecode, publicKeyFromPeerId } from '../crypto/index.ts';

export interface ClusterConfig {
  cluster: string;
  /** base64url of the raw 32-byte ed25519 cluster public key. */
  clusterPublicKey: string;
  allowlist: string[];
  /** Initial Raft membership (PeerIds); absent: the cluster runs no Raft group. */
  raft?: { voters: string[]; learners: string[] };
  /**
   * PBFT replicas (PeerIds, in protocol order: the primary of view v is replicas[v mod n]),
   * n = 3f + 1; absent: the cluster runs no PBFT group. Signatures are scoped to `cluster`.
   */
  pbft?: { replicas: string[] };
  /** Sync conflict policies by key prefix (`lww`, `max`, `min`, `union`, `manual`), on top of the built-in table. */
  sync?: { policies: Record<string, string> };
  /** Ids of join tokens the cluster revoked: they admit no one (read at start). */
  revokedTokens?: string[];
}

/** Revoked token ids a cluster.json may list. */
export const MAX_REVOKED_TOKENS = 10_000;

const SYNC_POLICY_NAMES = ['lww', 'max', 'min', 'union', 'manual'];

export class ClusterConfigError extends Error {
  readonly code = 'CLUSTER_CONFIG_INVALID';
  override name = 'ClusterConfigError';
}

export const CLUSTER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function parseClusterConfig(value: unknown, source = 'cluster config'): ClusterConfig {
  if (typeof value !== 'object' || value === null) throw new ClusterConfigError(`${source}: must be a JSON object`);
  const { cluster, clusterPublicKey, allowlist, raft, sync, pbft, revokedTokens } = value as Record<string, unknown>;
  if (typeof cluster !== 'string' || !CLUSTER_ID_PATTERN.test(cluster)) throw new ClusterConfigError(`${source}: 'cluster' must match ${CLUSTER_ID_PATTERN}`);
  if (typeof clusterPublicKey !== 'string') throw new ClusterConfigError(`${source}: 'clusterPublicKey' must be base64url`);
  try {
    if (base64urlDecode(clusterPublicKey).length !== 32) throw new Error('length');
  } catch {
    throw new ClusterConfigError(`${source}: 'clusterPublicKey' must be 32 bytes of base64url`);
  }
  if (!Array.isArray(allowlist)) throw new ClusterConfigError(`${source}: 'allowlist' must be an array of PeerIds`);
  for (const id of allowlist) {
    try {
      if (typeof id !== 'string') throw new Error('type');
      publicKeyFromPeerId(id);
    } catch {
      throw new ClusterConfigError(`${source}: allowlist entry ${JSON.stringify(id).slice(0, 60)} is not an ed25519 PeerId`);
    }
  }
  const out: ClusterConfig = { cluster, clusterPublicKey, allowlist: allowlist as string[] };
  if (raft !== undefined) out.raft = parseRaftMembers(raft, source);
  if (pbft !== undefined) out.pbft = parsePbftReplicas(pbft, source);
  if (revokedTokens !== undefined) {
    if (!Array.isArray(revokedTokens) || revokedTokens.length > MAX_REVOKED_TOKENS || !revokedTokens.every((id) => typeof id === 'string' && /^[A-Za-z0-9_-]{8,64}$/.test(id))) {
      throw new ClusterConfigError(`${source}: 'revokedTokens' must list at most ${MAX_REVOKED_TOKENS} join token ids`);
    }
    out.revokedTokens = revokedTokens as string[];
  }
  if (sync !== undefined) {
    const policies = (sync as { policies?: unknown } | null)?.policies;
    if (typeof policies !== 'object' || policies === null || Array.isArray(policies)) throw new ClusterConfigError(`${source}: 'sync' must be {policies: {prefix: policy}}`);
    for (const [prefix, name] of Object.entries(policies)) {
      if (typeof name !== 'string' || !SYNC_POLICY_NAMES.includes(name) || prefix.length > 256) {
        throw new ClusterConfigError(`${source}: sync policy for ${JSON.stringify(prefix).slice(0, 60)} must be one of ${SYNC_POLICY_NAMES.join(', ')}`);
      }
    }
    out.sync = { policies: policies as Record<string, string> };
  }
  return out;
}

function parseRaftMembers(raft: unknown, source: string): { voters: string[]; learners: string[] } {
  if (typeof raft !== 'object' || raft === null) throw new ClusterConfigError(`${source}: 'raft' must be {voters: [PeerId], learners: [PeerId]}`);
  const { voters, learners = [] } = raft as Record<string, unknown>;
  const list = (v: unknown, name: string): string[] => {
    if (!Array.isArray(v)) throw new ClusterConfigError(`${source}: 'raft.${name}' must be an array of PeerIds`);
    for (const id of v) {
      try {
        if (typeof id !== 'string') throw new Error('type');
        publicKeyFromPeerId(id);
      } catch {
        throw new ClusterConfigError(`${source}: raft.${name} entry ${JSON.stringify(id).slice(0, 60)} is not an ed25519 PeerId`);
      }
    }
    return v as string[];
  };
  const v = list(voters, 'voters');
  const l = list(learners, 'learners');
  if (v.length === 0) throw new ClusterConfigError(`${source}: 'raft.voters' must not be empty`);
  if (new Set([...v, ...l]).size !== v.length + l.length) throw new ClusterConfigError(`${source}: a raft member is listed twice`);
  return { voters: v, learners: l };
}

function parsePbftReplicas(pbft: unknown, source: string): { replicas: string[] } {
  const replicas = (pbft as { replicas?: unknown } | null)?.replicas;
  if (!Array.isArray(replicas)) throw new ClusterConfigError(`${source}: 'pbft' must be {replicas: [PeerId]}`);
  for (const id of replicas) {
    try {
      if (typeof id !== 'string') throw new Error('type');
      publicKeyFromPeerId(id);
    } catch {
      throw new ClusterConfigError(`${source}: pbft.replicas entry ${JSON.stringify(id).slice(0, 60)} is not an ed25519 PeerId`);
    }
  }
  const n = replicas.length;
  if (n < 4 || (n - 1) % 3 !== 0 || n > 64) throw new ClusterConfigError(`${source}: 'pbft.replicas' must hold n = 3f + 1 PeerIds (4, 7, 10, ... up to 64), got ${n}`);
  if (new Set(replicas).size !== n) throw new ClusterConfigError(`${source}: a pbft replica is listed twice`);
  return { replicas: replicas as string[] };
}

export async function readClusterConfig(path: string): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ClusterConfigError(`cannot read cluster config ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ClusterConfigError(`${path}: not valid JSON`);
  }
  return parseClusterConfig(value, path);
}
