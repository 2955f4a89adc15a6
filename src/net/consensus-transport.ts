// The engines' transport over a HyperSync peer: a payload to a member is one signed CONSENSUS
// envelope on the direct ICO stream, and CONSENSUS envelopes from peers are handed to the
// engine with their authenticated sender. Raft and PBFT share the channel: `accept` hands each
// engine only its own payload kinds (raftPayload / pbftPayload). Only the peer's public API is used, so the wire
// underneath (streams, coalescing, envelope encoding) can change without the engines knowing.
import type { EngineTransport } from '../consensus/ports.ts';
import type { JsonObject } from '../ico/types.ts';
import { PBFT_PAYLOAD_KINDS } from '../consensus/pbft/runtime/wire.ts';
import type { HyperSyncPeer } from './types.ts';

/** A PBFT payload (protocol messages, a client's query or a replica's answer). */
export const pbftPayload = (p: JsonObject): boolean => typeof p['k'] === 'string' && PBFT_PAYLOAD_KINDS.has(p['k']);
/** Anything else on CONSENSUS is Raft's. */
export const raftPayload = (p: JsonObject): boolean => !pbftPayload(p);

export function consensusTransport(peer: HyperSyncPeer, accept?: (payload: JsonObject) => boolean): EngineTransport {
  return {
    send: (to, payload) => peer.send(to, 'CONSENSUS', payload),
    onMessage(handler) {
      return peer.on('ico:in', (ev) => {
        if (ev.envelope.type === 'CONSENSUS' && (accept === undefined || accept(ev.envelope.payload))) handler(ev.envelope.sender, ev.envelope.payload);
      });
    },
  };
}
