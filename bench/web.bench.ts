// `npm run bench -- web`: the web app as a newcomer gets it.
//   - gzipped size of the whole built app (every JS, CSS and HTML file of `vite build web`),
//     target <= 250 KB, against the peer view before the panels (built in the same run from
//     git, WEB_BASELINE_REV, default 8ec0ea0);
//   - page load to the first peer connection (an established ICO session with the relay),
//     and to the first direct WebRTC link with another tab, in Chromium, from the built app
//     served statically; main-thread CPU time (CDP TaskDuration) spent until then, per load;
//     the same for the baseline build;
//   - JS heap of five tabs exchanging gossip and direct messages for WEB_BENCH_MEMORY_S seconds
//     (default 600): used heap after a forced GC at the end of the warm-up vs at the end, per
//     tab; target < 10% growth.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, preview, type PreviewServer } from 'vite';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { startRelay, type RelayHandle } from '../relay/relay.ts';
import { launchChromium } from '../e2e/browsers.ts';
import { CLUSTER, joinUrl, ROOT } from '../e2e/harness.ts';
import { percentile, type BenchRow } from './table.ts';

export const MAX_APP_GZIP_BYTES = 250 * 1024;
export const MAX_HEAP_GROWTH = 0.1;
const BASELINE_REV = process.env['WEB_BASELINE_REV'] ?? '8ec0ea0';
/** Page loads measured per build (each in a fresh context: new identity, cold IndexedDB). */
const LOADS = Number(process.env['WEB_BENCH_LOADS'] ?? 7);
const MEMORY_S = Number(process.env['WEB_BENCH_MEMORY_S'] ?? 600);
const WARMUP_S = Math.min(60, Math.max(10, Math.round(MEMORY_S / 10)));
const MEMORY_TABS = 5;
/** Each tab sends one gossip message and one direct message to each other tab this often. */
const MESSAGE_EVERY_MS = 1_000;
const CONNECT_TIMEOUT_MS = 120_000;

interface Built {
  dir: string;
  gzipBytes: number;
  bytes: number;
  files: number;
}

function gzipSize(dir: string): { gzipBytes: number; bytes: number; files: number } {
  let gzipBytes = 0;
  let bytes = 0;
  let files = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(js|css|html|wasm)$/.test(name)) {
        const data = readFileSync(p);
        bytes += data.length;
        gzipBytes += gzipSync(data, { level: 9 }).length;
        files++;
      }
    }
  };
  walk(dir);
  return { gzipBytes, bytes, files };
}

