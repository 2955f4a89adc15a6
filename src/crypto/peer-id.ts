// Ed25519 PeerIds without libp2p: the string form every signer here has (`12D3KooW…`) is
// base58btc of an identity multihash of the protobuf-encoded public key, 38 bytes:
//   0x00 0x24 (identity, 36 bytes) ‖ 0x08 0x01 (KeyType = Ed25519) ‖ 0x12 0x20 (Data, 32 bytes) ‖ key
// Only this canonical form is accepted (one key ↔ one string), which is what libp2p's
// `peerId.toString()` prints; CID forms (`bafz…`, `k51…`) and RSA/secp256k1 ids are not
// ed25519 signers here. Kept free of libp2p so the standalone verifier stays small.

export class PeerIdError extends Error {
  readonly code = 'PEER_ID_INVALID';
  override name = 'PeerIdError';
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const LOOKUP = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

const PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20] as const;
const KEY_BYTES = 32;
const ID_BYTES = PREFIX.length + KEY_BYTES;
/** Every ed25519 PeerId is exactly this long (38 bytes in base58btc, the leading zero as '1'). */
export const ED25519_PEER_ID_CHARS = 52;

function base58Encode(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  // Base-58 digits, least significant first; ~1.37 digits per byte.
  const digits: number[] = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i] as number;
    for (let j = 0; j < digits.length; j++) {
      carry += (digits[j] as number) << 8;
      digits[j] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let out = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i] as number];
  return out;
}

function base58Decode(text: string): Uint8Array | null {
  let zeros = 0;
  while (zeros < text.length && text.charCodeAt(zeros) === 0x31) zeros++;
  const bytes: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let carry = c < 128 ? (LOOKUP[c] as number) : -1;
    if (carry < 0) return null;
    for (let j = 0; j < bytes.length; j++) {
      carry += (bytes[j] as number) * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i] as number;
  return out;
}

/** The raw 32-byte ed25519 key inside a PeerId string; PeerIdError if it is not one. */
export function ed25519KeyFromPeerId(peerId: string): Uint8Array {
  if (peerId.length !== ED25519_PEER_ID_CHARS) throw new PeerIdError(`not an ed25519 PeerId: ${peerId.slice(0, 80)}`);
  const bytes = base58Decode(peerId);
  if (bytes === null || bytes.length !== ID_BYTES || PREFIX.some((b, i) => bytes[i] !== b)) throw new PeerIdError(`not an ed25519 PeerId: ${peerId.slice(0, 80)}`);
  return bytes.slice(PREFIX.length);
}

/** The PeerId string (`12D3KooW…`) of a raw ed25519 public key. */
export function peerIdFromEd25519Key(publicKey: Uint8Array): string {
  if (publicKey.length !== KEY_BYTES) throw new PeerIdError(`ed25519 public key must be ${KEY_BYTES} bytes, got ${publicKey.length}`);
  const bytes = new Uint8Array(ID_BYTES);
  bytes.set(PREFIX);
  bytes.set(publicKey, PREFIX.length);
  return base58Encode(bytes);
}
