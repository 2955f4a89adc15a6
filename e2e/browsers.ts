// Launchers for the real browsers the e2e suites drive: Debian's Chromium through the
// Playwright library, Debian's firefox-esr through puppeteer-core (Playwright cannot drive
// a stock Firefox). Both are configured so WebRTC works on loopback and nothing phones home.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser as PwBrowser } from 'playwright-core';
import puppeteer, { type Browser as PpBrowser } from 'puppeteer-core';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const FIREFOX_PATH = process.env['FIREFOX_PATH'] ?? '/usr/bin/firefox-esr';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
];

export function haveChromium(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export function haveFirefox(): boolean {
  return existsSync(FIREFOX_PATH);
}

export async function launchChromium(): Promise<PwBrowser> {
  if (!haveChromium()) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

export interface FirefoxHandle {
  browser: PpBrowser;
  close(): Promise<void>;
}

/**
 * The about:config prefs the README gives for WebRTC on loopback. Firefox gathers ICE
 * candidates beyond its default-route address only for a page that may use the microphone,
 * so on a loopback-only network `ice.loopback` alone yields none (measured: firefox-esr 153).
 */
export const FIREFOX_LOOPBACK_WEBRTC_PREFS: Readonly<Record<string, boolean | number>> = {
  'media.peerconnection.ice.loopback': true,
  'permissions.default.microphone': 1,
};

/** Nothing phones home or asks anything. */
const FIREFOX_QUIET_PREFS = {
  'network.proxy.type': 0,
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
} as const;

export async function launchFirefox(webrtcPrefs: Readonly<Record<string, boolean | number>> = FIREFOX_LOOPBACK_WEBRTC_PREFS): Promise<FirefoxHandle> {
  if (!haveFirefox()) throw new Error(`firefox-esr not found at ${FIREFOX_PATH}: apt-get install -y firefox-esr (or set FIREFOX_PATH)`);
  const profile = mkdtempSync(join(tmpdir(), 'hypersync-ff-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: { ...FIREFOX_QUIET_PREFS, ...webrtcPrefs },
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
