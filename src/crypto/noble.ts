// @noble adapter: pure JavaScript ed25519 and sha256 for the browser (and for equivalence
// tests on Node). Same interface and identical bytes as the node:crypto adapter.
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { CryptoAdapter, Ed25519Signer } from './types.ts';

export const nobleCrypto: CryptoAdapter = {
  name: 'noble',
  sha256(data: Uint8Array): Uint8Array {
    return sha256(data);
  },
  createSigner(seed: Uint8Array): Ed25519Signer {
    if (seed.length !== 32) throw new RangeError(`ed25519 seed must be 32 bytes, got ${seed.length}`);
    const secret = Uint8Array.from(seed);
    const publicKey = ed25519.getPublicKey(secret);
    return {
      publicKey,
      sign(message: Uint8Array): Uint8Array {
        return ed25519.sign(message, secret);
      },
    };
  },
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
  randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    // getRandomValues is capped at 65,536 bytes per call.
    for (let off = 0; off < length; off += 65536) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
    return out;
  },
};

export default nobleCrypto;
