// A Firefox tab (Debian's firefox-esr, driven by puppeteer-core) joins the cluster and talks
// to a Chromium tab over a direct WebRTC connection, both ways.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser as PwBrowser, Page as PwPage } from 'playwright-core';
import type { Page as PpPage } from 'puppeteer-core';
import { launchChromium, launchFirefox, type FirefoxHandle } from './browsers.ts';
import { decodeEnvelope } from '../src/ico/envelope.ts';
import { directWebrtcTo, HOOK_TIMEOUT_MS, startStack, TEST_TIMEOUT_MS, until, type PageView, type Stack } from './harness.ts';

let stack: Stack;
let chromium: PwBrowser;
let firefox: FirefoxHandle;
let cPage: PwPage;
let fPage: PpPage;
let cId: string;
let fId: string;

before(
  async () => {
    stack = await startStack();
    chromium = await launchChromium();
    firefox = await launchFirefox();
    cPage = await chromium.newPage();
    await cPage.goto(stack.pageUrl);
    await cPage.evaluate(() => window.hypersync.ready);
    cId = await cPage.evaluate(() => window.hypersync.peerId);
    fPage = await firefox.browser.newPage();
    fPage.on('pageerror', (e) => process.stderr.write(`firefox page error: ${String(e)}\n`));
    await fPage.goto(stack.pageUrl);
    await fPage.evaluate(() => window.hypersync.ready);
    fId = await fPage.evaluate(() => window.hypersync.peerId);
  },
  { timeout: HOOK_TIMEOUT_MS },
);

after(
  async () => {
    await firefox?.close();
    await chromium?.close();
    await stack?.stop();
  },
  { timeout: HOOK_TIMEOUT_MS },
);

function fView(): Promise<PageView> {
  return fPage.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}
function cView(): Promise<PageView> {
  return cPage.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}

test('the Firefox tab is a peer: it reaches the relay and gets a PeerId', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.match(fId, /^12D3KooW/);
  assert.notEqual(fId, cId);
  assert.match(await fPage.evaluate(() => navigator.userAgent), /Firefox/);
  await until(async () => ((await fView()).peers.some((p) => p.peerId === stack.relay.peerId && p.state === 'established') ? true : undefined), 30_000, 'relay session in Firefox');
});

test('Firefox and Chromium connect over direct WebRTC', { timeout: TEST_TIMEOUT_MS }, async () => {
  await until(async () => (directWebrtcTo(await fView(), cId) ? true : undefined), 40_000, 'Firefox → Chromium WebRTC');
  await until(async () => (directWebrtcTo(await cView(), fId) ? true : undefined), 25_000, 'Chromium → Firefox WebRTC');
  // The Firefox page renders it.
  await until(async () => ((await fPage.$eval(`#peers-body tr[data-peer-id="${cId}"]`, (row) => row.getAttribute('data-transport'))) === 'webrtc' ? true : undefined), 5_000, 'the Firefox page to show WebRTC');
});

test('signed ICO messages flow both ways between Firefox and Chromium', { timeout: TEST_TIMEOUT_MS }, async () => {
  await fPage.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { hello: 'from firefox' }), cId);
  const atChromium = await until(
    async () => (await cPage.evaluate(() => window.hypersync.received())).find((e) => e.payload['hello'] === 'from firefox'),
    20_000,
    'message at Chromium',
  );
  assert.equal(atChromium.sender, fId);
  assert.ok(decodeEnvelope(new TextEncoder().encode(JSON.stringify(atChromium)), { now: Date.now(), expectedSender: fId }).ok, 'signed by the Firefox tab (noble ed25519), verified by node:crypto');
  await cPage.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { hello: 'from chromium' }), fId);
  const atFirefox = await until(
    async () => (await fPage.evaluate(() => window.hypersync.received())).find((e) => e.payload['hello'] === 'from chromium'),
    20_000,
    'message at Firefox',
  );
  assert.equal(atFirefox.sender, cId);
  assert.ok(decodeEnvelope(new TextEncoder().encode(JSON.stringify(atFirefox)), { now: Date.now(), expectedSender: cId }).ok);
});
