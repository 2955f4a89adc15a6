// Sync with real browsers: a Chromium tab (IndexedDB) and the relay (LevelDB) converge both
// ways; the tab edits while the relay is down, reloads (its identity and documents come back
// from IndexedDB), reconnects when the relay returns and converges, a manual conflict made
// meanwhile shows on both sides and a resolution from the tab clears it everywhere; two tabs
// sync over their direct WebRTC connection with the relay gone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { base64urlEncode, crypto, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { loadOrCreateKey } from '../src/net/platform-node.ts';
import { LevelStore } from '../src/store/level.ts';
import { DocStore } from '../src/sync/docstore.ts';
import { policiesWith } from '../src/sync/policy.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import { launchChromium } from './browsers.ts';
import { CLUSTER, directWebrtcTo, freePort, HOOK_TIMEOUT_MS, joinUrl, openJoinedPage, startWeb, TEST_TIMEOUT_MS, until, type PageView, type Web } from './harness.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'hypersync-e2e-sync-'));
const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
const config = { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] as string[] };
let port = 0;
let relay: RelayHandle | undefined;
let web: Web;
let browser: Browser;
let pageUrl: string;
let tab: Page;
let tabId: string;

async function startTheRelay(): Promise<RelayHandle> {
  relay = await startRelay({ config, dataDir, port, httpPort: 0, heartbeatMs: 500 });
  return relay;
}

async function summary(page: Page): Promise<{ n: number; h: string }> {
  return page.evaluate(() => window.hypersync.sync.status().summary);
}

async function sameState(page: Page, r: RelayHandle, what: string): Promise<void> {
  await until(async () => {
    const mine = await summary(page);
    const theirs = r.sync.summary();
    return mine.n === theirs.n && mine.h === theirs.h ? true : undefined;
  }, 45_000, what);
}

async function openTab(): Promise<Page> {
  return openJoinedPage(await browser.newContext(), pageUrl);
}

before(
  async () => {
    process.env['HYPERSYNC_LOG'] ??= 'warn';
    port = await freePort();
    const r = await startTheRelay();
    web = await startWeb();
    pageUrl = joinUrl(web.base, { relays: [r.multiaddrs[0]!], clusterSigner });
    browser = await launchChromium();
    tab = await openTab();
    tabId = await tab.evaluate(() => window.hypersync.peerId);
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

test('a tab (IndexedDB) and the relay (LevelDB) sync both ways', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = relay!;
  await r.sync.docs.put('node/1', { from: 'relay' });
  await tab.evaluate(() => window.hypersync.docs.put('tab/1', { from: 'tab' }));
  await until(async () => ((await tab.evaluate(() => window.hypersync.docs.get('node/1')))?.value !== undefined ? true : undefined), 30_000, 'relay doc in the tab');
  await until(async () => ((await r.sync.docs.get('tab/1')) !== undefined ? true : undefined), 30_000, 'tab doc on the relay');
  assert.deepEqual((await r.sync.docs.get('tab/1'))?.versions[0]?.origin, tabId);
  await sameState(tab, r, 'tab and relay converge');
  assert.match(await tab.locator('#docs-count').textContent() ?? '', /\(2 versions\)/);
});

test('a tab edits offline, reloads, reconnects and converges; a manual conflict is resolved from the tab', { timeout: 3 * TEST_TIMEOUT_MS }, async () => {
  await relay!.stop();
  relay = undefined;
  await until(async () => ((await tab.evaluate(() => window.hypersync.peers().filter((p) => p.state === 'established').length)) === 0 ? true : undefined), 20_000, 'the tab is offline');
  await tab.evaluate(async () => {
    await window.hypersync.docs.put('offline/1', 'written offline');
    await window.hypersync.docs.put('manual/x', 'tab version');
    await window.hypersync.docs.delete('tab/1');
  });
  await tab.reload();
  await tab.evaluate(() => window.hypersync.ready);
  assert.equal(await tab.evaluate(() => window.hypersync.peerId), tabId, 'a reloaded tab keeps its identity');
  assert.equal((await tab.evaluate(() => window.hypersync.docs.get('offline/1')))?.value, 'written offline', 'offline edits survived the reload');
  await tab.evaluate(() => {
    const w = window as unknown as { phases: string[] };
    w.phases = [];
    window.hypersync.sync.on('progress', (e) => {
      if (e.type === 'progress') w.phases.push(e.progress.phase);
    });
  });
  // Meanwhile the relay (down) gets writes of its own: one to the same manual/ key.
  const key = await loadOrCreateKey(dataDir);
  const store = await LevelStore.open(join(dataDir, 'sync'));
  const relayDocs = await DocStore.open({ store, self: (await import('@libp2p/peer-id')).peerIdFromPrivateKey(key).toString(), signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), policies: policiesWith() });
  await relayDocs.put('manual/x', 'relay version');
  await relayDocs.put('while-offline/1', 'relay wrote this meanwhile');
  await store.close();
  const r = await startTheRelay();
  await sameState(tab, r, 'tab and restarted relay converge');
  assert.equal((await r.sync.docs.get('offline/1'))?.value, 'written offline');
  assert.equal((await r.sync.docs.get('tab/1'))?.deleted, true);
  assert.equal((await tab.evaluate(() => window.hypersync.docs.get('while-offline/1')))?.value, 'relay wrote this meanwhile');
  // The state can be equal a moment before the session that carried it ends (its verify phase): wait for it.
  await until(async () => ((await tab.evaluate(() => (window as unknown as { phases: string[] }).phases)).includes('done') ? true : undefined), 10_000, 'the tab saw progress events up to done');
  const conflicts = await tab.evaluate(() => window.hypersync.conflicts.list());
  assert.deepEqual(conflicts.map((c) => c.key), ['manual/x']);
  assert.deepEqual(conflicts[0]!.versions.map((v) => v.value).sort(), ['relay version', 'tab version']);
  assert.deepEqual(r.sync.docs.conflictKeys(), ['manual/x']);
  await until(async () => ((await tab.locator('#docs-conflicts').textContent())?.includes('manual/x') === true ? true : undefined), 10_000, 'the page shows the conflict');
  await tab.evaluate(() => window.hypersync.conflicts.resolve('manual/x', { value: 'merged' }));
  await until(async () => (r.sync.docs.conflictKeys().length === 0 ? true : undefined), 30_000, 'resolution reached the relay');
  assert.equal((await r.sync.docs.get('manual/x'))?.value, 'merged');
  await sameState(tab, r, 'converged after the resolution');
});

test('two tabs sync over their direct WebRTC connection after the relay is gone', { timeout: 3 * TEST_TIMEOUT_MS }, async () => {
  const other = await openTab();
  const otherId = await other.evaluate(() => window.hypersync.peerId);
  const view = (p: Page): Promise<PageView> => p.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
  await until(async () => (directWebrtcTo(await view(tab), otherId) && directWebrtcTo(await view(other), tabId) ? true : undefined), 60_000, 'direct WebRTC between the tabs');
  await sameState(other, relay!, 'the new tab caught up');
  await relay!.stop();
  relay = undefined;
  await tab.evaluate(() => window.hypersync.docs.put('p2p/1', 'tab to tab'));
  await until(async () => ((await other.evaluate(() => window.hypersync.docs.get('p2p/1')))?.value === 'tab to tab' ? true : undefined), 30_000, 'live write over WebRTC');
  const reports = await other.evaluate((id) => window.hypersync.sync.run(id), tabId);
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.equal, true);
  assert.deepEqual(await summary(other), await summary(tab));
});