async function buildApp(root: string, outDir: string): Promise<Built> {
  await build({ configFile: join(ROOT, 'web', 'vite.config.ts'), root, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  return { dir: outDir, ...gzipSize(outDir) };
}

/** The peer view before the panels, from git, laid out beside web/ so its ../src imports resolve. */
function checkoutBaseline(): string {
  const dir = join(ROOT, `.web-baseline-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const files = execFileSync('git', ['ls-tree', '--name-only', `${BASELINE_REV}:web`], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f !== '');
  for (const f of files) writeFileSync(join(dir, f), execFileSync('git', ['show', `${BASELINE_REV}:web/${f}`], { cwd: ROOT }));
  return dir;
}

interface LoadSample {
  /** ms from navigation start to an established session with the relay. */
  relayMs: number;
  /** ms from navigation start to a direct WebRTC link with the other tab. */
  webrtcMs: number;
  /** Main-thread task time of the page until the relay session, ms. */
  cpuMs: number;
}

/** Main-thread task time (CDP TaskDuration) since `Performance.enable` on `cdp`, ms. */
async function taskMs(cdp: CDPSession): Promise<number> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return (metrics.find((m) => m.name === 'TaskDuration')?.value ?? Number.NaN) * 1000;
}

async function loadOnce(browser: Browser, url: string, relayId: string): Promise<LoadSample> {
  // A second tab already in the cluster: the measured tab's first WebRTC link goes to it.
  const otherCtx = await browser.newContext();
  const ctx = await browser.newContext();
  try {
    const other = await otherCtx.newPage();
    await other.goto(url);
    await other.waitForFunction((id) => window.hypersync?.peers().some((p) => p.peerId === id && p.state === 'established'), relayId, { timeout: CONNECT_TIMEOUT_MS, polling: 50 });
    const page = await ctx.newPage();
    // Counting starts before the navigation, so the page's whole start is in it.
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(url);
    await page.waitForFunction((id) => window.hypersync?.peers().some((p) => p.peerId === id && p.state === 'established'), relayId, { timeout: CONNECT_TIMEOUT_MS, polling: 5 });
    const relayMs = await page.evaluate(() => performance.now());
    const cpuMs = await taskMs(cdp);
    await cdp.detach();
    await page.waitForFunction(() => window.hypersync.connections().some((c) => c.transport === 'webrtc' && !c.limited), undefined, { timeout: CONNECT_TIMEOUT_MS, polling: 5 });
    const webrtcMs = await page.evaluate(() => performance.now());
    return { relayMs, webrtcMs, cpuMs };
  } finally {
    await ctx.close();
    await otherCtx.close();
  }
}

async function serve(dir: string): Promise<{ server: PreviewServer; base: string }> {
  const server = await preview({ root: dirname(dir), configFile: false, logLevel: 'warn', build: { outDir: dir }, preview: { host: '127.0.0.1', port: 0, strictPort: false } });
  const base = server.resolvedUrls?.local[0];
  if (base === undefined) throw new Error('vite preview reported no URL');
  return { server, base };
}

async function heapUsed(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  return usedSize;
}

async function memoryRun(browser: Browser, url: string, relay: RelayHandle, rows: BenchRow[]): Promise<void> {
  const pages: Page[] = [];
  for (let i = 0; i < MEMORY_TABS; i++) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.evaluate(() => window.hypersync.ready);
    pages.push(page);
  }
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.hypersync.peerId)));
  for (const p of pages) {
    await p.waitForFunction((others) => others.every((id) => id === window.hypersync.peerId || window.hypersync.peers().some((x) => x.peerId === id && x.state === 'established')), ids, { timeout: CONNECT_TIMEOUT_MS, polling: 200 });
  }
  // Every tab gossips and sends each other tab a direct message on a timer, inside the page.
  for (const p of pages) {
    await p.evaluate(([every, others]) => {
      let n = 0;
      setInterval(() => {
        n++;
        void window.hypersync.broadcast('STATE_SYNC', { bench: 'gossip', n }).catch(() => undefined);
        for (const id of others) if (id !== window.hypersync.peerId) void window.hypersync.send(id, 'STATE_SYNC', { bench: 'direct', n }).catch(() => undefined);
      }, every);
    }, [MESSAGE_EVERY_MS, ids] as const);
  }
  process.stderr.write(`bench: web memory: ${MEMORY_TABS} tabs exchanging messages, ${WARMUP_S} s warm-up then ${MEMORY_S} s\n`);
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
  const warm = await Promise.all(pages.map(heapUsed));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, MEMORY_S * 1000));
  const end = await Promise.all(pages.map(heapUsed));
  const received = await Promise.all(pages.map((p) => p.evaluate(() => window.hypersync.received().length)));
  const growth = end.map((e, i) => (e - warm[i]!) / warm[i]!);
  const worst = Math.max(...growth);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  rows.push({
    suite: 'web', name: `JS heap after GC, ${MEMORY_TABS} tabs messaging for ${Math.round((Date.now() - t0) / 1000)} s after ${WARMUP_S} s warm-up (mean)`, value: mean(end) / 1e6, unit: 'MB',
    baseline: { name: 'after warm-up', value: mean(warm) / 1e6 }, ratio: mean(end) / mean(warm),
    note: `per tab growth ${growth.map((g) => `${(g * 100).toFixed(1)}%`).join(', ')}; relay sessions ${relay.peer.peers().filter((p) => p.state === 'established').length}; each tab keeps its last ${received[0]} messages`,
  });
  rows.push({ suite: 'web', name: 'worst tab heap growth after warm-up', value: worst * 100, unit: '%', target: `< ${MAX_HEAP_GROWTH * 100}%`, met: worst < MAX_HEAP_GROWTH });
  for (const p of pages) await p.context().close();
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'hypersync-web-bench-'));
  const baselineRoot = checkoutBaseline();
  let relay: RelayHandle | undefined;
  let browser: Browser | undefined;
  const servers: PreviewServer[] = [];
  try {
    const app = await buildApp(join(ROOT, 'web'), join(tmp, 'app'));
    const base = await buildApp(baselineRoot, join(tmp, 'baseline'));
    rows.push({
      suite: 'web', name: 'whole web app (every panel), gzipped', value: app.gzipBytes / 1024, unit: 'KB', baseline: { name: `peer view ${BASELINE_REV}`, value: base.gzipBytes / 1024 }, ratio: app.gzipBytes / base.gzipBytes,
      target: `<= ${MAX_APP_GZIP_BYTES / 1024} KB`, met: app.gzipBytes <= MAX_APP_GZIP_BYTES, note: `${app.files} files, ${(app.bytes / 1024).toFixed(0)} KB minified (baseline ${(base.bytes / 1024).toFixed(0)} KB in ${base.files})`,
    });

    const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
    relay = await startRelay({ config: { cluster: CLUSTER, clusterPublicKey: base64urlEncode(clusterSigner.publicKey), allowlist: [] }, port: 0, httpPort: 0, heartbeatMs: 500 });
    browser = await launchChromium();
    const baselineLoads: LoadSample[] = [];
    const appLoads: LoadSample[] = [];
    let appOrigin = '';
    for (const [name, built] of [['baseline', base], ['app', app]] as const) {
      const { server, base: origin } = await serve(built.dir);
      servers.push(server);
      const url = joinUrl(origin, { relays: [relay.multiaddrs[0]!], clusterSigner });
      const samples: LoadSample[] = [];
      for (let i = 0; i < LOADS; i++) samples.push(await loadOnce(browser, url, relay.peerId));
      process.stderr.write(`bench: web loads (${name}): ${samples.map((s) => Math.round(s.relayMs)).join(', ')} ms\n`);
      (name === 'baseline' ? baselineLoads : appLoads).push(...samples);
      if (name === 'app') appOrigin = origin;
    }
    const med = (xs: LoadSample[], k: keyof LoadSample): number => percentile(xs.map((s) => s[k]), 50);
    for (const [k, what] of [['relayMs', 'page load to first peer connection (relay session), median'], ['webrtcMs', 'page load to first direct WebRTC link with another tab, median'], ['cpuMs', 'main-thread CPU until the relay session, median']] as const) {
      rows.push({ suite: 'web', name: what, value: med(appLoads, k), unit: 'ms', baseline: { name: 'peer view', value: med(baselineLoads, k) }, ratio: med(appLoads, k) / med(baselineLoads, k), note: `p95 ${percentile(appLoads.map((s) => s[k]), 95).toFixed(0)} ms over ${LOADS} loads` });
    }
    if (MEMORY_S > 0) await memoryRun(browser, joinUrl(appOrigin, { relays: [relay.multiaddrs[0]!], clusterSigner }), relay, rows);
  } finally {
    await browser?.close();
    for (const s of servers) await new Promise<void>((r) => s.httpServer.close(() => r()));
    await relay?.stop();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(baselineRoot, { recursive: true, force: true });
  }
  return rows;
}
