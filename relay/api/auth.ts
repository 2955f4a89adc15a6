// Credentials for the relay API: API keys and certificate mappings from the keys file
// (relay/api/keys-file.ts), bearer tokens given at start (hashed in memory), and client
// certificates the TLS layer verified against the cluster CA. The keys file is read by a
// watcher (fs.watch on its directory, and a stat poll as a fallback), so `keys revoke` reaches
// a running relay without a restart and `authenticate` does no I/O. Every secret comparison is
// constant-time over hashes; every principal has a token bucket, and so has every source
// address for its failed authentications.
import { createHash, timingSafeEqual } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createLogger } from '../../src/log/logger.ts';
import type { AuthFailure, Authenticator, Credentials, Principal, Scope, VerifiedCertificate } from './auth-types.ts';
import { canonicalIp, KeysFileError, normalizeSerial, parseCertificateMatch, parseKeysFile, type ApiKeyEntry, type CertificateMatchKind, type KeysFile } from './keys-file.ts';
import { TokenBuckets } from './rate-limit.ts';

/** Default per-principal rate: sustained requests per second and burst size. */
export const DEFAULT_RATE_PER_SECOND = 1000;
export const DEFAULT_RATE_BURST = 2000;
/** The burst a rate set on the command line gets, in seconds of that rate (as the default's). */
export const RATE_BURST_SECONDS = DEFAULT_RATE_BURST / DEFAULT_RATE_PER_SECOND;
/** Highest rate the command line accepts (a benchmark lifts the limit with it). */
export const MAX_RATE_PER_SECOND = 1_000_000_000;
/** Default budget of failed authentications per source address (IPv4 address or IPv6 /64). */
export const DEFAULT_FAILED_AUTH_PER_SECOND = 10;
export const DEFAULT_FAILED_AUTH_BURST = 100;
/** Token buckets kept at most, per kind; the least recently used is dropped beyond this. */
export const MAX_RATE_BUCKETS = 10_000;
/** The keys file is stat'ed this often when no change event arrives. */
export const KEYS_FILE_CHECK_MS = 1000;
/** The longest credential header we hash. */
export const MAX_CREDENTIAL_LENGTH = 512;
/**
 * SHA-256 digests of credentials that authenticated, kept so a client's next request skips
 * hashing its secret again (a measurable share of a request's CPU). Only the digest is cached,
 * never the decision: revocation and scopes are looked up in the current keys file on every
 * request. The oldest entry goes first beyond this many.
 */
export const MAX_CACHED_DIGESTS = 1024;

const API_KEY_PATTERN = /^hsk_([a-z0-9]{8,32})_[A-Za-z0-9_-]{16,128}$/;
const MISSING = 'missing';

export interface BearerTokenSpec {
  /** Principal id becomes `token:<name>`. */
  name: string;
  token: string;
  scopes: readonly Scope[];
}

export interface KeyStoreOptions {
  keysFile?: string | undefined;
  tokens?: readonly BearerTokenSpec[];
  /** Sustained requests per second per principal, and burst. */
  ratePerSecond?: number;
  rateBurst?: number;
  /** Failed authentications per second per source address, and burst; beyond it: RATE_LIMITED. */
  failedAuthPerSecond?: number;
  failedAuthBurst?: number;
}

interface TokenRecord {
  id: string;
  hash: Buffer;
  scopes: ReadonlySet<Scope>;
}

interface LoadedKey {
  entry: ApiKeyEntry;
  hash: Buffer;
  scopes: ReadonlySet<Scope>;
}

interface LoadedMapping {
  principal: Principal;
  kind: CertificateMatchKind;
  value: string;
}

/** The keys file as `authenticate` uses it; replaced whole on each reload. */
interface KeyTable {
  stamp: string;
  keys: Map<string, LoadedKey>;
  certificates: LoadedMapping[];
  revokedSerials: Set<string>;
}

const EMPTY_FILE: KeysFile = { version: 1, keys: [], certificates: [], revoked_serials: [] };

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function tableOf(file: KeysFile, stamp: string): KeyTable {
  return {
    stamp,
    keys: new Map(file.keys.map((entry) => [entry.id, { entry, hash: Buffer.from(entry.hash, 'hex'), scopes: new Set(entry.scopes) }])),
    certificates: file.certificates.map((c) => ({ principal: { id: `cert:${c.name}`, scopes: new Set(c.scopes) }, ...parseCertificateMatch(c.match) })),
    revokedSerials: new Set(file.revoked_serials.map((r) => r.serial)),
  };
}

/** Reads the file and its identity (inode, size, mtime) from one open handle. */
async function readStamped(path: string, knownStamp: string | null): Promise<{ stamp: string; file: KeysFile } | { stamp: string; file: null }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { stamp: MISSING, file: MISSING === knownStamp ? null : EMPTY_FILE };
    throw new KeysFileError('KEYS_FILE_IO', `cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const st = await handle.stat();
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (stamp === knownStamp) return { stamp, file: null };
    return { stamp, file: parseKeysFile(await handle.readFile('utf8'), path) };
  } finally {
    await handle.close();
  }
}

/** The bucket a source address's failures count against: an IPv4 address, or an IPv6 /64. */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  const ip = canonicalIp(address);
  if (ip === null || !ip.includes(':') || ip.includes('.')) return ip ?? address;
  const [head = '', tail] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).join(':')}::/64`;
}

