// The storage compliance suite against IndexedDB in real browsers (Chromium through
// Playwright, Firefox through puppeteer), bundled by Vite and run inside the page, plus a
// receipt log on IndexedDB, signed with WebCrypto Ed25519, whose chain and proofs the
// standalone verifier checks in the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ViteDevServer } from 'vite';
import { launchChromium, launchFirefox } from './browsers.ts';
import { startIdbPage } from './idb-harness.ts';
import { until } from './harness.ts';

let server: ViteDevServer;
let url: string;

before(async () => {
  ({ server, url } = await startIdbPage());
});

after(async () => {
  await server?.close();
});

type Results = Array<{ name: string; ok: boolean; error?: string }>;

function assertAllPassed(results: Results, browser: string): void {
  assert.ok(results.length >= 9, `${browser}: only ${results.length} cases ran`);
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], `${browser}: ${failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`);
}

test('IndexedDB passes the compliance suite in Chromium; a receipt log on it and its Merkle proofs verify in the page', async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`chromium page error: ${e.message}\n`));
    await page.goto(url);
    const results = await until(async () => {
      const err = await page.evaluate(() => window.storeError);
      if (err !== undefined) throw new Error(err);
      return page.evaluate(() => window.storeResults?.compliance);
    }, 90_000, 'compliance results in Chromium');
    assertAllPassed(results, 'chromium');
    const rate = await page.evaluate(() => window.measureIdbAppends(100));
    assert.equal(rate.adapter, 'webcrypto', 'the browser bundle signs with WebCrypto Ed25519');
    assert.ok(rate.verified, 'the chain written to IndexedDB verifies');
    assert.ok(rate.proofChecked, 'an inclusion proof verifies in the page and a tampered one does not');
    assert.ok(rate.consistencyChecked, 'a consistency proof between two signed heads verifies in the page, and not with the heads swapped');
    const before = await page.evaluate(() => window.measureIdbAppends(50, 'noble'));
    assert.ok(before.adapter === 'noble' && before.verified && before.proofChecked && before.consistencyChecked, `a noble-signed log verifies the same way: ${JSON.stringify(before)}`);
  } finally {
    await browser.close();
  }
});

test('IndexedDB passes the compliance suite in Firefox; receipts and proofs verify there too', async () => {
  const ff = await launchFirefox();
  try {
    const page = await ff.browser.newPage();
    await page.goto(url);
    const results = await until(async () => {
      const err = await page.evaluate(() => window.storeError);
      if (err !== undefined) throw new Error(err);
      return page.evaluate(() => window.storeResults?.compliance);
    }, 90_000, 'compliance results in Firefox');
    assertAllPassed(results, 'firefox');
    const rate = await page.evaluate(() => window.measureIdbAppends(50));
    assert.equal(rate.adapter, 'webcrypto', 'Firefox signs with WebCrypto Ed25519 too');
    assert.ok(rate.verified && rate.proofChecked && rate.consistencyChecked, `receipts and proofs on IndexedDB in Firefox: ${JSON.stringify(rate)}`);
  } finally {
    await ff.close();
  }
});
