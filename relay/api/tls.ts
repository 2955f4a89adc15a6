// A development CA for the relay's one HTTPS port: ECDSA P-256 certificates made at run time
// with @peculiar/x509 over node's WebCrypto. Private keys are written with mode 0600. Idempotent:
// files that still form a valid, unexpired chain are reused, so clients keep trusting ca.pem.
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/** Lifetimes of the dev CA and the leaf certificates it signs. */
export const DEV_CA_VALIDITY_DAYS = 3650;
export const DEV_LEAF_VALIDITY_DAYS = 825;
/** Files are regenerated when they expire within this margin. */
export const RENEW_BEFORE_MS = 7 * 86_400_000;
export const DEV_CLIENT_CN = 'devnet-client';

export interface DevCaFiles {
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export class TlsMaterialError extends Error {
  readonly code = 'TLS_MATERIAL';
  override name = 'TlsMaterialError';
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

async function writeSecret(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

interface CaSigner {
  ca: x509.X509Certificate;
  key: CryptoKey;
}

/** A leaf certificate signed by the CA, and its new private key, both PEM. */
async function signLeaf(signer: CaSigner, cn: string, usage: x509.ExtendedKeyUsage, san: x509.JsonGeneralName[] | null, now: Date): Promise<{ cert: string; key: string; serial: string }> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as CryptoKey),
    await x509.AuthorityKeyIdentifierExtension.create(signer.ca),
  ];
  if (san !== null) extensions.push(new x509.SubjectAlternativeNameExtension(san, false));
  const serialNumber = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: `CN=${cn}, O=HyperSync`,
    issuer: signer.ca.subject,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DEV_LEAF_VALIDITY_DAYS * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey as CryptoKey,
    signingKey: signer.key,
    extensions,
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey), serial: serialNumber };
}

export interface ClientCertificateOptions {
  commonName: string;
  /** Subject alternative names, e.g. `[{type: 'dns', value: 'svc.example'}]`. */
  san?: x509.JsonGeneralName[];
  /** Where to write the certificate and its key (mode 0600). */
  certPath: string;
  keyPath: string;
  now?: Date;
}

/** Issues one more client certificate (clientAuth) from the dev CA in `dir`; returns its serial (hex). */
export async function issueClientCertificate(dir: string, opts: ClientCertificateOptions): Promise<{ serial: string }> {
  const files = devCaPaths(dir);
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  let signer: CaSigner;
  try {
    const ca = new x509.X509Certificate(await readFile(files.ca, 'utf8'));
    const der = createPrivateKey(await readFile(files.caKey)).export({ type: 'pkcs8', format: 'der' });
    const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
    signer = { ca, key: key as CryptoKey };
  } catch (e) {
    throw new TlsMaterialError(`cannot load the dev CA in ${dir}: ${(e as Error).message}`);
  }
  const leaf = await signLeaf(signer, opts.commonName, x509.ExtendedKeyUsage.clientAuth, opts.san ?? null, opts.now ?? new Date());
  await writeFile(opts.certPath, leaf.cert + '\n');
  await writeSecret(opts.keyPath, leaf.key);
  return { serial: leaf.serial };
}

export function devCaPaths(dir: string): DevCaFiles {
  return {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
  };
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

function serial(): string {
  // Positive, 16 bytes: the top bit cleared so DER never reads it as negative.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f;
  return Buffer.from(b).toString('hex');
}

/** True when every file exists, parses, is unexpired for a while, and chains to the CA. */
async function stillValid(f: DevCaFiles, now: number): Promise<boolean> {
  if (!Object.values(f).every((p) => existsSync(p))) return false;
  try {
    const ca = new NodeX509(await readFile(f.ca));
    const caKey = createPrivateKey(await readFile(f.caKey));
    if (!ca.checkPrivateKey(caKey) || !ca.ca) return false;
    for (const [certPath, keyPath] of [[f.serverCert, f.serverKey], [f.clientCert, f.clientKey]] as const) {
      const cert = new NodeX509(await readFile(certPath));
      if (!cert.verify(ca.publicKey) || !cert.checkPrivateKey(createPrivateKey(await readFile(keyPath)))) return false;
      if (Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return false;
    }
    return Date.parse(ca.validTo) - now >= RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/**
 * Writes (or reuses) a dev CA and a server and a client certificate in `dir`. The server cert
 * names localhost, 127.0.0.1 and ::1; the client cert's CN is `devnet-client` (clientAuth).
 */
export async function generateDevCa(dir: string, opts: { now?: Date; commonName?: string } = {}): Promise<DevCaFiles> {
  const files = devCaPaths(dir);
  const now = opts.now ?? new Date();
  if (await stillValid(files, now.getTime())) return files;
  await mkdir(dir, { recursive: true });
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);

  const caKeys = await newKeys();
  const caName = `CN=${opts.commonName ?? 'HyperSync dev CA'}, O=HyperSync`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DEV_CA_VALIDITY_DAYS * DAY),
    signingAlgorithm: ALG,
    keys: caKeys as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as CryptoKey),
    ],
  });

  const signer = { ca, key: caKeys.privateKey as CryptoKey };
  const server = await signLeaf(signer, 'localhost', x509.ExtendedKeyUsage.serverAuth, [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  ], now);
  const client = await signLeaf(signer, DEV_CLIENT_CN, x509.ExtendedKeyUsage.clientAuth, null, now);
  await writeFile(files.ca, ca.toString('pem') + '\n');
  await writeSecret(files.caKey, await keyPem(caKeys.privateKey));
  await writeFile(files.serverCert, server.cert + '\n');
  await writeSecret(files.serverKey, server.key);
  await writeFile(files.clientCert, client.cert + '\n');
  await writeSecret(files.clientKey, client.key);
  if (!(await stillValid(files, now.getTime()))) throw new TlsMaterialError(`generated TLS material in ${dir} does not verify`);
  return files;
}

/** Reads the relay's TLS files; a missing or unreadable one is a TlsMaterialError. */
export async function readTlsFiles(paths: { cert: string; key: string; ca?: string | undefined }): Promise<{ cert: string; key: string; ca?: string }> {
  const read = async (p: string, what: string): Promise<string> => {
    try {
      return await readFile(p, 'utf8');
    } catch (e) {
      throw new TlsMaterialError(`cannot read ${what} ${p}: ${(e as Error).message}`);
    }
  };
  const cert = await read(paths.cert, 'TLS certificate');
  const key = await read(paths.key, 'TLS key');
  return paths.ca === undefined ? { cert, key } : { cert, key, ca: await read(paths.ca, 'CA certificate') };
}
