// Admission for real: a relay and `hypersync node` processes on loopback, with join tokens made
// by the CLI. A token admits one role only and only until it expires: the relay ends the session
// of a node whose token ran out (GOODBYE token-expired), refuses a node whose HELLO claims a role
// its token does not grant, and refuses a token the cluster revoked.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeJoinTokenParam } from '../../src/ico/admission.ts';
import { BIN, killAll, run, tempDir, type Proc } from '../harness/processes.ts';

/** The expiring token's lifetime: long enough for the node to start and be admitted on a loaded machine. */
const SHORT_TTL_S = 60;

const dir = tempDir('hypersync-admission-');
let configPath: string;
let relayAddr: string;

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' }).trim();
}

function newNodeDir(name: string): { dir: string; peerId: string } {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return { dir: d, peerId: cli('keys', 'gen', '--out', join(d, 'peer.key')) };
}

function startNode(name: string, nodeDir: string, token: string, role = 'voter'): Proc {
  return run(name, ['node', '--relay', relayAddr, '--data-dir', nodeDir, '--cluster-config', configPath, '--join-token', token, '--role', role, '--heartbeat-ms', '200', '--json-events']);
}

let revokedToken: string;
let relay: Proc;

before(async () => {
  const relayDir = join(dir, 'relay');
  mkdirSync(relayDir, { recursive: true });
  cli('keys', 'gen', '--out', join(relayDir, 'peer.key'));
  cli('keys', 'cluster-init', '--out', dir, '--cluster', 'admission');
  configPath = join(dir, 'cluster.json');
  // The cluster revokes one token by id (cluster.json `revokedTokens`, read at start).
  revokedToken = cli('keys', 'join-token', '--cluster-key', join(dir, 'cluster.key'), '--role', 'voter', '--ttl', '1h');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  config['revokedTokens'] = [decodeJoinTokenParam(revokedToken).id];
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  relay = run('relay', ['relay', '--cluster-config', configPath, '--data-dir', relayDir, '--port', '0', '--http-port', '0', '--insecure', '--heartbeat-ms', '200', '--json-events']);
  const ready = await relay.ready();
  relayAddr = (ready['multiaddrs'] as string[]).find((a) => a.includes('/ws')) as string;
});

after(async () => {
  await killAll();
});

test(`a node admitted by a ${SHORT_TTL_S} s token is cut off by the relay when the token expires (GOODBYE token-expired)`, { timeout: SHORT_TTL_S * 1000 + 120_000 }, async () => {
  const n = newNodeDir('expiring');
  const token = cli('keys', 'join-token', '--cluster-key', join(dir, 'cluster.key'), '--peer', n.peerId, '--role', 'voter', '--ttl', `${SHORT_TTL_S}s`);
  const expires = Date.parse(decodeJoinTokenParam(token).expires);
  const node = startNode('expiring', n.dir, token);
  // Admitted by the relay while the token is valid (the node's own established event only says it admitted the relay).
  await relay.waitFor((e) => e.type === 'peer:established' && (e['peer'] as { peerId?: string } | undefined)?.peerId === n.peerId, SHORT_TTL_S * 1000, 'the relay admitting the node');
  const bye = await node.waitFor((e) => e.type === 'peer:goodbye' && e['code'] === 'token-expired', SHORT_TTL_S * 1000 + 60_000, 'the relay ending the session at expiry');
  assert.ok(Date.parse(String(bye['at'])) >= expires, `ended at ${String(bye['at'])}, the token expired at ${new Date(expires).toISOString()}`);
});

test('a node whose HELLO claims a role its token does not grant is refused; so is a revoked token', { timeout: 120_000 }, async () => {
  const n = newNodeDir('wrong-role');
  const browserToken = cli('keys', 'join-token', '--cluster-key', join(dir, 'cluster.key'), '--peer', n.peerId, '--role', 'browser', '--ttl', '1h');
  const node = startNode('wrong-role', n.dir, browserToken, 'voter');
  const bye = await node.waitFor((e) => e.type === 'peer:goodbye' && e['code'] === 'not-admitted', 60_000, 'the refusal');
  assert.match(String(bye['reason']), /grants the role 'browser', not 'voter'/);
  // (The node itself admits the relay before the refusal arrives; the relay never admits it.)
  const admittedByRelay = (id: string): boolean => relay.events.some((e) => e.type === 'peer:established' && (e['peer'] as { peerId?: string } | undefined)?.peerId === id);
  assert.equal(admittedByRelay(n.peerId), false);

  const r = newNodeDir('revoked');
  const revoked = startNode('revoked', r.dir, revokedToken);
  const refused = await revoked.waitFor((e) => e.type === 'peer:goodbye' && e['code'] === 'not-admitted', 60_000, 'the refusal of a revoked token');
  assert.match(String(refused['reason']), /revoked/);
  assert.equal(admittedByRelay(r.peerId), false);
});
