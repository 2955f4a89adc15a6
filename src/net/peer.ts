// startPeer: a running HyperSync peer, the same code in Node and in a browser tab. It owns
// the libp2p node, one IcoSession (pure lifecycle from src/ico) and one IcoChannel (the
// long-lived duplex stream and its coalescing writer) per remote peer, the heartbeat clock,
// discovery through relays, reconnection with backoff, and the cluster's gossipsub topic.
// Invariant: every envelope we act on was decoded by the codec with the Noise-authenticated
// PeerId as the expected sender (or, on gossip, comes from a peer that completed HELLO and
// admission with us).
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify, identifyPush } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { ping, type Ping } from '@libp2p/ping';
import { yamux } from '@libp2p/yamux';
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { defaultListen, loadOrCreateKey, platformTransports, PLATFORM, scheduleFlush } from '#net-platform';
import { crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer, openEnvelope, type DecodeResult } from '../ico/envelope.ts';
import { BINARY_CAPABILITY, bytesPayload, decodeFrame, openFrame, type FrameDecodeResult, type IcoMessage, type WireEncoding } from '../ico/frame.ts';
import { IcoSession, type Outbound, type SessionEvent } from '../ico/lifecycle.ts';
import { AdmissionReplay, ReplayGuard } from '../ico/replay.ts';
import { DEFAULT_CODEC_LIMITS, ICO_VERSION, type Json, type JsonObject, type PeerRole } from '../ico/types.ts';
import type { AdmissionPolicy } from '../ico/admission.ts';
import { createLogger } from '../log/logger.ts';
import { deferYamuxWindowUpdates } from './yamux-window.ts';
import { emptyWireStats, IcoChannel, NotConnectedError, STREAM_OPEN_TIMEOUT_MS, type ChannelHost, type WireStats } from './ico-channel.ts';
import { Dialer } from './dialer.ts';
import { askRelay, serveDiscovery } from './discovery.ts';
import {
  CLOSE_SETTLE_MS, CONNECTION_TIE_MS, DIAL_TIMEOUT_MS, DISCOVERY_INTERVAL_MS, GOODBYE_FLUSH_MS, ICO_PROTOCOLS, icoTopic, MAX_BAD_FRAMES_PER_PEER,
  MAX_DISCOVERY_PEERS, MIN_BACKOFF_MS, type DiscoveredPeer,
} from './protocol.ts';
import type { HyperSyncPeer, PeerEvent, PeerEventType, PeerInfo, PeerOptions, PeerState, PeerTransport, SendPayload, WireMode } from './types.ts';

export { MAX_PENDING_BYTES, MAX_PENDING_SENDS, MessageTooLargeError, NotConnectedError, SendQueueFullError, STREAM_OPEN_TIMEOUT_MS, STREAM_WAIT_MS, type WireStats } from './ico-channel.ts';

export class NoSubscribersError extends Error {
  readonly code = 'NET_NO_SUBSCRIBERS';
  override name = 'NoSubscribersError';
}

/** Options only the relay (and tests) use on top of the public PeerOptions. */
export interface InternalPeerOptions extends PeerOptions {
  /** Run a circuit relay v2 server and answer discovery requests. */
  relayServer?: boolean;
  /** Pre-made key (the relay loads its own); otherwise from dataDir / IndexedDB. */
  privateKey?: PrivateKey;
  /** Announce these addresses instead of the listen addresses (e.g. behind a proxy). */
  announce?: string[];
  /** How received frames are verified: `async` (in order per connection) where the adapter is native only asynchronously (a tab), else `sync`. */
  openFrames?: 'sync' | 'async';
  /** Frames of one connection waiting for their signature check at most, with `openFrames: 'async'` (default MAX_FRAMES_OPENING). */
  maxFramesOpening?: number;
}

/** A peer down for this many times the down threshold has its connections closed. */
export const STALE_FACTOR = 4;

/** Relay v2 limits sized for our traffic: relayed links only carry HELLOs and WebRTC signalling until they upgrade. */
export const RELAY_LIMITS = {
  maxReservations: 512,
  reservationTtlMs: 2 * 60 * 60 * 1000,
  durationLimitMs: 10 * 60 * 1000,
  dataLimitBytes: 64n * 1024n * 1024n,
} as const;

