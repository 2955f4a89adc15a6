// The wire edges of a running peer, seen from outside its process: application messages
// (direct stream and gossipsub) arrive signed and attributed, frames at and over the 1 MiB
// limit, replayed frames, a peer that only sends garbage is hung up on, the relay's
// discovery reply, and the relay's HTTP error shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { byteStream, lpStream } from '@libp2p/utils';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import type { PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { Uint8ArrayList } from 'uint8arraylist';
import { initCluster } from '../../src/cli/keys.ts';
import { base64urlDecode, crypto, seedFromLibp2pPrivateKey, varint } from '../../src/crypto/index.ts';
import { EnvelopeSealer } from '../../src/ico/envelope.ts';
import { DEFAULT_CODEC_LIMITS } from '../../src/ico/types.ts';
import { ADMISSION_WAIT_MS, MAX_PENDING_SENDS, NoSubscribersError, SendQueueFullError, startPeer, type HyperSyncPeer, type PeerEvent } from '../../src/net/index.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { DISCOVERY_PROTOCOL, ICO_PROTOCOL, MAX_BAD_FRAMES_PER_PEER, MAX_DISCOVERY_BYTES, parseDiscoveryReply, readJsonFrame } from '../../src/net/protocol.ts';
import { killAll, run, tempDir, type JsonEvent, type Proc } from '../harness/processes.ts';

const HEARTBEAT_MS = 300;
// The in-process peer's info logs would drown the test report.
process.env['HYPERSYNC_LOG'] ??= 'warn';
const dir = tempDir();
const configPath = join(dir, 'cluster.json');
/** The relay's API token: its status (peers, addresses) needs the read scope. */
const API_TOKEN = 'net-wire-api-token-0123456789';
const tokenPath = join(dir, 'api-token');
let relay: Proc;
let relayAddr: string;
let relayHttp: string;
let node: Proc;
let nodeId: string;
let nodeTcp: string;
let meKey: PrivateKey;
let me: HyperSyncPeer;
let relayId: string;
/** Everything `me` emitted, from startPeer's `onEvent` option. */
const meEvents: PeerEvent[] = [];
const attackers: Libp2p[] = [];

