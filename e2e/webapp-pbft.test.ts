// The devnet as a newcomer gets it (`hypersync devnet`: relay, three Raft voters, a fourth Node
// peer, PBFT on all four, the web app), and a Chromium tab on the URL it prints: the operator
// form offers PBFT beside the relay's Raft, runs kv.put through it by keyboard, and checks the
// answer's quorum certificate in the tab against the PBFT membership. A certificate altered on
// the way is a visible FAIL with the verifier's code. No page or console error; the operators
// panel passes axe and is screenshotted to e2e/results/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browsers.ts';
import { RESULTS_DIR, seriousA11yViolations, watch, type WatchedPage } from './app-page.ts';
import { HOOK_TIMEOUT_MS, TEST_TIMEOUT_MS, until } from './harness.ts';
import { freePortBase } from '../test/harness/ports.ts';
import { killAll, run, tempDir } from '../test/harness/processes.ts';

let browser: Browser;
let tab: WatchedPage;
let page: Page;
/** The PBFT replicas' PeerIds, as the devnet wrote them. */
let replicas: string[];

before(
  async () => {
    const dir = join(tempDir(), 'devnet');
    const devnet = run('devnet', ['devnet', '--dir', dir, '--port-base', String(await freePortBase()), '--heartbeat-ms', '500']);
    await devnet.waitFor((e) => e.type === 'text' && e['line'] === 'Ctrl-C stops everything.', 120_000, 'the devnet to be up');
    const endpoints = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')) as { web: string };
    const cluster = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { pbft?: { replicas: string[] } };
    replicas = cluster.pbft?.replicas ?? [];
    assert.equal(replicas.length, 4, 'the devnet runs PBFT on four peers');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    tab = watch(page, 'tab');
    await page.goto(endpoints.web);
    await page.evaluate(() => window.hypersync.ready);
  },
  { timeout: HOOK_TIMEOUT_MS + 120_000 },
);

after(
  async () => {
    await browser?.close();
    await killAll();
  },
  { timeout: HOOK_TIMEOUT_MS },
);

async function text(selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? '';
}

/** Fills the kv.put form (emptied first) by keyboard and submits it through PBFT. */
async function runThroughPbft(key: string): Promise<void> {
  await page.locator('#op-pick').selectOption('kv.put');
  await page.locator('#op-engine').selectOption('pbft');
  for (const name of ['key', 'value']) await page.locator(`#op-form input[name="${name}"]`).fill('');
  await page.locator('#op-form input[name="key"]').focus();
  await page.keyboard.type(key);
  await page.keyboard.press('Tab');
  await page.keyboard.type('{"via":"pbft"}');
  await page.keyboard.press('Enter');
}

test('the operator form runs kv.put through PBFT; the quorum certificate is checked in the tab, and an altered one is a visible FAIL', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
  await until(async () => ((await page.locator('#op-engine option[value="pbft"]').count()) === 1 ? true : undefined), 30_000, 'PBFT offered in the operator form');
  assert.match(await text('#op-engine option[value="default"]'), /^Raft \(the relay's engine\)/);
  assert.match(await text('#op-engine option[value="pbft"]'), /^PBFT \(4 replicas, f = 1\)/);

  // The replicas dial each other as they come up: until they have, the relay answers a
  // retryable UNAVAILABLE, and the person runs it again (bounded, as the integration test does).
  for (let attempt = 1; ; attempt++) {
    await runThroughPbft('pbft/tab');
    const outcome = await until(async () => {
      if ((await page.locator('#op-result[data-error]').count()) === 1) return `failed: ${await text('#op-result')}`;
      return (await page.locator('#op-certificate [data-verdict]').count()) === 1 ? 'verdict' : undefined;
    }, 60_000, 'the certificate verdict or an error');
    if (outcome === 'verdict') break;
    assert.ok(attempt < 6 && /UNAVAILABLE/.test(outcome), `attempt ${attempt} ${outcome}`);
  }
  const pass = await text('#op-certificate');
  assert.match(pass, /^PASS quorum certificate: f \+ 1 = 2 of 4 PBFT replicas vouch for this receipt/, pass);
  assert.match(await text('#op-result'), /^success in [\d.]+ ms; receipt /);
  assert.deepEqual(JSON.parse(await text('#op-outputs')), { ok: true });

  // The operators panel with a certified answer: no serious axe violation, and a screenshot.
  assert.deepEqual(await seriousA11yViolations(page, '#operators'), []);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const panel = page.locator('#operators');
  await panel.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  const box = await panel.boundingBox();
  assert.ok(box !== null);
  await page.screenshot({ path: join(RESULTS_DIR, 'pbft-operators.png'), clip: box });

  // Anything on the way that alters the certified result is caught in the tab.
  await page.route('**/api/v1/operators/execute', async (route) => {
    const res = await route.fetch();
    const body = (await res.json()) as { certificate: { result: string } };
    const r = body.certificate.result;
    body.certificate.result = `${r.slice(0, -2)}${r.slice(-2) === 'AA' ? 'BB' : 'AA'}`;
    await route.fulfill({ response: res, json: body });
  });
  await runThroughPbft('pbft/altered');
  await until(async () => ((await page.locator('#op-certificate [data-verdict="fail"]').count()) === 1 ? true : undefined), 30_000, 'the altered certificate fails');
  assert.equal(await page.locator('#op-certificate [data-verdict]').getAttribute('data-code'), 'CERTIFICATE_INVALID');
  await page.unroute('**/api/v1/operators/execute');
  assert.deepEqual(tab.problems, []);
});
