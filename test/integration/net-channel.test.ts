// The ICO channel between two real peers (libp2p over TCP and WebSocket on loopback, Noise,
// yamux, in this process): one duplex stream per pair, a burst of sends leaves as one stream
// write and one signed binary frame, raw-bytes payloads, JSON with a peer that wants JSON, the
// writer moving to a better connection without losing a message, the queue's limits, and an
// ICO 1.0 peer (its own write stream) still understood.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { lpStream } from '@libp2p/utils';
import { yamux } from '@libp2p/yamux';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer } from '../../src/ico/envelope.ts';
import { BINARY_CAPABILITY } from '../../src/ico/frame.ts';
import type { Envelope } from '../../src/ico/types.ts';
import {
  MAX_PENDING_BYTES, MAX_PENDING_SENDS, MessageTooLargeError, SendQueueFullError, startPeer, type HyperSyncPeer, type PeerEvent, type PeerOptions, type WireStats,
} from '../../src/net/index.ts';
import type { InternalPeerOptions } from '../../src/net/peer.ts';
import { ICO_PROTOCOL, ICO_PROTOCOL_LEGACY } from '../../src/net/protocol.ts';
import { YamuxStream } from '@libp2p/yamux/stream';

process.env['HYPERSYNC_LOG'] ??= 'warn';
const CLUSTER = 'channel';
const LISTEN = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'];
const peers: HyperSyncPeer[] = [];
const raw: Libp2p[] = [];
const keys: PrivateKey[] = [];
const ids: string[] = [];

function libp2pOf(p: HyperSyncPeer): Libp2p {
  return (p as unknown as { libp2p: Libp2p }).libp2p;
}

async function peer(i: number, extra: Partial<InternalPeerOptions> = {}): Promise<HyperSyncPeer> {
  const p = await startPeer({ cluster: CLUSTER, roles: ['voter'], relays: [], allowlist: ids, privateKey: keys[i]!, listen: LISTEN, heartbeatMs: 500, ...extra });
  peers.push(p);
  return p;
}

function addr(p: HyperSyncPeer, kind: 'tcp' | 'ws'): string {
  const a = p.multiaddrs().find((m) => (kind === 'ws' ? m.includes('/ws') : !m.includes('/ws')) && m.includes('/tcp/'));
  assert.ok(a, `${kind} address of ${p.peerId}`);
  return a;
}

/** Polls (bounded) until `fn` returns a value other than undefined. */
async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function established(a: HyperSyncPeer, b: HyperSyncPeer): boolean {
  return a.peers().some((p) => p.peerId === b.peerId && p.state === 'established') && b.peers().some((p) => p.peerId === a.peerId && p.state === 'established');
}

async function connect(a: HyperSyncPeer, b: HyperSyncPeer, kind: 'tcp' | 'ws' = 'tcp'): Promise<Connection> {
  const conn = await libp2pOf(a).dial(multiaddr(addr(b, kind)), { force: true });
  await until(`${a.peerId.slice(-4)}↔${b.peerId.slice(-4)} established`, () => (established(a, b) ? true : undefined));
  return conn;
}

/** Collects `ico:in` events of `p` whose payload has `probe === tag`. */
function inbox(p: HyperSyncPeer, tag: string): Array<Extract<PeerEvent, { type: 'ico:in' }>> {
  const got: Array<Extract<PeerEvent, { type: 'ico:in' }>> = [];
  p.on('ico:in', (e) => {
    if (e.envelope.payload['probe'] === tag || (e.bytes !== undefined && tag === 'bytes')) got.push(e);
  });
  return got;
}

function icoStreams(p: HyperSyncPeer, other: string): Array<{ stream: Stream; id: string; direction: string; protocol: string; conn: Connection }> {
  return libp2pOf(p)
    .getConnections(peerIdFromString(other))
    .flatMap((c) => c.streams.filter((s) => s.protocol === ICO_PROTOCOL || s.protocol === ICO_PROTOCOL_LEGACY).map((s) => ({ stream: s, id: s.id, direction: s.direction, protocol: s.protocol, conn: c })));
}

