// Three Chromium tabs (separate browser contexts, so three identities) join through the
// relay, upgrade to direct WebRTC with each other, and exchange signed ICO messages that
// Node then re-verifies with the same codec.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browsers.ts';
import { directWebrtcTo, HOOK_TIMEOUT_MS, startStack, TEST_TIMEOUT_MS, until, type Envelope, type PageView, type Stack } from './harness.ts';
import { decodeEnvelope } from '../src/ico/envelope.ts';

let stack: Stack;
let browser: Browser;
const pages: Page[] = [];
const ids: string[] = [];

/** Where a page's `on('ico:in')` test handler keeps what it saw. */
type Stash = { seen?: Envelope[] };

async function view(page: Page): Promise<PageView> {
  return page.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
}

before(
  async () => {
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
  },
  { timeout: HOOK_TIMEOUT_MS },
);

after(
  async () => {
    await browser?.close();
    await stack?.stop();
  },
  { timeout: HOOK_TIMEOUT_MS },
);

test('three tabs have three distinct PeerIds and an established session with the relay', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.equal(new Set(ids).size, 3);
  for (const id of ids) assert.match(id, /^12D3KooW/);
  for (const page of pages) {
    await until(async () => ((await view(page)).peers.some((p) => p.peerId === stack.relay.peerId && p.state === 'established') ? true : undefined), 30_000, 'relay session');
  }
});

test('every pair of tabs upgrades from relayed to direct WebRTC', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
  for (const [i, page] of pages.entries()) {
    for (const other of ids.filter((_, j) => j !== i)) {
      await until(async () => (directWebrtcTo(await view(page), other) ? true : undefined), 45_000, `tab ${i} → ${other.slice(-6)} over WebRTC`);
    }
  }
  // A person sees it too: each other tab's row says WebRTC direct and up.
  for (const other of ids.slice(1)) {
    const row = pages[0]!.locator(`#peers-body tr[data-peer-id="${other}"]`);
    await until(async () => ((await row.getAttribute('data-transport')) === 'webrtc' ? true : undefined), 5_000, 'the row to show WebRTC');
    assert.match(await row.innerText(), /WebRTC direct[\s\S]*established[\s\S]*up/);
  }
});

test("tab A's STATE_SYNC reaches tab B's on('ico:in') signed by A; Node re-verifies it", { timeout: TEST_TIMEOUT_MS }, async () => {
  const [a, b] = pages as [Page, Page];
  const nonce = `n-${Date.now()}`;
  await b.evaluate(() => {
    const stash = globalThis as unknown as Stash;
    stash.seen = [];
    window.hypersync.on('ico:in', (event) => {
      if (event.type === 'ico:in' && event.envelope.type !== 'HEARTBEAT') stash.seen?.push(event.envelope);
    });
  });
  await a.evaluate(([to, n]) => window.hypersync.send(to!, 'STATE_SYNC', { nonce: n!, from: 'tab A' }), [ids[1], nonce]);
  const got = await until(
    async () => (await b.evaluate(() => (globalThis as unknown as Stash).seen ?? [])).find((e) => e.type === 'STATE_SYNC' && e.payload['nonce'] === nonce),
    20_000,
    "STATE_SYNC at tab B's handler",
  );
  assert.equal(got.sender, ids[0]);
  const bytes = new TextEncoder().encode(JSON.stringify(got));
  const reverified = decodeEnvelope(bytes, { now: Date.now(), expectedSender: ids[0]! });
  assert.ok(reverified.ok, 'the envelope verifies in Node with the same codec');
  const forged = decodeEnvelope(new TextEncoder().encode(JSON.stringify({ ...got, payload: { nonce: 'forged' } })), { now: Date.now() });
  assert.equal(forged.ok, false, 'a changed payload no longer verifies');
  const impostor = decodeEnvelope(bytes, { now: Date.now(), expectedSender: ids[2]! });
  assert.equal(impostor.ok, false, 'the envelope is not accepted as coming from tab C');
  // Tab B's log shows the row.
  await until(async () => ((await b.locator('#log-body tr[data-type="STATE_SYNC"]').count()) > 0 ? true : undefined), 5_000, 'STATE_SYNC row in the log');
});

test('tab C sends CONSENSUS to tab A, the other direction of a pair', { timeout: TEST_TIMEOUT_MS }, async () => {
  const nonce = `c-${Date.now()}`;
  await pages[2]!.evaluate(([to, n]) => window.hypersync.send(to!, 'CONSENSUS', { nonce: n! }), [ids[0], nonce]);
  const got = await until(
    async () => (await pages[0]!.evaluate(() => window.hypersync.received())).find((e) => e.type === 'CONSENSUS' && e.payload['nonce'] === nonce),
    20_000,
    'CONSENSUS at tab A',
  );
  assert.equal(got.sender, ids[2]);
  assert.ok(decodeEnvelope(new TextEncoder().encode(JSON.stringify(got)), { now: Date.now(), expectedSender: ids[2]! }).ok);
});

test('a reloaded tab keeps its PeerId (IndexedDB identity) and reconnects', { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = pages[1]!;
  await page.reload();
  await page.evaluate(() => window.hypersync.ready);
  assert.equal(await page.evaluate(() => window.hypersync.peerId), ids[1]);
  await until(async () => (directWebrtcTo(await view(page), ids[0]!) ? true : undefined), 45_000, 'reconnect over WebRTC');
});