/** Resolves when `peer` emits an event matching `pred`, or rejects after `timeoutMs`. */
function nextEvent(peer: HyperSyncPeer, pred: (e: PeerEvent) => boolean, timeoutMs: number, what: string): Promise<PeerEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = peer.on('*', (e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

async function attacker(): Promise<{ libp2p: Libp2p; key: PrivateKey; id: string; stream: () => Promise<Stream> }> {
  const key = await generateKeyPair('Ed25519');
  const libp2p = await createLibp2p({ privateKey: key, transports: [tcp(), webSockets()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() }, connectionGater: { denyDialMultiaddr: () => false } });
  attackers.push(libp2p);
  return { libp2p, key, id: peerIdFromPrivateKey(key).toString(), stream: () => libp2p.dialProtocol(multiaddr(nodeTcp), ICO_PROTOCOL) };
}

function droppedBy(from: string, code: string): (e: JsonEvent) => boolean {
  return (e) => e.type === 'ico:dropped' && e['peerId'] === from && e['code'] === code;
}

before(async () => {
  meKey = await generateKeyPair('Ed25519');
  relayId = peerIdFromPrivateKey(await loadOrCreateKey(join(dir, 'relay'))).toString();
  nodeId = peerIdFromPrivateKey(await loadOrCreateKey(join(dir, 'n1'))).toString();
  const config = await initCluster(dir, 'wire', [relayId, nodeId, peerIdFromPrivateKey(meKey).toString()]);
  writeFileSync(tokenPath, `${API_TOKEN}\n`, { mode: 0o600 });
  relay = run('relay', ['relay', '--cluster-config', configPath, '--data-dir', join(dir, 'relay'), '--port', '0', '--http-port', '0', '--insecure', '--token-file', tokenPath, '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events']);
  const ready = await relay.ready();
  relayAddr = (ready['multiaddrs'] as string[])[0]!;
  relayHttp = ready['http'] as string;
  node = run('n1', ['node', '--relay', relayAddr, '--data-dir', join(dir, 'n1'), '--cluster-config', configPath, '--heartbeat-ms', String(HEARTBEAT_MS), '--json-events']);
  const nodeReady = await node.ready();
  nodeTcp = (nodeReady['multiaddrs'] as string[]).find((a) => a.includes('/tcp/') && !a.includes('/ws') && !a.includes('p2p-circuit'))!;
  // This test process is a third peer (TCP only: one WebRTC stack per process is enough).
  me = await startPeer({
    cluster: config.cluster,
    roles: ['learner'],
    relays: [relayAddr],
    allowlist: config.allowlist,
    clusterPublicKey: base64urlDecode(config.clusterPublicKey),
    privateKey: meKey,
    heartbeatMs: HEARTBEAT_MS,
    listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'],
    onEvent: (e) => meEvents.push(e),
  });
  const established = me.peers().some((p) => p.peerId === nodeId && p.state === 'established');
  if (!established) await nextEvent(me, (e) => e.type === 'peer:established' && e.peer.peerId === nodeId, 20_000, 'session with n1');
});

after(async () => {
  await Promise.all(attackers.map(async (a) => a.stop()));
  await me?.stop();
  await killAll();
});

test("startPeer's onEvent sees the first session from its start: the relay's HELLO, then peer:established", () => {
  // A handler attached with on() once startPeer resolves can come too late: the web app lost a
  // relay HELLO that way (its sync service opened in between).
  const helloAt = meEvents.findIndex((e) => e.type === 'ico:in' && e.envelope.type === 'HELLO' && e.envelope.sender === relayId);
  const upAt = meEvents.findIndex((e) => e.type === 'peer:established' && e.peer.peerId === relayId);
  assert.ok(helloAt >= 0, `the relay's HELLO is among ${meEvents.length} events: ${meEvents.map((e) => e.type).join(', ')}`);
  assert.ok(upAt > helloAt, `peer:established (${upAt}) follows the HELLO (${helloAt})`);
  const outAt = meEvents.findIndex((e) => e.type === 'ico:out' && e.envelope.type === 'HELLO' && e.to === relayId);
  assert.ok(outAt >= 0, 'our own HELLO to the relay is seen too');
});

test('send() delivers a signed STATE_SYNC on the direct stream, attributed to the sender', async () => {
  await me.send(nodeId, 'STATE_SYNC', { probe: 'direct', n: 1 });
  const got = await node.waitFor((e) => e.type === 'ico:in' && (e['envelope'] as { type: string; payload: { probe?: string } }).payload.probe === 'direct', 10_000, 'direct STATE_SYNC');
  const env = got['envelope'] as { type: string; sender: string; signature: string; seq: number };
  assert.equal(env.type, 'STATE_SYNC');
  assert.equal(env.sender, me.peerId);
  assert.match(env.signature, /^[A-Za-z0-9_-]{86}$/);
});

test(`send() beyond ${MAX_PENDING_SENDS} envelopes waiting for one peer fails fast; every accepted one arrives`, async () => {
  const total = MAX_PENDING_SENDS * 3;
  const results = await Promise.allSettled(Array.from({ length: total }, (_, i) => me.send(nodeId, 'STATE_SYNC', { probe: 'burst', i })));
  const accepted = results.filter((r) => r.status === 'fulfilled').length;
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.ok(accepted >= MAX_PENDING_SENDS, `${accepted} accepted`);
  assert.ok(refused.length > 0, 'some sends were refused');
  assert.ok(refused.every((r) => r.reason instanceof SendQueueFullError && r.reason.code === 'NET_SEND_QUEUE_FULL'), 'refusals are SendQueueFullError');
  const isBurst = (e: JsonEvent): boolean => e.type === 'ico:in' && (e['envelope'] as { payload: { probe?: string } }).payload.probe === 'burst';
  await node.waitFor(() => node.events.filter(isBurst).length >= accepted, 20_000, `${accepted} burst envelopes`);
  assert.equal(node.events.filter(isBurst).length, accepted);
  assert.ok(!node.events.some((e) => e.type === 'ico:dropped' && e['peerId'] === me.peerId), 'none dropped (no replay-window trouble)');
});

test('broadcast() reaches the node over the cluster gossipsub topic', async () => {
  // Subscriptions propagate asynchronously: retry (bounded) while nobody is subscribed yet.
  for (let attempt = 0; ; attempt++) {
    try {
      await me.broadcast('CONSENSUS', { probe: 'gossip' });
      break;
    } catch (e) {
      if (!(e instanceof NoSubscribersError) || attempt >= 50) throw e;
      await nextEvent(me, () => true, 500, 'any event').catch(() => undefined);
    }
  }
  const got = await node.waitFor((e) => e.type === 'ico:in' && (e['envelope'] as { payload: { probe?: string } }).payload.probe === 'gossip', 10_000, 'gossiped CONSENSUS');
  assert.equal((got['envelope'] as { sender: string }).sender, me.peerId);
});

test('broadcast() with no subscriber is a NoSubscribersError, not a gossipsub crash', async () => {
  const lonely = await startPeer({ cluster: 'wire', roles: ['learner'], relays: [], allowlist: [], listen: ['/ip4/127.0.0.1/tcp/0'] });
  try {
    await assert.rejects(lonely.broadcast('STATE_SYNC', { x: 1 }), (e: unknown) => e instanceof NoSubscribersError && e.code === 'NET_NO_SUBSCRIBERS');
  } finally {
    await lonely.stop();
  }
});

test('a frame of exactly 1 MiB is read and judged by the codec; one byte more is dropped unread', async () => {
  const a = await attacker();
  const limit = DEFAULT_CODEC_LIMITS.maxFrameBytes;
  const atLimit = await a.stream();
  await lpStream(atLimit).write(new Uint8Array(limit).fill(0x20));
  // At the limit the frame passes the size check and fails as JSON.
  await node.waitFor(droppedBy(a.id, 'ICO_MALFORMED'), 15_000, 'malformed 1 MiB frame');
  const over = await a.stream();
  // Only the length prefix: the node must refuse before waiting for (or buffering) the body.
  await byteStream(over).write(new Uint8ArrayList(varint(limit + 1)));
  await node.waitFor(droppedBy(a.id, 'ICO_FRAME_TOO_LARGE'), 10_000, 'oversize frame');
  // A length prefix longer than any allowed length is the same rejection.
  const huge = await a.stream();
  const before = node.events.filter(droppedBy(a.id, 'ICO_FRAME_TOO_LARGE')).length;
  await byteStream(huge).write(new Uint8ArrayList(varint(2 ** 40)));
  await node.waitFor((e) => droppedBy(a.id, 'ICO_FRAME_TOO_LARGE')(e) && node.events.filter(droppedBy(a.id, 'ICO_FRAME_TOO_LARGE')).length > before, 10_000, 'oversize length prefix');
  assert.equal(node.child.exitCode, null);
});

test('the same signed frame sent twice is dropped the second time as a replay', async () => {
  const a = await attacker();
  const sealer = new EnvelopeSealer({ signer: crypto.createSigner(seedFromLibp2pPrivateKey(a.key)), sender: a.id });
  const { bytes } = sealer.seal('HELLO', { version: '1.0', cluster: 'wire', roles: ['voter'], capabilities: [], tree_head: null, join_token: null, heartbeat_ms: HEARTBEAT_MS }, Date.now());
  const lp = lpStream(await a.stream());
  await lp.write(bytes);
  await lp.write(bytes);
  await node.waitFor(droppedBy(a.id, 'ICO_REPLAYED'), 10_000, 'replay drop');
  // The one valid copy was judged on its merits: this peer is not admitted.
  await node.waitFor((e) => e.type === 'peer:rejected' && e['peerId'] === a.id, 10_000, 'rejection');
});

test(`a peer that sends more than ${MAX_BAD_FRAMES_PER_PEER} invalid frames is disconnected, and the score survives a redial`, async () => {
  const a = await attacker();
  const malformed = (): number => node.events.filter(droppedBy(a.id, 'ICO_MALFORMED')).length;
  /** Resolves at the attacker's next connection close by the node (registered before dialing). */
  const nextClose = (what: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        a.libp2p.removeEventListener('connection:close', onClose);
        reject(new Error(`node did not hang up ${what}`));
      }, 10_000);
      const onClose = (evt: CustomEvent<{ remotePeer: { toString(): string } }>): void => {
        if (evt.detail.remotePeer.toString() !== nodeId) return;
        clearTimeout(timer);
        a.libp2p.removeEventListener('connection:close', onClose);
        resolve();
      };
      a.libp2p.addEventListener('connection:close', onClose);
    });
  const closed = nextClose('after the limit');
  const lp = lpStream(await a.stream());
  const junk = new TextEncoder().encode('{"not":"an envelope"}');
  // Every frame up to the limit is written before the node can have a reason to hang up.
  for (let i = 0; i < MAX_BAD_FRAMES_PER_PEER; i++) await lp.write(junk);
  await lp.write(junk).catch(() => undefined);
  await closed;
  // The node's events come over its stdout, the hang-up over TCP: the two race each other
  // into this process, so wait for the count instead of reading it at the close.
  await node.waitFor(() => malformed() >= MAX_BAD_FRAMES_PER_PEER + 1, 10_000, `${MAX_BAD_FRAMES_PER_PEER + 1} malformed-frame drops`);
  assert.equal(malformed(), MAX_BAD_FRAMES_PER_PEER + 1);
  // The score outlives the connection: one more bad frame after redialing is enough.
  const again = nextClose('again after the redial');
  await lpStream(await a.stream()).write(junk);
  await again;
  await node.waitFor(() => malformed() >= MAX_BAD_FRAMES_PER_PEER + 2, 10_000, 'the drop of the frame sent after the redial');
  assert.equal(malformed(), MAX_BAD_FRAMES_PER_PEER + 2, 'one frame on the new connection was enough');
  // Meanwhile the honest session is untouched.
  await me.send(nodeId, 'STATE_SYNC', { probe: 'still-fine' });
  await node.waitFor((e) => e.type === 'ico:in' && (e['envelope'] as { payload: { probe?: string } }).payload.probe === 'still-fine', 10_000, 'honest message after the attack');
});

