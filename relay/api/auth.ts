// Credentials for the relay API: API keys from a keys file (stored as sha256 hashes, mode 0600,
// reloaded when the file changes so `keys revoke` reaches a running relay), bearer tokens given
// at construction (hashed in memory), and client certificates the TLS layer already verified.
// Every secret comparison is constant-time over hashes; every principal has a token bucket.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { createLogger } from '../../src/log/logger.ts';
import type { AuthFailure, Authenticator, Principal, Scope } from './auth-types.ts';

/** Default per-principal rate: sustained requests per second and burst size. */
export const DEFAULT_RATE_PER_SECOND = 1000;
export const DEFAULT_RATE_BURST = 2000;
/** Token buckets kept at most; the least recently created is dropped beyond this. */
export const MAX_RATE_BUCKETS = 10_000;
/** The keys file is stat'ed at most this often. */
export const KEYS_FILE_CHECK_MS = 1000;
/** Keys a file may hold, and the longest credential header we hash. */
export const MAX_KEYS = 10_000;
export const MAX_CREDENTIAL_LENGTH = 512;
export const MAX_KEY_NAME_LENGTH = 128;

export const ALL_SCOPES: readonly Scope[] = ['execute', 'read'];
const API_KEY_PATTERN = /^hsk_([a-z0-9]{8,32})_[A-Za-z0-9_-]{16,128}$/;
const KEY_ID_PATTERN = /^[a-z0-9]{8,32}$/;

