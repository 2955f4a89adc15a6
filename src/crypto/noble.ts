// @noble adapter: pure JavaScript ed25519 and sha256, for browsers without WebCrypto Ed25519
// (and for equivalence tests on Node). Same interface, bytes and verdicts as the others (see
// ed25519-rules.ts: noble's own verify is cofactored and, by default, ZIP-215 lenient, so this
// one checks the cofactorless equation on strictly decoded points); its async forms are the
// sync ones behind a resolved promise.
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { acceptableEd25519 } from './ed25519-rules.ts';
import type { CryptoAdapter, Ed25519Signer } from './types.ts';

const Point = ed25519.Point;

/** getRandomValues fills at most this many bytes per call. */
const MAX_RANDOM_BYTES_PER_CALL = 65_536;

export function nobleSigner(seed: Uint8Array): Ed25519Signer {
  if (seed.length !== 32) throw new RangeError(`ed25519 seed must be 32 bytes, got ${seed.length}`);
  const secret = Uint8Array.from(seed);
  const publicKey = ed25519.getPublicKey(secret);
  const sign = (message: Uint8Array): Uint8Array => ed25519.sign(message, secret);
  return { publicKey, sign, signAsync: async (message) => sign(message) };
}

/** RFC 8032 verification with the cofactorless equation [S]B = R + [k]A, as OpenSSL, BoringSSL and NSS check it. */
export function nobleVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!acceptableEd25519(publicKey, signature)) return false;
  try {
    const r = signature.subarray(0, 32);
    const A = Point.fromBytes(publicKey); // strict: throws on points off the curve
    const R = Point.fromBytes(r);
    const challenge = new Uint8Array(64 + message.length);
    challenge.set(r);
    challenge.set(publicKey, 32);
    challenge.set(message, 64);
    const k = Point.Fn.create(bytesToNumberLE(sha512(challenge)));
    return Point.BASE.multiplyUnsafe(bytesToNumberLE(signature.subarray(32))).equals(R.add(A.multiplyUnsafe(k)));
  } catch {
    return false;
  }
}

export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += MAX_RANDOM_BYTES_PER_CALL) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + MAX_RANDOM_BYTES_PER_CALL)));
  return out;
}

export const nobleCrypto: CryptoAdapter = {
  name: 'noble',
  sha256: (data) => sha256(data),
  createSigner: nobleSigner,
  verify: nobleVerify,
  verifyAsync: async (publicKey, message, signature) => nobleVerify(publicKey, message, signature),
  verifyParallel: async (publicKey, message, signature) => nobleVerify(publicKey, message, signature),
  randomBytes,
};

export default nobleCrypto;
