// Types of the ICO wire protocol (see PROTOCOL.md): the signed envelope, the payloads of
// the lifecycle messages, and the session's inputs and outputs. Shared by the pure codec and
// lifecycle in src/ico and the drivers in src/net; nothing here does I/O.

/** Protocol version spoken by this build: `major.minor`. Majors must match; minors interoperate. */
export const ICO_VERSION = '1.1';

export const ICO_TYPES = ['HELLO', 'STATE_SYNC', 'CONSENSUS', 'HEARTBEAT', 'GOODBYE'] as const;
export type IcoType = (typeof ICO_TYPES)[number];

/** JSON value as it travels inside payloads (what JCS can canonicalize). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The signed envelope. `signature` is ed25519 by `sender`'s key over the JCS bytes of the
 * envelope without `signature`, base64url without padding.
 */
export type JsonObject = { [key: string]: Json };

export interface Envelope<P extends JsonObject = JsonObject> {
  v: string;
  type: IcoType;
  /** libp2p PeerId string (ed25519, base58btc `12D3KooW…`): the public key is inside. */
  sender: string;
  /** Per-sender counter; strictly increasing for one sender (survives restarts: starts at ms-time based value). */
  seq: number;
  /** RFC 3339 UTC with milliseconds, e.g. 2026-11-24T15:22:54.123Z. */
  timestamp: string;
  payload: P;
  signature: string;
}

/** A Merkle tree head summary as advertised in HELLO (full signed heads live in src/receipts). */
export interface TreeHeadSummary extends Record<string, Json> {
  size: number;
  root: string;
}

export type PeerRole = 'voter' | 'learner' | 'relay' | 'browser';

/**
 * A join token: the cluster key admits `peer` (or any peer when `peer` is '*') in `role` from
 * `issued` until `expires` (RFC 3339), unless the cluster revoked `id`.
 */
export interface JoinToken extends Record<string, Json> {
  cluster: string;
  peer: string;
  role: PeerRole;
  id: string;
  issued: string;
  expires: string;
  /** ed25519 by the cluster key over JCS of {cluster, peer, role, id, issued, expires}, base64url. */
  signature: string;
}

export interface HelloPayload extends Record<string, Json> {
  version: string;
  cluster: string;
  roles: PeerRole[];
  capabilities: string[];
  tree_head: TreeHeadSummary | null;
  join_token: JoinToken | null;
  heartbeat_ms: number;
  // Optional `state`: the sync layer's state summary ({sync, n, h}); absent from peers without one.
}

export interface HeartbeatPayload extends Record<string, Json> {
  /** Sender's monotonic beat counter on this session. */
  beat: number;
}

export interface GoodbyePayload extends Record<string, Json> {
  /** Stable machine-readable reason, e.g. 'shutdown', 'version-mismatch', 'not-admitted', 'cluster-mismatch'. */
  code: string;
  reason: string;
}

/** Stable error codes of every rejection the codec and lifecycle can produce. */
export type IcoErrorCode =
  | 'ICO_MALFORMED'
  | 'ICO_UNKNOWN_TYPE'
  | 'ICO_BAD_SIGNATURE'
  | 'ICO_SENDER_MISMATCH'
  | 'ICO_REPLAYED'
  | 'ICO_TIMESTAMP_SKEW'
  | 'ICO_FRAME_TOO_LARGE'
  | 'ICO_VERSION_MISMATCH'
  | 'ICO_CLUSTER_MISMATCH'
  | 'ICO_NOT_ADMITTED'
  | 'ICO_PROTOCOL_VIOLATION';

export interface CodecLimits {
  /** Largest accepted frame in bytes (default 1 MiB). */
  maxFrameBytes: number;
  /** Accepted |timestamp - now| in ms (default 30 000). */
  maxSkewMs: number;
  /** Replay window width in sequence numbers (default 1024). */
  replayWindow: number;
}

export const DEFAULT_CODEC_LIMITS: CodecLimits = { maxFrameBytes: 1024 * 1024, maxSkewMs: 30_000, replayWindow: 1024 };