export class KeysFileError extends Error {
  readonly code: 'KEYS_FILE_INVALID' | 'KEYS_FILE_IO' | 'KEY_NOT_FOUND' | 'KEY_INVALID';
  override name = 'KeysFileError';
  constructor(code: KeysFileError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface ApiKeyEntry {
  id: string;
  name: string;
  scopes: Scope[];
  /** sha256 hex of the whole secret (`hsk_<id>_<random>`). */
  hash: string;
  /** RFC 3339. */
  created: string;
  /** RFC 3339, when revoked. */
  revoked?: string;
}

export interface KeysFile {
  version: 1;
  keys: ApiKeyEntry[];
}

export interface BearerTokenSpec {
  /** Principal id becomes `token:<name>`. */
  name: string;
  token: string;
  scopes: readonly Scope[];
}

export interface KeyStoreOptions {
  keysFile?: string;
  tokens?: readonly BearerTokenSpec[];
  /** Sustained requests per second per principal, and burst. */
  ratePerSecond?: number;
  rateBurst?: number;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function isScope(s: unknown): s is Scope {
  return s === 'execute' || s === 'read';
}

/** Parses `execute,read` into scopes; throws KeysFileError on an unknown one. */
export function parseScopes(text: string): Scope[] {
  const out: Scope[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!isScope(part)) throw new KeysFileError('KEY_INVALID', `unknown scope '${part}' (use ${ALL_SCOPES.join(', ')})`);
    if (!out.includes(part)) out.push(part);
  }
  if (out.length === 0) throw new KeysFileError('KEY_INVALID', 'at least one scope is required');
  return out;
}

function entryProblem(e: unknown, i: number): string | null {
  if (typeof e !== 'object' || e === null) return `keys[${i}] is not an object`;
  const r = e as Record<string, unknown>;
  if (typeof r['id'] !== 'string' || !KEY_ID_PATTERN.test(r['id'])) return `keys[${i}].id is invalid`;
  if (typeof r['name'] !== 'string') return `keys[${i}].name must be a string`;
  if (!Array.isArray(r['scopes']) || !r['scopes'].every(isScope)) return `keys[${i}].scopes must list execute/read`;
  if (typeof r['hash'] !== 'string' || !/^[0-9a-f]{64}$/.test(r['hash'])) return `keys[${i}].hash must be sha256 hex`;
  if (typeof r['created'] !== 'string') return `keys[${i}].created must be a string`;
  if (r['revoked'] !== undefined && typeof r['revoked'] !== 'string') return `keys[${i}].revoked must be a string`;
  return null;
}

/** Parses and checks a keys file's text. */
export function parseKeysFile(text: string, path: string): KeysFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KeysFileError('KEYS_FILE_INVALID', `${path}: not JSON (${(e as Error).message})`);
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (typeof value !== 'object' || value === null || !Array.isArray(keys)) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: expected {"version":1,"keys":[…]}`);
  if (keys.length > MAX_KEYS) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: more than ${MAX_KEYS} keys`);
  keys.forEach((k, i) => {
    const problem = entryProblem(k, i);
    if (problem !== null) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: ${problem}`);
  });
  return { version: 1, keys: keys as ApiKeyEntry[] };
}

/** Reads a keys file; a missing file is an empty one. */
export async function readKeysFile(path: string): Promise<KeysFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, keys: [] };
    throw new KeysFileError('KEYS_FILE_IO', `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseKeysFile(text, path);
}

/** Writes atomically (temp file, then rename) with mode 0600. */
export async function writeKeysFile(path: string, file: KeysFile): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Creates a key, stores its hash, and returns the secret (shown once, never stored). */
export async function createApiKey(path: string, name: string, scopes: readonly Scope[], now = new Date()): Promise<{ entry: ApiKeyEntry; secret: string }> {
  if (name === '' || name.length > MAX_KEY_NAME_LENGTH) throw new KeysFileError('KEY_INVALID', `--name must be 1..${MAX_KEY_NAME_LENGTH} characters`);
  const file = await readKeysFile(path);
  if (file.keys.length >= MAX_KEYS) throw new KeysFileError('KEY_INVALID', `${path} already holds ${MAX_KEYS} keys`);
  const id = randomBytes(6).toString('hex');
  const secret = `hsk_${id}_${randomBytes(32).toString('base64url')}`;
  const entry: ApiKeyEntry = { id, name, scopes: [...scopes], hash: sha256(secret).toString('hex'), created: now.toISOString() };
  file.keys.push(entry);
  await writeKeysFile(path, file);
  return { entry, secret };
}

/** Marks a key revoked (idempotent); returns the entry. */
export async function revokeApiKey(path: string, id: string, now = new Date()): Promise<ApiKeyEntry> {
  const file = await readKeysFile(path);
  const entry = file.keys.find((k) => k.id === id);
  if (entry === undefined) throw new KeysFileError('KEY_NOT_FOUND', `no key with id '${id}' in ${path}`);
  entry.revoked ??= now.toISOString();
  await writeKeysFile(path, file);
  return entry;
}

interface Bucket {
  tokens: number;
  last: number;
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

const UNAUTHENTICATED = (message: string): AuthFailure => ({ code: 'UNAUTHENTICATED', message });

export class KeyStoreAuthenticator implements Authenticator {
  readonly #keysFile: string | undefined;
  readonly #tokens: TokenRecord[];
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #log = createLogger('api-auth');
  #keys = new Map<string, LoadedKey>();
  #fileStamp = '';
  #lastCheck = -Infinity;

  constructor(opts: KeyStoreOptions = {}) {
    this.#keysFile = opts.keysFile;
    this.#tokens = (opts.tokens ?? []).map((t) => {
      if (t.token.length < 16) throw new KeysFileError('KEY_INVALID', `bearer token '${t.name}' is shorter than 16 characters`);
      return { id: `token:${t.name}`, hash: sha256(t.token), scopes: new Set(t.scopes) };
    });
    this.#rate = opts.ratePerSecond ?? DEFAULT_RATE_PER_SECOND;
    this.#burst = opts.rateBurst ?? DEFAULT_RATE_BURST;
    if (!(this.#rate > 0) || !(this.#burst >= 1)) throw new RangeError('rate limit must be positive');
    // A broken keys file at start is an operating error the operator must see now.
    if (this.#keysFile !== undefined) this.#reload(Date.now(), true);
  }

  authenticate(creds: { authorization?: string | undefined; apiKey?: string | undefined; certificateCN?: string | undefined }, now = Date.now()): Principal | AuthFailure {
    const resolved = this.#resolve(creds, now);
    if ('code' in resolved) return resolved;
    return this.#take(resolved, now);
  }

  #resolve(creds: { authorization?: string | undefined; apiKey?: string | undefined; certificateCN?: string | undefined }, now: number): Principal | AuthFailure {
    if (creds.authorization !== undefined) {
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(creds.authorization);
      if (m === null) return UNAUTHENTICATED('Authorization header must be "Bearer <token>"');
      const token = m[1]!;
      return token.startsWith('hsk_') ? this.#apiKey(token, now) : this.#bearer(token);
    }
    if (creds.apiKey !== undefined) return this.#apiKey(creds.apiKey.trim(), now);
    if (creds.certificateCN !== undefined && creds.certificateCN !== '') return { id: `cert:${creds.certificateCN}`, scopes: new Set(ALL_SCOPES) };
    return UNAUTHENTICATED('credentials required: Authorization: Bearer <token>, X-API-Key: <key>, or a client certificate');
  }

  #bearer(token: string): Principal | AuthFailure {
    if (token.length > MAX_CREDENTIAL_LENGTH) return UNAUTHENTICATED('invalid token');
    const h = sha256(token);
    let hit: TokenRecord | undefined;
    // Compare against every token so the time does not depend on which one matched.
    for (const t of this.#tokens) if (timingSafeEqual(h, t.hash) && hit === undefined) hit = t;
    return hit === undefined ? UNAUTHENTICATED('invalid token') : { id: hit.id, scopes: hit.scopes };
  }

  #apiKey(secret: string, now: number): Principal | AuthFailure {
    if (secret.length > MAX_CREDENTIAL_LENGTH) return UNAUTHENTICATED('invalid API key');
    const m = API_KEY_PATTERN.exec(secret);
    if (m === null) return UNAUTHENTICATED('invalid API key');
    this.#reload(now, false);
    const key = this.#keys.get(m[1]!);
    const h = sha256(secret);
    // Unknown ids still pay one comparison, against the presented hash itself.
    if (!timingSafeEqual(h, key?.hash ?? h) || key === undefined) return UNAUTHENTICATED('invalid API key');
    if (key.entry.revoked !== undefined) return { code: 'PERMISSION_DENIED', message: `API key ${key.entry.id} was revoked` };
    return { id: key.entry.id, scopes: key.scopes };
  }

  #take(p: Principal, now: number): Principal | AuthFailure {
    let b = this.#buckets.get(p.id);
    if (b === undefined) {
      if (this.#buckets.size >= MAX_RATE_BUCKETS) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: this.#burst, last: now };
      this.#buckets.set(p.id, b);
    }
    b.tokens = Math.min(this.#burst, b.tokens + (Math.max(0, now - b.last) / 1000) * this.#rate);
    b.last = now;
    if (b.tokens < 1) {
      return { code: 'RATE_LIMITED', message: `rate limit of ${this.#rate} requests/s exceeded`, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.#rate)) };
    }
    b.tokens -= 1;
    return p;
  }

  /** Re-reads the keys file when its stat changed; at most once per KEYS_FILE_CHECK_MS. */
  #reload(now: number, strict: boolean): void {
    const path = this.#keysFile;
    if (path === undefined || (!strict && now - this.#lastCheck < KEYS_FILE_CHECK_MS)) return;
    this.#lastCheck = now;
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new KeysFileError('KEYS_FILE_IO', `cannot stat ${path}: ${(e as Error).message}`);
      stamp = 'missing';
    }
    if (stamp === this.#fileStamp) return;
    try {
      const file = stamp === 'missing' ? { version: 1 as const, keys: [] } : parseKeysFile(readFileSync(path, 'utf8'), path);
      this.#keys = new Map(file.keys.map((entry) => [entry.id, { entry, hash: Buffer.from(entry.hash, 'hex'), scopes: new Set(entry.scopes) }]));
      this.#fileStamp = stamp;
      if (!strict) this.#log.info({ keysFile: path, keys: file.keys.length }, 'API keys reloaded');
    } catch (e) {
      if (strict) throw e;
      // Keep serving with the previous keys; a half-written file must not lock everyone out.
      this.#log.warn({ keysFile: path, err: (e as Error).message }, 'API keys file unreadable; keeping the previous keys');
    }
  }
}
