// A relay and three Node peers, each its own process, on loopback: HELLO and admission,
// heartbeats, SIGKILL detected within three heartbeat intervals, GOODBYE on SIGTERM,
// refusal of a peer that is not admitted, and tampered frames dropped without harm.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { noise } from '@libp2p/noise';
import { yamux } from '@libp2p/yamux';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { identify } from '@libp2p/identify';
import { lpStream } from '@libp2p/utils';
import { initCluster } from '../../src/cli/keys.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { ICO_PROTOCOL } from '../../src/net/protocol.ts';
import { EnvelopeSealer } from '../../src/ico/envelope.ts';
import { ICO_VERSION } from '../../src/ico/types.ts';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { killAll, run, tempDir, type JsonEvent, type Proc } from '../harness/processes.ts';

const HEARTBEAT_MS = 300;
const dir = tempDir();
const configPath = join(dir, 'cluster.json');
let relay: Proc;
let relayAddr: string;
const nodes: Proc[] = [];
const nodeIds: string[] = [];

function established(p: Proc, peerId: string): (e: JsonEvent) => boolean {
  return (e) => e.type === 'peer:established' && (e['peer'] as { peerId: string }).peerId === peerId;
}

function startNode(name: string, dataDir: string, extra: string[] = []): Proc {
  return run(name, ['node', '--relay', relayAddr, '--data-dir', dataDir, '--cluster-config', configPath, '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events', ...extra]);
}

before(async () => {
  const ids: string[] = [];
  for (const name of ['relay', 'n1', 'n2', 'n3']) ids.push(peerIdFromPrivateKey(await loadOrCreateKey(join(dir, name))).toString());
  await initCluster(dir, 'itest', ids);
  relay = run('relay', ['relay', '--cluster-config', configPath, '--data-dir', join(dir, 'relay'), '--port', '0', '--http-port', '0', '--insecure', '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events']);
  const ready = await relay.ready();
  relayAddr = (ready['multiaddrs'] as string[])[0]!;
  nodeIds.push(...ids.slice(1));
  for (const name of ['n1', 'n2', 'n3']) nodes.push(startNode(name, join(dir, name)));
  await Promise.all(nodes.map((n) => n.ready()));
});

after(async () => {
  await killAll();
});

test('relay and three peers exchange HELLO, authenticate each other and heartbeat', async () => {
  for (const [i, node] of nodes.entries()) {
    await node.waitFor(established(node, relay.events[0]!['peerId'] as string), 20_000, 'relay established');
    for (const [j, other] of nodeIds.entries()) if (j !== i) await node.waitFor(established(node, other), 20_000, `peer ${other} established`);
  }
  // The HELLO each side received names the cluster and protocol version.
  const hello = nodes[0]!.events.find((e) => e.type === 'ico:in' && (e['envelope'] as { type: string }).type === 'HELLO');
  assert.ok(hello);
  const payload = (hello['envelope'] as { payload: { cluster: string; version: string } }).payload;
  assert.equal(payload.cluster, 'itest');
  assert.equal(payload.version, ICO_VERSION);
  const health = (await (await fetch(`${relay.events[0]!['http'] as string}/healthz`)).json()) as { status: string; peers: { established: number } };
  assert.equal(health.status, 'ok');
  assert.ok(health.peers.established >= 3);
});

test('a peer that is not admitted is refused with not-admitted', async () => {
  const outsiderDir = join(dir, 'outsider');
  const outsiderId = peerIdFromPrivateKey(await loadOrCreateKey(outsiderDir)).toString();
  const outsider = startNode('outsider', outsiderDir);
  await outsider.ready();
  const rejected = await outsider.waitFor((e) => e.type === 'peer:goodbye' || e.type === 'peer:rejected', 20_000, 'refusal');
  assert.equal(rejected['code'], 'not-admitted');
  await relay.waitFor((e) => e.type === 'peer:rejected' && e['peerId'] === outsiderId && e['code'] === 'ICO_NOT_ADMITTED', 10_000, 'relay refusal');
  assert.ok(!nodes[0]!.events.some(established(nodes[0]!, outsiderId)), 'nobody established a session with the outsider');
  outsider.child.kill('SIGKILL');
  await outsider.exited;
});

test('tampered and forged frames on a raw ICO stream are dropped and the node keeps running', async () => {
  const key = await generateKeyPair('Ed25519');
  const attacker = await createLibp2p({ privateKey: key, transports: [tcp(), webSockets()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() }, connectionGater: { denyDialMultiaddr: () => false } });
  await attacker.start();
  try {
    const target = nodes[0]!;
    const targetAddr = ((target.events[0]!['multiaddrs'] as string[]).find((a) => a.includes('/tcp/') && !a.includes('/ws') && !a.includes('p2p-circuit')))!;
    const stream = await attacker.dialProtocol(multiaddr(targetAddr), ICO_PROTOCOL);
    const lp = lpStream(stream);
    const attackerId = peerIdFromPrivateKey(key).toString();
    const sealer = new EnvelopeSealer({ signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), sender: attackerId });
    const enc = new TextEncoder();
    await lp.write(enc.encode('not json at all'));
    // Signed by the attacker but claiming to be another peer: the sender/Noise binding fails.
    const victim = new EnvelopeSealer({ signer: crypto.createSigner(crypto.randomBytes(32)), sender: nodeIds[1]! });
    await lp.write(victim.seal('HELLO', { x: 1 }, Date.now()).bytes);
    const good = sealer.seal('STATE_SYNC', { a: 1 }, Date.now());
    await lp.write(enc.encode(JSON.stringify({ ...good.envelope, payload: { a: 2 } })));
    await target.waitFor((e) => e.type === 'ico:dropped' && e['code'] === 'ICO_MALFORMED', 10_000, 'malformed drop');
    await target.waitFor((e) => e.type === 'ico:dropped' && e['code'] === 'ICO_SENDER_MISMATCH', 10_000, 'sender mismatch drop');
    await target.waitFor((e) => e.type === 'ico:dropped' && e['code'] === 'ICO_BAD_SIGNATURE', 10_000, 'bad signature drop');
    // Still alive and still heartbeating with its peers.
    const before = target.events.length;
    await target.waitFor((e) => target.events.indexOf(e) >= before, 10_000, 'activity after the attack').catch(() => undefined);
    assert.equal(target.child.exitCode, null);
  } finally {
    await attacker.stop();
  }
});

