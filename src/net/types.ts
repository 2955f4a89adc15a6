// The public face of a running HyperSync peer, the same in Node and in a browser tab.
// `window.hypersync` in the web app, the CLI's `node` command and the tests all use this
// shape; the libp2p details stay behind it.
import type { WireEncoding } from '../ico/frame.ts';
import type { WireStats } from './ico-channel.ts';
import type { Envelope, IcoType, Json, JoinToken, JsonObject, PeerRole } from '../ico/types.ts';

/**
 * What send() and broadcast() carry: a JSON object, or raw bytes (a binary frame carries them
 * as they are; the JSON form, for JSON peers and gossip, is `{"$bytes": "<base64url>"}`).
 */
export type SendPayload = JsonObject | Uint8Array;

/** 'binary': offer binary frames in HELLO and use them with peers that offer them too; 'json': JSON frames only. */
export type WireMode = 'binary' | 'json';

/** How we currently reach a peer: a circuit-relayed hop, or a direct transport. */
export type PeerTransport = 'relayed' | 'webrtc' | 'websocket' | 'tcp' | 'unknown';

export type PeerState = 'connecting' | 'established' | 'down' | 'closed' | 'rejected';

export interface PeerInfo {
  peerId: string;
  roles: PeerRole[];
  transport: PeerTransport;
  state: PeerState;
  /** Remote multiaddr of the connection in use. */
  remoteAddr: string;
  /** ms since epoch of the last valid envelope from this peer. */
  lastSeen: number;
  /** Negotiated ICO version once established. */
  version?: string;
  /** The sync state summary the peer's HELLO carried, if any. */
  sync?: { [key: string]: Json };
}

export interface ConnectionInfo {
  peerId: string;
  remoteAddr: string;
  transport: PeerTransport;
  /** True when the relay limits the connection (circuit relay v2 duration/data caps). */
  limited: boolean;
  direction: 'inbound' | 'outbound';
}

export type PeerEvent =
  | { type: 'peer:established'; peer: PeerInfo }
  | { type: 'peer:down'; peerId: string }
  | { type: 'peer:up'; peerId: string }
  | { type: 'peer:goodbye'; peerId: string; code: string; reason: string }
  | { type: 'peer:rejected'; peerId: string; code: string; reason: string }
  | { type: 'peer:transport'; peerId: string; transport: PeerTransport }
  /**
   * A message received. `envelope` is its JSON form (for a binary frame, `signature` is the
   * frame's, which covers the frame bytes and not this JSON). `bytes` is set when the payload
   * is raw bytes (the envelope then shows `{"$bytes": …}`).
   */
  | { type: 'ico:in'; envelope: Envelope; encoding?: WireEncoding; bytes?: Uint8Array }
  | { type: 'ico:out'; envelope: Envelope; to: string; encoding?: WireEncoding }
  | { type: 'ico:dropped'; peerId: string; code: string; reason: string };

export type PeerEventType = PeerEvent['type'];
export type PeerEventOf<T extends PeerEventType> = Extract<PeerEvent, { type: T }>;

export interface HyperSyncPeer {
  readonly peerId: string;
  readonly cluster: string;
  /** Addresses this peer listens on (empty for a browser behind no relay yet). */
  multiaddrs(): string[];
  peers(): PeerInfo[];
  /** Every open libp2p connection (a peer may have a relayed and a direct one at once). */
  connections(): ConnectionInfo[];
  /**
   * Queues a message for one established peer on the direct ICO stream; resolves once the
   * stream accepted it. Messages queued in one synchronous burst leave in one write (one
   * signed binary frame to a peer that negotiated it). Rejects with NotConnectedError,
   * SendQueueFullError (backpressure: MAX_PENDING_SENDS / MAX_PENDING_BYTES per peer) or
   * MessageTooLargeError.
   */
  send(to: string, type: Extract<IcoType, 'STATE_SYNC' | 'CONSENSUS'>, payload: SendPayload): Promise<void>;
  /** Publishes a signed envelope (JSON form) on the cluster's gossipsub topic. */
  broadcast(type: Extract<IcoType, 'STATE_SYNC' | 'CONSENSUS'>, payload: SendPayload): Promise<void>;
  /** Counters of this peer's direct-stream wire (frames, messages, bytes, writes, signatures). */
  wireStats(): WireStats;
  /**
   * Round-trip time in ms to a connected peer (libp2p ping on the connection in use, relayed
   * ones included); rejects when no connection answers within PING_TIMEOUT_MS or `signal` aborts.
   */
  ping(peerId: string, options?: { signal?: AbortSignal }): Promise<number>;
  /** Subscribes to an event type ('*' for all); returns the unsubscribe function. */
  on<T extends PeerEventType>(type: T, handler: (event: PeerEventOf<T>) => void): () => void;
  on(type: '*', handler: (event: PeerEvent) => void): () => void;
  /** Scores a peer down for invalid application content (a forged sync record); counted like an invalid frame. */
  report(peerId: string, code: string, reason: string): void;
  /**
   * Fault injection for nemesis tests: while cut, the connection gater refuses every dial and
   * every inbound connection, and cutting aborts the open ones (no GOODBYE: a cable pulled).
   * Lifting the cut lets the dialer and discovery reconnect.
   */
  setNetworkCut(cut: boolean): Promise<void>;
  /** Graceful stop: GOODBYE to every established peer, then close. */
  stop(): Promise<void>;
}

export interface PeerOptions {
  cluster: string;
  roles: PeerRole[];
  /** Relay multiaddrs (with /p2p/<relayId>) to dial and keep dialing with backoff. */
  relays: string[];
  /** PeerIds admitted without a token. */
  allowlist: string[];
  /** Cluster public key (32 raw bytes) that signs join tokens; absent: allowlist only. */
  clusterPublicKey?: Uint8Array;
  /** Ids of join tokens the cluster revoked (cluster.json `revokedTokens`). */
  revokedTokens?: string[];
  /** Our own join token, presented in HELLO. */
  joinToken?: JoinToken | null;
  heartbeatMs?: number;
  missedBeats?: number;
  /** Node only: where peer.key and the store live. Browser: identity goes to IndexedDB. */
  dataDir?: string;
  /** Node only: listen addresses (defaults: TCP, WS and WebRTC on 127.0.0.1 random ports). */
  listen?: string[];
  /** The sync layer's state summary for our HELLO (read when each session starts). */
  helloState?: () => { [key: string]: Json } | null;
  /**
   * Receives every event from before the first dial on (like `on('*', handler)`, which can only
   * be called once startPeer resolves: by then a relay's HELLO may already have arrived).
   */
  onEvent?: (event: PeerEvent) => void;
  /** Wire encoding on direct streams (default: 'binary' on Node, 'json' in browsers). */
  wire?: WireMode;
  /**
   * false: no WebRTC at all (no transport, no listener, no WebRTC dials). For a browser that
   * offers no ICE candidate (no usable network address), where every WebRTC attempt would
   * fail after the ICE timeout. Default true.
   */
  webrtc?: boolean;
}