test('a burst of inbound connections from one host is accepted (everyone on a devnet shares 127.0.0.1)', async () => {
  // libp2p's default refuses a sixth inbound connection per host per second.
  const a = await attacker();
  const burst = 3 * 5;
  const failed: string[] = [];
  // One after another (parallel dials to one peer are coalesced): each a new connection.
  for (let i = 0; i < burst; i++) {
    try {
      await a.libp2p.dial(multiaddr(nodeTcp), { force: true, signal: AbortSignal.timeout(5_000) });
    } catch (e) {
      failed.push(`dial ${i}: ${(e as Error).name}`);
    }
  }
  assert.deepEqual(failed, [], `${failed.length}/${burst} connections refused`);
  assert.equal(a.libp2p.getConnections().length, burst);
  await Promise.all(a.libp2p.getConnections().map(async (c) => c.close()));
});

test('the relay lists admitted peers with their circuit addresses, and not the asker', async () => {
  const libp2p = (me as unknown as { libp2p: Libp2p }).libp2p;
  const relayId = relay.events[0]!['peerId'] as string;
  const conn = libp2p.getConnections(peerIdFromString(relayId)).find((c) => c.limits === undefined);
  assert.ok(conn, 'direct connection to the relay');
  const stream = await conn.newStream(DISCOVERY_PROTOCOL, { signal: AbortSignal.timeout(5000) });
  const peers = parseDiscoveryReply(await readJsonFrame(stream, MAX_DISCOVERY_BYTES, AbortSignal.timeout(5000)));
  assert.ok(!peers.some((p) => p.peerId === me.peerId), 'the asker is not listed');
  const n1 = peers.find((p) => p.peerId === nodeId);
  assert.ok(n1, 'n1 is listed');
  assert.ok(n1.roles.includes('voter'));
  assert.ok(n1.addrs.includes(`${relayAddr}/p2p-circuit/p2p/${nodeId}`), `circuit address in ${n1.addrs.join(' ')}`);
  assert.ok(n1.addrs.includes(`${relayAddr}/p2p-circuit/webrtc/p2p/${nodeId}`), 'WebRTC-through-relay address');
  assert.ok(n1.addrs.some((a) => a.includes('/tcp/') && !a.includes('p2p-circuit')), 'a direct address for Node peers');
});

