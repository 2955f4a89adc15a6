// The public face of a running HyperSync peer, the same in Node and in a browser tab.
// `window.hypersync` in the web app, the CLI's `node` command and the tests all use this
// shape; the libp2p details stay behind it.
import type { Envelope, IcoType, Json, JoinToken, PeerRole } from '../ico/types.ts';

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
  | { type: 'ico:in'; envelope: Envelope }
  | { type: 'ico:out'; envelope: Envelope; to: string }
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
  /** Sends a signed envelope on the direct ICO stream to one established peer. */
  send(to: string, type: Extract<IcoType, 'STATE_SYNC' | 'CONSENSUS'>, payload: { [key: string]: Json }): Promise<void>;
  /** Publishes a signed envelope on the cluster's gossipsub topic. */
  broadcast(type: Extract<IcoType, 'STATE_SYNC' | 'CONSENSUS'>, payload: { [key: string]: Json }): Promise<void>;
  /** Subscribes to an event type ('*' for all); returns the unsubscribe function. */
  on<T extends PeerEventType>(type: T, handler: (event: PeerEventOf<T>) => void): () => void;
  on(type: '*', handler: (event: PeerEvent) => void): () => void;
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
  /** Our own join token, presented in HELLO. */
  joinToken?: JoinToken | null;
  heartbeatMs?: number;
  missedBeats?: number;
  /** Node only: where peer.key and the store live. Browser: identity goes to IndexedDB. */
  dataDir?: string;
  /** Node only: listen addresses (defaults: TCP, WS and WebRTC on 127.0.0.1 random ports). */
  listen?: string[];
  /**
   * false: no WebRTC at all (no transport, no listener, no WebRTC dials). For a browser that
   * offers no ICE candidate (no usable network address), where every WebRTC attempt would
   * fail after the ICE timeout. Default true.
   */
  webrtc?: boolean;
}
