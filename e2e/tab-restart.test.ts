// A tab's restart loses no acknowledged write: a Chromium tab writes documents while the relay is
// down (its IndexedDB is the only copy), the whole browser is SIGKILLed right after the writes
// resolved, a new browser on the same profile opens the page again with the same identity and
// every acknowledged document, and they reach the relay once it is back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type Page } from 'playwright-core';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './browsers.ts';
import { CLUSTER, freePort, HOOK_TIMEOUT_MS, joinUrl, openJoinedPage, startWeb, TEST_TIMEOUT_MS, until, type Web } from './harness.ts';

/** Documents written while offline, then the browser is killed. */
const WRITES = 20;
/** How long Chromium gets to print its DevTools address. */
const LAUNCH_TIMEOUT_MS = 30_000;

const dataDir = mkdtempSync(join(tmpdir(), 'hypersync-e2e-tabkill-relay-'));
const profile = mkdtempSync(join(tmpdir(), 'hypersync-e2e-tabkill-profile-'));
const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
const config = { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] as string[] };
let port = 0;
let relay: RelayHandle | undefined;
let web: Web;
let pageUrl: string;

interface OwnChromium {
  child: ChildProcess;
  browser: Browser;
}
const launched = new Set<ChildProcess>();

/** Chromium as its own process group on a fixed profile (so the test can SIGKILL it), driven over CDP. */
async function launchOwnChromium(): Promise<OwnChromium> {
  const child = spawn(CHROMIUM_PATH, [...CHROMIUM_ARGS, '--headless=new', '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  launched.add(child);
  const ws = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools address within ${LAUNCH_TIMEOUT_MS} ms`)), LAUNCH_TIMEOUT_MS);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(line);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', () => reject(new Error('Chromium exited before it listened')));
  });
  return { child, browser: await chromium.connectOverCDP(ws) };
}

async function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-(child.pid as number), 'SIGKILL');
  await exited;
  launched.delete(child);
}

/** The page in the browser's own (persistent) context: its IndexedDB is the profile's. */
async function openPage(b: Browser): Promise<Page> {
  return openJoinedPage(b.contexts()[0] ?? (await b.newContext()), pageUrl);
}

before(
  async () => {
    process.env['HYPERSYNC_LOG'] ??= 'warn';
    port = await freePort();
    relay = await startRelay({ config, dataDir, port, httpPort: 0, heartbeatMs: 500 });
    web = await startWeb();
    pageUrl = joinUrl(web.base, { relays: [relay.multiaddrs[0]!], clusterSigner });
  },
  { timeout: HOOK_TIMEOUT_MS },
);

after(
  async () => {
    for (const child of [...launched]) await killGroup(child);
    await web?.vite.close();
    await relay?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  },
  { timeout: HOOK_TIMEOUT_MS },
);

test(`SIGKILL of the whole browser right after ${WRITES} offline writes resolved: the restarted tab has them all, with its identity, and syncs them to the relay`, { timeout: 4 * TEST_TIMEOUT_MS }, async () => {
  const first = await launchOwnChromium();
  const tab = await openPage(first.browser);
  const tabId = await tab.evaluate(() => window.hypersync.peerId);
  await until(async () => ((await tab.evaluate(() => window.hypersync.peers().some((p) => p.state === 'established'))) ? true : undefined), 30_000, 'the tab joined the relay');
  await relay!.stop();
  relay = undefined;
  await until(async () => ((await tab.evaluate(() => window.hypersync.peers().filter((p) => p.state === 'established').length)) === 0 ? true : undefined), 20_000, 'the tab is offline');
  const written = await tab.evaluate(async (n) => {
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      await window.hypersync.docs.put(`killed/${i}`, { i });
      keys.push(`killed/${i}`);
    }
    return keys;
  }, WRITES);
  assert.equal(written.length, WRITES);
  // No goodbye, no unload, no flush: the browser's whole process group dies now.
  await killGroup(first.child);

  relay = await startRelay({ config, dataDir, port, httpPort: 0, heartbeatMs: 500 });
  const second = await launchOwnChromium();
  const again = await openPage(second.browser);
  assert.equal(await again.evaluate(() => window.hypersync.peerId), tabId, 'the restarted tab keeps its identity');
  const values = await again.evaluate(async (keys) => Promise.all(keys.map(async (k) => (await window.hypersync.docs.get(k))?.value ?? null)), written);
  assert.deepEqual(values, written.map((_, i) => ({ i })), 'every acknowledged write is in the restarted tab');
  const r = relay;
  await until(async () => ((await Promise.all(written.map((k) => r.sync.docs.get(k)))).every((d) => d !== undefined) ? true : undefined), 45_000, 'the writes reach the relay');
  for (const [i, k] of written.entries()) assert.deepEqual((await r.sync.docs.get(k))?.value, { i }, k);
  await second.browser.close().catch(() => undefined);
  await killGroup(second.child);
});
