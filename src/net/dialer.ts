// Keeping the cluster connected: one dial target per known peer (the configured relays, and
// whoever discovery lists), dialed with exponential backoff and jitter until a direct
// connection (TCP, WebSocket, WebRTC: not a limited relayed circuit) exists. At most one dial
// per target is in flight and none blocks another. Who dials whom is decided here so that
// simultaneous WebRTC dials between two peers cannot collide.
import type { Connection } from '@libp2p/interface';
import type { Logger } from '../log/logger.ts';
import { NotConnectedError } from './ico-channel.ts';
import { DIAL_GRACE_MS, MAX_BACKOFF_MS, MIN_BACKOFF_MS, type DiscoveredPeer } from './protocol.ts';

/** Addresses kept per target (discovery already caps a reply's addresses at this). */
export const MAX_TARGET_ADDRS = 32;

interface DialTarget {
  addrs: string[];
  roles: string[];
  firstSeen: number;
  failures: number;
  nextAttempt: number;
  isRelay: boolean;
  dialing: boolean;
}

export interface DialerHost {
  readonly self: string;
  readonly platform: 'node' | 'browser';
  readonly log: Logger;
  /** Dials one address (bounded by its own timeout). */
  dial(addr: string): Promise<Connection>;
  openConnections(peerId: string): Connection[];
}

/** Exponential backoff between MIN_BACKOFF_MS and MAX_BACKOFF_MS, with jitter in its upper half. */
export function backoff(failures: number): number {
  const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(failures, 16));
  return base / 2 + Math.random() * (base / 2);
}

/** Preference of an address for `platform` (higher first); negative: not dialable from here. */
export function rankAddr(addr: string, platform: 'node' | 'browser'): number {
  const isCircuit = addr.includes('/p2p-circuit');
  const isWebrtc = addr.includes('/webrtc');
  if (platform === 'browser') {
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

export class Dialer {
  readonly #host: DialerHost;
  readonly #targets = new Map<string, DialTarget>();
  #stopped = false;

  constructor(host: DialerHost) {
    this.#host = host;
  }

  /** A relay we keep dialing (from the options). */
  addRelay(peerId: string, addr: string): void {
    this.#targets.set(peerId, { addrs: [addr], roles: ['relay'], firstSeen: 0, failures: 0, nextAttempt: 0, isRelay: true, dialing: false });
  }

  /** Peers a relay listed: new ones become targets, known ones get the fresh addresses. */
  learn(peers: readonly DiscoveredPeer[], now: number): void {
    for (const p of peers) {
      const known = this.#targets.get(p.peerId);
      const addrs = p.addrs.slice(0, MAX_TARGET_ADDRS);
      if (known === undefined) this.#targets.set(p.peerId, { addrs, roles: p.roles, firstSeen: now, failures: 0, nextAttempt: 0, isRelay: false, dialing: false });
      else known.addrs = addrs;
    }
  }

  /** A direct connection: not a relayed circuit with limits (those only carry first contact). */
  hasDirect(peerId: string): boolean {
    return this.#host.openConnections(peerId).some((c) => c.limits === undefined);
  }

  /**
   * Starts the dials that are due. A peer reached only through a limited relayed connection
   * keeps being dialed (with backoff) until a direct one exists.
   */
  maintain(): void {
    if (this.#stopped) return;
    const { self, platform, log } = this.#host;
    const now = Date.now();
    for (const [peerId, target] of this.#targets) {
      if (target.dialing || peerId === self || this.hasDirect(peerId) || now < target.nextAttempt) continue;
      if (!target.isRelay) {
        // Browsers are reached by their own dials (WebRTC signalled through the relay). Of
        // two peers of the same kind only the smaller PeerId dials, so simultaneous WebRTC
        // dials cannot collide; the larger one steps in only if nothing at all connects.
        if (platform === 'node' && target.roles.includes('browser')) continue;
        const sameKind = (platform === 'browser') === target.roles.includes('browser');
        if (sameKind && self > peerId && (now - target.firstSeen < DIAL_GRACE_MS || this.#host.openConnections(peerId).length > 0)) continue;
      }
      target.dialing = true;
      log.debug({ remote: peerId, addrs: target.addrs.length }, 'dialing');
      this.#dialTarget(peerId, target)
        .then(() => {
          if (!this.hasDirect(peerId)) throw new NotConnectedError('only a relayed connection came up');
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

  async #dialTarget(peerId: string, target: DialTarget): Promise<void> {
    const { platform, log } = this.#host;
    // Every address must name the peer, or a relay circuit address would just dial the relay.
    const suffix = `/p2p/${peerId}`;
    const ranked = target.addrs.map((a) => (a.endsWith(suffix) ? a : `${a}${suffix}`)).sort((a, b) => rankAddr(b, platform) - rankAddr(a, platform));
    let lastError: unknown;
    for (const addr of ranked) {
      if (rankAddr(addr, platform) < 0) continue;
      try {
        const conn = await this.#host.dial(addr);
        log.debug({ remote: peerId, addr, via: conn.remoteAddr.toString(), status: conn.status }, 'dialed');
        return;
      } catch (e) {
        lastError = e;
        log.debug({ remote: peerId, addr, err: (e as Error).message }, 'dial attempt failed');
      }
    }
    throw lastError ?? new NotConnectedError(`no dialable address for ${peerId}`);
  }

  stop(): void {
    this.#stopped = true;
  }
}
