// What a person sees on the web app in Chromium: instructions when the URL lacks join
// parameters, a warning when the relay cannot be reached, a refusal when the relay does not
// admit the token, and, when joined, the relay and peers with a log fed by the send form; a
// joined tab verifies with WebCrypto and exposes its receipt verifier.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browsers.ts';
import { deadRelayAddr, HOOK_TIMEOUT_MS, joinUrl, startStack, TEST_TIMEOUT_MS, until, type Stack } from './harness.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../src/crypto/index.ts';
import { ReceiptLog } from '../src/receipts/log.ts';
import { MemoryStore } from '../src/store/memory.ts';

let stack: Stack;
let browser: Browser;

before(
  async () => {
    stack = await startStack();
    browser = await launchChromium();
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

/** A fresh tab with its own identity store; closed by the caller. */
async function open(url: string): Promise<Page> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  await page.goto(url);
  return page;
}

async function status(page: Page): Promise<string | null> {
  return page.locator('#status').getAttribute('data-status');
}

test('without join parameters the page says what is missing and to run npm start', { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await open(stack.base);
  try {
    const failure = await page.evaluate(() => window.hypersync.ready.then(() => null, (e: unknown) => (e instanceof Error ? e.name : String(e))));
    assert.equal(failure, 'JoinParamsError');
    const banner = page.locator('#banner');
    assert.equal(await banner.isVisible(), true);
    const text = await banner.innerText();
    assert.match(text, /lacks: relay, cluster, key, #token/);
    assert.match(text, /npm start/);
    assert.equal(await status(page), 'error');
  } finally {
    await page.context().close();
  }
});

test('an unreachable relay is reported on the page while the tab keeps retrying', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dead = await deadRelayAddr();
  const page = await open(joinUrl(stack.base, { relays: [dead], clusterSigner: stack.clusterSigner }));
  try {
    await page.evaluate(() => window.hypersync.ready);
    assert.equal(await status(page), 'connecting', 'not declared unreachable before the grace period');
    await until(async () => ((await status(page)) === 'error' ? true : undefined), 20_000, 'the unreachable-relay status');
    const text = await page.locator('#banner').innerText();
    assert.match(text, /Cannot reach the relay/);
    assert.ok(text.includes(dead), 'the banner names the address it tried');
    assert.match(text, /npm start/);
    assert.equal(await page.locator('#relays [data-state="unreachable"]').count(), 1);
  } finally {
    await page.context().close();
  }
});

test('a token issued to another peer is refused by the relay, and the page says why', { timeout: TEST_TIMEOUT_MS }, async () => {
  const someoneElse = peerIdFromPublicKeyBytes(crypto.createSigner(crypto.randomBytes(32)).publicKey);
  const page = await open(joinUrl(stack.base, { relays: stack.relay.multiaddrs.slice(0, 1), clusterSigner: stack.clusterSigner, tokenPeer: someoneElse }));
  try {
    await page.evaluate(() => window.hypersync.ready);
    await until(async () => ((await status(page)) === 'error' ? true : undefined), 20_000, 'the refusal');
    const text = await page.locator('#banner').innerText();
    assert.match(text, /The relay refused this tab/);
    assert.match(text, /another peer/);
  } finally {
    await page.context().close();
  }
});

test('a joined tab shows the relay and a second tab, and the send form puts a signed message in both logs', { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = await open(stack.pageUrl);
  const b = await open(stack.pageUrl);
  try {
    await a.evaluate(() => window.hypersync.ready);
    await b.evaluate(() => window.hypersync.ready);
    const bId = await b.evaluate(() => window.hypersync.peerId);
    assert.match(await a.locator('#peer-id').innerText(), /^12D3KooW/);
    await until(async () => ((await status(a)) === 'online' ? true : undefined), 20_000, 'online');
    assert.equal(await a.locator('#relays [data-state="connected"]').count(), 1);
    assert.equal(await a.locator('#banner').isVisible(), false);
    const relayRow = a.locator(`#peers-body tr[data-peer-id="${stack.relay.peerId}"]`);
    assert.match(await relayRow.innerText(), /relay[\s\S]*WebSocket[\s\S]*established[\s\S]*up/);
    // The HELLO exchange with the relay is in the log (rendered at most every 250 ms: 'online' can come first).
    await until(async () => ((await a.locator('#log-body tr[data-type="HELLO"]').count()) >= 2 ? true : undefined), 10_000, 'the HELLO rows');

    await until(async () => ((await a.locator(`#send-to option[value="${bId}"]`).count()) === 1 ? true : undefined), 30_000, 'tab B to be a recipient');
    await a.locator('#send-to').selectOption(bId);
    await a.locator('#send-type').selectOption('CONSENSUS');
    await a.locator('#send-payload').fill('{"via":"the form"}');
    await a.locator('#send-button').click();
    await until(async () => ((await a.locator('#send-result').innerText()).startsWith('sent CONSENSUS') ? true : undefined), 10_000, 'the form to confirm');
    await until(async () => ((await b.locator('#log-body tr[data-type="CONSENSUS"]').count()) === 1 ? true : undefined), 10_000, 'the row at tab B');
    const atB = (await b.evaluate(() => window.hypersync.received())).find((e) => e.type === 'CONSENSUS');
    assert.deepEqual(atB?.payload, { via: 'the form' });

    // A payload that is not a JSON object is refused on the page, nothing is sent.
    await a.locator('#send-payload').fill('[1,2]');
    await a.locator('#send-button').click();
    assert.match(await a.locator('#send-result').innerText(), /JSON object/);

    // HEARTBEAT rows are hidden until asked for.
    assert.equal(await a.locator('#log-body tr[data-type="HEARTBEAT"]').count(), 0);
    await a.locator('#show-heartbeats').check();
    await until(async () => ((await a.locator('#log-body tr[data-type="HEARTBEAT"]').count()) > 0 ? true : undefined), 5_000, 'heartbeat rows');
  } finally {
    await a.context().close();
    await b.context().close();
  }
});

/** What at 390 px sticks out of the viewport or out of its card (empty when the layout fits). */
function overflowAt390(): string[] {
  const vw = document.documentElement.clientWidth;
  const name = (el: Element): string => `${el.tagName.toLowerCase()}${el.id !== '' ? `#${el.id}` : ''}${el.className !== '' ? `.${String(el.className).split(' ').join('.')}` : ''} "${(el.textContent ?? '').trim().slice(0, 30)}"`;
  const problems: string[] = [];
  if (document.documentElement.scrollWidth > vw) problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide in a ${vw} px viewport`);
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) problems.push(`${name(el)} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
    const card = el.closest('.card');
    if (card !== null && card !== el) {
      const c = card.getBoundingClientRect();
      if (r.right > c.right + 0.5 || r.left < c.left - 0.5) problems.push(`${name(el)} sticks out of its card (${Math.round(r.right)} > ${Math.round(c.right)})`);
    }
  }
  for (const card of document.querySelectorAll('.card')) {
    if (card.scrollWidth > card.clientWidth) problems.push(`${name(card)} is ${card.scrollWidth} px wide inside ${card.clientWidth} px`);
  }
  return problems;
}

