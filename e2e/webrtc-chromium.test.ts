// Three Chromium tabs (separate browser contexts, so three identities) join through the
// relay, upgrade to direct WebRTC with each other, and exchange signed ICO messages that
// Node then re-verifies with the same codec.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browsers.ts';
import { directWebrtcTo, startStack, until, type Envelope, type PageView, type Stack } from './harness.ts';
import { decodeEnvelope } from '../src/ico/envelope.ts';

let stack: Stack;
let browser: Browser;
const pages: Page[] = [];
const ids: string[] = [];

async function view(page: Page): Promise<PageView> {
  return page.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}

before(async () => {
  stack = await startStack();
  browser = await launchChromium();
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('pageerror', (e) => process.stderr.write(`page ${i} error: ${e.message}\n`));
    await page.goto(stack.pageUrl);
    await page.evaluate(() => window.hypersync.ready);
    pages.push(page);
    ids.push(await page.evaluate(() => window.hypersync.peerId));
  }
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('three tabs have three distinct PeerIds and an established session with the relay', async () => {
  assert.equal(new Set(ids).size, 3);
  for (const page of pages) {
    await until(async () => ((await view(page)).peers.some((p) => p.peerId === stack.relay.peerId && p.state === 'established') ? true : undefined), 30_000, 'relay session');
  }
});

test('every pair of tabs upgrades from relayed to direct WebRTC', async () => {
  for (const [i, page] of pages.entries()) {
    for (const other of ids.filter((_, j) => j !== i)) {
      await until(async () => (directWebrtcTo(await view(page), other) ? true : undefined), 90_000, `tab ${i} → ${other.slice(-6)} over WebRTC`);
    }
  }
  // The page shows it too.
  const text = await pages[0]!.locator('#peers tbody').innerText();
  assert.match(text, /webrtc/);
});

test('tabs exchange signed ICO messages; Node re-verifies the envelope', async () => {
  const [a, b] = pages as [Page, Page];
  const nonce = `n-${Date.now()}`;
  await a.evaluate(([to, n]) => window.hypersync.send(to!, 'STATE_SYNC', { nonce: n!, from: 'tab A' }), [ids[1], nonce]);
  const got = await until(
    async () => (await b.evaluate(() => window.hypersync.received())).find((e) => e.type === 'STATE_SYNC' && (e.payload as { nonce?: string }).nonce === nonce) as Envelope | undefined,
    20_000,
    'STATE_SYNC at tab B',
  );
  assert.equal(got.sender, ids[0]);
  const reverified = decodeEnvelope(new TextEncoder().encode(JSON.stringify(got)), { now: Date.now(), expectedSender: ids[0]! });
  assert.ok(reverified.ok, 'the envelope verifies in Node with the same codec');
  const forged = decodeEnvelope(new TextEncoder().encode(JSON.stringify({ ...got, payload: { nonce: 'forged' } })), { now: Date.now() });
  assert.equal(forged.ok, false);
  // And the other direction, C → A.
  await pages[2]!.evaluate(([to, n]) => window.hypersync.send(to!, 'CONSENSUS', { nonce: n! }), [ids[0], nonce]);
  await until(async () => ((await a.evaluate(() => window.hypersync.received())).some((e) => e.type === 'CONSENSUS' && e.sender !== '') ? true : undefined), 20_000, 'CONSENSUS at tab A');
});

test('a reloaded tab keeps its PeerId (IndexedDB identity) and reconnects', async () => {
  const page = pages[1]!;
  await page.reload();
  await page.evaluate(() => window.hypersync.ready);
  assert.equal(await page.evaluate(() => window.hypersync.peerId), ids[1]);
  await until(async () => (directWebrtcTo(await view(page), ids[0]!) ? true : undefined), 60_000, 'reconnect over WebRTC');
});