function delta(before: WireStats, after: WireStats): WireStats {
  const out = { ...after };
  for (const k of Object.keys(out) as Array<keyof WireStats>) out[k] = after[k] - before[k];
  return out;
}

before(async () => {
  for (let i = 0; i < 9; i++) {
    keys.push(await generateKeyPair('Ed25519'));
    ids.push(peerIdFromPrivateKey(keys[i]!).toString());
  }
});

after(async () => {
  await Promise.all(peers.map(async (p) => p.stop()));
  await Promise.all(raw.map(async (r) => r.stop()));
});

test('one duplex ICO stream per pair: both directions travel on the stream the dialer opened', async () => {
  const [a, b] = [await peer(0), await peer(1)];
  await connect(a, b);
  const atB = inbox(b, 'duplex');
  const atA = inbox(a, 'duplex');
  await a.send(b.peerId, 'STATE_SYNC', { probe: 'duplex', n: 1 });
  await b.send(a.peerId, 'STATE_SYNC', { probe: 'duplex', n: 2 });
  await until('both messages', () => (atA.length === 1 && atB.length === 1 ? true : undefined));
  const onA = icoStreams(a, b.peerId);
  const onB = icoStreams(b, a.peerId);
  assert.equal(onA.length, 1, `A has ${onA.length} ICO streams`);
  assert.equal(onB.length, 1, `B has ${onB.length} ICO streams`);
  assert.equal(onA[0]!.direction, 'outbound', 'A dialed, so A opened it');
  assert.equal(onB[0]!.direction, 'inbound');
  assert.equal(onA[0]!.protocol, ICO_PROTOCOL);
  // Negotiated in HELLO: two Node peers speak binary frames.
  assert.equal(atB[0]!.encoding, 'binary');
  assert.equal(atA[0]!.encoding, 'binary');
  assert.ok(b.peers().find((p) => p.peerId === a.peerId)?.state === 'established');
});

test('a burst of sends leaves as one stream write, one binary frame, one signature; the receiver verifies once', async () => {
  const [a, b] = [peers[0]!, peers[1]!];
  const got = inbox(b, 'burst');
  const n = 50;
  const sentBefore = a.wireStats();
  const recvBefore = b.wireStats();
  await Promise.all(Array.from({ length: n }, (_, i) => a.send(b.peerId, 'CONSENSUS', { probe: 'burst', i })));
  await until(`${n} messages`, () => (got.length === n ? true : undefined));
  const sent = delta(sentBefore, a.wireStats());
  const recv = delta(recvBefore, b.wireStats());
  // Heartbeats may share the write; the burst itself is one frame.
  assert.equal(sent.envelopesOut - sent.framesOut, n - 1, `${sent.envelopesOut} messages in ${sent.framesOut} frames`);
  assert.ok(sent.streamWrites <= sent.framesOut && sent.streamWrites >= 1);
  assert.equal(sent.signatures, sent.framesOut, 'one signature per frame');
  assert.equal(recv.verifications, recv.framesIn, 'one verification per frame');
  assert.deepEqual(got.map((e) => e.envelope.payload['i']), Array.from({ length: n }, (_, i) => i), 'in order');
  const seqs = got.map((e) => e.envelope.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), 'consecutive seqs');
  assert.equal(new Set(got.map((e) => e.envelope.signature)).size, 1, 'one frame signature covers them all');
});

