// A Firefox tab (Debian's firefox-esr) and the devnet's four Node peers, in a network
// namespace whose only network is loopback: the container-like case where ICE used to fail to
// every Node peer (six "ICE failed" page errors, the peers "down" for half a minute, then
// WebSocket). With the prefs the README gives, the tab goes direct over WebRTC with no page
// error. With only `media.peerconnection.ice.loopback`, Firefox gathers no ICE candidate at
// all there, so no WebRTC can work: the tab finds that out once at start (one "ICE failed",
// Firefox's own, from that check), says so, and reaches the Node peers over WebSocket at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { FIREFOX_LOOPBACK_WEBRTC_PREFS, launchFirefox, type FirefoxHandle } from './browsers.ts';
import { directWebrtcTo, HOOK_TIMEOUT_MS, TEST_TIMEOUT_MS, until, type PageView } from './harness.ts';
import { insideLoopbackNamespace, loopbackNamespaceProblem, runInLoopbackNamespace } from './netns.ts';
import { freePortBase } from '../test/harness/ports.ts';
import { killAll, run, tempDir, type Proc } from '../test/harness/processes.ts';

/** The whole inner run: a devnet, two Firefox profiles, their waits. */
const NAMESPACED_RUN_TIMEOUT_MS = 6 * 60_000;
/** A Node peer reached over WebSocket this soon after the tab starts: no half-minute detour. */
const WEBSOCKET_FALLBACK_MS = 15_000;

if (!insideLoopbackNamespace()) {
  test('Firefox ↔ Node peers, in a network namespace whose only network is loopback', { timeout: NAMESPACED_RUN_TIMEOUT_MS + 10_000 }, async (t) => {
    const problem = loopbackNamespaceProblem();
    assert.equal(problem, null, problem ?? '');
    const inner = await runInLoopbackNamespace(import.meta.filename, NAMESPACED_RUN_TIMEOUT_MS);
    for (const line of inner.report.split('\n')) if (/^\s*[✔✖]/.test(line)) t.diagnostic(line.trim());
    assert.equal(inner.code, 0, `the namespaced run failed (its log: ${inner.logFile}):\n${inner.report.slice(-6000)}`);
    assert.match(inner.report, /ℹ tests 2\nℹ suites 0\nℹ pass 2\n/, `both tests ran and passed inside:\n${inner.report.slice(-3000)}`);
  });
} else {
  let devnet: Proc;
  let webUrl: string;
  let voters: string[];
  /** Every Node peer: the three Raft voters and the PBFT-only fourth. */
  let nodes: string[];
  const firefoxes: FirefoxHandle[] = [];

  before(
    async () => {
      const dir = join(tempDir(), 'devnet');
      devnet = run('devnet', ['devnet', '--dir', dir, '--port-base', String(await freePortBase()), '--heartbeat-ms', '500']);
      await devnet.waitFor((e) => e.type === 'text' && e['line'] === 'Ctrl-C stops everything.', 120_000, 'the devnet to be up');
      const endpoints = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')) as { web: string; peers: Array<{ peerId: string; role: string }> };
      webUrl = endpoints.web;
      voters = endpoints.peers.filter((p) => p.role === 'voter').map((p) => p.peerId);
      assert.equal(voters.length, 3);
      nodes = endpoints.peers.filter((p) => p.role !== 'relay').map((p) => p.peerId);
      assert.equal(nodes.length, 4);
    },
    { timeout: HOOK_TIMEOUT_MS + 60_000 },
  );

  after(
    async () => {
      for (const f of firefoxes) await f.close();
      await killAll();
    },
    { timeout: HOOK_TIMEOUT_MS },
  );

  /** Opens the devnet's page in a fresh Firefox; records page errors and peer:down events from the start. */
  async function openTab(prefs: Readonly<Record<string, boolean | number>>): Promise<{ page: Page; errors: string[] }> {
    const firefox = await launchFirefox(prefs);
    firefoxes.push(firefox);
    const page = await firefox.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(webUrl);
    await page.evaluate(() => {
      const downs: string[] = [];
      (window as unknown as { downs: string[] }).downs = downs;
      window.hypersync.on('peer:down', (e) => downs.push(e.type === 'peer:down' ? e.peerId : ''));
    });
    await page.evaluate(() => window.hypersync.ready);
    return { page, errors };
  }

  function view(page: Page): Promise<PageView> {
    return page.evaluate(() => ({ peerId: window.hypersync.peerId, peers: window.hypersync.peers(), connections: window.hypersync.connections() }));
  }

  function downs(page: Page): Promise<string[]> {
    return page.evaluate(() => (window as unknown as { downs: string[] }).downs);
  }

  test('with the README prefs, a Firefox tab reaches the four Node peers over direct WebRTC, with no page error', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
    const { page, errors } = await openTab(FIREFOX_LOOPBACK_WEBRTC_PREFS);
    assert.equal(await page.$eval('#webrtc', (n) => n.getAttribute('data-available')), 'true');
    for (const node of nodes) {
      await until(async () => (directWebrtcTo(await view(page), node) ? true : undefined), 45_000, `Firefox → Node peer ${node.slice(-6)} over WebRTC`);
    }
    // The page shows it, and a signed message goes over that connection.
    await until(async () => ((await page.$$eval('#peers-body tr[data-transport="webrtc"]', (rows) => rows.length)) === nodes.length ? true : undefined), 5_000, 'a WebRTC row per Node peer');
    await page.evaluate((to) => window.hypersync.send(to, 'STATE_SYNC', { hello: 'from firefox' }), voters[0]!);
    // The consensus panel shows the devnet's PBFT group: its view and primary, a row per replica.
    await until(async () => ((await page.$$eval('#pbft-replicas tr', (rows) => rows.length)) === nodes.length ? true : undefined), 30_000, 'a PBFT row per replica in the consensus panel');
    assert.match(await page.$eval('#pbft-status', (n) => n.textContent ?? ''), /^view \d+ · primary \S+ · 4 replicas, f = 1/);
    assert.deepEqual((await page.$$eval('#pbft-replicas tr', (rows) => rows.map((r) => r.getAttribute('data-peer-id')))).sort(), [...nodes].sort());
    assert.deepEqual(await downs(page), [], 'no peer was ever down');
    assert.deepEqual(errors, []);
  });

  test('with only ice.loopback, Firefox has no ICE candidate here: the tab says so and reaches the Node peers over WebSocket at once', { timeout: TEST_TIMEOUT_MS }, async () => {
    // The clock starts when the tab's peer runs (launching Firefox on a loaded machine is slow).
    const { page, errors } = await openTab({ 'media.peerconnection.ice.loopback': true });
    assert.equal(await page.$eval('#webrtc', (n) => n.getAttribute('data-available')), 'false');
    assert.match(await page.$eval('#webrtc', (n) => n.textContent ?? ''), /permissions\.default\.microphone/);
    const overWebsocket = (v: PageView): boolean => voters.every((id) => v.peers.some((p) => p.peerId === id && p.state === 'established' && p.transport === 'websocket'));
    await until(async () => (overWebsocket(await view(page)) ? true : undefined), WEBSOCKET_FALLBACK_MS, `all three Node peers over WebSocket within ${WEBSOCKET_FALLBACK_MS / 1000} s of the tab's start`);
    assert.equal((await view(page)).connections.filter((c) => c.transport === 'webrtc').length, 0, 'no WebRTC attempted');
    assert.deepEqual(await downs(page), [], 'no peer was ever down');
    // Firefox logs "ICE failed" for any connection whose ICE fails: here only the start-up check's.
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /ICE failed/);
  });
}
