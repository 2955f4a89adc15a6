// The one crypto interface both adapters implement (node:crypto on Node, @noble in the
// browser). Every operation is synchronous so hot paths (envelope sign/verify, receipt
// chains) never pay for a promise. Invariant: both adapters return identical bytes.

/** A reusable ed25519 signing key; adapters may cache native key objects inside. */
export interface Ed25519Signer {
  /** 32-byte raw ed25519 public key. */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface CryptoAdapter {
  readonly name: 'node' | 'noble';
  sha256(data: Uint8Array): Uint8Array;
  /** `seed` is the 32-byte ed25519 private seed (libp2p's raw private key is seed ‖ public key). */
  createSigner(seed: Uint8Array): Ed25519Signer;
  /** Never throws on malformed keys or signatures: returns false. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  randomBytes(length: number): Uint8Array;
}