test('raw bytes travel as bytes in a binary frame and as {"$bytes"} to a JSON peer', async () => {
  const [a, b] = [peers[0]!, peers[1]!];
  const c = await peer(2, { wire: 'json' });
  await connect(a, c);
  const blob = crypto.randomBytes(300);
  const atB = inbox(b, 'bytes');
  const atC = inbox(c, 'bytes');
  await a.send(b.peerId, 'CONSENSUS', blob);
  await a.send(c.peerId, 'CONSENSUS', blob);
  await until('bytes at B and C', () => (atB.length === 1 && atC.length === 1 ? true : undefined));
  assert.deepEqual(atB[0]!.bytes, blob);
  assert.equal(atB[0]!.encoding, 'binary');
  assert.deepEqual(atC[0]!.bytes, blob);
  assert.equal(atC[0]!.encoding, 'json');
  // What C got is a complete JSON envelope: anyone can verify it on its own.
  const env = atC[0]!.envelope;
  assert.ok(decodeEnvelope(new TextEncoder().encode(JSON.stringify(env)), { now: Date.now(), expectedSender: a.peerId }).ok);
  assert.deepEqual(Object.keys(env.payload), ['$bytes']);
});

test('with a peer that asks for JSON (no binary capability) every message is its own signed JSON frame', async () => {
  const [a, c] = [peers[0]!, peers[2]!];
  const hello = c.peers().find((p) => p.peerId === a.peerId);
  assert.ok(hello);
  const got = inbox(c, 'json');
  const before = a.wireStats();
  await Promise.all(Array.from({ length: 10 }, (_, i) => a.send(c.peerId, 'STATE_SYNC', { probe: 'json', i })));
  await until('10 JSON messages', () => (got.length === 10 ? true : undefined));
  const d = delta(before, a.wireStats());
  assert.ok(d.framesOut >= 10 && d.binaryFramesOut === 0, `${d.framesOut} frames, ${d.binaryFramesOut} binary`);
  assert.ok(d.streamWrites < d.framesOut, `${d.framesOut} JSON frames went out in ${d.streamWrites} writes`);
  assert.ok(got.every((e) => e.encoding === 'json'));
  // Each one verifies on its own, as any JSON envelope does.
  for (const e of got) assert.ok(decodeEnvelope(new TextEncoder().encode(JSON.stringify(e.envelope)), { now: Date.now(), expectedSender: a.peerId }).ok);
});

test('the writer moves to a better connection (WebSocket → TCP) without losing or refusing a message', async () => {
  const d = await peer(3);
  const e = await peer(4);
  await connect(d, e, 'ws');
  const before = icoStreams(d, e.peerId);
  assert.equal(before.length, 1);
  const got = inbox(e, 'move');
  let sent = 0;
  let stop = false;
  const sender = (async () => {
    while (!stop) {
      await Promise.all(Array.from({ length: 20 }, () => d.send(e.peerId, 'CONSENSUS', { probe: 'move', i: sent++ })));
      await new Promise((r) => setImmediate(r));
    }
  })();
  await until('traffic flowing', () => (got.length > 100 ? true : undefined));
  // Far enough apart that both sides prefer the newer connection.
  await new Promise((r) => setTimeout(r, 1_100));
  const tcpConn = await libp2pOf(d).dial(multiaddr(addr(e, 'tcp')), { force: true });
  await until('a stream on the TCP connection carrying traffic', () => (icoStreams(d, e.peerId).some((s) => s.conn.id === tcpConn.id) ? true : undefined));
  const atMove = got.length;
  await until('more traffic after the move', () => (got.length > atMove + 200 ? true : undefined));
  stop = true;
  await sender;
  await until(`all ${sent} messages`, () => (got.length === sent ? true : undefined));
  assert.equal(new Set(got.map((x) => x.envelope.payload['i'])).size, sent, 'each message once');
  // Both sides write on the TCP connection's stream now and closed their side of the old one.
  assert.notEqual(before[0]!.stream.writeStatus, 'writable', 'D closed its side of the WebSocket stream');
  const tcpStreamAtE = await until('E on the TCP stream', () => icoStreams(e, d.peerId).find((s) => s.conn.remoteAddr.toString().includes('/tcp/') && !s.conn.remoteAddr.toString().includes('/ws') && s.stream.writeStatus === 'writable'));
  assert.equal(tcpStreamAtE.direction, 'inbound', 'the stream D (the dialer) opened');
  const wsAtE = icoStreams(e, d.peerId).filter((s) => s.id !== tcpStreamAtE.id);
  assert.ok(wsAtE.every((s) => s.stream.writeStatus !== 'writable'), 'E closed its side of the old stream too');
  assert.equal(d.peers().find((p) => p.peerId === e.peerId)?.transport, 'tcp');
});

