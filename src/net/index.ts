// The net layer's public API: start a peer (Node or browser, picked by package.json `imports`).
export {
  startPeer, NotConnectedError, NoSubscribersError, SendQueueFullError, MessageTooLargeError, MAX_PENDING_SENDS, MAX_PENDING_BYTES, RELAY_LIMITS, CONNECTION_LIMITS,
  ADMISSION_WAIT_MS, DEFAULT_WIRE, type InternalPeerOptions, type WireStats,
} from './peer.ts';
export * from './types.ts';
export { ICO_PROTOCOL, ICO_PROTOCOL_LEGACY, DISCOVERY_PROTOCOL, icoTopic } from './protocol.ts';
