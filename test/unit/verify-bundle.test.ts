// The standalone verifier bundles on its own into one self-contained ES module within the
// issue's 30 KB gzipped, with no libp2p, storage, network or Node code inside: the build a
// page or a worker loads (e2e/verify-page.test.ts runs it in Chromium and Firefox).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVerifier, MAX_VERIFY_GZIP_BYTES } from '../../src/verify/vite.config.ts';

test('the verifier bundle is self-contained, at most 30 KB gzipped, and free of libp2p, storage, network and Node code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-verify-'));
  try {
    const bundle = await buildVerifier(dir);
    assert.deepEqual(bundle.imports, [], 'one file, nothing imported at run time');
    assert.ok(bundle.gzipBytes <= MAX_VERIFY_GZIP_BYTES, `${bundle.gzipBytes} bytes gzipped, budget ${MAX_VERIFY_GZIP_BYTES}`);
    // PBFT's certificate scheme ships in the verifier: its pure certificate files only, never the core or the runtime.
    const pbftCertificate = /\/src\/consensus\/pbft\/(receipt-certificate|certificate|auth|codec|merkle|errors|types)\.ts$/;
    const forbidden = bundle.modules.filter((m) => !pbftCertificate.test(m) && /@libp2p|\/libp2p\/|@multiformats|multiformats|\/src\/(store|net|ico|cli|consensus|statemachine)\/|classic-level|\/idb\/|^node:|\/src\/crypto\/node\.ts/.test(m));
    assert.deepEqual(forbidden, []);
    for (const needed of ['/src/consensus/pbft/receipt-certificate.ts', '/src/verify/index.ts', '/src/crypto/browser.ts', '/src/crypto/noble.ts', '/src/receipts/receipt.ts', '/src/receipts/merkle.ts']) {
      assert.ok(bundle.modules.some((m) => m.endsWith(needed)), `${needed} is in the bundle`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
