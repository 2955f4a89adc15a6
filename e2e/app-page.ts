// What every test of the whole web app needs from a page: no page error and no console error
// goes unnoticed (each fails the test that made it), an accessibility check with axe-core run
// inside the page, and screenshots of each panel written to e2e/results/.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT } from './harness.ts';

export const RESULTS_DIR = join(ROOT, 'e2e', 'results');

/** The panels' element ids, in page order: one screenshot each. */
export const PANELS = ['self', 'graph-card', 'consensus', 'operators', 'receipts', 'docs', 'peers-card', 'log-card'] as const;

export interface WatchedPage {
  page: Page;
  /** Page errors and console errors seen so far. */
  problems: string[];
}

/** Records every page error and console error of `page` (a test asserts the list is empty). */
export function watch(page: Page, label: string): WatchedPage {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${label} console error: ${m.text()}`);
  });
  return { page, problems };
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
  /** Each offending node: its selector, its HTML and axe's reason (what a failure must show). */
  where: string[];
}

/** Runs axe-core (the npm package's browser build) in the page; returns the serious and critical violations. */
export async function seriousA11yViolations(page: Page, within?: string): Promise<AxeViolation[]> {
  const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
  await page.addScriptTag({ path: axePath });
  return page.evaluate(async (selector) => {
    type AxeNode = { target: unknown[]; html: string; failureSummary?: string };
    const axe = (window as unknown as { axe: { run(ctx: Document | Element, opts: object): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: AxeNode[] }> }> } }).axe;
    const context = selector === undefined ? document : document.querySelector(selector);
    if (context === null) throw new Error(`axe: nothing matches ${selector}`);
    const result = await axe.run(context, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, where: v.nodes.map((n) => `${n.target.join(' ')} ${n.html.slice(0, 200)}: ${(n.failureSummary ?? '').replace(/\s+/g, ' ')}`) }));
  }, within);
}

/** One PNG per panel: e2e/results/<prefix>-<panel>.png; returns the paths. */
export async function screenshotPanels(page: Page, prefix: string): Promise<string[]> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const paths: string[] = [];
  for (const id of PANELS) {
    const path = join(RESULTS_DIR, `${prefix}-${id}.png`);
    // A clip of the page, not an element screenshot: a panel that re-renders every frame (the
    // log, under gossip) is never "stable" for Playwright's element screenshot on a busy machine.
    const panel = page.locator(`#${id}`);
    await panel.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    const box = await panel.boundingBox();
    if (box === null) throw new Error(`panel #${id} is not visible`);
    await page.screenshot({ path, clip: box });
    paths.push(path);
  }
  return paths;
}