/** Peer cells of the given columns that are missing, off screen, or not named (the column name is the cell's ::before). */
function unreadablePeerColumns(labels: string[]): string[] {
  const vw = document.documentElement.clientWidth;
  const rows = document.querySelectorAll('#peers-body tr');
  const problems: string[] = [];
  for (const label of labels) {
    const cells = document.querySelectorAll(`#peers-body td[data-label="${label}"]`);
    if (cells.length !== rows.length) problems.push(`${label}: ${cells.length} cells for ${rows.length} rows`);
    for (const cell of cells) {
      const r = cell.getBoundingClientRect();
      if (!(r.width > 0 && r.left >= 0 && r.right <= vw)) problems.push(`${label} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
      if (getComputedStyle(cell, '::before').content !== JSON.stringify(label)) problems.push(`${label} is not named where rows stack`);
    }
  }
  return problems;
}

test('at phone width (390 px) nothing overflows the viewport or its card, and every peer column is readable', { timeout: TEST_TIMEOUT_MS }, async () => {
  const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };
  const aCtx = await browser.newContext(phone);
  const bCtx = await browser.newContext();
  const a = await aCtx.newPage();
  const b = await bCtx.newPage();
  try {
    a.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    await a.goto(stack.pageUrl);
    await b.goto(stack.pageUrl);
    await a.evaluate(() => window.hypersync.ready);
    const bId = await b.evaluate(() => window.hypersync.ready.then(() => window.hypersync.peerId));
    // Rows to lay out: the relay and tab B in the peers table, HELLOs and a message in the log.
    await until(async () => ((await a.locator(`#peers-body tr[data-peer-id="${bId}"][data-state="established"]`).count()) === 1 ? true : undefined), 30_000, 'tab B established in tab A');
    await b.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { a: 'message with a long payload that does not matter to the layout' }), await a.evaluate(() => window.hypersync.peerId));
    // The row from tab B (the sender cell's title is its PeerId): the relay's anti-entropy
    // session with tab A also logs STATE_SYNC rows, at a moment of its choosing.
    await until(async () => ((await a.locator(`#log-body tr[data-type="STATE_SYNC"] td[title="${bId}"]`).count()) >= 1 ? true : undefined), 10_000, 'the message row from tab B');
    assert.ok((await a.locator('#peers-body tr').count()) >= 2);

    assert.deepEqual(await a.evaluate(overflowAt390), []);
    // Transport, session, heartbeat and last seen of every peer are on screen, with their names
    // (checked in one snapshot: the table is re-rendered as events arrive).
    assert.deepEqual(await a.evaluate(unreadablePeerColumns, ['Transport', 'ICO session', 'Heartbeat', 'Last seen']), []);
    // The tab says what it is: a browser peer, not a Raft learner; other tabs see its role.
    assert.match(await a.locator('#roles').innerText(), /^browser: .*not a Raft member/);
    assert.match(await a.locator(`#peers-body tr[data-peer-id="${bId}"] td[data-label="Roles"]`).innerText(), /browser$/);
    assert.doesNotMatch(await a.locator(`#peers-body tr[data-peer-id="${bId}"]`).innerText(), /learner/);
    assert.equal(await a.locator('#webrtc').getAttribute('data-available'), 'true');
  } finally {
    await aCtx.close();
    await bCtx.close();
  }
});