test('yamux tops up the send window once half of it is used, not after every data frame', async () => {
  const [a, b] = [peers[0]!, peers[1]!];
  const stream = icoStreams(a, b.peerId).find((s) => s.stream.writeStatus === 'writable')?.stream;
  assert.ok(stream);
  let updates = 0;
  const proto = YamuxStream.prototype as { handleWindowUpdate: (this: unknown, ...args: never[]) => void };
  const original = proto.handleWindowUpdate;
  proto.handleWindowUpdate = function (this: unknown, ...args: never[]) {
    if (this === stream) updates++;
    original.apply(this, args);
  };
  try {
    const got = inbox(b, 'window');
    // One message per data frame: each waits until the previous one arrived.
    for (let i = 0; i < 100; i++) {
      await a.send(b.peerId, 'STATE_SYNC', { probe: 'window', i });
      await until(`message ${i}`, () => (got.length === i + 1 ? true : undefined));
    }
  } finally {
    proto.handleWindowUpdate = original;
  }
  // 100 small frames are far below half a 256 KiB window: no top-up was due.
  assert.ok(updates <= 2, `${updates} window updates for 100 data frames`);
});

test(`the queue refuses more than ${MAX_PENDING_SENDS} messages or ${MAX_PENDING_BYTES} bytes, and a message that cannot fit a frame`, async () => {
  const [a, b] = [peers[0]!, peers[1]!];
  const big = new Uint8Array(900 * 1024).fill(7);
  const arrived = inbox(b, 'bytes');
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => a.send(b.peerId, 'CONSENSUS', big)));
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.ok(refused.length >= 8 - Math.ceil(MAX_PENDING_BYTES / big.length), `${refused.length} of 8 refused`);
  assert.ok(refused.every((r) => r.reason instanceof SendQueueFullError));
  // What was accepted (several windows' worth) arrives whole: flow control still refills the window.
  const accepted = 8 - refused.length;
  await until(`${accepted} large messages`, () => (arrived.length === accepted ? true : undefined));
  assert.ok(arrived.every((e) => e.bytes?.length === big.length && e.bytes.every((x) => x === 7)));
  await assert.rejects(a.send(b.peerId, 'CONSENSUS', new Uint8Array(1024 * 1024)), (e: unknown) => e instanceof MessageTooLargeError && e.code === 'NET_MESSAGE_TOO_LARGE');
  await assert.rejects(a.send(b.peerId, 'CONSENSUS', { x: Number.NaN }), (e: unknown) => (e as { code?: string }).code === 'ICO_MALFORMED');
});

