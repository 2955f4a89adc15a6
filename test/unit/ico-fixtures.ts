// Test identities: real libp2p ed25519 keys, so `sender` is a real PeerId.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey, type Ed25519Signer } from '../../src/crypto/index.ts';
import { EnvelopeSealer } from '../../src/ico/envelope.ts';

export interface Identity {
  peerId: string;
  signer: Ed25519Signer;
  sealer: EnvelopeSealer;
}

export async function identity(): Promise<Identity> {
  const key = await generateKeyPair('Ed25519');
  const peerId = peerIdFromPrivateKey(key).toString();
  const signer = crypto.createSigner(seedFromLibp2pPrivateKey(key));
  return { peerId, signer, sealer: new EnvelopeSealer({ signer, sender: peerId }) };
}