/**
 * libp2p connection manager limits. On a devnet, a LAN or behind one NAT every peer shares
 * one host address, so libp2p's default of 5 inbound connections per second per host refused
 * legitimate bursts (a devnet starting, tabs joining, a round of relayed dials). The relay
 * must hold more connections than it has reservations.
 */
export const CONNECTION_LIMITS = {
  inboundPerHostPerSecond: 64,
  maxIncomingPending: 64,
  maxConnectionsPeer: 300,
  maxConnectionsRelay: RELAY_LIMITS.maxReservations * 2,
} as const;

/**
 * A relay spends reservations, relayed bandwidth and its peer list on admitted peers only.
 * A request that arrives while the asker's HELLO is still in flight waits this long for it.
 */
export const ADMISSION_WAIT_MS = 5_000;
/** A ping (round-trip probe) that gets no answer within this is a failure. */
export const PING_TIMEOUT_MS = 5_000;
/** Requests waiting for their sender's admission at once; more are refused outright. */
export const MAX_ADMISSION_WAITERS = 1024;

interface Link {
  peerId: string;
  /** Replaced when the peer starts over (a HELLO on an established session); the channel stays. */
  session: IcoSession;
  channel: IcoChannel;
  transport: PeerTransport;
  hungUp?: boolean;
}

/** Peers whose invalid-frame count we remember; the oldest entry goes first when full. */
export const MAX_SCORED_PEERS = 1024;

/**
 * Where the adapter verifies natively only asynchronously (WebCrypto Ed25519 in a tab, found at
 * load: 8-18x its noble fallback), received frames are opened with the async check, in order
 * per connection; on Node (node:crypto is synchronous) as they arrive, with no promise per frame.
 */
const DEFAULT_OPEN_FRAMES = crypto.name === 'webcrypto' ? 'async' : 'sync';
/** Frames of one connection waiting for their signature check at most (async open); past it the connection is closed. */
export const MAX_FRAMES_OPENING = 1024;

/** Wire mode when PeerOptions.wire is not given: browsers stay on the JSON reference form. */
export const DEFAULT_WIRE: WireMode = PLATFORM === 'browser' ? 'json' : 'binary';

function isJsonObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function transportOf(conn: Connection): PeerTransport {
  const names = conn.remoteAddr.getComponents().map((c) => c.name);
  if (names.includes('webrtc') || names.includes('webrtc-direct')) return 'webrtc';
  if (names.includes('p2p-circuit')) return 'relayed';
  if (names.includes('ws') || names.includes('wss')) return 'websocket';
  if (names.includes('tcp')) return 'tcp';
  return 'unknown';
}

// Direct TCP (Node↔Node) has the lowest latency and cost; WebRTC beats a WebSocket hop and any
// relayed path. Browsers never have TCP, so for them WebRTC stays the first choice.
const TRANSPORT_RANK: Record<PeerTransport, number> = { tcp: 5, webrtc: 4, websocket: 3, unknown: 1, relayed: 0 };

/** A payload as it travels in JSON: raw bytes become `{"$bytes": "<base64url>"}`. */
function jsonPayload(payload: SendPayload): JsonObject {
  return payload instanceof Uint8Array ? bytesPayload(payload) : payload;
}

