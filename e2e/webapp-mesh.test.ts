// Six real browser tabs in one mesh: five Chromium contexts (each its own identity and
// IndexedDB) and a Firefox page, joined through one relay. The Chromium tabs upgrade to
// direct WebRTC with each other (the graph panel draws those links as direct), gossip from
// every tab reaches every other tab; a tab that works offline edits, comes back and every tab
// converges; a conflict escalated on a manual/ key is resolved from one tab's UI and clears
// everywhere; the relay restarts, every tab re-establishes its session and gossip resumes.
// Any page error or console error in any tab fails the suite.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser as PwBrowser, Page as PwPage } from 'playwright-core';
import type { Page as PpPage } from 'puppeteer-core';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import { launchChromium, launchFirefox, type FirefoxHandle } from './browsers.ts';
import { screenshotPanels, watch } from './app-page.ts';
import { CLUSTER, directWebrtcTo, freePort, HOOK_TIMEOUT_MS, joinUrl, startWeb, TEST_TIMEOUT_MS, until, type PageView, type Web } from './harness.ts';

/** Chromium contexts in the mesh (the issue asks for at least five), plus one Firefox page. */
const CHROMIUM_TABS = 5;
/** Six pages load the app from the Vite dev server on a shared 2-core machine: loads can be slow. */
const NAVIGATION_TIMEOUT_MS = 120_000;

const dataDir = mkdtempSync(join(tmpdir(), 'hypersync-e2e-mesh-'));
const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
const config = { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] as string[] };
let port = 0;
let relay: RelayHandle | undefined;
let web: Web;
let chromium: PwBrowser;
let firefox: FirefoxHandle;

/** One tab, whichever browser drives it. */
interface Tab {
  name: string;
  id: string;
  /** Runs `fn(arg)` in the page. */
  run<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  problems: string[];
  chromium?: PwPage;
}
const tabs: Tab[] = [];

async function startTheRelay(): Promise<RelayHandle> {
  relay = await startRelay({ config, dataDir, port, httpPort: 0, heartbeatMs: 500 });
  return relay;
}

function view(tab: Tab): Promise<PageView> {
  return tab.run(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }), null);
}

function chromiumTab(page: PwPage, name: string): Tab {
  const w = watch(page, name);
  const run = <R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> => (page.evaluate as (f: unknown, a: unknown) => Promise<R>).call(page, fn, arg);
  return { name, id: '', problems: w.problems, chromium: page, run };
}

function firefoxTab(page: PpPage, name: string): Tab {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`${name} page error: ${String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name} console error: ${m.text()}`);
  });
  const run = <R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> => (page.evaluate as (f: unknown, a: unknown) => Promise<R>).call(page, fn, arg);
  return { name, id: '', problems, run };
}

function allProblems(): string[] {
  return tabs.flatMap((t) => t.problems);
}

async function relaySessions(r: RelayHandle): Promise<boolean> {
  const up = new Set(r.peer.peers().filter((p) => p.state === 'established').map((p) => p.peerId));
  return tabs.every((t) => up.has(t.id));
}

/** Publishes per tab and round before giving up (gossipsub is best effort while its mesh forms). */
const MAX_GOSSIP_ATTEMPTS = 20;

/**
 * Every tab publishes a gossip message tagged `round` until every other tab holds one from it:
 * gossipsub delivers best effort (a message published while the mesh re-forms after a relay
 * restart may reach only part of it), so a tab whose message is missing somewhere publishes a
 * fresh one, every 2 s, at most MAX_GOSSIP_ATTEMPTS times. Returns the publishes it took.
 */
