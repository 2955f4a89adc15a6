// `hypersync keys …`: peer keys, the cluster key and join tokens. (Issue 6 adds
// `keys create|list|revoke` for API keys; these names stay free for it.)
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { base64urlEncode, crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam } from '../ico/admission.ts';
import { CLUSTER_ID_PATTERN, readClusterConfig, type ClusterConfig } from '../net/cluster-config.ts';
import { readKeyFile, writeKeyFile } from '../net/platform-node.ts';
import { duration, parse, required, str, UsageError } from './args.ts';

export const KEYS_HELP = `usage: hypersync keys <command> [options]

commands:
  gen --out FILE                     create a peer key (libp2p Ed25519, protobuf, mode 0600); prints its PeerId
  show --key FILE                    print the PeerId of a key file
  cluster-init --out DIR [--cluster ID] [--allow PEERID]...
                                     create DIR/cluster.key and DIR/cluster.json (id, public key, allowlist)
  join-token --cluster-key FILE [--cluster ID] [--peer PEERID|*] [--ttl 24h] [--json]
                                     print a join token signed by the cluster key (URL-fragment form,
                                     or the JSON token with --json); the cluster id defaults to the
                                     cluster.json beside the key (as cluster-init writes them)
`;

export async function keysCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(KEYS_HELP);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'gen': {
      const p = parse(rest, { out: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const path = required(p, 'out');
      const key = await generateKeyPair('Ed25519');
      await writeKeyFile(path, key);
      out(`${peerIdFromPrivateKey(key).toString()}\n`);
      return 0;
    }
    case 'show': {
      const p = parse(rest, { key: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const key = await readKeyFile(required(p, 'key'));
      out(`${peerIdFromPrivateKey(key).toString()}\n`);
      return 0;
    }
    case 'cluster-init': {
      const p = parse(rest, { out: { type: 'string' }, cluster: { type: 'string' }, allow: { type: 'string', multiple: true } });
      if (p.values['help'] === true) return help(out);
      const dir = required(p, 'out');
      const cluster = str(p, 'cluster') ?? 'devnet';
      if (!CLUSTER_ID_PATTERN.test(cluster)) throw new UsageError(`--cluster must match ${CLUSTER_ID_PATTERN}`);
      const allow = (p.values['allow'] as string[] | undefined) ?? [];
      const config = await initCluster(dir, cluster, allow);
      out(`${JSON.stringify(config, null, 2)}\n`);
      return 0;
    }
    case 'join-token': {
      const p = parse(rest, { 'cluster-key': { type: 'string' }, cluster: { type: 'string' }, peer: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } });
      if (p.values['help'] === true) return help(out);
      const ttl = duration(str(p, 'ttl') ?? '24h');
      const keyPath = required(p, 'cluster-key');
      const cluster = str(p, 'cluster') ?? (await clusterBeside(keyPath));
      const key = await readKeyFile(keyPath);
      const token = createJoinToken({
        clusterSigner: crypto.createSigner(seedFromLibp2pPrivateKey(key)),
        cluster,
        peer: str(p, 'peer') ?? '*',
        expires: new Date(Date.now() + ttl),
      });
      out(p.values['json'] === true ? `${JSON.stringify(token)}\n` : `${encodeJoinTokenParam(token)}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown keys command '${sub}'\n\n${KEYS_HELP}`);
  }

  function help(o: (s: string) => void): number {
    o(KEYS_HELP);
    return 0;
  }
}

/** The cluster id of the cluster.json that cluster-init wrote next to `keyPath`. */
async function clusterBeside(keyPath: string): Promise<string> {
  const path = join(dirname(keyPath), 'cluster.json');
  if (!existsSync(path)) throw new UsageError(`--cluster is required (no ${path} beside the cluster key)`);
  return (await readClusterConfig(path)).cluster;
}

/** Creates DIR/cluster.key and DIR/cluster.json; returns the config. */
export async function initCluster(dir: string, cluster: string, allowlist: string[]): Promise<ClusterConfig> {
  await mkdir(dir, { recursive: true });
  const key = await generateKeyPair('Ed25519');
  await writeKeyFile(join(dir, 'cluster.key'), key);
  const config: ClusterConfig = { cluster, clusterPublicKey: base64urlEncode(key.publicKey.raw), allowlist };
  await writeFile(join(dir, 'cluster.json'), `${JSON.stringify(config, null, 2)}\n`);
  return config;
}
