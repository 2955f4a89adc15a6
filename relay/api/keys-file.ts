// The relay API's keys file: who may call the API and with which scopes. It holds API keys (only
// their sha256 hashes), client-certificate mappings (a subject CN or SAN → a named principal
// with scopes) and revoked certificate serials. Written atomically with mode 0600; the relay
// reads it through a watcher (relay/api/auth.ts), never on the request path.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import type { Scope } from './auth-types.ts';

/** Entries a file may hold, per kind. */
export const MAX_KEYS = 10_000;
export const MAX_CERTIFICATE_MAPPINGS = 10_000;
export const MAX_REVOKED_SERIALS = 100_000;
export const MAX_KEY_NAME_LENGTH = 128;
/** Longest CN / SAN value a mapping may name (RFC 5280's upper bounds are far below). */
export const MAX_MATCH_VALUE_LENGTH = 256;

export const ALL_SCOPES: readonly Scope[] = ['execute', 'read', 'audit'];
const KEY_ID_PATTERN = /^[a-z0-9]{8,32}$/;
const CERT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/;
/** RFC 5280: a serial is at most 20 octets. Stored as uppercase hex without leading zeros. */
const SERIAL_PATTERN = /^[0-9A-F]{1,40}$/;

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

/** What part of a verified client certificate a mapping matches. */
export type CertificateMatchKind = 'cn' | 'dns' | 'email' | 'uri' | 'ip';
export const CERTIFICATE_MATCH_KINDS: readonly CertificateMatchKind[] = ['cn', 'dns', 'email', 'uri', 'ip'];

export interface CertificateMapping {
  /** The principal is `cert:<name>`. */
  name: string;
  /** `cn:<subject CN>`, or a SAN: `dns:<name>`, `email:<address>`, `uri:<uri>`, `ip:<address>`. */
  match: string;
  scopes: Scope[];
  /** RFC 3339. */
  created: string;
}

export interface RevokedSerial {
  /** Uppercase hex, no leading zeros (as `normalizeSerial` writes it). */
  serial: string;
  /** RFC 3339. */
  revoked: string;
}

