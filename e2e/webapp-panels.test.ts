// The whole product in one Chromium tab, driven the way a person uses it: the relay is a
// one-voter Raft group with a real API behind the page's /api proxy. The tab shows its
// identity, transports and round trips, the peers graph, the Raft state and recent log; an
// operator form built from the schema runs kv.put (by keyboard) and the receipt it returns
// verifies in the tab (chain and inclusion proof), while a tree head altered on the way is a
// visible FAIL with the verifier's code; a manual/ key edited on both sides while the tab
// works offline is a conflict resolved from the UI. Every page and console error fails, axe
// finds no serious violation, each panel is screenshotted to e2e/results/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { loadOrCreateKey } from '../src/net/platform-node.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import { launchChromium } from './browsers.ts';
import { screenshotPanels, seriousA11yViolations, watch, type WatchedPage } from './app-page.ts';
import { CLUSTER, HOOK_TIMEOUT_MS, joinUrl, startWeb, TEST_TIMEOUT_MS, until, type Web } from './harness.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'hypersync-e2e-app-'));
const apiToken = base64urlEncode(crypto.randomBytes(24));
let relay: RelayHandle;
let web: Web;
let browser: Browser;
let ctx: BrowserContext;
let tab: WatchedPage;
let page: Page;

before(
  async () => {
    process.env['HYPERSYNC_LOG'] ??= 'warn';
    const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
    const relayId = peerIdFromPrivateKey(await loadOrCreateKey(dataDir)).toString();
    relay = await startRelay({
      config: { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [], raft: { voters: [relayId], learners: [] } },
      dataDir, port: 0, httpPort: 0, heartbeatMs: 500,
      api: { insecure: true, tokens: [{ name: 'tab', token: apiToken, scopes: ['execute', 'read'] }] },
    });
    web = await startWeb({ api: relay.http.url });
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    tab = watch(page, 'tab');
    await page.goto(joinUrl(web.base, { relays: [relay.multiaddrs[0]!], clusterSigner, apiToken }));
    await page.evaluate(() => window.hypersync.ready);
  },
  { timeout: HOOK_TIMEOUT_MS },
);

after(
  async () => {
    await browser?.close();
    await web?.vite.close();
    await relay?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  },
  { timeout: HOOK_TIMEOUT_MS },
);

async function text(selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? '';
}

async function waitText(selector: string, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<string> {
  let last = '';
  return until(async () => {
    last = await text(selector);
    return pattern.test(last) ? last : undefined;
  }, timeoutMs, `${what} (${selector} ~ ${pattern})`).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; it reads '${last}'`);
  });
}

test('identity, transports, round trips, the peers graph and the relay\'s Raft state', { timeout: TEST_TIMEOUT_MS }, async () => {
  const peerId = await page.evaluate(() => window.hypersync.peerId);
  assert.equal(await text('#peer-id'), peerId);
  await waitText('#transports', /websocket 1/, 'the WebSocket link to the relay');
  await waitText('#rtts', new RegExp(`relay ${relay.peerId.slice(0, 8)}.* [0-9.]+ ms`), 'a measured round trip to the relay');
  await until(async () => ((await page.locator('#graph line[data-kind="server"]').count()) === 1 ? true : undefined), 20_000, 'the relay edge in the graph');
  assert.match(await page.locator('#graph svg').getAttribute('aria-label') ?? '', /1 peer\(s\): 0 direct WebRTC, 0 relayed, 1 over WebSocket/);
  await waitText('#consensus-status', /^raft · term [1-9]/, 'the Raft status read through the relay API');
  assert.match(await text('[data-field="leader"]'), new RegExp(relay.peerId.slice(0, 8)));
  assert.equal(await page.locator(`#raft-members tr[data-peer-id="${relay.peerId}"] td[data-label="State"]`).textContent(), 'leader');
  assert.match(await text('#pbft-status'), /^not running/);
  assert.equal(await page.locator('#offline').getAttribute('data-online'), 'true');
});