function serialOf(cert: VerifiedCertificate): string | null {
  try {
    return normalizeSerial(cert.serial);
  } catch {
    return null;
  }
}

function matches(m: LoadedMapping, cert: VerifiedCertificate): boolean {
  switch (m.kind) {
    case 'cn':
      // A subject with several CNs names no one in particular: it matches no CN mapping.
      return cert.subjectCN.length === 1 && cert.subjectCN[0] === m.value;
    case 'dns':
      return cert.san.some((s) => s.kind === 'dns' && s.value.toLowerCase() === m.value);
    case 'ip':
      return cert.san.some((s) => s.kind === 'ip' && canonicalIp(s.value) === m.value);
    case 'email':
    case 'uri':
      return cert.san.some((s) => s.kind === m.kind && s.value === m.value);
  }
}

function describe(cert: VerifiedCertificate): string {
  const cn = cert.subjectCN.length > 0 ? `CN=${cert.subjectCN.join('+').slice(0, 80)}` : 'no CN';
  return `${cn}, serial ${cert.serial.slice(0, 40)}`;
}

export type ReloadOutcome = 'applied' | 'kept';

const UNAUTHENTICATED = (message: string): AuthFailure => ({ code: 'UNAUTHENTICATED', message });

export class KeyStoreAuthenticator implements Authenticator {
  readonly #keysFile: string | undefined;
  readonly #tokens: TokenRecord[];
  readonly #principals: TokenBuckets;
  readonly #failures: TokenBuckets;
  readonly #log = createLogger('api-auth');
  #table: KeyTable;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  #closed = false;
  /** Credential → its SHA-256, for credentials that authenticated (at most MAX_CACHED_DIGESTS). */
  readonly #digests = new Map<string, Buffer>();
  readonly #reloadListeners = new Set<(outcome: ReloadOutcome) => void>();

  /**
   * Loads the keys file (a broken one at start is an error the operator must see now) and
   * starts watching it. Without `keysFile`, only the given bearer tokens authenticate.
   */
  static async open(opts: KeyStoreOptions = {}): Promise<KeyStoreAuthenticator> {
    let table = tableOf(EMPTY_FILE, MISSING);
    if (opts.keysFile !== undefined) {
      const read = await readStamped(opts.keysFile, null);
      table = tableOf(read.file ?? EMPTY_FILE, read.stamp);
    }
    const auth = new KeyStoreAuthenticator(opts, table);
    auth.#watch();
    return auth;
  }

