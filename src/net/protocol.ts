// Wire constants of the net layer and the length-prefixed JSON framing used on our own
// libp2p protocols. Every limit here is named; PROTOCOL.md documents them.
import { lpStream } from '@libp2p/utils';
import type { Stream } from '@libp2p/interface';

/** ICO 1.1: one duplex stream per connection (the dialer opens it, both sides read and write it). */
export const ICO_PROTOCOL = '/hypersync/ico/1.1.0';
/** ICO 1.0, still spoken to old peers: each side writes on the stream it opened and reads the ones it accepted. */
export const ICO_PROTOCOL_LEGACY = '/hypersync/ico/1.0.0';
/** Protocols the ICO handler accepts and an opener offers, preferred first. */
export const ICO_PROTOCOLS = [ICO_PROTOCOL, ICO_PROTOCOL_LEGACY];
/**
 * Connections of the same transport opened within this time of each other count as
 * simultaneous; otherwise the newer one is preferred (a restarted peer's old connection may
 * linger, still 'open', until its transport notices).
 */
export const CONNECTION_TIE_MS = 1_000;
export const DISCOVERY_PROTOCOL = '/hypersync/discovery/1.0.0';

export function icoTopic(cluster: string): string {
  return `hypersync/${cluster}/ico`;
}
export function syncTopic(cluster: string): string {
  return `hypersync/${cluster}/sync`;
}

/** Largest discovery reply; also bounds the number of peers listed. */
export const MAX_DISCOVERY_BYTES = 256 * 1024;
export const MAX_DISCOVERY_PEERS = 256;
/** Invalid envelopes tolerated from one peer before its connections are closed. */
export const MAX_BAD_FRAMES_PER_PEER = 64;
/** Time a peer gets to flush GOODBYE on stop. */
export const GOODBYE_FLUSH_MS = 500;
/** Grace after a connection closes for its buffered frames (a GOODBYE) to be processed. */
export const CLOSE_SETTLE_MS = 100;
/** Reconnection backoff bounds (exponential with jitter between them). */
export const MIN_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 15_000;
/** How often discovery asks each relay for peers. */
export const DISCOVERY_INTERVAL_MS = 2_000;
/** One dial attempt (one address) may take this long. */
export const DIAL_TIMEOUT_MS = 8_000;
/** A peer with the larger PeerId waits this long for the smaller one to dial before dialing itself. */
export const DIAL_GRACE_MS = 3_000;

export interface DiscoveredPeer {
  peerId: string;
  addrs: string[];
  roles: string[];
}

export class DiscoveryError extends Error {
  readonly code = 'NET_DISCOVERY_INVALID';
  override name = 'DiscoveryError';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export async function writeJsonFrame(stream: Stream, value: unknown, maxBytes: number): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: maxBytes });
  await lp.write(encoder.encode(JSON.stringify(value)));
}

export async function readJsonFrame(stream: Stream, maxBytes: number, signal?: AbortSignal): Promise<unknown> {
  const lp = lpStream(stream, { maxDataLength: maxBytes });
  const frame = await lp.read(signal === undefined ? {} : { signal });
  return JSON.parse(decoder.decode(frame.subarray()));
}

/** Validates a discovery reply from the relay (untrusted input). */
export function parseDiscoveryReply(value: unknown): DiscoveredPeer[] {
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { peers?: unknown }).peers)) {
    throw new DiscoveryError('discovery reply must be {peers: [...]}');
  }
  const peers = (value as { peers: unknown[] }).peers.slice(0, MAX_DISCOVERY_PEERS);
  const out: DiscoveredPeer[] = [];
  for (const p of peers) {
    if (typeof p !== 'object' || p === null) continue;
    const { peerId, addrs, roles } = p as Record<string, unknown>;
    if (typeof peerId !== 'string' || !Array.isArray(addrs)) continue;
    out.push({
      peerId,
      addrs: addrs.filter((a): a is string => typeof a === 'string').slice(0, 32),
      roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string').slice(0, 8) : [],
    });
  }
  return out;
}
