// startPeer: a running HyperSync peer, the same code in Node and in a browser tab. It owns
// the libp2p node, one IcoSession per remote peer (pure lifecycle from src/ico), the
// heartbeat clock, discovery through relays, reconnection with backoff, and the cluster's
// gossipsub topic. Invariant: every envelope we act on was decoded by the codec with the
// Noise-authenticated PeerId as the expected sender (or, on gossip, comes from a peer that
// completed HELLO and admission with us).
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify, identifyPush } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { ping } from '@libp2p/ping';
import { yamux } from '@libp2p/yamux';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { defaultListen, loadOrCreateKey, platformTransports, PLATFORM } from '#net-platform';
import { crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer } from '../ico/envelope.ts';
import { IcoSession, type Outbound, type SessionEvent } from '../ico/lifecycle.ts';
import { ReplayGuard } from '../ico/replay.ts';
import { DEFAULT_CODEC_LIMITS, type Envelope, type IcoType, type Json, type PeerRole } from '../ico/types.ts';
import type { AdmissionPolicy } from '../ico/admission.ts';
import { createLogger } from '../log/logger.ts';
import {
  CLOSE_SETTLE_MS, DIAL_GRACE_MS, DIAL_TIMEOUT_MS, DISCOVERY_INTERVAL_MS, DISCOVERY_PROTOCOL, GOODBYE_FLUSH_MS, ICO_PROTOCOL, icoTopic, MAX_BACKOFF_MS,
  MAX_BAD_FRAMES_PER_PEER, MAX_DISCOVERY_BYTES, MAX_DISCOVERY_PEERS, MIN_BACKOFF_MS, parseDiscoveryReply, readJsonFrame,
  writeJsonFrame, type DiscoveredPeer,
} from './protocol.ts';
import type { HyperSyncPeer, PeerEvent, PeerEventType, PeerInfo, PeerOptions, PeerState, PeerTransport } from './types.ts';

export class NotConnectedError extends Error {
  readonly code = 'NET_NOT_CONNECTED';
  override name = 'NotConnectedError';
}
export class SendQueueFullError extends Error {
  readonly code = 'NET_SEND_QUEUE_FULL';
  override name = 'SendQueueFullError';
}
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
}

/** Opening the ICO stream on a connection must complete within this time. */
export const STREAM_OPEN_TIMEOUT_MS = 5_000;

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
/** Requests waiting for their sender's admission at once; more are refused outright. */
export const MAX_ADMISSION_WAITERS = 1024;

interface Link {
  peerId: string;
  session: IcoSession;
  out?: { conn: Connection; stream: Stream; lp: LengthPrefixedStream<Stream> };
  opening?: Promise<void>;
  transport: PeerTransport;
  hungUp?: boolean;
  /** Envelopes sealed for this peer and not yet written (bounded by MAX_PENDING_SENDS). */
  pending: number;
}

/** Envelopes one peer may have waiting for its stream; past this, send() fails fast. */
export const MAX_PENDING_SENDS = 256;

/** Peers whose invalid-frame count we remember; the oldest entry goes first when full. */
export const MAX_SCORED_PEERS = 1024;

/** Errors of the length-prefix decoder that mean the announced frame is over our limit. */
const OVERSIZE_FRAME_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError']);

interface DialTarget {
  addrs: string[];
  roles: string[];
  firstSeen: number;
  failures: number;
  nextAttempt: number;
  isRelay: boolean;
  dialing: boolean;
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

function backoff(failures: number): number {
  const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(failures, 16));
  return base / 2 + Math.random() * (base / 2);
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

