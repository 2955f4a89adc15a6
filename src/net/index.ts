// The net layer's public API: start a peer (Node or browser, picked by package.json `imports`).
export { startPeer, NotConnectedError, NoSubscribersError, SendQueueFullError, MAX_PENDING_SENDS, RELAY_LIMITS, CONNECTION_LIMITS, ADMISSION_WAIT_MS, type InternalPeerOptions } from './peer.ts';
export * from './types.ts';
export { ICO_PROTOCOL, DISCOVERY_PROTOCOL, icoTopic } from './protocol.ts';