export interface KeysFile {
  version: 1;
  keys: ApiKeyEntry[];
  certificates: CertificateMapping[];
  revoked_serials: RevokedSerial[];
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function isScope(s: unknown): s is Scope {
  return typeof s === 'string' && (ALL_SCOPES as readonly string[]).includes(s);
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

/** A certificate serial as written anywhere (hex, any case, colons) → uppercase hex without leading zeros. */
export function normalizeSerial(text: string): string {
  const hex = text.replace(/[:\s]/g, '').toUpperCase().replace(/^0+(?=.)/, '');
  if (!SERIAL_PATTERN.test(hex)) throw new KeysFileError('KEY_INVALID', `'${text.slice(0, 64)}' is not a certificate serial (hex, at most 20 bytes)`);
  return hex;
}

/** An IP address in one canonical text form (IPv6 compressed, lowercase), or null. */
export function canonicalIp(text: string): string | null {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(text)) return text;
  if (!text.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  try {
    // The WHATWG URL parser canonicalizes an IPv6 literal (RFC 5952 form).
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
}

/** `kind:value` → its parts with the value in the form certificates are compared in; throws KEY_INVALID. */
export function parseCertificateMatch(text: string): { kind: CertificateMatchKind; value: string } {
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon) as CertificateMatchKind;
  const raw = text.slice(colon + 1);
  if (colon < 0 || !CERTIFICATE_MATCH_KINDS.includes(kind)) throw new KeysFileError('KEY_INVALID', `certificate match '${text.slice(0, 64)}' must be ${CERTIFICATE_MATCH_KINDS.map((k) => `${k}:<value>`).join(', ')}`);
  // No C0/C1 control characters: a match value is something a person typed and reads back.
  if (raw === '' || raw.length > MAX_MATCH_VALUE_LENGTH || /[\u0000-\u001f\u007f-\u009f]/.test(raw)) {
    throw new KeysFileError('KEY_INVALID', `certificate match value must be 1..${MAX_MATCH_VALUE_LENGTH} printable characters`);
  }
  if (kind === 'ip') {
    const ip = canonicalIp(raw);
    if (ip === null) throw new KeysFileError('KEY_INVALID', `'${raw.slice(0, 64)}' is not an IP address`);
    return { kind, value: ip };
  }
  return { kind, value: kind === 'dns' ? raw.toLowerCase() : raw };
}

function timestampProblem(v: unknown): boolean {
  return typeof v !== 'string' || Number.isNaN(Date.parse(v));
}

function keyProblem(e: unknown, i: number): string | null {
  if (typeof e !== 'object' || e === null) return `keys[${i}] is not an object`;
  const r = e as Record<string, unknown>;
  if (typeof r['id'] !== 'string' || !KEY_ID_PATTERN.test(r['id'])) return `keys[${i}].id is invalid`;
  if (typeof r['name'] !== 'string') return `keys[${i}].name must be a string`;
  if (!Array.isArray(r['scopes']) || !r['scopes'].every(isScope)) return `keys[${i}].scopes must list ${ALL_SCOPES.join('/')}`;
  if (typeof r['hash'] !== 'string' || !/^[0-9a-f]{64}$/.test(r['hash'])) return `keys[${i}].hash must be sha256 hex`;
  if (typeof r['created'] !== 'string') return `keys[${i}].created must be a string`;
  if (r['revoked'] !== undefined && typeof r['revoked'] !== 'string') return `keys[${i}].revoked must be a string`;
  return null;
}

function mappingProblem(e: unknown, i: number): string | null {
  if (typeof e !== 'object' || e === null) return `certificates[${i}] is not an object`;
  const r = e as Record<string, unknown>;
  if (typeof r['name'] !== 'string' || !CERT_NAME_PATTERN.test(r['name'])) return `certificates[${i}].name must match ${CERT_NAME_PATTERN}`;
  if (typeof r['match'] !== 'string') return `certificates[${i}].match must be a string`;
  try {
    parseCertificateMatch(r['match']);
  } catch (err) {
    return `certificates[${i}].match: ${(err as Error).message}`;
  }
  if (!Array.isArray(r['scopes']) || !r['scopes'].every(isScope)) return `certificates[${i}].scopes must list ${ALL_SCOPES.join('/')}`;
  if (timestampProblem(r['created'])) return `certificates[${i}].created must be a timestamp`;
  return null;
}

function serialProblem(e: unknown, i: number): string | null {
  if (typeof e !== 'object' || e === null) return `revoked_serials[${i}] is not an object`;
  const r = e as Record<string, unknown>;
  if (typeof r['serial'] !== 'string' || !SERIAL_PATTERN.test(r['serial']) || (r['serial'].length > 1 && r['serial'].startsWith('0'))) return `revoked_serials[${i}].serial must be uppercase hex without leading zeros`;
  if (timestampProblem(r['revoked'])) return `revoked_serials[${i}].revoked must be a timestamp`;
  return null;
}

function checkList(list: unknown, field: string, max: number, problem: (e: unknown, i: number) => string | null, path: string): unknown[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: ${field} must be an array`);
  if (list.length > max) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: more than ${max} ${field}`);
  list.forEach((e, i) => {
    const p = problem(e, i);
    if (p !== null) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: ${p}`);
  });
  return list;
}

/** Parses and checks a keys file's text. `certificates` and `revoked_serials` are optional. */
export function parseKeysFile(text: string, path: string): KeysFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KeysFileError('KEYS_FILE_INVALID', `${path}: not JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { keys?: unknown }).keys)) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: expected {"version":1,"keys":[…]}`);
  const v = value as Record<string, unknown>;
  const keys = checkList(v['keys'], 'keys', MAX_KEYS, keyProblem, path) as ApiKeyEntry[];
  const certificates = checkList(v['certificates'], 'certificates', MAX_CERTIFICATE_MAPPINGS, mappingProblem, path) as CertificateMapping[];
  const names = new Set<string>();
  for (const c of certificates) {
    if (names.has(c.name)) throw new KeysFileError('KEYS_FILE_INVALID', `${path}: two certificate mappings are named '${c.name}'`);
    names.add(c.name);
  }
  const revoked = checkList(v['revoked_serials'], 'revoked_serials', MAX_REVOKED_SERIALS, serialProblem, path) as RevokedSerial[];
  return { version: 1, keys, certificates, revoked_serials: revoked };
}

/** Reads a keys file; a missing file is an empty one. */
export async function readKeysFile(path: string): Promise<KeysFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, keys: [], certificates: [], revoked_serials: [] };
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

function checkName(name: string): void {
  if (name === '' || name.length > MAX_KEY_NAME_LENGTH) throw new KeysFileError('KEY_INVALID', `--name must be 1..${MAX_KEY_NAME_LENGTH} characters`);
}

/** Creates a key, stores its hash, and returns the secret (shown once, never stored). */
export async function createApiKey(path: string, name: string, scopes: readonly Scope[], now = new Date()): Promise<{ entry: ApiKeyEntry; secret: string }> {
  checkName(name);
  const file = await readKeysFile(path);
  if (file.keys.length >= MAX_KEYS) throw new KeysFileError('KEY_INVALID', `${path} already holds ${MAX_KEYS} keys`);
  const id = randomBytes(6).toString('hex');
  const secret = `hsk_${id}_${randomBytes(32).toString('base64url')}`;
  const entry: ApiKeyEntry = { id, name, scopes: [...scopes], hash: sha256Hex(secret), created: now.toISOString() };
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

/** Maps client certificates matching `match` (`cn:…`, `dns:…`, …) to the principal `cert:<name>`. */
export async function addCertificateMapping(path: string, m: { name: string; match: string; scopes: readonly Scope[] }, now = new Date()): Promise<CertificateMapping> {
  if (!CERT_NAME_PATTERN.test(m.name)) throw new KeysFileError('KEY_INVALID', `--name must match ${CERT_NAME_PATTERN}`);
  const { kind, value } = parseCertificateMatch(m.match);
  const file = await readKeysFile(path);
  if (file.certificates.some((c) => c.name === m.name)) throw new KeysFileError('KEY_INVALID', `${path} already maps a certificate named '${m.name}' (remove it first)`);
  if (file.certificates.length >= MAX_CERTIFICATE_MAPPINGS) throw new KeysFileError('KEY_INVALID', `${path} already holds ${MAX_CERTIFICATE_MAPPINGS} certificate mappings`);
  const entry: CertificateMapping = { name: m.name, match: `${kind}:${value}`, scopes: [...m.scopes], created: now.toISOString() };
  file.certificates.push(entry);
  await writeKeysFile(path, file);
  return entry;
}

/** Removes the mapping named `name`; its certificates become unmapped (no scopes). */
export async function removeCertificateMapping(path: string, name: string): Promise<CertificateMapping> {
  const file = await readKeysFile(path);
  const i = file.certificates.findIndex((c) => c.name === name);
  const entry = file.certificates[i];
  if (entry === undefined) throw new KeysFileError('KEY_NOT_FOUND', `no certificate mapping named '${name}' in ${path}`);
  file.certificates.splice(i, 1);
  await writeKeysFile(path, file);
  return entry;
}

/** Adds a serial to the revocation list (idempotent); returns the stored entry. */
export async function revokeCertificateSerial(path: string, serial: string, now = new Date()): Promise<RevokedSerial> {
  const normalized = normalizeSerial(serial);
  const file = await readKeysFile(path);
  const known = file.revoked_serials.find((r) => r.serial === normalized);
  if (known !== undefined) return known;
  if (file.revoked_serials.length >= MAX_REVOKED_SERIALS) throw new KeysFileError('KEY_INVALID', `${path} already lists ${MAX_REVOKED_SERIALS} revoked serials`);
  const entry: RevokedSerial = { serial: normalized, revoked: now.toISOString() };
  file.revoked_serials.push(entry);
  await writeKeysFile(path, file);
  return entry;
}
