// A Firefox tab (Debian's firefox-esr, driven by puppeteer-core) joins the cluster and talks
// to a Chromium tab over a direct WebRTC connection, both ways.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser as PwBrowser, Page as PwPage } from 'playwright-core';
import type { Page as PpPage } from 'puppeteer-core';
import { launchChromium, launchFirefox, type FirefoxHandle } from './browsers.ts';
import { directWebrtcTo, startStack, until, type Envelope, type PageView, type Stack } from './harness.ts';

let stack: Stack;
let chromium: PwBrowser;
let firefox: FirefoxHandle;
let cPage: PwPage;
let fPage: PpPage;
let cId: string;
let fId: string;

before(async () => {
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
});

after(async () => {
  await firefox?.close();
  await chromium?.close();
  await stack?.stop();
});

function fView(): Promise<PageView> {
  return fPage.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}
function cView(): Promise<PageView> {
  return cPage.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}

test('the Firefox tab is a peer: it reaches the relay and gets a PeerId', async () => {
  assert.match(fId, /^12D3KooW/);
  assert.notEqual(fId, cId);
  assert.match(await fPage.evaluate(() => navigator.userAgent), /Firefox/);
  await until(async () => ((await fView()).peers.some((p) => p.peerId === stack.relay.peerId && p.state === 'established') ? true : undefined), 30_000, 'relay session in Firefox');
});

test('Firefox and Chromium connect over direct WebRTC', async () => {
  await until(async () => (directWebrtcTo(await fView(), cId) ? true : undefined), 60_000, 'Firefox → Chromium WebRTC');
  await until(async () => (directWebrtcTo(await cView(), fId) ? true : undefined), 60_000, 'Chromium → Firefox WebRTC');
});

test('signed ICO messages flow both ways between Firefox and Chromium', async () => {
  await fPage.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { hello: 'from firefox' }), cId);
  const atChromium = await until(
    async () => (await cPage.evaluate(() => window.hypersync.received())).find((e) => (e.payload as { hello?: string }).hello === 'from firefox') as Envelope | undefined,
    20_000,
    'message at Chromium',
  );
  assert.equal(atChromium.sender, fId);
  await cPage.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { hello: 'from chromium' }), fId);
  const atFirefox = await until(
    async () => (await fPage.evaluate(() => window.hypersync.received())).find((e) => (e.payload as { hello?: string }).hello === 'from chromium') as Envelope | undefined,
    20_000,
    'message at Firefox',
  );
  assert.equal(atFirefox.sender, cId);
});
