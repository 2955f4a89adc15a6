// The one crypto interface every adapter implements (node:crypto on Node; WebCrypto with a
// @noble fallback in browsers; @noble alone). Each ed25519 operation has a synchronous form,
// for pure cores and Node's hot paths that must not pay for a promise, and an asynchronous
// form, which is the fast one in a browser (WebCrypto is async only: 8-18x noble, measured).
// Callers that already await something (appends, stream reads, the verifier) use the async
// form. Invariant: every adapter and both forms return identical bytes and verdicts.

/** A reusable ed25519 signing key; adapters keep native key objects inside. */
export interface Ed25519Signer {
  /** 32-byte raw ed25519 public key. */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
  /** The same signature as sign(); native (off the JS thread) where the platform has it. */
  signAsync(message: Uint8Array): Promise<Uint8Array>;
}

export interface CryptoAdapter {
  /** `webcrypto`: the browser adapter found native Ed25519 at start; `noble`: it did not. */
  readonly name: 'node' | 'noble' | 'webcrypto';
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Lowercase hex of sha256(data), where the platform makes it cheaper than hexEncode(sha256())
   * (node:crypto: no Buffer per digest; about 2 µs less per call). Absent: callers hex-encode.
   */
  sha256Hex?(data: Uint8Array): string;
  /** `seed` is the 32-byte ed25519 private seed (libp2p's raw private key is seed ‖ public key). */
  createSigner(seed: Uint8Array): Ed25519Signer;
  /** Never throws on malformed keys or signatures: returns false. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** The same verdict as verify(); never rejects. */
  verifyAsync(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /**
   * The same verdict as verify(), off the JS thread and across cores where the platform can
   * (Node: libuv's thread pool; browsers: WebCrypto): for many independent signatures at
   * once (a batch of synced records). Slower than verify() for one signature alone.
   */
  verifyParallel(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  randomBytes(length: number): Uint8Array;
}