test('the relay gives a peer that is not admitted neither the peer list nor a relayed connection', async () => {
  const key = await generateKeyPair('Ed25519');
  const outsider = await createLibp2p({ privateKey: key, transports: [tcp(), webSockets(), circuitRelayTransport()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() }, connectionGater: { denyDialMultiaddr: () => false } });
  attackers.push(outsider);
  const conn = await outsider.dial(multiaddr(relayAddr));
  // It never completes HELLO: the relay waits for it (ADMISSION_WAIT_MS at most), then refuses both.
  const [listed, relayed] = await Promise.allSettled([
    (async () => {
      const stream = await conn.newStream(DISCOVERY_PROTOCOL, { signal: AbortSignal.timeout(ADMISSION_WAIT_MS + 5000) });
      return parseDiscoveryReply(await readJsonFrame(stream, MAX_DISCOVERY_BYTES, AbortSignal.timeout(ADMISSION_WAIT_MS + 5000)));
    })(),
    outsider.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${nodeId}`), { signal: AbortSignal.timeout(ADMISSION_WAIT_MS + 5000) }),
  ]);
  // An empty list, or no answer at all when the relay hangs up on the silent peer first.
  if (listed.status === 'fulfilled') assert.deepEqual(listed.value, []);
  assert.equal(relayed.status, 'rejected', 'relayed dial must fail');
  assert.ok(!outsider.getConnections(peerIdFromString(nodeId)).length, 'no connection to the node');
});

test('the relay API server answers unknown routes and methods with JSON errors; /healthz tells liveness only', async () => {
  const health = await fetch(`${relayHttp}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  assert.equal((await fetch(`${relayHttp}/api/v1/status`)).status, 401, 'peers and addresses need the read scope');
  const status = await fetch(`${relayHttp}/api/v1/status`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  assert.equal(status.status, 200);
  const body = (await status.json()) as { status: string; peerId: string; multiaddrs: string[]; peers: { established: number } };
  assert.equal(body.status, 'ok');
  assert.equal(body.peerId, relay.events[0]!['peerId']);
  assert.ok(body.multiaddrs.includes(relayAddr));
  assert.ok(body.peers.established >= 2);
  const missing = await fetch(`${relayHttp}/nope`);
  assert.equal(missing.status, 404);
  assert.deepEqual(((await missing.json()) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND');
  const wrong = await fetch(`${relayHttp}/healthz`, { method: 'POST', body: '{}' });
  assert.equal(wrong.status, 405);
  assert.match(wrong.headers.get('allow') ?? '', /^GET\b/);
  assert.equal(((await wrong.json()) as { status: string }).status, 'error');
});