test('a joined tab signs and verifies with WebCrypto Ed25519, and checks receipts and proofs with its verifier', { timeout: TEST_TIMEOUT_MS }, async () => {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const log = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const receipts = await Promise.all(Array.from({ length: 12 }, (_, i) => log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: true } })));
  const bundle = { receipt: receipts[7]!, proof: await log.inclusionProof(receipts[7]!.receipt_id), tree_head: log.signedTreeHead() };
  const forged = { ...bundle, receipt: { ...bundle.receipt, operation: { ...bundle.receipt.operation, inputs_hash: receipts[6]!.operation.inputs_hash } } };
  const page = await open(stack.pageUrl);
  try {
    await page.evaluate(() => window.hypersync.ready);
    assert.equal(await page.evaluate(() => window.hypersync.crypto), 'webcrypto');
    // The relay's HELLO reached the log: the tab opened (verified) it with WebCrypto.
    await until(async () => ((await page.evaluate(() => window.hypersync.received().some((e) => e.type === 'HELLO'))) ? true : undefined), 20_000, 'the relay HELLO');
    const verdicts = await page.evaluate(async ([b, f, chain, signerId]) => {
      const v = window.hypersync.verify;
      return [await v.verifyProofBundle(b, { signer: signerId }), await v.verifyProofBundle(f), await v.verifyChain(chain, { signer: signerId })];
    }, [bundle, forged, receipts, peerId] as const);
    assert.deepEqual(verdicts[0], { ok: true });
    assert.equal((verdicts[1] as { code?: string }).code, 'RECEIPT_SIGNATURE_INVALID', JSON.stringify(verdicts[1]));
    assert.deepEqual(verdicts[2], { ok: true, count: 12 });
  } finally {
    await page.context().close();
  }
});
