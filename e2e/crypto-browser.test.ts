// The crypto adapter in real browsers: Chromium (Playwright) and Firefox (puppeteer) pick
// WebCrypto Ed25519 at load and pass the compliance suite against @noble (1,000 random
// inputs, RFC 8032 known answers, the edge cases where platforms disagree, malformed input);
// with Ed25519 taken out of WebCrypto the same build falls back to @noble and still passes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ViteDevServer } from 'vite';
import { launchChromium, launchFirefox } from './browsers.ts';
import { startVitePage } from './idb-harness.ts';
import { until } from './harness.ts';

let server: ViteDevServer;
let url: string;

before(async () => {
  ({ server, url } = await startVitePage('crypto'));
});

after(async () => {
  await server?.close();
});

interface PageResults {
  adapter: string;
  seed: string;
  inputs: number;
  results: Array<{ name: string; ok: boolean; error?: string }>;
}

/** Makes WebCrypto refuse Ed25519 before any page script runs, as a browser without it would. */
const WITHOUT_ED25519 = `(() => {
  const importKey = SubtleCrypto.prototype.importKey;
  SubtleCrypto.prototype.importKey = function (format, data, algorithm, ...rest) {
    const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
    if (String(name).toLowerCase() === 'ed25519') return Promise.reject(new DOMException('Ed25519 disabled by the test', 'NotSupportedError'));
    return importKey.call(this, format, data, algorithm, ...rest);
  };
})();`;

/** Waits for the page's results (the suite runs ~1 s per 100 inputs in a loaded browser). */
async function results(read: () => Promise<{ error?: string; results?: PageResults }>, browser: string): Promise<PageResults> {
  return until(async () => {
    const r = await read();
    if (r.error !== undefined) throw new Error(r.error);
    return r.results;
  }, 240_000, `crypto compliance results in ${browser}`);
}

function assertPassed(r: PageResults, adapter: string, inputs: number, browser: string): void {
  assert.equal(r.adapter, adapter, `${browser} picked ${r.adapter}`);
  assert.equal(r.inputs, inputs);
  assert.equal(r.results.length, 5, `${browser}: ${r.results.length} checks ran`);
  const failed = r.results.filter((x) => !x.ok);
  assert.deepEqual(failed, [], `${browser} (seed ${r.seed}, replay with ?seed=${r.seed}): ${failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`);
}

test('Chromium: WebCrypto Ed25519 is picked and agrees with @noble on 1,000 random inputs, RFC 8032 and the edge cases; without it, @noble is picked', { timeout: 600_000 }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`chromium page error: ${e.message}\n`));
    await page.goto(url);
    assertPassed(await results(() => page.evaluate(() => ({ error: window.cryptoError, results: window.cryptoResults })), 'Chromium'), 'webcrypto', 1000, 'chromium');
    const fallback = await browser.newPage();
    await fallback.addInitScript(WITHOUT_ED25519);
    await fallback.goto(`${url}?inputs=50`);
    assertPassed(await results(() => fallback.evaluate(() => ({ error: window.cryptoError, results: window.cryptoResults })), 'Chromium without Ed25519'), 'noble', 50, 'chromium without Ed25519');
  } finally {
    await browser.close();
  }
});

test('Firefox: WebCrypto Ed25519 is picked and agrees with @noble on 1,000 random inputs, RFC 8032 and the edge cases; without it, @noble is picked', { timeout: 600_000 }, async () => {
  const ff = await launchFirefox();
  try {
    const page = await ff.browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`firefox page error: ${String(e)}\n`));
    await page.goto(url);
    assertPassed(await results(() => page.evaluate(() => ({ error: window.cryptoError, results: window.cryptoResults })), 'Firefox'), 'webcrypto', 1000, 'firefox');
    const fallback = await ff.browser.newPage();
    await fallback.evaluateOnNewDocument(WITHOUT_ED25519);
    await fallback.goto(`${url}?inputs=50`);
    assertPassed(await results(() => fallback.evaluate(() => ({ error: window.cryptoError, results: window.cryptoResults })), 'Firefox without Ed25519'), 'noble', 50, 'firefox without Ed25519');
  } finally {
    await ff.close();
  }
});
