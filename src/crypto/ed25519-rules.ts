// One ed25519 verdict on every platform. The implementations we run disagree on edge cases
// (checked here with the "Taming the many EdDSAs" vectors, Chalkias et al. 2020): Node's
// OpenSSL rejects small-order public keys while Chromium's BoringSSL and Firefox's NSS accept
// them, so a tab would accept a "signature" anyone can make for a small-order key; @noble
// with its defaults accepts non-canonical encodings and checks the cofactored equation. So
// every adapter applies these rules before its native check (cheap byte compares), and the
// noble adapter checks the cofactorless equation, as the three native ones do:
//   - S is canonical (S < L);
//   - A (the key) and R (the signature's first half) are canonical encodings (y < p);
//   - neither A nor R is a point of small order (any of its 14 encodings).

/** The seven small-order y coordinates (libsodium's list), each with either sign bit: 14 encodings. */
const SMALL_ORDER: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000', // y = 0, order 4
  '0100000000000000000000000000000000000000000000000000000000000000', // y = 1, the identity
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p - 1, order 2
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p (non-canonical 0)
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p + 1 (non-canonical 1)
].map((hex) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));

/** The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L = Uint8Array.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010'.match(/../g)!, (h) => parseInt(h, 16));

/** True when the 32 bytes at `at` encode one of the small-order points (sign bit ignored). */
export function isSmallOrderEncoding(bytes: Uint8Array, at = 0): boolean {
  for (const point of SMALL_ORDER) {
    let diff = ((bytes[at + 31] as number) & 0x7f) ^ (point[31] as number);
    for (let i = 0; i < 31 && diff === 0; i++) diff |= (bytes[at + i] as number) ^ (point[i] as number);
    if (diff === 0) return true;
  }
  return false;
}

/** y ≥ p = 2^255 - 19: bytes ed..ff ff…ff 7f/ff (the sign bit is not part of y). */
function isNonCanonicalPoint(bytes: Uint8Array, at: number): boolean {
  if (((bytes[at + 31] as number) & 0x7f) !== 0x7f || (bytes[at] as number) < 0xed) return false;
  for (let i = 1; i < 31; i++) if (bytes[at + i] !== 0xff) return false;
  return true;
}

/** S < L, comparing the little-endian bytes from the most significant end. */
function isCanonicalScalar(bytes: Uint8Array, at: number): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = bytes[at + i] as number;
    const l = L[i] as number;
    if (s !== l) return s < l;
  }
  return false; // S = L
}

/** The rules every adapter applies before its own check; false means the signature is rejected. */
export function acceptableEd25519(publicKey: Uint8Array, signature: Uint8Array): boolean {
  return (
    publicKey.length === 32 && signature.length === 64 &&
    isCanonicalScalar(signature, 32) &&
    !isNonCanonicalPoint(publicKey, 0) && !isNonCanonicalPoint(signature, 0) &&
    !isSmallOrderEncoding(publicKey) && !isSmallOrderEncoding(signature, 0)
  );
}
