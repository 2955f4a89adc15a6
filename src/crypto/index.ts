// The crypto layer's public face: the platform adapter (node:crypto on Node; in browsers
// WebCrypto Ed25519 with a @noble fallback, picked at build/resolve time through package.json
// `imports`), canonical JSON, `sha256:<hex>` digests, encodings, and the bridge between
// libp2p keys/PeerIds and raw ed25519 keys (the PeerId *is* the signer: its public key is
// inside it). No libp2p code runs here (types only), so the standalone verifier can use it.
import adapter from '#crypto-adapter';
import type { PrivateKey } from '@libp2p/interface';
import { canonicalBytes } from './jcs.ts';
import { hexEncode } from './encoding.ts';
import { KeyCache, MAX_CACHED_KEYS } from './key-cache.ts';
import { ed25519KeyFromPeerId, peerIdFromEd25519Key } from './peer-id.ts';
import type { CryptoAdapter } from './types.ts';

export type { CryptoAdapter, Ed25519Signer } from './types.ts';
export { canonicalize, canonicalBytes, JcsError, MAX_JCS_DEPTH } from './jcs.ts';
export { MAX_JSON_PARSE_DEPTH, parseJson, parseJsonStrict } from './json.ts';
export { base64urlDecode, base64urlEncode, bytesEqual, EncodingError, hexDecode, hexEncode, utf8Decode, utf8Encode, varint, varintLength, writeVarint } from './encoding.ts';

export const crypto: CryptoAdapter = adapter;

export class KeyError extends Error {
  readonly code = 'KEY_INVALID';
  override name = 'KeyError';
}

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

const adapterHex = adapter.sha256Hex?.bind(adapter);

/** Lowercase hex of SHA-256 over raw bytes (the adapter's direct form where it has one). */
export function sha256Hex(bytes: Uint8Array): string {
  return adapterHex !== undefined ? adapterHex(bytes) : hexEncode(crypto.sha256(bytes));
}

/** `sha256:<lowercase hex>` of raw bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${sha256Hex(bytes)}`;
}

/** `sha256:<hex>` over the RFC 8785 canonical bytes of a JSON value. */
export function digestJson(value: unknown): string {
  return sha256Digest(canonicalBytes(value));
}

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_PATTERN.test(value);
}

/** Upper bound on cached PeerId → public key decodings (the oldest makes room when full). */
export const MAX_CACHED_PEER_IDS = MAX_CACHED_KEYS;
const peerKeys = new KeyCache<Uint8Array>(MAX_CACHED_PEER_IDS);

/** The raw 32-byte ed25519 public key inside a PeerId string (`12D3KooW…`); KeyError if it has none. */
export function publicKeyFromPeerId(peerId: string): Uint8Array {
  const cached = peerKeys.get(peerId);
  if (cached !== undefined) return cached;
  let raw: Uint8Array;
  try {
    raw = ed25519KeyFromPeerId(peerId);
  } catch {
    throw new KeyError(`not an ed25519 PeerId: ${peerId.slice(0, 80)}`);
  }
  return peerKeys.getOrCreate(peerId, () => raw);
}

/** The PeerId string (`12D3KooW…`) of a raw ed25519 public key. */
export function peerIdFromPublicKeyBytes(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new KeyError(`ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  return peerIdFromEd25519Key(publicKey);
}

/** The 32-byte ed25519 seed of a libp2p private key (libp2p's raw form is seed ‖ public key). */
export function seedFromLibp2pPrivateKey(key: PrivateKey): Uint8Array {
  if (key.type !== 'Ed25519') throw new KeyError(`expected an Ed25519 libp2p key, got ${key.type}`);
  const raw = key.raw;
  if (raw.length !== 64 && raw.length !== 32) throw new KeyError(`unexpected Ed25519 private key length ${raw.length}`);
  return raw.slice(0, 32);
}
