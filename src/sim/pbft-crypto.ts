// Fast, deterministic stand-ins for SHA-256 and ed25519 in the PBFT simulator (thousands of
// clusters per second need cheap hashing). The digest is a 256-bit non-cryptographic hash (two
// 32-bit lanes mixed into eight output words); a "signature" is a keyed hash of the digest under the public
// key. Unforgeability is the simulator's rule, not the math's: a simulated Byzantine replica
// only ever holds its own signer, so it can forge nothing except by sending garbage.
import type { PbftSigner, PbftVerifier } from '../consensus/pbft/types.ts';
import type { Xoshiro128 } from './prng.ts';

/** 32-byte non-cryptographic digest: two 32-bit multiply-rotate lanes, then eight mixed output words. */
export function fastDigest(bytes: Uint8Array): Uint8Array {
  let h1 = 0x243f6a88 | 0;
  let h2 = 0x85a308d3 | 0;
  const n = bytes.byteLength;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const w = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    h1 = Math.imul(h1 ^ w, 0x9e3779b1);
    h1 ^= h1 >>> 15;
    h2 = Math.imul(h2 ^ w, 0x85ebca77);
    h2 = (h2 << 13) | (h2 >>> 19);
  }
  for (; i < n; i++) {
    h1 = Math.imul(h1 ^ (bytes[i] as number), 0x01000193);
    h2 = Math.imul(h2 ^ (bytes[i] as number), 0x5bd1e995);
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let k = 0; k < 8; k++) {
    let x = h1 ^ Math.imul(h2 + k, 0x2545f491) ^ n;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    x ^= x >>> 16;
    view.setInt32(k * 4, x);
    h1 = Math.imul(h1 ^ x, 0x9e3779b1);
  }
  return out;
}

/** Two 32-bit lanes over key ‖ digest (both 32 bytes): the fake signature's first 8 bytes. */
function macWords(publicKey: Uint8Array, digest: Uint8Array): [number, number] {
  let h1 = 0x510e527f | 0;
  let h2 = 0x9b05688c | 0;
  for (const b of [publicKey, digest]) {
    for (let i = 0; i + 4 <= b.byteLength; i += 4) {
      const w = (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
      h1 = Math.imul(h1 ^ w, 0x9e3779b1);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 ^ w, 0x85ebca77);
      h2 = (h2 << 13) | (h2 >>> 19);
    }
  }
  h1 = Math.imul(h1 ^ (h2 >>> 16), 0x85ebca6b);
  h2 = Math.imul(h2 ^ (h1 >>> 13), 0xc2b2ae35);
  return [h1 >>> 0, h2 >>> 0];
}

/** 64 bytes: the two MAC words, then zeros (a random 64-byte "signature" never verifies). */
function mac(publicKey: Uint8Array, digest: Uint8Array): Uint8Array {
  const [a, b] = macWords(publicKey, digest);
  const out = new Uint8Array(64);
  const view = new DataView(out.buffer);
  view.setUint32(0, a);
  view.setUint32(4, b);
  return out;
}

export const fakeVerifier: PbftVerifier = {
  digest: fastDigest,
  verify(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.byteLength !== 32 || digest.byteLength !== 32 || signature.byteLength !== 64) return false;
    const [a, b] = macWords(publicKey, digest);
    const s = signature;
    const word = (at: number): number => (((s[at] as number) << 24) | ((s[at + 1] as number) << 16) | ((s[at + 2] as number) << 8) | (s[at + 3] as number)) >>> 0;
    if (word(0) !== a || word(4) !== b) return false;
    for (let i = 8; i < 64; i++) if (s[i] !== 0) return false;
    return true;
  },
};

export interface FakeKey {
  readonly publicKey: Uint8Array;
  readonly signer: PbftSigner;
}

/** A fresh fake key pair drawn from the run's PRNG. */
export function fakeKey(rng: Xoshiro128): FakeKey {
  const publicKey = new Uint8Array(32);
  const view = new DataView(publicKey.buffer);
  for (let i = 0; i < 8; i++) view.setUint32(i * 4, rng.nextU32());
  return { publicKey, signer: { sign: (digest) => mac(publicKey, digest) } };
}
