// The engines' transport over a HyperSync peer: a payload to a member is one signed CONSENSUS
// envelope on the direct ICO stream, and CONSENSUS envelopes from peers are handed to the
// engine with their authenticated sender. Only the peer's public API is used, so the wire
// underneath (streams, coalescing, envelope encoding) can change without the engines knowing.
import type { EngineTransport } from '../consensus/ports.ts';
import type { HyperSyncPeer } from './types.ts';

export function consensusTransport(peer: HyperSyncPeer): EngineTransport {
  return {
    send: (to, payload) => peer.send(to, 'CONSENSUS', payload),
    onMessage(handler) {
      return peer.on('ico:in', (ev) => {
        if (ev.envelope.type === 'CONSENSUS') handler(ev.envelope.sender, ev.envelope.payload);
      });
    },
  };
}