test('a frozen peer (SIGSTOP) is marked down by missed heartbeats, and up again after SIGCONT', async () => {
  const frozen = nodes[1]!;
  const frozenId = nodeIds[1]!;
  const observer = nodes[0]!;
  const from = observer.events.length;
  const stoppedAt = Date.now();
  frozen.child.kill('SIGSTOP');
  try {
    const down = await observer.waitFor((e) => observer.events.indexOf(e) >= from && e.type === 'peer:down' && e['peerId'] === frozenId, 3 * HEARTBEAT_MS + 3000, 'peer:down');
    const after = Date.parse(down['at'] as string) - stoppedAt;
    // Silence must exceed 3 intervals; the tick runs every interval/4, the last beat may be up to one interval old.
    assert.ok(after <= 3 * HEARTBEAT_MS + HEARTBEAT_MS / 4 + 300, `marked down after ${after} ms`);
  } finally {
    frozen.child.kill('SIGCONT');
  }
  await observer.waitFor((e) => observer.events.indexOf(e) >= from && e.type === 'peer:up' && e['peerId'] === frozenId, 10_000, 'peer:up');
});

test('a peer killed with SIGKILL is marked down within three heartbeat intervals', async () => {
  const victim = nodes[2]!;
  const victimId = nodeIds[2]!;
  const killedAt = Date.now();
  victim.child.kill('SIGKILL');
  await victim.exited;
  for (const node of nodes.slice(0, 2)) {
    const down = await node.waitFor((e) => e.type === 'peer:down' && e['peerId'] === victimId, 3 * HEARTBEAT_MS + 2000, 'peer:down');
    const at = Date.parse(down['at'] as string);
    assert.ok(at - killedAt <= 3 * HEARTBEAT_MS + 250, `marked down after ${at - killedAt} ms (limit ${3 * HEARTBEAT_MS} ms + scheduling)`);
  }
});

test('SIGTERM sends GOODBYE: the others see peer:goodbye with code shutdown', async () => {
  const leaving = nodes[1]!;
  const leavingId = nodeIds[1]!;
  leaving.child.kill('SIGTERM');
  const exit = await leaving.exited;
  assert.equal(exit.code, 0);
  await nodes[0]!.waitFor((e) => e.type === 'peer:goodbye' && e['peerId'] === leavingId && e['code'] === 'shutdown', 5000, 'goodbye');
  await relay.waitFor((e) => e.type === 'peer:goodbye' && e['peerId'] === leavingId, 5000, 'goodbye at relay');
});

test('a restarted peer keeps its PeerId and rejoins', async () => {
  const again = startNode('n2-again', join(dir, 'n2'));
  const ready = await again.ready();
  assert.equal(ready['peerId'], nodeIds[1]);
  await nodes[0]!.waitFor((e) => e.type === 'peer:established' && (e['peer'] as { peerId: string }).peerId === nodeIds[1] && nodes[0]!.events.indexOf(e) > nodes[0]!.events.findIndex((x) => x.type === 'peer:goodbye'), 20_000, 'reconnect');
});

test('when the relay drops and comes back on the same address, peers reconnect to it', async () => {
  // A relay on a fixed port, so its restart keeps the address the peer was given; the port is
  // one the OS just handed out, so parallel runs on the machine do not collide.
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
  const relayDir = join(dir, 'relay2');
  const peerDir = join(dir, 'n4');
  const relayId = peerIdFromPrivateKey(await loadOrCreateKey(relayDir)).toString();
  const peerId = peerIdFromPrivateKey(await loadOrCreateKey(peerDir)).toString();
  const { readFileSync, writeFileSync } = await import('node:fs');
  const cfg = join(dir, 'cluster-relay-restart.json');
  const base = JSON.parse(readFileSync(configPath, 'utf8')) as { allowlist: string[] };
  writeFileSync(cfg, JSON.stringify({ ...base, allowlist: [relayId, peerId] }));
  const startRelayProc = (): Proc => run('relay2', ['relay', '--cluster-config', cfg, '--data-dir', relayDir, '--port', String(port), '--http-port', '0', '--insecure', '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events']);
  const withRelay = (e: JsonEvent): boolean => e.type === 'peer:established' && (e['peer'] as { peerId: string }).peerId === relayId;
  let relay2 = startRelayProc();
  const addr = ((await relay2.ready())['multiaddrs'] as string[])[0]!;
  const peer = run('n4', ['node', '--relay', addr, '--data-dir', peerDir, '--cluster-config', cfg, '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events']);
  await peer.ready();
  await peer.waitFor(withRelay, 20_000, 'relay session');
  relay2.child.kill('SIGKILL');
  await relay2.exited;
  await peer.waitFor((e) => e.type === 'peer:down' && e['peerId'] === relayId, 10_000, 'relay marked down');
  const before = peer.events.length;
  relay2 = startRelayProc();
  await relay2.ready();
  await peer.waitFor((e) => peer.events.indexOf(e) >= before && withRelay(e), 30_000, 'relay session after the restart');
});
