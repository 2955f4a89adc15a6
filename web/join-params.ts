// Where a tab joins: parsed and checked once from its URL (`?relay=…&cluster=…&key=…#token=…&api=…`,
// the shape `npm start` prints). Pure (no DOM), so Node unit tests cover it; every failure is
// a JoinParamsError whose message tells a person what to do next.
import { multiaddr } from '@multiformats/multiaddr';
import { base64urlDecode } from '../src/crypto/index.ts';
import { decodeJoinTokenParam, joinTokenProblem } from '../src/ico/admission.ts';
import type { JoinToken } from '../src/ico/types.ts';

/** Relay addresses one URL may name; more is a mistake, not a deployment. */
export const MAX_RELAYS = 8;

const HOW_TO_FIX =
  'Run `npm start` in the project folder and open the web-app URL it prints\n' +
  '(http://127.0.0.1:9092/?relay=/ip4/127.0.0.1/tcp/9090/ws/p2p/…&cluster=…&key=…#token=…).';

export class JoinParamsError extends Error {
  readonly code = 'JOIN_PARAMS';
  override name = 'JoinParamsError';
  /** Which part of the URL is wrong: a query key or the token fragment. */
  readonly field: 'relay' | 'cluster' | 'key' | 'token';
  constructor(field: 'relay' | 'cluster' | 'key' | 'token', problem: string) {
    super(`${problem}\n\n${HOW_TO_FIX}`);
    this.field = field;
  }
}

export interface JoinParams {
  /** Relay multiaddrs, each ending in /p2p/<relay PeerId>. */
  relays: string[];
  /** PeerIds named by `relays`, to tell the relay apart from other peers. */
  relayIds: string[];
  cluster: string;
  /** Raw 32-byte ed25519 cluster key: verifies the join tokens other peers present. */
  clusterPublicKey: Uint8Array;
  joinToken: JoinToken;
  /**
   * The relay API credential (`#…&api=<bearer token or API key>`), or null: without it the
   * panels that read the relay API (consensus, operators, receipts) say so and stay empty.
   */
  apiToken: string | null;
}

/** Parses `location.search` and `location.hash`; throws JoinParamsError. `now` checks expiry. */
export function parseJoinParams(search: string, hash: string, now: number): JoinParams {
  const query = new URLSearchParams(search);
  const fragment = new URLSearchParams(hash.replace(/^#/, ''));
  const relays = query.getAll('relay').filter((r) => r.trim() !== '');
  const cluster = query.get('cluster') ?? '';
  const key = query.get('key') ?? '';
  const tokenParam = fragment.get('token') ?? '';

  const missing = [relays.length === 0 ? 'relay' : '', cluster === '' ? 'cluster' : '', key === '' ? 'key' : '', tokenParam === '' ? '#token' : ''].filter((m) => m !== '');
  if (missing.length > 0) {
    const field = missing[0] === '#token' ? 'token' : (missing[0] as 'relay' | 'cluster' | 'key');
    throw new JoinParamsError(field, `This page needs to know where to join, but its URL lacks: ${missing.join(', ')}.`);
  }
  if (relays.length > MAX_RELAYS) throw new JoinParamsError('relay', `The URL names ${relays.length} relays; at most ${MAX_RELAYS} are used.`);

  const relayIds: string[] = [];
  for (const relay of relays) {
    let id: string | undefined;
    try {
      id = multiaddr(relay).getComponents().findLast((c) => c.name === 'p2p')?.value;
    } catch {
      throw new JoinParamsError('relay', `The relay address '${relay}' is not a multiaddr.`);
    }
    if (id === undefined) throw new JoinParamsError('relay', `The relay address '${relay}' does not end in /p2p/<relay PeerId>, so the relay cannot be authenticated.`);
    relayIds.push(id);
  }

  let clusterPublicKey: Uint8Array;
  try {
    clusterPublicKey = base64urlDecode(key);
  } catch {
    clusterPublicKey = new Uint8Array(0);
  }
  if (clusterPublicKey.length !== 32) throw new JoinParamsError('key', 'The cluster key in the URL (key=…) is not a 32-byte base64url ed25519 key.');

  let joinToken: JoinToken;
  try {
    joinToken = decodeJoinTokenParam(tokenParam);
  } catch (e) {
    throw new JoinParamsError('token', `The join token in the URL (#token=…) cannot be read: ${e instanceof Error ? e.message : String(e)}.`);
  }
  // The tab's PeerId is not known yet; a token for one specific peer is checked by the relay.
  const problem = joinTokenProblem(joinToken, { cluster, allowlist: new Set(), clusterPublicKey }, joinToken.peer, now);
  if (problem !== null) throw new JoinParamsError('token', `The join token in the URL is not valid for cluster '${cluster}': ${problem}.`);
  const api = fragment.get('api') ?? '';
  return { relays, relayIds, cluster, clusterPublicKey, joinToken, apiToken: api === '' ? null : api };
}
