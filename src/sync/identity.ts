// A sync identity from a 32-byte ed25519 seed: the PeerId string and its signer. The
// simulator and tests derive seeds from their PRNG so runs replay exactly.
import { crypto, peerIdFromPublicKeyBytes, type Ed25519Signer } from '../crypto/index.ts';

export interface SyncIdentity {
  peerId: string;
  signer: Ed25519Signer;
}

export function identityFromSeed(seed: Uint8Array): SyncIdentity {
  const signer = crypto.createSigner(seed);
  return { peerId: peerIdFromPublicKeyBytes(signer.publicKey), signer };
}
