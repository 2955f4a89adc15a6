// Request bundles: a client signs the requests it sends at once with one signature over the
// Merkle root of their signed parts (bundleSignedPart: size and root), and each request carries
// its path to that root, so it is checkable on its own wherever it travels; a replica's
// RequestVerifier checks the signature once per bundle. Kept out of PbftAuth so the standalone
// verifier (which never checks client signatures) does not carry it.
import { bytesKey, remember, type PbftAuth } from './auth.ts';
import { bundleSignedPart, requestSignedPart } from './codec.ts';
import { leafHash, merkleLevels, pathFromLevels, rootFromPath } from './merkle.ts';
import { MAX_REQUEST_BUNDLE, type PbftSigner, type RequestMessage } from './types.ts';

/** A request before its client signed it. */
export type UnsignedRequest = Omit<RequestMessage, 'type' | 'signature' | 'bundle'>;

/**
 * Signs requests of one client with one signature: a single request the plain way, two or
 * more (up to MAX_REQUEST_BUNDLE) as a bundle, each carrying its path to the signed root.
 */
export function signRequests(auth: PbftAuth, unsigned: readonly UnsignedRequest[], signer: PbftSigner): RequestMessage[] {
  if (unsigned.length === 0 || unsigned.length > MAX_REQUEST_BUNDLE) throw new RangeError(`a bundle holds 1..${MAX_REQUEST_BUNDLE} requests, got ${unsigned.length}`);
  const digest = auth.verifier.digest;
  if (unsigned.length === 1) {
    const u = unsigned[0] as UnsignedRequest;
    const d = auth.digestSignedPart(requestSignedPart(u));
    const request: RequestMessage = { type: 'request', ...u, signature: signer.sign(d) };
    auth.remember(request, d);
    return [request];
  }
  const levels = merkleLevels(
    digest,
    unsigned.map((u) => leafHash(digest, requestSignedPart(u))),
  );
  const size = unsigned.length;
  const root = (levels[levels.length - 1] as readonly Uint8Array[])[0] as Uint8Array;
  const signature = signer.sign(auth.digestSignedPart(bundleSignedPart(size, root)));
  return unsigned.map((u, index) => ({ type: 'request', ...u, signature, bundle: { index, size, path: pathFromLevels(levels, index) } }));
}

/**
 * Request-bundle signatures one RequestVerifier remembers as valid: a client (the relay) signs
 * the requests it sends in one turn as one bundle, so a replica checks that signature once per
 * bundle, not once per request.
 */
export const MAX_VERIFIED_BUNDLES = 4096;

/** Checks clients' signatures on requests, plain or bundled; remembers the bundles that verified. */
export class RequestVerifier {
  readonly #auth: PbftAuth;
  /** client key ‖ digest ‖ signature of bundles that verified. */
  readonly #verified = new Set<string>();
  /** ed25519 checks made (a remembered bundle costs none). */
  verifications = 0;

  constructor(auth: PbftAuth) {
    this.#auth = auth;
  }

  /** A bundled request: its leaf's path must reach a root the client signed. */
  verify(r: RequestMessage, clientKey: Uint8Array): boolean {
    const b = r.bundle;
    const auth = this.#auth;
    if (b === undefined) {
      this.verifications++;
      return auth.verifyRequest(r, clientKey);
    }
    const digest = auth.verifier.digest;
    const root = rootFromPath(digest, leafHash(digest, requestSignedPart(r)), b.index, b.size, b.path);
    if (root === undefined) return false;
    const signed = auth.digestSignedPart(bundleSignedPart(b.size, root));
    const key = bytesKey(clientKey) + bytesKey(signed) + bytesKey(r.signature);
    if (this.#verified.has(key)) return true;
    this.verifications++;
    if (!auth.verifier.verify(clientKey, signed, r.signature)) return false;
    remember(this.#verified, key, MAX_VERIFIED_BUNDLES);
    return true;
  }
}