test('an operator form from the schema runs kv.put by keyboard; its receipt verifies in the tab, and an altered tree head is a visible FAIL', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
  await waitText('#op-status', /operators; the relay runs them/, 'the operator registry');
  await page.locator('#op-pick').selectOption('kv.put');
  // A required field left empty is named before anything is sent.
  await page.locator('#op-form input[name="key"]').focus();
  await page.keyboard.press('Enter');
  await waitText('#op-result', /^key: required$/, 'the missing field named');
  await page.keyboard.type('greeting');
  await page.keyboard.press('Tab');
  await page.keyboard.type('{"hello":"world"}');
  await page.keyboard.press('Enter');
  await waitText('#op-result', /^success in [\d.]+ ms; receipt /, 'kv.put committed through Raft');
  assert.deepEqual(JSON.parse(await text('#op-outputs')), { ok: true });
  const head = relay.backend.treeHead();
  assert.equal(head.size, 1);
  // The run's receipt is searched and checked in the tab.
  await until(async () => ((await page.locator('#receipt-proof [data-verdict="pass"]').count()) === 1 ? true : undefined), 20_000, 'the inclusion proof passes');
  assert.match(await text('#receipt-proof'), /^PASS inclusion proof: receipt .* tree head of size 1/);
  assert.match(await text('#receipt-chain'), /^PASS chain of 1 receipts #0–#0.*webcrypto/);
  // More receipts, so the chain check covers links; the consensus panel lists them.
  for (const [key, delta] of [['c', 2], ['c', 3]] as const) await page.evaluate(async ([k, d]) => {
    const res = await fetch('/api/v1/operators/execute', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${new URLSearchParams(location.hash.slice(1)).get('api')}` }, body: JSON.stringify({ operator_id: 'counter.add', inputs: { key: k, delta: d } }) });
    if (!res.ok) throw new Error(`execute: ${res.status}`);
  }, [key, delta] as const);
  await page.locator('#receipt-search').fill('');
  await page.locator('#receipts-refresh').click();
  await waitText('#receipt-chain', /^PASS chain of 3 receipts #0–#2/, 'the chain of three');
  await waitText('#raft-log', /#2 counter\.add/, 'recent committed operations', 10_000);
  assert.equal(await page.locator('#receipts-body tr').count(), 3);
  await page.locator('#receipt-search').fill('counter');
  assert.equal(await page.locator('#receipts-body tr').count(), 2);
  // A relay (or anything on the way) that alters the signed tree head is caught in the tab.
  await page.route('**/api/v1/receipts/*', async (route) => {
    const res = await route.fetch();
    const bundle = (await res.json()) as { tree_head: { signature: string } };
    const sig = bundle.tree_head.signature;
    bundle.tree_head.signature = `${sig.slice(0, -4)}${sig.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    await route.fulfill({ response: res, json: bundle });
  });
  await page.locator('#receipts-body tr[data-index="1"] button').click();
  await until(async () => ((await page.locator('#receipt-proof [data-verdict="fail"]').count()) === 1 ? true : undefined), 20_000, 'the altered proof fails');
  assert.equal(await page.locator('#receipt-proof [data-verdict="fail"]').getAttribute('data-code'), 'TREE_HEAD_SIGNATURE_INVALID');
  await page.unroute('**/api/v1/receipts/*');
  await page.locator('#receipt-search').fill('');
  await page.locator('#receipt-search').press('Enter');
  await until(async () => ((await page.locator('#receipt-proof [data-verdict="pass"]').count()) === 1 ? true : undefined), 20_000, 'the untouched proof passes again');
});

test('a manual/ key written on both sides while the tab works offline is a conflict resolved in the UI', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
  await page.locator('#offline-toggle').click();
  await until(async () => ((await page.locator('#offline').getAttribute('data-online')) === 'false' ? true : undefined), 20_000, 'the offline indicator');
  await until(async () => (relay.peer.peers().some((p) => p.state === 'established' && p.roles.includes('browser')) ? undefined : true), 20_000, 'the relay sees the tab leave');
  await page.locator('#doc-key').fill('manual/plan');
  await page.locator('#doc-value').fill('"tab draft"');
  await page.locator('#doc-value').press('Enter');
  await waitText('#doc-result', /^saved manual\/plan/, 'the offline write');
  await relay.sync.docs.put('manual/plan', 'relay draft');
  await page.locator('#offline-toggle').click();
  await until(async () => ((await page.locator('#offline').getAttribute('data-online')) === 'true' ? true : undefined), 20_000, 'back online');
  await until(async () => ((await page.locator('#conflicts .conflict[data-key="manual/plan"]').count()) === 1 ? true : undefined), 45_000, 'the conflict in the tab');
  // The tab can see the relay's version before the relay has the tab's (each side learns of the
  // conflict when the other's version arrives): wait for the relay's side too, then compare.
  await until(async () => (relay.sync.docs.conflictKeys().length > 0 ? true : undefined), 20_000, 'the conflict at the relay');
  assert.deepEqual(relay.sync.docs.conflictKeys(), ['manual/plan']);
  assert.match(await text('#docs-conflicts'), /^1 open conflict/);
  await screenshotPanels(page, 'desktop');
  const relayVersion = page.locator('#conflicts li', { hasText: 'relay draft' }).locator('button');
  await relayVersion.focus();
  await page.keyboard.press('Enter');
  await until(async () => (relay.sync.docs.conflictKeys().length === 0 ? true : undefined), 30_000, 'the resolution reached the relay');
  assert.equal((await relay.sync.docs.get('manual/plan'))?.value, 'relay draft');
  await waitText('#docs-conflicts', /^no open conflicts$/, 'the conflict cleared in the tab');
  assert.equal(await page.locator('#docs-body tr[data-key="manual/plan"]').getAttribute('data-conflict'), 'false');
});

test('a reload keeps the identity and documents; the first Tab reaches the panel links; axe finds no serious violation; at 390 px every panel fits', { timeout: TEST_TIMEOUT_MS }, async () => {
  const before = await page.evaluate(() => window.hypersync.peerId);
  await page.reload();
  await page.evaluate(() => window.hypersync.ready);
  assert.equal(await page.evaluate(() => window.hypersync.peerId), before, 'the identity survives a reload (IndexedDB)');
  await until(async () => ((await page.locator('#docs-body tr[data-key="manual/plan"]').count()) === 1 ? true : undefined), 10_000, 'the documents after the reload');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Identity');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'self', 'the link moves focus to its panel');
  assert.match(await page.evaluate(() => location.hash), /^#token=.*&api=/, 'and keeps the join token in the URL');
  assert.deepEqual(await seriousA11yViolations(page), []);
  // The status badge in every state it can show, not only the one it happens to be in now: a
  // tab still connecting after the reload once failed the check above on the badge's colours.
  const state = await page.locator('#status').getAttribute('class');
  for (const s of ['connecting', 'online', 'offline', 'error']) {
    await page.evaluate((c) => {
      document.getElementById('status')!.className = `badge ${c}`;
    }, s);
    assert.deepEqual(await seriousA11yViolations(page, '#status'), [], `the status badge when ${s}`);
  }
  await page.evaluate((c) => {
    document.getElementById('status')!.className = c ?? 'badge';
  }, state);
  await page.setViewportSize({ width: 390, height: 844 });
  const wide = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    return [...document.querySelectorAll('.card')].filter((c) => c.scrollWidth > c.clientWidth || c.getBoundingClientRect().right > vw + 0.5).map((c) => c.id);
  });
  assert.deepEqual(wide, []);
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth), true);
  await screenshotPanels(page, 'phone');
  assert.deepEqual(await seriousA11yViolations(page), []);
  assert.deepEqual(tab.problems, []);
});

test('without an API credential the API panels say what to do, and nothing is requested', { timeout: TEST_TIMEOUT_MS }, async () => {
  const other = await browser.newContext();
  try {
    const p = await other.newPage();
    const w = watch(p, 'no-credential tab');
    const requests: string[] = [];
    p.on('request', (r) => {
      if (r.url().includes('/api/')) requests.push(r.url());
    });
    const url = page.url().replace(/&api=[^&]*/, '');
    await p.goto(url);
    await p.evaluate(() => window.hypersync.ready);
    for (const id of ['#consensus-status', '#op-status', '#receipts-status']) {
      assert.equal(await p.locator(id).getAttribute('data-error'), 'NO_CREDENTIAL', id);
      assert.match((await p.locator(id).textContent()) ?? '', /npm start/);
    }
    assert.deepEqual(requests, []);
    assert.deepEqual(w.problems, []);
  } finally {
    await other.close();
  }
});
