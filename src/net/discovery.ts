// Peer discovery through relays (/hypersync/discovery/1.0.0): the relay answers an admitted
// asker with the other admitted peers and their addresses (the peer store's, plus a circuit
// through the relay and WebRTC over it); a peer asks each relay it has a direct connection to.
// Replies are untrusted input: parseDiscoveryReply bounds and checks them.
import { peerIdFromString } from '@libp2p/peer-id';
import type { Connection } from '@libp2p/interface';
import type { Libp2p } from 'libp2p';
import type { Logger } from '../log/logger.ts';
import { DISCOVERY_PROTOCOL, MAX_DISCOVERY_BYTES, parseDiscoveryReply, readJsonFrame, writeJsonFrame, type DiscoveredPeer } from './protocol.ts';

/** One discovery request (open the stream, read the reply) must complete within this time. */
export const DISCOVERY_TIMEOUT_MS = 5_000;
/** Addresses listed per peer at most. */
export const MAX_ADDRS_PER_PEER = 32;
/** Discovery requests one relay serves at once per connection. */
const MAX_DISCOVERY_STREAMS = 4;

export interface DiscoveryServer {
  libp2p: Libp2p;
  log: Logger;
  /** Whether `peerId` completed HELLO and admission (waiting up to `timeoutMs` for it). */
  admittedWithin(peerId: string, timeoutMs: number): Promise<boolean>;
  /** The admitted peers, addresses not yet filled in. */
  admittedPeers(): DiscoveredPeer[];
  admissionWaitMs: number;
}

/** The relay side: answers each request with the admitted peers other than the asker. */
export async function serveDiscovery(s: DiscoveryServer): Promise<void> {
  const { libp2p, log } = s;
  await libp2p.handle(DISCOVERY_PROTOCOL, async (stream, connection) => {
    try {
      const asker = connection.remotePeer.toString();
      // Who else is in the cluster is for members only.
      const admitted = await s.admittedWithin(asker, s.admissionWaitMs);
      const peers = !admitted ? [] : await Promise.all(
        s.admittedPeers()
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
            return { ...p, addrs: [...addrs].slice(0, MAX_ADDRS_PER_PEER) };
          }),
      );
      await writeJsonFrame(stream, { peers }, MAX_DISCOVERY_BYTES);
      await stream.close();
    } catch (e) {
      log.debug({ err: e }, 'discovery request failed');
      stream.abort(e instanceof Error ? e : new Error(String(e)));
    }
  }, { runOnLimitedConnection: false, maxInboundStreams: MAX_DISCOVERY_STREAMS });
}

/** The peer side: asks the relay at the other end of `conn` for the cluster's peers. */
export async function askRelay(conn: Connection): Promise<DiscoveredPeer[]> {
  const stream = await conn.newStream(DISCOVERY_PROTOCOL, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  const reply = parseDiscoveryReply(await readJsonFrame(stream, MAX_DISCOVERY_BYTES, AbortSignal.timeout(DISCOVERY_TIMEOUT_MS)));
  await stream.close().catch(() => undefined);
  return reply;
}