async function gossipRound(round: string): Promise<number> {
  let publishes = 0;
  let gaps: string[] = [];
  const heardFrom = async (t: Tab): Promise<string[]> => t.run((r) => window.hypersync.received().filter((e) => e.payload['gossip'] === r).map((e) => e.sender), round);
  for (let attempt = 0; attempt < MAX_GOSSIP_ATTEMPTS; attempt++) {
    const heard = await Promise.all(tabs.map(heardFrom));
    gaps = [];
    const pending = tabs.filter((o) => tabs.some((t, i) => t !== o && !heard[i]!.includes(o.id)));
    tabs.forEach((t, i) => {
      const missing = tabs.filter((o) => o !== t && !heard[i]!.includes(o.id)).map((o) => o.name);
      if (missing.length > 0) gaps.push(`${t.name} lacks ${missing.join(', ')}`);
    });
    if (pending.length === 0) return publishes;
    for (const t of pending) {
      const sent = await t.run(([r, n]: [string, number]) => window.hypersync.broadcast('STATE_SYNC', { gossip: r, attempt: n }).then(() => true, (e: unknown) => {
        // No subscriber known yet: gossipsub is still exchanging subscriptions; try again.
        if ((e as { code?: string }).code === 'NET_NO_SUBSCRIBERS') return false;
        throw e;
      }), [round, attempt]);
      if (sent) publishes++;
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(`gossip round ${round} incomplete after ${MAX_GOSSIP_ATTEMPTS} attempts: ${gaps.join('; ')}`);
}

/**
 * Each tab's document root (count and fingerprint). Only the root: the relay's summary also
 * offers binary session messages (`bin`), which tabs do not speak, so whole summaries differ.
 */
async function summaries(): Promise<string[]> {
  return Promise.all(tabs.map((t) => t.run(() => {
    const s = window.hypersync.sync.status().summary;
    return JSON.stringify([s.n, s.h]);
  }, null)));
}

async function converged(what: string): Promise<void> {
  await until(async () => {
    const all = await summaries();
    const root = relay!.sync.summary();
    const mine = JSON.stringify([root.n, root.h]);
    return all.every((s) => s === mine) ? true : undefined;
  }, 90_000, what);
}

before(
  async () => {
    process.env['HYPERSYNC_LOG'] ??= 'warn';
    port = await freePort();
    const r = await startTheRelay();
    web = await startWeb();
    const url = joinUrl(web.base, { relays: [r.multiaddrs[0]!], clusterSigner });
    chromium = await launchChromium();
    firefox = await launchFirefox();
    for (let i = 0; i < CHROMIUM_TABS; i++) {
      const page = await (await chromium.newContext()).newPage();
      page.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
      const tab = chromiumTab(page, `chromium ${i + 1}`);
      await page.goto(url);
      tabs.push(tab);
    }
    const fPage = await firefox.browser.newPage();
    fPage.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    const ff = firefoxTab(fPage, 'firefox');
    await fPage.goto(url);
    tabs.push(ff);
    for (const t of tabs) t.id = await t.run(() => window.hypersync.ready.then(() => window.hypersync.peerId), null);
  },
  { timeout: 3 * HOOK_TIMEOUT_MS },
);

after(
  async () => {
    await firefox?.close();
    await chromium?.close();
    await web?.vite.close();
    await relay?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  },
  { timeout: HOOK_TIMEOUT_MS },
);

test('six tabs (five Chromium, one Firefox) join; the Chromium tabs go direct over WebRTC and the graph says so; gossip reaches every tab', { timeout: 4 * TEST_TIMEOUT_MS }, async () => {
  assert.equal(new Set(tabs.map((t) => t.id)).size, CHROMIUM_TABS + 1);
  assert.match(await tabs.at(-1)!.run(() => navigator.userAgent, null), /Firefox/);
  await until(async () => ((await relaySessions(relay!)) ? true : undefined), 60_000, 'every tab has a relay session');
  const chromiumTabs = tabs.filter((t) => t.chromium !== undefined);
  await until(async () => {
    for (const t of chromiumTabs) {
      const v = await view(t);
      if (!chromiumTabs.every((o) => o === t || directWebrtcTo(v, o.id))) return undefined;
    }
    return true;
  }, 180_000, 'direct WebRTC between every pair of Chromium tabs');
  const first = chromiumTabs[0]!.chromium!;
  await until(async () => (Number(await first.locator('#graph svg').getAttribute('data-direct')) >= CHROMIUM_TABS - 1 ? true : undefined), 10_000, 'the graph draws the direct links');
  const publishes = await gossipRound('joined');
  assert.ok(publishes >= tabs.length, `every tab published (${publishes})`);
  await screenshotPanels(first, 'mesh');
  assert.deepEqual(allProblems(), []);
});

test('a tab works offline, edits (one edit conflicts on a manual/ key), comes back; every tab converges and the conflict is resolved in one tab\'s UI', { timeout: 4 * TEST_TIMEOUT_MS }, async () => {
  const away = tabs[CHROMIUM_TABS - 1]!;
  const page = away.chromium!;
  await page.locator('#offline-toggle').click();
  await until(async () => ((await page.locator('#offline').getAttribute('data-online')) === 'false' ? true : undefined), 20_000, 'the offline indicator');
  await until(async () => ((await view(tabs[0]!)).peers.some((p) => p.peerId === away.id && p.state === 'established') ? undefined : true), 30_000, 'the others see the tab leave');
  for (const [key, value] of [['mesh/offline', '"written offline"'], ['manual/mesh', '"offline side"']] as const) {
    await page.locator('#doc-key').fill(key);
    await page.locator('#doc-value').fill(value);
    await page.locator('#doc-value').press('Enter');
    await until(async () => ((await page.locator('#doc-result').textContent())?.startsWith(`saved ${key}`) === true ? true : undefined), 10_000, `the offline write of ${key}`);
  }
  await tabs[0]!.run(() => window.hypersync.docs.put('manual/mesh', 'online side'), null);
  await page.locator('#offline-toggle').click();
  await until(async () => ((await page.locator('#offline').getAttribute('data-online')) === 'true' ? true : undefined), 20_000, 'back online');
  await converged('every tab and the relay hold the same documents');
  for (const t of tabs) {
    assert.equal(await t.run(async () => (await window.hypersync.docs.get('mesh/offline'))?.value ?? null, null), 'written offline', t.name);
    assert.deepEqual(await t.run(async () => (await window.hypersync.conflicts.list()).map((c) => c.key), null), ['manual/mesh'], t.name);
  }
  // Resolved from the first tab's UI with a merged value; the resolution syncs to all.
  const ui = tabs[0]!.chromium!;
  await until(async () => ((await ui.locator('#conflicts .conflict[data-key="manual/mesh"]').count()) === 1 ? true : undefined), 20_000, 'the conflict in the UI');
  await ui.locator('#conflicts .conflict[data-key="manual/mesh"] input').fill('"both sides, merged"');
  await ui.locator('#conflicts .conflict[data-key="manual/mesh"] button', { hasText: 'Resolve with this value' }).click();
  let open: string[] = [];
  await until(async () => {
    open = [];
    for (const t of tabs) if ((await t.run(() => window.hypersync.conflicts.list().then((l) => l.length), null)) !== 0) open.push(t.name);
    return open.length === 0 ? true : undefined;
  }, 90_000, 'the resolution cleared the conflict in every tab').catch((e: unknown) => {
    throw new Error(`${String(e)}; still open in: ${open.join(', ')}`);
  });
  await converged('converged after the resolution');
  for (const t of tabs) assert.equal(await t.run(async () => (await window.hypersync.docs.get('manual/mesh'))?.value ?? null, null), 'both sides, merged', t.name);
  assert.deepEqual(allProblems(), []);
});

test('the relay restarts: every tab re-establishes its session and gossip resumes', { timeout: 4 * TEST_TIMEOUT_MS }, async () => {
  // While the relay is down, Chromium itself logs each refused redial of the relay's WebSocket
  // as a console error (the browser's own line, not the app's). Exactly that line, for exactly
  // the relay's address and only during this outage, is expected; anything else still fails.
  const refused = new RegExp(`^chromium \\d+ console error: WebSocket connection to 'ws://127\\.0\\.0\\.1:${port}/' failed: Error in connection establishment: net::ERR_CONNECTION_REFUSED$`);
  const seen = tabs.map((t) => t.problems.length);
  await relay!.stop();
  relay = undefined;
  const r = await startTheRelay();
  await until(async () => ((await relaySessions(r)) ? true : undefined), 90_000, 'every tab back in session with the restarted relay');
  for (const t of tabs) {
    await until(async () => ((await view(t)).peers.some((p) => p.peerId === r.peerId && p.state === 'established') ? true : undefined), 30_000, `${t.name} shows the relay up`);
  }
  // Firefox reports the same refused and interrupted redials of the relay's WebSocket as page errors.
  const firefoxRefused = new RegExp(`^firefox page error: Error: (The connection to ws://127\\.0\\.0\\.1:${port}/ was interrupted while the page was loading\\.|Firefox can’t establish a connection to the server at ws://127\\.0\\.0\\.1:${port}/\\.)$`);
  tabs.forEach((t, i) => {
    const during = t.problems.splice(seen[i]!);
    t.problems.push(...during.filter((p) => !refused.test(p) && !firefoxRefused.test(p)));
  });
  const publishes = await gossipRound('after-restart');
  assert.ok(publishes >= tabs.length, `every tab published after the restart (${publishes})`);
  await converged('documents still converged after the restart');
  assert.deepEqual(allProblems(), []);
});
