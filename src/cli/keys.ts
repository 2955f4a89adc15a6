// `hypersync keys …`: peer keys, the cluster key, join tokens, and the relay API's keys
// (`create|list|revoke` on a keys file that stores only sha256 hashes; a secret is printed once).
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { base64urlEncode, crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { createJoinToken, encodeJoinTokenParam, JOIN_TOKEN_ROLES, MAX_JOIN_TOKEN_LIFETIME_MS } from '../ico/admission.ts';
import type { PeerRole } from '../ico/types.ts';
import { CLUSTER_ID_PATTERN, readClusterConfig, type ClusterConfig } from '../net/cluster-config.ts';
import { readKeyFile, writeKeyFile } from '../net/platform-node.ts';
import {
  addCertificateMapping, createApiKey, KeysFileError, parseScopes, readKeysFile, removeCertificateMapping, revokeApiKey, revokeCertificateSerial,
} from '../../relay/api/keys-file.ts';
import { duration, parse, required, str, UsageError } from './args.ts';

export const KEYS_HELP = `usage: hypersync keys <command> [options]

commands:
  gen --out FILE                     create a peer key (libp2p Ed25519, protobuf, mode 0600); prints its PeerId
  show --key FILE                    print the PeerId of a key file
  cluster-init --out DIR [--cluster ID] [--allow PEERID]...
                                     create DIR/cluster.key and DIR/cluster.json (id, public key, allowlist)
  join-token --cluster-key FILE [--cluster ID] [--peer PEERID|*] [--role browser|voter|learner]
             [--ttl 24h] [--json]    print a join token signed by the cluster key, granting one role
                                     (default browser) for at most 168h (URL-fragment form,
                                     or the JSON token with --json); the cluster id defaults to the
                                     cluster.json beside the key (as cluster-init writes them)
  create --keys-file FILE --name NAME [--scopes execute,read] [--json]
                                     add a relay API key; prints its secret ONCE (only a hash is stored);
                                     scopes: execute, read, audit (every principal's outputs)
  list --keys-file FILE [--json]     list API keys (id, name, scopes, created, revoked); never secrets
  revoke --keys-file FILE --id ID    revoke an API key; a running relay stops accepting it within ~1 s
  cert-add --keys-file FILE --name NAME --match cn:CN|dns:NAME|email:ADDR|uri:URI|ip:ADDR
           [--scopes execute,read]   map client certificates (verified by the relay's --tls-ca) whose
                                     subject CN or SAN matches to the principal cert:NAME; an
                                     unmapped certificate has no scopes
  cert-list --keys-file FILE [--json]
                                     list certificate mappings and revoked certificate serials
  cert-remove --keys-file FILE --name NAME
                                     remove a certificate mapping
  cert-revoke --keys-file FILE (--serial HEX | --cert FILE)
                                     refuse a certificate by serial, mapped or not; a running relay
                                     refuses it within ~1 s
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
      const p = parse(rest, { 'cluster-key': { type: 'string' }, cluster: { type: 'string' }, peer: { type: 'string' }, role: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } });
      if (p.values['help'] === true) return help(out);
      const ttl = duration(str(p, 'ttl') ?? '24h');
      if (ttl > MAX_JOIN_TOKEN_LIFETIME_MS) throw new UsageError(`--ttl: a join token lives at most ${MAX_JOIN_TOKEN_LIFETIME_MS / 3_600_000}h`);
      const role = str(p, 'role') ?? 'browser';
      if (!(JOIN_TOKEN_ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${JOIN_TOKEN_ROLES.join(', ')}`);
      const keyPath = required(p, 'cluster-key');
      const cluster = str(p, 'cluster') ?? (await clusterBeside(keyPath));
      const key = await readKeyFile(keyPath);
      const token = createJoinToken({
        clusterSigner: crypto.createSigner(seedFromLibp2pPrivateKey(key)),
        cluster,
        peer: str(p, 'peer') ?? '*',
        role: role as PeerRole,
        ttlMs: ttl,
      });
      out(p.values['json'] === true ? `${JSON.stringify(token)}\n` : `${encodeJoinTokenParam(token)}\n`);
      return 0;
    }
    case 'create': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, json: { type: 'boolean' } });
      if (p.values['help'] === true) return help(out);
      const file = required(p, 'keys-file');
      const name = required(p, 'name');
      const scopes = apiKeyCall(() => parseScopes(str(p, 'scopes') ?? 'execute,read'));
      const { entry, secret } = await createApiKey(file, name, scopes).catch(rethrowKeysError);
      if (p.values['json'] === true) out(`${JSON.stringify({ id: entry.id, name: entry.name, scopes: entry.scopes, created: entry.created, secret })}\n`);
      else out(`${secret}\n`);
      process.stderr.write(`created API key ${entry.id} (${entry.name}; scopes ${entry.scopes.join(',')}). The secret above is shown only once.\n`);
      return 0;
    }
    case 'list': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, json: { type: 'boolean' } });
      if (p.values['help'] === true) return help(out);
      const file = await readKeysFile(required(p, 'keys-file')).catch(rethrowKeysError);
      const rows = file.keys.map((k) => ({ id: k.id, name: k.name, scopes: k.scopes, created: k.created, revoked: k.revoked ?? null }));
      if (p.values['json'] === true) {
        out(`${JSON.stringify(rows)}\n`);
        return 0;
      }
      out(`${['ID', 'NAME', 'SCOPES', 'CREATED', 'REVOKED'].join('\t')}\n`);
      for (const r of rows) out(`${[r.id, r.name, r.scopes.join(','), r.created, r.revoked ?? '-'].join('\t')}\n`);
      return 0;
    }
    case 'cert-list': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, json: { type: 'boolean' } });
      if (p.values['help'] === true) return help(out);
      const file = await readKeysFile(required(p, 'keys-file')).catch(rethrowKeysError);
      if (p.values['json'] === true) {
        out(`${JSON.stringify({ certificates: file.certificates, revoked_serials: file.revoked_serials })}\n`);
        return 0;
      }
      out(`${['PRINCIPAL', 'MATCH', 'SCOPES', 'CREATED'].join('\t')}\n`);
      for (const c of file.certificates) out(`${[`cert:${c.name}`, c.match, c.scopes.join(','), c.created].join('\t')}\n`);
      out(`\n${['REVOKED SERIAL', 'REVOKED'].join('\t')}\n`);
      for (const r of file.revoked_serials) out(`${r.serial}\t${r.revoked}\n`);
      return 0;
    }
    case 'revoke': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, id: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const file = required(p, 'keys-file');
      const entry = await revokeApiKey(file, required(p, 'id')).catch(rethrowKeysError);
      out(`revoked ${entry.id} (${entry.name}) at ${entry.revoked ?? ''}\n`);
      return 0;
    }
    case 'cert-add': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, name: { type: 'string' }, match: { type: 'string' }, scopes: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const file = required(p, 'keys-file');
      const scopes = apiKeyCall(() => parseScopes(str(p, 'scopes') ?? 'execute,read'));
      const entry = await addCertificateMapping(file, { name: required(p, 'name'), match: required(p, 'match'), scopes }).catch(rethrowKeysError);
      out(`mapped certificates matching ${entry.match} to cert:${entry.name} (scopes ${entry.scopes.join(',')})\n`);
      return 0;
    }
    case 'cert-remove': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, name: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const entry = await removeCertificateMapping(required(p, 'keys-file'), required(p, 'name')).catch(rethrowKeysError);
      out(`removed cert:${entry.name} (${entry.match})\n`);
      return 0;
    }
    case 'cert-revoke': {
      const p = parse(rest, { 'keys-file': { type: 'string' }, serial: { type: 'string' }, cert: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const file = required(p, 'keys-file');
      const serial = str(p, 'serial');
      const certPath = str(p, 'cert');
      if ((serial === undefined) === (certPath === undefined)) throw new UsageError('give exactly one of --serial HEX or --cert FILE');
      const entry = await revokeCertificateSerial(file, serial ?? (await serialOfCertificateFile(certPath ?? ''))).catch(rethrowKeysError);
      out(`revoked certificate serial ${entry.serial} at ${entry.revoked}\n`);
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

/** A bad scope list or key name is the user's typo: a usage error (exit 2). */
function apiKeyCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KeysFileError && e.code === 'KEY_INVALID') throw new UsageError(e.message);
    throw e;
  }
}

function rethrowKeysError(e: unknown): never {
  if (e instanceof KeysFileError && (e.code === 'KEY_INVALID' || e.code === 'KEY_NOT_FOUND')) throw new UsageError(e.message);
  throw e;
}

/** The serial number of the (first) certificate in a PEM file. */
async function serialOfCertificateFile(path: string): Promise<string> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw new UsageError(`cannot read --cert ${path}: ${(e as Error).message}`);
  }
  try {
    return new X509Certificate(pem).serialNumber;
  } catch (e) {
    throw new UsageError(`--cert ${path} is not a PEM certificate: ${(e as Error).message}`);
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
