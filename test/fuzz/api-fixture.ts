// What the API fuzz tests share: an authenticator whose rate budgets are far above any run (the
// fuzz is about the routes and the service, the limits have their own tests), its two tokens,
// and the real EngineBackend (single engine) on an in-memory store.
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';

export const FUZZ_TOKEN = 'fuzz-token-0123456789abcdef';
export const FUZZ_READ_TOKEN = 'fuzz-reader-0123456789abcdef';

export function openFuzzAuth(keysFile?: string): Promise<KeyStoreAuthenticator> {
  return KeyStoreAuthenticator.open({
    ...(keysFile === undefined ? {} : { keysFile }),
    tokens: [
      { name: 'fuzz', token: FUZZ_TOKEN, scopes: ['execute', 'read'] },
      { name: 'reader', token: FUZZ_READ_TOKEN, scopes: ['read'] },
    ],
    ratePerSecond: 1e9,
    rateBurst: 1e9,
    failedAuthPerSecond: 1e9,
    failedAuthBurst: 1e9,
  });
}

export async function openMemoryBackend(): Promise<EngineBackend> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  return new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
}