export async function startPeer(options: InternalPeerOptions): Promise<HyperSyncPeer> {
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const missedBeats = options.missedBeats ?? 3;
  const privateKey = options.privateKey ?? (await loadOrCreateKey(options.dataDir));
  const signer = crypto.createSigner(seedFromLibp2pPrivateKey(privateKey));
  const relayAddrs = options.relays.map((a) => multiaddr(a));
  const relayIds = new Set(relayAddrs.map((a) => a.getComponents().findLast((c) => c.name === 'p2p')?.value).filter((x): x is string => x !== undefined));

  // Set once the session table exists; until then (the first instants) a relay refuses.
  let admittedWithin: ((peerId: string, timeoutMs: number) => Promise<boolean>) | undefined;
  const refuseUnadmitted = async (peer: { toString(): string }): Promise<boolean> => !((await admittedWithin?.(peer.toString(), ADMISSION_WAIT_MS)) ?? false);
  // Fault injection (setNetworkCut): while set, the gater refuses every dial and inbound connection.
  let networkCut = false;

  const services = {
    identify: identify(),
    identifyPush: identifyPush(),
    // Tabs measure round trips to peers they reach only through the relay too.
    ping: ping({ runOnLimitedConnection: true }),
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, runOnLimitedConnection: true }),
    ...(options.relayServer === true
      ? {
          relay: circuitRelayServer({
            reservations: {
              maxReservations: RELAY_LIMITS.maxReservations,
              reservationTtl: RELAY_LIMITS.reservationTtlMs,
              defaultDurationLimit: RELAY_LIMITS.durationLimitMs,
              defaultDataLimit: RELAY_LIMITS.dataLimitBytes,
            },
          }),
        }
      : {}),
  };
  deferYamuxWindowUpdates();
  const webrtc = options.webrtc !== false;
  const libp2p = (await createLibp2p({
    privateKey,
    addresses: { listen: options.listen ?? defaultListen().filter((a) => webrtc || !a.includes('/webrtc')), ...(options.announce ? { announce: options.announce } : {}) },
    transports: platformTransports({ webrtc }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback and private addresses are how this cluster runs in development and tests.
    connectionGater: {
      denyDialMultiaddr: () => networkCut,
      denyDialPeer: () => networkCut,
      denyInboundConnection: () => networkCut,
      denyInboundRelayedConnection: () => networkCut,
      ...(options.relayServer === true ? { denyInboundRelayReservation: refuseUnadmitted, denyOutboundRelayedConnection: refuseUnadmitted } : {}),
    },
    connectionManager: {
      inboundConnectionThreshold: CONNECTION_LIMITS.inboundPerHostPerSecond,
      maxIncomingPendingConnections: CONNECTION_LIMITS.maxIncomingPending,
      maxConnections: options.relayServer === true ? CONNECTION_LIMITS.maxConnectionsRelay : CONNECTION_LIMITS.maxConnectionsPeer,
    },
    services,
  })) as unknown as Libp2p<{ pubsub: GossipSub; ping: Ping }>;

  const self = libp2p.peerId.toString();
  const log = createLogger('net', { peer: self.slice(-8), platform: PLATFORM });
  const sealer = new EnvelopeSealer({ signer, sender: self });
  const wire: WireMode = options.wire ?? DEFAULT_WIRE;
  const openAsync = (options.openFrames ?? DEFAULT_OPEN_FRAMES) === 'async';
  const maxFramesOpening = options.maxFramesOpening ?? MAX_FRAMES_OPENING;
  const capabilities = [`ico/${ICO_VERSION}`, 'gossipsub', ...(wire === 'binary' ? [BINARY_CAPABILITY] : [])];
  const stats: WireStats = emptyWireStats();
  // Direct frames: a sender's window is chosen by its admission (HELLO traffic of peers not
  // admitted yet cannot evict an admitted peer's window). Gossip: only admitted senders' envelopes
  // reach the window at all (checked after the session lookup below).
  const replays = new AdmissionReplay((sender) => isAdmitted(sender), DEFAULT_CODEC_LIMITS.replayWindow);
  const gossipReplay = new ReplayGuard(DEFAULT_CODEC_LIMITS.replayWindow);
  const admission: AdmissionPolicy = {
    cluster: options.cluster,
    allowlist: new Set([...options.allowlist, ...relayIds]),
    ...(options.clusterPublicKey ? { clusterPublicKey: options.clusterPublicKey } : {}),
    revokedTokens: new Set(options.revokedTokens ?? []),
  };
  const links = new Map<string, Link>();
  const admissionWaiters = new Map<string, Set<() => void>>();
  let waiting = 0;
  function isAdmitted(peerId: string): boolean {
    return links.get(peerId)?.session.state === 'established';
  }
  admittedWithin = (peerId, timeoutMs) => {
    if (isAdmitted(peerId)) return Promise.resolve(true);
    if (waiting >= MAX_ADMISSION_WAITERS || stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = admissionWaiters.get(peerId);
      if (set === undefined) admissionWaiters.set(peerId, (set = new Set()));
      const waiters = set;
      waiting++;
      const done = (): void => {
        clearTimeout(timer);
        waiting--;
        waiters.delete(done);
        if (waiters.size === 0 && admissionWaiters.get(peerId) === waiters) admissionWaiters.delete(peerId);
        resolve(isAdmitted(peerId));
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
    });
  };
  function settleAdmission(peerId: string): void {
    for (const done of [...(admissionWaiters.get(peerId) ?? [])]) done();
  }
  /** Invalid frames per sending peer (insertion order = least recently scored first). */
  const badFrames = new Map<string, number>();
  const handlers = new Map<string, Set<(event: PeerEvent) => void>>();
  if (options.onEvent !== undefined) handlers.set('*', new Set([options.onEvent]));
  const topic = icoTopic(options.cluster);
  let stopping = false;

  const dialer = new Dialer({
    self,
    platform: PLATFORM,
    webrtc,
    log,
    dial: (addr) => libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) }),
    openConnections: (peerId) => openConnections(peerId),
  });
  for (const addr of relayAddrs) {
    const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (id !== undefined) dialer.addRelay(id, addr.toString());
  }

  function emit(event: PeerEvent): void {
    for (const key of [event.type, '*']) {
      for (const handler of handlers.get(key) ?? []) {
        try {
          handler(event);
        } catch (e) {
          log.warn({ err: e, event: event.type }, 'event handler threw');
        }
      }
    }
  }

  /**
   * PeerId objects by their string form: parsing one decodes base58 and a multihash, and the
   * ICO writer asks for a peer's connections on every flush. Bounded like the scores below.
   */
  const parsedPeerIds = new Map<string, PeerId>();
  function parsedPeerId(peerId: string): PeerId {
    let id = parsedPeerIds.get(peerId);
    if (id === undefined) {
      id = peerIdFromString(peerId);
      if (parsedPeerIds.size >= MAX_SCORED_PEERS) parsedPeerIds.delete(parsedPeerIds.keys().next().value as string);
      parsedPeerIds.set(peerId, id);
    }
    return id;
  }

  function openConnections(peerId: string): Connection[] {
    return libp2p.getConnections(parsedPeerId(peerId)).filter((c) => c.status === 'open');
  }

  /**
   * > 0 when `a` is the better connection to `peerId` to write on. Both sides must pick the
   * same one: transport first, then the newer (a restarted peer's old connection lingers),
   * and for connections opened together the one the smaller PeerId dialed.
   */
  function compareConnections(peerId: string, a: Connection, b: Connection): number {
    const rank = TRANSPORT_RANK[transportOf(a)] - TRANSPORT_RANK[transportOf(b)];
    if (rank !== 0) return rank;
    const age = a.timeline.open - b.timeline.open;
    if (Math.abs(age) > CONNECTION_TIE_MS) return age;
    const ours = (c: Connection): number => ((c.direction === 'outbound') === (self < peerId) ? 1 : 0);
    return ours(a) - ours(b);
  }

  function bestConnection(peerId: string): Connection | undefined {
    let best: Connection | undefined;
    for (const c of openConnections(peerId)) {
      if (best === undefined || compareConnections(peerId, c, best) > 0) best = c;
    }
    return best;
  }

  function stateOf(link: Link): PeerState {
    const s = link.session.state;
    if (s === 'established') return link.session.isDown ? 'down' : 'established';
    if (s === 'new' || s === 'hello-sent') return 'connecting';
    return s;
  }

  function infoOf(link: Link): PeerInfo {
    const conn = bestConnection(link.peerId);
    const hello = link.session.remoteHello;
    const version = link.session.agreedVersion;
    return {
      peerId: link.peerId,
      roles: (hello?.roles ?? []) as PeerRole[],
      transport: conn === undefined ? link.transport : transportOf(conn),
      state: stateOf(link),
      remoteAddr: conn?.remoteAddr.toString() ?? '',
      lastSeen: link.session.lastReceived,
      ...(version !== null ? { version } : {}),
      ...(isJsonObject(hello?.['state']) ? { sync: hello['state'] } : {}),
    };
  }

  /** Binary frames go to a peer that offered them, once HELLO is done (HELLO itself is always JSON). */
  function binaryTo(link: Link): boolean {
    return wire === 'binary' && link.session.state === 'established' && !link.channel.legacy && (link.session.remoteHello?.capabilities.includes(BINARY_CAPABILITY) ?? false);
  }

  /** Queues the session's output in order; failures are logged (the session goes on). */
  function sendAll(link: Link, out: Outbound[]): Promise<void> {
    if (out.length === 0) return Promise.resolve();
    const binary = binaryTo(link);
    return Promise.all(out.map(async (o) => link.channel.send(o.type, o.payload, binary && o.type !== 'HELLO'))).then(
      () => undefined,
      (e: unknown) => log.debug({ err: (e as Error).message, remote: link.peerId }, 'ICO send failed'),
    );
  }

  function handleEvents(link: Link, events: SessionEvent[], message?: IcoMessage, encoding: WireEncoding = 'json'): void {
    for (const ev of events) {
      switch (ev.kind) {
        case 'established':
          log.info({ remote: link.peerId, roles: ev.remote.roles, version: ev.version }, 'peer established');
          // A fresh relay session: ask it for peers now rather than at the next interval.
          if (relayIds.has(link.peerId)) void discover().then(() => dialer.maintain());
          emit({ type: 'peer:established', peer: infoOf(link) });
          settleAdmission(link.peerId);
          break;
        case 'rejected':
          log.warn({ remote: link.peerId, code: ev.error.code, reason: ev.error.message }, 'peer rejected');
          emit({ type: 'peer:rejected', peerId: link.peerId, code: ev.error.code, reason: ev.error.message });
          settleAdmission(link.peerId);
          // Give the GOODBYE a moment to leave, then hang up.
          setTimeout(() => void libp2p.hangUp(parsedPeerId(link.peerId)).catch(() => undefined), GOODBYE_FLUSH_MS);
          break;
        case 'peer-down':
          emit({ type: 'peer:down', peerId: link.peerId });
          break;
        case 'peer-up':
          emit({ type: 'peer:up', peerId: link.peerId });
          break;
        case 'goodbye':
          log.info({ remote: link.peerId, code: ev.code, reason: ev.reason }, 'peer said goodbye');
          emit({ type: 'peer:goodbye', peerId: link.peerId, code: ev.code, reason: ev.reason });
          break;
        case 'message':
          emit(message?.bytes !== undefined ? { type: 'ico:in', envelope: ev.envelope, encoding, bytes: message.bytes } : { type: 'ico:in', envelope: ev.envelope, encoding });
          break;
      }
    }
  }

  function newSession(peerId: string): IcoSession {
    return new IcoSession({
      local: { peerId: self, cluster: options.cluster, roles: options.roles, capabilities, ...(options.helloState ? { state: options.helloState } : {}) },
      remotePeer: peerId,
      admission,
      heartbeatMs,
      missedBeats,
      joinToken: options.joinToken ?? null,
    });
  }

  function channelHost(peerId: string, link: () => Link): ChannelHost {
    return {
      sealer,
      stats,
      maxFrameBytes: DEFAULT_CODEC_LIMITS.maxFrameBytes,
      bestConnection: () => bestConnection(peerId),
      compare: (a, b) => compareConnections(peerId, a, b),
      openStream: async (conn) => {
        try {
          return await conn.newStream(ICO_PROTOCOLS, { runOnLimitedConnection: true, signal: AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) });
        } catch (e) {
          // A connection that cannot carry a stream is dead even if it still reads 'open'
          // (a WebRTC dial the other side gave up on): close it so the next best one is used.
          // (Only on a timeout: a peer that merely does not speak ICO keeps its connection.)
          const name = (e as Error).name;
          if (name === 'TimeoutError' || name === 'AbortError') {
            log.debug({ remote: peerId, addr: conn.remoteAddr.toString(), err: (e as Error).message }, 'closing a connection that cannot open streams');
            conn.abort(e instanceof Error ? e : new Error(String(e)));
          }
          throw e;
        }
      },
      onFrame: (frame, conn) => onFrame(frame, conn),
      onOversize: (announced, conn) => {
        stats.dropped++;
        drop(conn.remotePeer.toString(), 'ICO_FRAME_TOO_LARGE', `frame ${announced === null ? 'length prefix is over-long' : `of ${announced} bytes`}: over the ${DEFAULT_CODEC_LIMITS.maxFrameBytes}-byte limit`);
      },
      onSent: (envelope, encoding) => {
        link().session.noteSent(Date.now());
        emit({ type: 'ico:out', envelope, to: peerId, encoding });
      },
      debug: (fields, message) => log.debug(fields, message),
      schedule: scheduleFlush,
    };
  }

  function linkFor(peerId: string): Link {
    let link = links.get(peerId);
    if (link === undefined) {
      const session = newSession(peerId);
      const l: Link = { peerId, session, channel: new IcoChannel(peerId, channelHost(peerId, () => l)), transport: 'unknown' };
      links.set(peerId, l);
      link = l;
      void sendAll(l, session.start(Date.now()).out);
    }
    return link;
  }

  /**
   * Counts an invalid frame against the peer that sent it, whether or not it ever completed
   * HELLO (a peer that only sends garbage has no session, but must not get to do it forever).
   * Past the limit its connections are closed; the count survives reconnects.
   */
  function drop(peerId: string, code: string, reason: string, score = true): void {
    emit({ type: 'ico:dropped', peerId, code, reason });
    if (!score || peerId === 'unknown') return;
    const bad = (badFrames.get(peerId) ?? 0) + 1;
    badFrames.delete(peerId);
    badFrames.set(peerId, bad);
    if (badFrames.size > MAX_SCORED_PEERS) badFrames.delete(badFrames.keys().next().value as string);
    if (bad > MAX_BAD_FRAMES_PER_PEER) {
      log.warn({ remote: peerId, bad }, 'too many invalid frames: disconnecting');
      void libp2p.hangUp(parsedPeerId(peerId)).catch(() => undefined);
    }
  }

  /** Frames being opened per connection (async open only): a chain that keeps their order, and its length. */
  const opening = new WeakMap<Connection, { chain: Promise<void>; waiting: number }>();

  /** One frame from `connection` (any ICO stream of it): decode, verify once, run the session. */
  function onFrame(frame: Uint8Array, connection: Connection): void {
    const remote = connection.remotePeer.toString();
    stats.framesIn++;
    stats.bytesIn += frame.length;
    const ctx = { now: Date.now(), expectedSender: remote, replay: replays.guardFor(remote) };
    if (!openAsync) {
      onDecoded(decodeFrame(frame, ctx), connection, remote);
      return;
    }
    let queue = opening.get(connection);
    if (queue === undefined) {
      queue = { chain: Promise.resolve(), waiting: 0 };
      opening.set(connection, queue);
    }
    if (queue.waiting >= maxFramesOpening) {
      stats.dropped++;
      drop(remote, 'ICO_BACKLOG', `${maxFramesOpening} frames already wait for their signature check`);
      connection.abort(new Error('ICO frames arrive faster than they can be verified'));
      return;
    }
    queue.waiting++;
    // A copy: the stream may reuse its buffers before the check runs.
    const bytes = frame.slice();
    const q = queue;
    q.chain = q.chain
      .then(async () => {
        const result = await openFrame(bytes, ctx);
        q.waiting--;
        onDecoded(result, connection, remote);
      })
      .catch((e: unknown) => log.warn({ err: e, remote }, 'frame handling failed'));
  }

  function onDecoded(result: FrameDecodeResult, connection: Connection, remote: string): void {
    if (!result.ok) {
      stats.dropped++;
      log.debug({ remote, code: result.error.code, reason: result.error.message }, 'dropped frame');
      drop(remote, result.error.code, result.error.message);
      return;
    }
    stats.verifications++;
    stats.envelopesIn += result.messages.length;
    if (result.encoding === 'binary') stats.binaryFramesIn++;
    // Frames still buffered after the connection closed belong to the old session, if any.
    const link = connection.status === 'open' ? linkFor(remote) : links.get(remote);
    if (link === undefined) return;
    for (const m of result.messages) {
      const type = m.envelope.type;
      // A HELLO on a finished or established session is the same peer starting over (a
      // restarted process, a reloaded tab) while its old connection lingers: new session.
      if (type === 'HELLO' && (link.session.state === 'established' || link.session.state === 'closed') && connection.status === 'open') {
        log.info({ remote }, 'peer restarted its session');
        link.session = newSession(remote);
        link.hungUp = false;
        void sendAll(link, link.session.start(Date.now()).out);
      }
      const step = link.session.receive(m.envelope, Date.now());
      if (type === 'HELLO' || type === 'HEARTBEAT' || type === 'GOODBYE') emit({ type: 'ico:in', envelope: m.envelope, encoding: result.encoding });
      handleEvents(link, step.events, m, result.encoding);
      void sendAll(link, step.out);
    }
  }

  await libp2p.handle(ICO_PROTOCOLS, (stream, connection) => {
    if (connection.status !== 'open' || stopping) {
      stream.abort(new Error('connection closing'));
      return;
    }
    linkFor(connection.remotePeer.toString()).channel.attach(stream, connection);
  }, { runOnLimitedConnection: true, maxInboundStreams: 8 });

  function admittedPeers(): DiscoveredPeer[] {
    const out: DiscoveredPeer[] = [];
    for (const link of links.values()) {
      if (link.session.state !== 'established' || out.length >= MAX_DISCOVERY_PEERS) continue;
      out.push({ peerId: link.peerId, addrs: [], roles: link.session.remoteHello?.roles ?? [] });
    }
    return out;
  }

  if (options.relayServer === true) {
    await serveDiscovery({ libp2p: libp2p as unknown as Libp2p, log, admittedWithin: (peerId, ms) => admittedWithin!(peerId, ms), admittedPeers, admissionWaitMs: ADMISSION_WAIT_MS });
  }

  function onConnectionChange(peerId: string): void {
    const link = links.get(peerId);
    const conn = bestConnection(peerId);
    if (conn === undefined) return;
    const transport = transportOf(conn);
    if (link === undefined) {
      linkFor(peerId).transport = transport;
      return;
    }
    if (transport !== link.transport) {
      link.transport = transport;
      emit({ type: 'peer:transport', peerId, transport });
    }
    // Move the ICO writer onto the better connection (the dialer opens its stream there).
    link.channel.connectionChanged();
  }

  libp2p.addEventListener('connection:open', (evt) => {
    const peerId = evt.detail.remotePeer.toString();
    onConnectionChange(peerId);
  });
  function onConnectionClosed(peerId: string): void {
    if (openConnections(peerId).length > 0) {
      onConnectionChange(peerId);
      return;
    }
    const link = links.get(peerId);
    if (link === undefined) return;
    links.delete(peerId);
    link.channel.close(new NotConnectedError(`${peerId} disconnected`));
    if (link.session.state === 'established') {
      log.info({ remote: peerId }, 'peer disconnected');
      if (!link.session.isDown) emit({ type: 'peer:down', peerId });
    }
  }
  libp2p.addEventListener('connection:close', (evt) => {
    // Frames the peer sent just before closing (a GOODBYE) may still sit in our read
    // buffers: let them be processed before judging the peer gone.
    const peerId = evt.detail.remotePeer.toString();
    setTimeout(() => onConnectionClosed(peerId), CLOSE_SETTLE_MS);
  });

  // Gossip: the same envelopes, fanned out on the cluster topic; only admitted senders count.
  libp2p.services.pubsub.subscribe(topic);
  libp2p.services.pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail;
    if (msg.topic !== topic) return;
    const from = msg.type === 'signed' ? msg.from.toString() : 'unknown';
    const ctx = { now: Date.now() };
    // Gossip has no order to keep (the replay window takes reordering): a tab checks each natively.
    if (openAsync) void openEnvelope(msg.data, ctx).then((result) => onGossip(from, result));
    else onGossip(from, decodeEnvelope(msg.data, ctx));
  });

  function onGossip(from: string, result: DecodeResult): void {
    if (!result.ok) {
      drop(from, result.error.code, result.error.message);
      return;
    }
    const sender = links.get(result.envelope.sender);
    if (sender === undefined || sender.session.state !== 'established') {
      // Not scored: a valid peer's gossip can outrun its HELLO with us through the mesh.
      drop(from, 'ICO_NOT_ADMITTED', `gossip from ${result.envelope.sender}, which has no admitted session with us`, false);
      return;
    }
    if (!gossipReplay.accept(result.envelope.sender, result.envelope.seq)) {
      drop(from, 'ICO_REPLAYED', `seq ${result.envelope.seq} from ${result.envelope.sender} was already seen or is outside the replay window`);
      return;
    }
    if (result.envelope.type === 'STATE_SYNC' || result.envelope.type === 'CONSENSUS') emit({ type: 'ico:in', envelope: result.envelope });
  }

  async function discover(): Promise<void> {
    if (stopping) return;
    for (const relayId of relayIds) {
      const conn = openConnections(relayId).find((c) => c.limits === undefined);
      if (conn === undefined) continue;
      try {
        const reply = await askRelay(conn);
        log.debug({ relay: relayId, peers: reply.length }, 'discovered');
        dialer.learn(reply.filter((p) => p.peerId !== self && !relayIds.has(p.peerId)), Date.now());
      } catch (e) {
        log.debug({ err: (e as Error).message }, 'discovery failed');
      }
    }
  }

  await libp2p.start();
  const tickTimer = setInterval(() => {
    const now = Date.now();
    for (const link of links.values()) {
      const step = link.session.tick(now);
      handleEvents(link, step.events);
      if (step.out.length > 0) void sendAll(link, step.out);
      // Silent for twice the down threshold: the connection is dead even if the transport
      // has not noticed (a killed tab's WebRTC link): close it so discovery redials.
      if (link.session.isDown && !link.hungUp && now - link.session.lastReceived > STALE_FACTOR * missedBeats * heartbeatMs) {
        link.hungUp = true;
        log.info({ remote: link.peerId }, 'peer silent too long: closing its connections');
        void libp2p.hangUp(parsedPeerId(link.peerId)).catch(() => undefined);
      }
    }
  }, Math.max(25, Math.floor(heartbeatMs / 4)));
  const maintainTimer = setInterval(() => dialer.maintain(), MIN_BACKOFF_MS);
  const discoveryTimer = setInterval(() => void discover(), DISCOVERY_INTERVAL_MS);
  dialer.maintain();
  void discover();
  log.info({ peerId: self, addrs: libp2p.getMultiaddrs().map(String), roles: options.roles }, 'peer started');

  const peer: HyperSyncPeer & { libp2p: Libp2p } = {
    peerId: self,
    cluster: options.cluster,
    libp2p: libp2p as unknown as Libp2p,
    multiaddrs: () => libp2p.getMultiaddrs().map((a: Multiaddr) => a.toString()),
    peers: () => [...links.values()].map(infoOf),
    connections: () =>
      libp2p.getConnections().map((c) => ({
        peerId: c.remotePeer.toString(),
        remoteAddr: c.remoteAddr.toString(),
        transport: transportOf(c),
        limited: c.limits !== undefined,
        direction: c.direction,
      })),
    async send(to, type, payload) {
      const link = links.get(to);
      if (link === undefined || link.session.state !== 'established') throw new NotConnectedError(`no established ICO session with ${to}`);
      await link.channel.send(type, payload, binaryTo(link));
    },
    async broadcast(type, payload) {
      if (libp2p.services.pubsub.getSubscribers(topic).length === 0) throw new NoSubscribersError(`no peer is subscribed to ${topic} yet`);
      // Gossip carries the JSON reference form only (any subscriber may read it).
      const { envelope, bytes } = sealer.seal(type, jsonPayload(payload), Date.now());
      await libp2p.services.pubsub.publish(topic, bytes);
      emit({ type: 'ico:out', envelope, to: '*', encoding: 'json' });
    },
    report(peerId, code, reason) {
      drop(peerId, code, reason);
    },
    wireStats: () => ({ ...stats }),
    async ping(peerId, opts = {}) {
      const signal = opts.signal === undefined ? AbortSignal.timeout(PING_TIMEOUT_MS) : AbortSignal.any([opts.signal, AbortSignal.timeout(PING_TIMEOUT_MS)]);
      return libp2p.services.ping.ping(parsedPeerId(peerId), { signal });
    },
    async setNetworkCut(cut) {
      networkCut = cut;
      if (!cut) {
        dialer.maintain();
        void discover();
        return;
      }
      for (const c of libp2p.getConnections()) c.abort(new Error('network cut (fault injection)'));
    },
    on(type: PeerEventType | '*', handler: (event: never) => void): () => void {
      let set = handlers.get(type);
      if (set === undefined) handlers.set(type, (set = new Set()));
      const h = handler as (event: PeerEvent) => void;
      set.add(h);
      return () => set.delete(h);
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(tickTimer);
      clearInterval(maintainTimer);
      dialer.stop();
      clearInterval(discoveryTimer);
      const goodbyes = [...links.values()].map((link) => {
        const step = link.session.close('shutdown', 'peer is shutting down');
        return sendAll(link, step.out);
      });
      await Promise.race([Promise.all(goodbyes), new Promise((r) => setTimeout(r, GOODBYE_FLUSH_MS))]);
      await libp2p.stop();
      log.info('peer stopped');
    },
  };
  return peer;
}

