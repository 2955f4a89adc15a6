// A throwaway certificate authority for TLS tests: a CA, a server certificate for
// localhost/127.0.0.1 and client certificates (ECDSA P-256, PEM files in one directory),
// made with the openssl CLI. Test-only: the relay's own dev CA is relay/api/tls.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PemFiles {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface TestCa extends PemFiles {
  issue(kind: 'server' | 'client', cn: string): PemFiles;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function files(dir: string, name: string): PemFiles {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}-key.pem`);
  return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

/** Makes CA `name` in `dir` (files `<name>.pem`, `<name>-key.pem`); issue() adds `<cn>.pem`. */
export function createTestCa(dir: string, name: string): TestCa {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const ca = files(dir, name);
  return {
    ...ca,
    issue(kind, cn) {
      const ext = join(dir, `${cn}.ext`);
      writeFileSync(
        ext,
        kind === 'server'
          ? 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n'
          : 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
      );
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${cn}-key.pem`, '-out', `${cn}.csr`, '-subj', `/CN=${cn}`], dir);
      openssl(['x509', '-req', '-in', `${cn}.csr`, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-out', `${cn}.pem`, '-days', '2', '-extfile', ext], dir);
      return files(dir, cn);
    },
  };
}