  const services = {
    identify: identify(),
    identifyPush: identifyPush(),
    ping: ping(),
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
  const webrtc = options.webrtc !== false;
  const libp2p = (await createLibp2p({
    privateKey,
    addresses: { listen: options.listen ?? defaultListen().filter((a) => webrtc || !a.includes('/webrtc')), ...(options.announce ? { announce: options.announce } : {}) },
    transports: platformTransports({ webrtc }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback and private addresses are how this cluster runs in development and tests.
    connectionGater: {
      denyDialMultiaddr: () => false,
      ...(options.relayServer === true ? { denyInboundRelayReservation: refuseUnadmitted, denyOutboundRelayedConnection: refuseUnadmitted } : {}),
    },
    connectionManager: {
      inboundConnectionThreshold: CONNECTION_LIMITS.inboundPerHostPerSecond,
      maxIncomingPendingConnections: CONNECTION_LIMITS.maxIncomingPending,
      maxConnections: options.relayServer === true ? CONNECTION_LIMITS.maxConnectionsRelay : CONNECTION_LIMITS.maxConnectionsPeer,
    },
    services,
  })) as unknown as Libp2p<{ pubsub: GossipSub }>;

  const self = libp2p.peerId.toString();
  const log = createLogger('net', { peer: self.slice(-8), platform: PLATFORM });
  const sealer = new EnvelopeSealer({ signer, sender: self });
  const replay = new ReplayGuard(DEFAULT_CODEC_LIMITS.replayWindow);
  const gossipReplay = new ReplayGuard(DEFAULT_CODEC_LIMITS.replayWindow);
  const admission: AdmissionPolicy = {
    cluster: options.cluster,
    allowlist: new Set([...options.allowlist, ...relayIds]),
    ...(options.clusterPublicKey ? { clusterPublicKey: options.clusterPublicKey } : {}),
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
  const targets = new Map<string, DialTarget>();
  const handlers = new Map<string, Set<(event: PeerEvent) => void>>();
  const topic = icoTopic(options.cluster);
  let stopping = false;

  for (const addr of relayAddrs) {
    const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (id !== undefined) targets.set(id, { addrs: [addr.toString()], roles: ['relay'], firstSeen: 0, failures: 0, nextAttempt: 0, isRelay: true, dialing: false });
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

  function openConnections(peerId: string): Connection[] {
    return libp2p.getConnections(peerIdFromString(peerId)).filter((c) => c.status === 'open');
  }

  function bestConnection(peerId: string): Connection | undefined {
    let best: Connection | undefined;
    for (const c of openConnections(peerId)) {
      if (best === undefined || TRANSPORT_RANK[transportOf(c)] > TRANSPORT_RANK[transportOf(best)]) best = c;
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
    };
  }

  async function ensureOutStream(link: Link): Promise<void> {
    const conn = bestConnection(link.peerId);
    if (conn === undefined) throw new NotConnectedError(`no open connection to ${link.peerId}`);
    if (link.out !== undefined && link.out.conn.id === conn.id && link.out.stream.status === 'open') return;
    if (link.opening !== undefined) return link.opening;
    link.opening = (async () => {
      let stream: Stream;
      try {
        stream = await conn.newStream(ICO_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) });
      } catch (e) {
        // A connection that cannot carry a stream is dead even if it still reads 'open'
        // (a WebRTC dial the other side gave up on): close it so the next best one is used.
        // (Only on a timeout: a peer that merely does not speak ICO keeps its connection.)
        const name = (e as Error).name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          log.debug({ remote: link.peerId, addr: conn.remoteAddr.toString(), err: (e as Error).message }, 'closing a connection that cannot open streams');
          conn.abort(e instanceof Error ? e : new Error(String(e)));
        }
        throw e;
      }
      const previous = link.out;
      link.out = { conn, stream, lp: lpStream(stream, { maxDataLength: DEFAULT_CODEC_LIMITS.maxFrameBytes }) };
      if (previous !== undefined) void previous.stream.close().catch(() => undefined);
    })().finally(() => {
      link.opening = undefined;
    });
    return link.opening;
  }

  async function sendEnvelope(link: Link, type: IcoType, payload: { [key: string]: Json }): Promise<Envelope> {
    if (link.pending >= MAX_PENDING_SENDS) throw new SendQueueFullError(`${link.pending} envelopes already waiting to be written to ${link.peerId}`);
    link.pending++;
    const { envelope, bytes } = sealer.seal(type, payload, Date.now());
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await ensureOutStream(link);
          await link.out!.lp.write(bytes);
          break;
        } catch (e) {
          link.out = undefined;
          if (attempt >= 1 || e instanceof NotConnectedError) throw e;
        }
      }
    } finally {
      link.pending--;
    }
    link.session.noteSent(Date.now());
    emit({ type: 'ico:out', envelope, to: link.peerId });
    return envelope;
  }

  function sendAll(link: Link, out: Outbound[]): Promise<void> {
    let chain = Promise.resolve();
    for (const o of out) {
      chain = chain.then(async () => {
        await sendEnvelope(link, o.type, o.payload);
      });
    }
    return chain.catch((e: unknown) => {
      log.debug({ err: e, remote: link.peerId }, 'ICO send failed');
    });
  }

  function handleEvents(link: Link, events: SessionEvent[]): void {
    for (const ev of events) {
      switch (ev.kind) {
        case 'established':
          log.info({ remote: link.peerId, roles: ev.remote.roles, version: ev.version }, 'peer established');
          // A fresh relay session: ask it for peers now rather than at the next interval.
          if (relayIds.has(link.peerId)) void discover().then(maintain);
          emit({ type: 'peer:established', peer: infoOf(link) });
          settleAdmission(link.peerId);
          break;
        case 'rejected':
          log.warn({ remote: link.peerId, code: ev.error.code, reason: ev.error.message }, 'peer rejected');
          emit({ type: 'peer:rejected', peerId: link.peerId, code: ev.error.code, reason: ev.error.message });
          settleAdmission(link.peerId);
          // Give the GOODBYE a moment to leave, then hang up.
          setTimeout(() => void libp2p.hangUp(peerIdFromString(link.peerId)).catch(() => undefined), GOODBYE_FLUSH_MS);
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
          emit({ type: 'ico:in', envelope: ev.envelope });
          break;
      }
    }
  }

  function linkFor(peerId: string): Link {
    let link = links.get(peerId);
    if (link === undefined) {
      const session = new IcoSession({
        local: { peerId: self, cluster: options.cluster, roles: options.roles, capabilities: ['ico/1.0', 'gossipsub'] },
        remotePeer: peerId,
        admission,
        heartbeatMs,
        missedBeats,
        joinToken: options.joinToken ?? null,
      });
      link = { peerId, session, transport: 'unknown', pending: 0 };
      links.set(peerId, link);
      const l = link;
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
      void libp2p.hangUp(peerIdFromString(peerId)).catch(() => undefined);
    }
  }

  async function readLoop(stream: Stream, connection: Connection): Promise<void> {
    const remote = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: DEFAULT_CODEC_LIMITS.maxFrameBytes });
    for (;;) {
      let frame: Uint8Array;
      try {
        frame = (await lp.read()).subarray();
      } catch (e) {
        // The limit is checked on the length prefix, before any payload byte is buffered.
        if (OVERSIZE_FRAME_ERRORS.has((e as Error).name)) {
          drop(remote, 'ICO_FRAME_TOO_LARGE', `frame over the ${DEFAULT_CODEC_LIMITS.maxFrameBytes}-byte limit: ${(e as Error).message}`);
          stream.abort(new Error('frame too large'));
        }
        return;
      }
      const result = decodeEnvelope(frame, { now: Date.now(), expectedSender: remote, replay });
      if (!result.ok) {
        log.debug({ remote, code: result.error.code, reason: result.error.message }, 'dropped envelope');
        drop(remote, result.error.code, result.error.message);
        continue;
      }
      // Frames still buffered after the connection closed belong to the old session, if any.
      let link = connection.status === 'open' ? linkFor(remote) : links.get(remote);
      if (link === undefined) continue;
      // A HELLO on a finished or established session is the same peer starting over (a
      // restarted process, a reloaded tab) while its old connection lingers: new session.
      if (result.envelope.type === 'HELLO' && (link.session.state === 'established' || link.session.state === 'closed') && connection.status === 'open') {
        log.info({ remote }, 'peer restarted its session');
        links.delete(remote);
        link = linkFor(remote);
      }
      const step = link.session.receive(result.envelope, Date.now());
      if (result.envelope.type === 'HELLO' || result.envelope.type === 'HEARTBEAT' || result.envelope.type === 'GOODBYE') {
        emit({ type: 'ico:in', envelope: result.envelope });
      }
      handleEvents(link, step.events);
      await sendAll(link, step.out);
    }
  }

  await libp2p.handle(ICO_PROTOCOL, (stream, connection) => {
    void readLoop(stream, connection).catch((e: unknown) => log.debug({ err: e }, 'ICO read loop ended'));
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
    await libp2p.handle(DISCOVERY_PROTOCOL, async (stream, connection) => {
      try {
        const asker = connection.remotePeer.toString();
        // Who else is in the cluster is for members only.
        const admitted = await admittedWithin!(asker, ADMISSION_WAIT_MS);
        const peers = !admitted ? [] : await Promise.all(
          admittedPeers()
            .filter((p) => p.peerId !== asker)
            .map(async (p) => {
              const addrs = new Set<string>();
              try {
                const stored = await libp2p.peerStore.get(peerIdFromString(p.peerId));
                for (const a of stored.addresses) addrs.add(a.multiaddr.toString());
              } catch {
                // Not in the peer store (yet): only the circuit address below.
              }
              // Every peer with a reservation here is reachable through us.
              const circuit = `${libp2p.getMultiaddrs()[0]?.toString() ?? ''}/p2p-circuit/p2p/${p.peerId}`;
              addrs.add(circuit);
              addrs.add(circuit.replace('/p2p-circuit/p2p/', '/p2p-circuit/webrtc/p2p/'));
              return { ...p, addrs: [...addrs].slice(0, 32) };
            }),
        );
        await writeJsonFrame(stream, { peers }, MAX_DISCOVERY_BYTES);
        await stream.close();
      } catch (e) {
        log.debug({ err: e }, 'discovery request failed');
        stream.abort(e instanceof Error ? e : new Error(String(e)));
      }
    }, { runOnLimitedConnection: false, maxInboundStreams: 4 });
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
      // Move our outbound ICO stream onto the better connection.
      void ensureOutStream(link).catch(() => undefined);
    }
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
    const result = decodeEnvelope(msg.data, { now: Date.now(), replay: gossipReplay });
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
    if (result.envelope.type === 'STATE_SYNC' || result.envelope.type === 'CONSENSUS') emit({ type: 'ico:in', envelope: result.envelope });
  });

  async function dialTarget(peerId: string, target: DialTarget): Promise<void> {
    // Every address must name the peer, or a relay circuit address would just dial the relay.
    const suffix = `/p2p/${peerId}`;
    const ranked = target.addrs.map((a) => (a.endsWith(suffix) ? a : `${a}${suffix}`)).sort((a, b) => rankAddr(b) - rankAddr(a));
    let lastError: unknown;
    for (const addr of ranked) {
      if (rankAddr(addr) < 0) continue;
      try {
        const conn = await libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) });
        log.debug({ remote: peerId, addr, via: conn.remoteAddr.toString(), status: conn.status }, 'dialed');
        return;
      } catch (e) {
        lastError = e;
        log.debug({ remote: peerId, addr, err: (e as Error).message }, 'dial attempt failed');
      }
    }
    throw lastError ?? new NotConnectedError(`no dialable address for ${peerId}`);
  }

  function rankAddr(addr: string): number {
    const isCircuit = addr.includes('/p2p-circuit');
    const isWebrtc = addr.includes('/webrtc');
    if (isWebrtc && !webrtc) return -1;
    if (PLATFORM === 'browser') {
      if (isWebrtc) return 3;
      if (isCircuit) return 1;
      if (addr.includes('/ws')) return 2;
      return -1;
    }
    if (!isCircuit && addr.includes('/tcp/') && !addr.includes('/ws')) return 4;
    if (!isCircuit && addr.includes('/ws')) return 3;
    if (isWebrtc) return 2;
    return isCircuit ? 1 : -1;
  }

  /** A direct connection: not a relayed circuit with limits (those only carry first contact). */
  function hasDirect(peerId: string): boolean {
    return openConnections(peerId).some((c) => c.limits === undefined);
  }

  /**
   * Starts dials that are due; each target has at most one dial in flight, none blocks
   * another. A peer reached only through a limited relayed connection keeps being dialed
   * (with backoff) until a direct one (WebRTC/TCP) exists.
   */
  function maintain(): void {
    if (stopping) return;
    const now = Date.now();
    for (const [peerId, target] of targets) {
      if (target.dialing || peerId === self || hasDirect(peerId) || now < target.nextAttempt) continue;
      if (!target.isRelay) {
        // Browsers are reached by their own dials (WebRTC signalled through the relay). Of
        // two peers of the same kind only the smaller PeerId dials, so simultaneous WebRTC
        // dials cannot collide; the larger one steps in only if nothing at all connects.
        if (PLATFORM === 'node' && target.roles.includes('browser')) continue;
        const sameKind = (PLATFORM === 'browser') === target.roles.includes('browser');
        if (sameKind && self > peerId && (now - target.firstSeen < DIAL_GRACE_MS || openConnections(peerId).length > 0)) continue;
      }
      target.dialing = true;
      log.debug({ remote: peerId, addrs: target.addrs.length }, 'dialing');
      dialTarget(peerId, target)
        .then(() => {
          if (!hasDirect(peerId)) throw new NotConnectedError('only a relayed connection came up');
          target.failures = 0;
        })
        .catch((e: unknown) => {
          target.failures++;
          target.nextAttempt = Date.now() + backoff(target.failures);
          log.debug({ remote: peerId, failures: target.failures, err: (e as Error).message }, 'dial failed; backing off');
        })
        .finally(() => {
          target.dialing = false;
        });
    }
  }

  async function discover(): Promise<void> {
    if (stopping) return;
    for (const relayId of relayIds) {
      const conn = openConnections(relayId).find((c) => c.limits === undefined);
      if (conn === undefined) continue;
      try {
        const stream = await conn.newStream(DISCOVERY_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
        const reply = parseDiscoveryReply(await readJsonFrame(stream, MAX_DISCOVERY_BYTES, AbortSignal.timeout(5_000)));
        await stream.close().catch(() => undefined);
        const now = Date.now();
        log.debug({ relay: relayId, peers: reply.length }, 'discovered');
        for (const p of reply) {
          if (p.peerId === self || relayIds.has(p.peerId)) continue;
          const known = targets.get(p.peerId);
          if (known === undefined) {
            targets.set(p.peerId, { addrs: p.addrs, roles: p.roles, firstSeen: now, failures: 0, nextAttempt: 0, isRelay: false, dialing: false });
          } else {
            known.addrs = p.addrs;
          }
        }
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
        void libp2p.hangUp(peerIdFromString(link.peerId)).catch(() => undefined);
      }
    }
  }, Math.max(25, Math.floor(heartbeatMs / 4)));
  const maintainTimer = setInterval(maintain, MIN_BACKOFF_MS);
  const discoveryTimer = setInterval(() => void discover(), DISCOVERY_INTERVAL_MS);
  maintain();
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
      await sendEnvelope(link, type, payload);
    },
    async broadcast(type, payload) {
      if (libp2p.services.pubsub.getSubscribers(topic).length === 0) throw new NoSubscribersError(`no peer is subscribed to ${topic} yet`);
      const { envelope, bytes } = sealer.seal(type, payload, Date.now());
      await libp2p.services.pubsub.publish(topic, bytes);
      emit({ type: 'ico:out', envelope, to: '*' });
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