test('an ICO 1.0 peer (writes on the stream it opened, reads the one it accepted) is answered in JSON', async () => {
  const a = peers[0]!;
  const key = keys[5]!;
  const legacyId = ids[5]!;
  const legacy = await createLibp2p({ privateKey: key, addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() }, connectionGater: { denyDialMultiaddr: () => false } });
  raw.push(legacy);
  const received: Array<{ envelope: Envelope; protocol: string; direction: string }> = [];
  await legacy.handle(ICO_PROTOCOL_LEGACY, (stream) => {
    void (async () => {
      const lp = lpStream(stream);
      for (;;) {
        const frame = await lp.read().catch(() => undefined);
        if (frame === undefined) return;
        const r = decodeEnvelope(frame.subarray(), { now: Date.now(), expectedSender: a.peerId });
        if (r.ok) received.push({ envelope: r.envelope, protocol: stream.protocol, direction: stream.direction });
      }
    })();
  });
  const sealer = new EnvelopeSealer({ signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), sender: legacyId, version: '1.0' });
  // As a 1.0 peer does: dial, open its own stream, say HELLO there.
  const out = lpStream(await legacy.dialProtocol(multiaddr(addr(a, 'tcp')), ICO_PROTOCOL_LEGACY));
  await out.write(sealer.seal('HELLO', { version: '1.0', cluster: CLUSTER, roles: ['voter'], capabilities: ['ico/1.0', 'gossipsub'], tree_head: null, join_token: null, heartbeat_ms: 500 }, Date.now()).bytes);
  const hello = await until('A’s HELLO at the legacy peer', () => received.find((r) => r.envelope.type === 'HELLO'));
  assert.equal(hello.protocol, ICO_PROTOCOL_LEGACY);
  assert.equal(hello.direction, 'inbound', 'on a stream A opened');
  assert.ok((hello.envelope.payload['capabilities'] as string[]).includes(BINARY_CAPABILITY), 'A offers binary; the legacy peer does not take it');
  await until('A established with the legacy peer', () => (a.peers().some((p) => p.peerId === legacyId && p.state === 'established' && p.version === '1.0') ? true : undefined));
  await a.send(legacyId, 'STATE_SYNC', { probe: 'legacy' });
  await until('a JSON STATE_SYNC at the legacy peer', () => received.find((r) => r.envelope.type === 'STATE_SYNC'));
  const atA = inbox(a, 'from-legacy');
  await out.write(sealer.seal('STATE_SYNC', { probe: 'from-legacy' }, Date.now()).bytes);
  const got = await until('the legacy peer’s message at A', () => atA[0]);
  assert.equal(got.encoding, 'json');
  assert.equal(got.envelope.sender, legacyId);
});

test('a peer that opens frames asynchronously (as a tab with WebCrypto does) gets binary and JSON frames in order, each once', async () => {
  const [a, c] = [peers[0]!, peers[2]!];
  const f = await peer(6, { openFrames: 'async' });
  await connect(a, f);
  await connect(c, f);
  const binary = inbox(f, 'async-bin');
  const json = inbox(f, 'async-json');
  const before = f.wireStats();
  await Promise.all([
    ...Array.from({ length: 60 }, (_, i) => a.send(f.peerId, 'CONSENSUS', { probe: 'async-bin', i })),
    ...Array.from({ length: 30 }, (_, i) => c.send(f.peerId, 'STATE_SYNC', { probe: 'async-json', i })),
  ]);
  await until('90 messages opened asynchronously', () => (binary.length === 60 && json.length === 30 ? true : undefined));
  assert.deepEqual(binary.map((e) => e.envelope.payload['i']), Array.from({ length: 60 }, (_, i) => i), 'binary frames in order');
  assert.deepEqual(json.map((e) => e.envelope.payload['i']), Array.from({ length: 30 }, (_, i) => i), 'JSON frames in order');
  const d = delta(before, f.wireStats());
  assert.equal(d.dropped, 0);
  assert.equal(d.verifications, d.framesIn, 'each frame verified once');
  assert.ok(d.framesIn >= 31, `${d.framesIn} frames (every JSON message is its own)`);
});

test('frames waiting for their asynchronous check are bounded: past the limit the connection is closed (ICO_BACKLOG)', async () => {
  const c = peers[2]!;
  const h = await peer(7, { openFrames: 'async', maxFramesOpening: 2 });
  const dropped: string[] = [];
  h.on('ico:dropped', (e) => dropped.push(e.code));
  await connect(c, h);
  // A JSON peer's burst leaves as several frames per stream write: the reader hands them over together.
  await Promise.allSettled(Array.from({ length: 40 }, (_, i) => c.send(h.peerId, 'STATE_SYNC', { probe: 'flood', i })));
  await until('the backlog drop', () => (dropped.includes('ICO_BACKLOG') ? true : undefined));
  await until('the connection closed', () => (libp2pOf(h).getConnections(peerIdFromString(c.peerId)).every((conn) => conn.status !== 'open') ? true : undefined));
});
