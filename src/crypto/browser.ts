// Browser adapter (package.json `imports`, `browser` condition): WebCrypto Ed25519 where the
// browser has it, @noble where it does not. The choice is made once, when this module loads,
// by a known-answer test (RFC 8032 test 1: import, sign, verify; any error or wrong byte means
// no): never per call. WebCrypto is async only, so the async forms (signAsync, verifyAsync)
// are native and the sync forms stay on noble; sha256 stays synchronous, in JavaScript (a
// promise per 300-byte digest costs more than hashing it). Keys are imported once and kept
// as CryptoKeys: a signer imports its key on first use, verification caches public keys
// (bounded) and, once a key is imported, calls WebCrypto without waiting on the cache.
import { acceptableEd25519 } from './ed25519-rules.ts';
import { bytesId, KeyCache } from './key-cache.ts';
import { nobleCrypto, nobleSigner, nobleVerify, randomBytes } from './noble.ts';
import { sha256 } from './sha256.ts';
import type { CryptoAdapter, Ed25519Signer } from './types.ts';

const ALG = { name: 'Ed25519' } as const;
/** DER prefix that wraps a raw 32-byte ed25519 seed as PKCS#8 (RFC 8410); WebCrypto imports no raw private keys. */
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** WebCrypto takes only ArrayBuffer-backed views; ours almost always are, so this rarely copies. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : Uint8Array.from(bytes);
}

function pkcs8(seed: Uint8Array): Uint8Array<ArrayBuffer> {
  const der = new Uint8Array(PKCS8_PREFIX.length + 32);
  der.set(PKCS8_PREFIX);
  der.set(seed, PKCS8_PREFIX.length);
  return der;
}

// RFC 8032 section 7.1, test 1 (the empty message).
const KAT_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const KAT_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const KAT_SIGNATURE = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

/** The platform's SubtleCrypto if it signs and verifies Ed25519 correctly, else null. Never throws. */
export async function detectWebCryptoEd25519(subtle: SubtleCrypto | undefined): Promise<SubtleCrypto | null> {
  if (subtle === undefined) return null; // not a secure context, or no WebCrypto at all
  try {
    const empty = new Uint8Array(0);
    const priv = await subtle.importKey('pkcs8', pkcs8(fromHex(KAT_SEED)), ALG, false, ['sign']);
    const signature = new Uint8Array(await subtle.sign(ALG, priv, empty));
    const pub = await subtle.importKey('raw', fromHex(KAT_PUBLIC), ALG, false, ['verify']);
    const expected = fromHex(KAT_SIGNATURE);
    const sameBytes = signature.length === expected.length && signature.every((b, i) => b === expected[i]);
    const tampered = Uint8Array.from(expected);
    tampered[0] = (tampered[0] as number) ^ 1;
    const ok = sameBytes && (await subtle.verify(ALG, pub, expected, empty)) && !(await subtle.verify(ALG, pub, tampered, empty));
    return ok ? subtle : null;
  } catch {
    return null;
  }
}

/** The adapter over a SubtleCrypto that passed detectWebCryptoEd25519(). */
export function webCryptoAdapter(subtle: SubtleCrypto): CryptoAdapter {
  // Each entry is the import in progress, then the CryptoKey; a key that fails to import is
  // cached as null: it will not import next time either.
  const publicKeys = new KeyCache<{ key: Promise<CryptoKey | null> | CryptoKey | null }>();
  const publicKey = (raw: Uint8Array): { key: Promise<CryptoKey | null> | CryptoKey | null } =>
    publicKeys.getOrCreate(bytesId(raw), () => {
      const entry: { key: Promise<CryptoKey | null> | CryptoKey | null } = { key: null };
      entry.key = subtle.importKey('raw', Uint8Array.from(raw), ALG, false, ['verify']).then(
        (k) => (entry.key = k),
        () => (entry.key = null),
      );
      return entry;
    });

  return {
    name: 'webcrypto',
    sha256,
    createSigner(seed: Uint8Array): Ed25519Signer {
      // noble derives the public key (WebCrypto cannot without an async export) and signs
      // for the sync form; the CryptoKey is imported once, on the first signAsync.
      const base = nobleSigner(seed);
      const der = pkcs8(seed);
      let imported: Promise<CryptoKey> | undefined;
      let key: CryptoKey | undefined;
      return {
        publicKey: base.publicKey,
        sign: base.sign,
        async signAsync(message: Uint8Array): Promise<Uint8Array> {
          if (key === undefined) {
            imported ??= subtle.importKey('pkcs8', der, ALG, false, ['sign']);
            key = await imported;
          }
          return new Uint8Array(await subtle.sign(ALG, key, own(message)));
        },
      };
    },
    verify: nobleVerify,
    async verifyAsync(raw: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      // Both browsers accept small-order keys, which Node rejects: the shared rules first.
      if (!acceptableEd25519(raw, signature)) return false;
      const entry = publicKey(raw).key;
      const key = entry instanceof Promise ? await entry : entry;
      if (key === null) return false;
      try {
        return await subtle.verify(ALG, key, own(signature), own(message));
      } catch {
        return false;
      }
    },
    // WebCrypto already verifies off the JS thread.
    verifyParallel(raw: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      return this.verifyAsync(raw, message, signature);
    },
    randomBytes,
  };
}

const native = await detectWebCryptoEd25519(globalThis.crypto?.subtle);

/** Without WebCrypto Ed25519: @noble's ed25519, and the same sha256 as the WebCrypto form. */
const fallback: CryptoAdapter = { ...nobleCrypto, sha256 };

/** Chosen once at start: `webcrypto` when the browser passed the known-answer test, else `noble`. */
export const browserCrypto: CryptoAdapter = native === null ? fallback : webCryptoAdapter(native);

export default browserCrypto;
