// The net layer's public API: start a peer (Node or browser, picked by package.json `imports`).
export { startPeer, NotConnectedError, NoSubscribersError, RELAY_LIMITS, type InternalPeerOptions } from './peer.ts';
export * from './types.ts';
export { ICO_PROTOCOL, DISCOVERY_PROTOCOL, icoTopic } from './protocol.ts';