  private constructor(opts: KeyStoreOptions, table: KeyTable) {
    this.#keysFile = opts.keysFile;
    this.#table = table;
    this.#tokens = (opts.tokens ?? []).map((t) => {
      if (t.token.length < 16) throw new KeysFileError('KEY_INVALID', `bearer token '${t.name}' is shorter than 16 characters`);
      return { id: `token:${t.name}`, hash: sha256(t.token), scopes: new Set(t.scopes) };
    });
    this.#principals = new TokenBuckets({ perSecond: opts.ratePerSecond ?? DEFAULT_RATE_PER_SECOND, burst: opts.rateBurst ?? DEFAULT_RATE_BURST, maxKeys: MAX_RATE_BUCKETS });
    this.#failures = new TokenBuckets({ perSecond: opts.failedAuthPerSecond ?? DEFAULT_FAILED_AUTH_PER_SECOND, burst: opts.failedAuthBurst ?? DEFAULT_FAILED_AUTH_BURST, maxKeys: MAX_RATE_BUCKETS });
  }

  authenticate(creds: Credentials, now = Date.now()): Principal | AuthFailure {
    const source = sourceKey(creds.source);
    // A source over its failure budget is refused before its credentials are looked at, so
    // guessing stays bounded by the budget (a valid caller behind that address waits too).
    const budget = this.#failures.check(source, now);
    if (!budget.ok) return { code: 'RATE_LIMITED', message: `too many failed authentications from ${source}`, retryAfterSeconds: budget.retryAfterSeconds };
    const resolved = this.#resolve(creds);
    if (!('id' in resolved)) {
      this.#failures.take(source, now);
      return resolved;
    }
    const taken = this.#principals.take(resolved.id, now);
    if (!taken.ok) return { code: 'RATE_LIMITED', message: `rate limit of ${this.#principals.limit.perSecond} requests/s exceeded`, retryAfterSeconds: taken.retryAfterSeconds };
    return resolved;
  }

  /** Called after each reload that found the file changed: applied, or kept the previous keys. */
  onReload(listener: (outcome: ReloadOutcome) => void): () => void {
    this.#reloadListeners.add(listener);
    return () => this.#reloadListeners.delete(listener);
  }

  /** Stops watching the keys file. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  #resolve(creds: Credentials): Principal | AuthFailure {
    const cert = creds.certificate;
    if (cert !== undefined) {
      const serial = serialOf(cert);
      // A revoked certificate refuses the request whatever else it carries.
      if (serial === null || this.#table.revokedSerials.has(serial)) return { code: 'PERMISSION_DENIED', message: `client certificate serial ${cert.serial.slice(0, 40)} was revoked` };
    }
    if (creds.authorization !== undefined) {
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(creds.authorization);
      if (m === null) return UNAUTHENTICATED('Authorization header must be "Bearer <token>"');
      const token = m[1]!;
      return token.startsWith('hsk_') ? this.#apiKey(token) : this.#bearer(token);
    }
    if (creds.apiKey !== undefined) return this.#apiKey(creds.apiKey.trim());
    if (cert !== undefined) {
      const mapped = this.#table.certificates.find((m) => matches(m, cert));
      if (mapped === undefined) return { code: 'PERMISSION_DENIED', message: `client certificate (${describe(cert)}) is not mapped to a principal in the keys file` };
      return mapped.principal;
    }
    return UNAUTHENTICATED('credentials required: Authorization: Bearer <token>, X-API-Key: <key>, or a client certificate');
  }

  /** Credentials whose digest is cached (tests: the cache stays bounded). */
  get cachedDigests(): number {
    return this.#digests.size;
  }

  #digest(secret: string): Buffer {
    return this.#digests.get(secret) ?? sha256(secret);
  }

  /** Remembers the digest of a credential that just authenticated. */
  #remember(secret: string, digest: Buffer): void {
    if (this.#digests.has(secret)) return;
    if (this.#digests.size >= MAX_CACHED_DIGESTS) this.#digests.delete(this.#digests.keys().next().value as string);
    this.#digests.set(secret, digest);
  }

  #bearer(token: string): Principal | AuthFailure {
    if (token.length > MAX_CREDENTIAL_LENGTH) return UNAUTHENTICATED('invalid token');
    const h = this.#digest(token);
    let hit: TokenRecord | undefined;
    // Compare against every token so the time does not depend on which one matched.
    for (const t of this.#tokens) if (timingSafeEqual(h, t.hash) && hit === undefined) hit = t;
    if (hit === undefined) return UNAUTHENTICATED('invalid token');
    this.#remember(token, h);
    return { id: hit.id, scopes: hit.scopes };
  }

  #apiKey(secret: string): Principal | AuthFailure {
    if (secret.length > MAX_CREDENTIAL_LENGTH) return UNAUTHENTICATED('invalid API key');
    const m = API_KEY_PATTERN.exec(secret);
    if (m === null) return UNAUTHENTICATED('invalid API key');
    const key = this.#table.keys.get(m[1]!);
    const h = this.#digest(secret);
    // Unknown ids still pay one comparison, against the presented hash itself.
    if (!timingSafeEqual(h, key?.hash ?? h) || key === undefined) return UNAUTHENTICATED('invalid API key');
    if (key.entry.revoked !== undefined) return { code: 'PERMISSION_DENIED', message: `API key ${key.entry.id} was revoked` };
    this.#remember(secret, h);
    return { id: key.entry.id, scopes: key.scopes };
  }

  #watch(): void {
    const path = this.#keysFile;
    if (path === undefined) return;
    try {
      // Writers replace the file by rename, so the directory is what sees the change.
      this.#watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(path)) this.#schedule();
      });
      this.#watcher.on('error', (e) => {
        this.#log.warn({ keysFile: path, err: e.message }, 'keys file watcher failed; polling only');
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (e) {
      this.#log.warn({ keysFile: path, err: (e as Error).message }, 'cannot watch the keys file directory; polling only');
    }
    this.#poll = setInterval(() => this.#schedule(), KEYS_FILE_CHECK_MS);
    this.#poll.unref();
  }

  /** One reload at a time; a change seen during one runs one more. */
  #schedule(): void {
    if (this.#closed) return;
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return;
    }
    this.#reloading = this.#reload().finally(() => {
      this.#reloading = undefined;
      if (this.#reloadAgain) {
        this.#reloadAgain = false;
        this.#schedule();
      }
    });
  }

  async #reload(): Promise<void> {
    const path = this.#keysFile;
    if (path === undefined) return;
    try {
      const read = await readStamped(path, this.#table.stamp);
      if (read.file === null || this.#closed) return;
      this.#table = tableOf(read.file, read.stamp);
      this.#log.info({ keysFile: path, keys: read.file.keys.length, certificates: read.file.certificates.length, revokedSerials: read.file.revoked_serials.length }, 'API keys reloaded');
      this.#emit('applied');
    } catch (e) {
      // Keep serving with the previous keys; a half-written file must not lock everyone out.
      this.#log.warn({ keysFile: path, err: (e as Error).message }, 'API keys file unreadable; keeping the previous keys');
      this.#emit('kept');
    }
  }

  #emit(outcome: ReloadOutcome): void {
    for (const l of this.#reloadListeners) l(outcome);
  }
}
