// Verify bench (`npm run bench -- verify`): the standalone verifier and the browser crypto
// adapter in real Chromium and Firefox (bench/verify-page/, cross-origin isolated for fine
// timers), with every baseline measured in the same page:
//   - raw WebCrypto Ed25519 (one at a time, 64 in flight) and @noble: the sync/async decision;
//   - one receipt with its inclusion proof and signed tree head at n = 1,000,000 (proofs
//     fetched beforehand): p50/p99 latency, target p99 < 5 ms;
//   - chain verification against raw WebCrypto verify, 64 in flight: target >= 0.8;
//   - envelope open (what the tab runs per frame) against raw verify: target >= 0.5;
//   - IndexedDB receipt appends signed with WebCrypto (after) and @noble (before) against raw
//     WebCrypto sign, one at a time (a chain signs in order): target >= 0.5;
//   - the verifier's gzipped size: target <= 30 KB;
// and on Node, the sync and async forms of the node:crypto adapter side by side.
// Knobs: VERIFY_BENCH_ROUNDS (default 5), VERIFY_BENCH_BROWSERS (default chromium,firefox).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto, hexEncode, peerIdFromPublicKeyBytes } from '../src/crypto/index.ts';
import { nodeCrypto } from '../src/crypto/node.ts';
import { inclusionPath, leafHash } from '../src/receipts/merkle.ts';
import { buildReceipt, buildReceiptWithBytes, ChainVerifier, GENESIS_HASH, receiptHashBytes, verifyChain, type Receipt } from '../src/receipts/receipt.ts';
import { signTreeHead } from '../src/receipts/tree-head.ts';
import { buildVerifier, MAX_VERIFY_GZIP_BYTES } from '../src/verify/vite.config.ts';
import { CROSS_ORIGIN_ISOLATED, startVitePage } from '../e2e/idb-harness.ts';
import { launchChromium, launchFirefox } from '../e2e/browsers.ts';
import type { Compared, VerifyBench } from './verify-page/main.ts';
import { buildTree, indexLeafData } from './merkle-fixture.ts';
import { opsPerSecond, percentile, type BenchRow } from './table.ts';

const ROUNDS = Number(process.env['VERIFY_BENCH_ROUNDS'] ?? 5);
const BROWSERS = (process.env['VERIFY_BENCH_BROWSERS'] ?? 'chromium,firefox').split(',').filter((b) => b !== '');
const TREE_SIZE = 1_000_000;
/** Receipts with real signatures in the big tree, spread over it; each gets a proof bundle. */
const SAMPLED_RECEIPTS = 200;
/** Passes over the bundles for the latency percentiles (after one cold call). */
const PROOF_PASSES = 5;
const CHAIN_LENGTH = 4000;
const ENVELOPES = 2000;
/** IndexedDB appends one at a time (each durable before the next), then this many at once (group commit). */
const SEQUENTIAL_APPENDS = 200;
const CONCURRENT_APPENDS = 2000;
/** Length of each raw rate measurement in the page, ms. */
const RAW_MS = 400;
/** Length of each Node measurement round, ms. */
const NODE_ROUND_MS = 200;
const PAGE_TIMEOUT_MS = 600_000;

type Call = <R>(method: Exclude<keyof VerifyBench, 'adapter' | 'crossOriginIsolated'>, ...args: unknown[]) => Promise<R>;

interface Fixtures {
  bundles: unknown[];
  /** The same proofs, each bundle with a tree head of its own (same tree, its own timestamp): no head is remembered. */
  coldBundles: unknown[];
  chain: Receipt[];
  now: number;
  buildMs: number;
}

async function fixtures(): Promise<Fixtures> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const t0 = Date.parse('2026-11-24T12:00:00.000Z');
  // Real signed receipts at sampled positions of a 1,000,000-leaf tree, synthetic leaves
  // elsewhere: a verifier sees exactly what a log of a million receipts would hand it.
  const sampled = new Map<number, Receipt>();
  for (let j = 0; j < SAMPLED_RECEIPTS; j++) {
    const index = Math.min(TREE_SIZE - 1, Math.floor(((j + 0.5) * TREE_SIZE) / SAMPLED_RECEIPTS) + (j % 7));
    sampled.set(index, buildReceipt({ operator_id: 'kv.put', inputs: { j }, outputs: { ok: true }, index, prevHash: GENESIS_HASH.replace(/0$/, String(j % 10)), signer, signerId: peerId, now: t0 + index }));
  }
  const tree = await buildTree(TREE_SIZE, (i) => {
    const r = sampled.get(i);
    return r === undefined ? indexLeafData(i) : receiptHashBytes(r);
  });
  const head = signTreeHead(TREE_SIZE, `sha256:${hexEncode(tree.root)}`, t0 + TREE_SIZE, signer, peerId);
  const bundles: unknown[] = [];
  for (const [index, receipt] of sampled) {
    const path = await inclusionPath(tree.read, index, 0, TREE_SIZE);
    bundles.push({ receipt, proof: { receipt_id: receipt.receipt_id, index, tree_size: TREE_SIZE, leaf_hash: hexEncode(leafHash(receiptHashBytes(receipt))), path: path.map(hexEncode) }, tree_head: head });
  }
  await tree.close();
  const coldBundles = Array.from({ length: SAMPLED_RECEIPTS * PROOF_PASSES }, (_, k) => {
    const b = bundles[k % bundles.length] as { tree_head: unknown };
    return { ...b, tree_head: signTreeHead(TREE_SIZE, head.root, t0 + TREE_SIZE + 1 + k, signer, peerId) };
  });
  const chain: Receipt[] = [];
  let prevHash = GENESIS_HASH;
  for (let i = 0; i < CHAIN_LENGTH; i++) {
    const built = buildReceiptWithBytes({ operator_id: 'kv.put', inputs: { key: `user/${i}`, value: 'x'.repeat(32) }, outputs: { ok: true, version: i }, index: i, prevHash, signer, signerId: peerId, now: t0 + i });
    chain.push(built.receipt);
    prevHash = `sha256:${hexEncode(built.hash)}`;
  }
  return { bundles, coldBundles, chain, now: t0 + TREE_SIZE + 60_000 + SAMPLED_RECEIPTS * PROOF_PASSES, buildMs: tree.buildMs };
}

function ratioRow(suite: string, name: string, c: Compared, unit: string, baseline: string, target?: { text: string; min: number }, note?: string): BenchRow {
  return {
    suite, name, value: c.value, unit, baseline: { name: baseline, value: c.baseline }, ratio: c.ratio,
    ...(target === undefined ? {} : { target: target.text, met: c.ratio >= target.min }),
    ...(note === undefined ? {} : { note }),
  };
}

async function inBrowser(browser: string, call: Call, f: Fixtures, rows: BenchRow[]): Promise<void> {
  const suite = `verify/${browser}`;
  const raw = await call<Record<string, number>>('raw', RAW_MS);
  const rawRow = (name: string, key: string): void => void rows.push({ suite, name, value: raw[key]!, unit: 'ops/s' });
  rawRow('raw WebCrypto Ed25519 sign, 1 at a time', 'webcryptoSignSequential');
  rawRow('raw WebCrypto Ed25519 verify, 1 at a time', 'webcryptoVerifySequential');
  rawRow('raw WebCrypto Ed25519 sign, 64 in flight', 'webcryptoSignInFlight');
  rawRow('raw WebCrypto Ed25519 verify, 64 in flight', 'webcryptoVerifyInFlight');
  for (const op of ['Sign', 'Verify'] as const) {
    const noble = raw[`noble${op}`]!;
    const native = raw[`webcrypto${op}Sequential`]!;
    rows.push({ suite, name: `@noble ${op.toLowerCase()} (synchronous, the fallback)`, value: noble, unit: 'ops/s', baseline: { name: `WebCrypto ${op.toLowerCase()}, 1 at a time`, value: native }, ratio: noble / native, note: `WebCrypto is ${(native / noble).toFixed(1)}x` });
  }

  const proofs = await call<{ first: number; samples: number[]; failures: number }>('proofLatency', f.bundles, PROOF_PASSES);
  const cold = await call<{ first: number; samples: number[]; failures: number }>('proofLatency', f.coldBundles, 1);
  for (const [p, what, note] of [
    [proofs, 'verify one receipt + inclusion proof + signed tree head, n = 1,000,000 (p99)', `${f.bundles.length} bundles against one head (checked once, then remembered), ${PROOF_PASSES} passes`],
    [cold, 'the same, every bundle with a tree head of its own (both signatures checked, p99)', `${f.coldBundles.length} bundles, each head new to the verifier`],
  ] as const) {
    if (p.failures > 0) throw new Error(`${browser}: ${p.failures} proof bundles failed to verify`);
    const p99 = percentile(p.samples, 99);
    rows.push({
      suite, name: what, value: p99, unit: 'ms', target: 'p99 < 5 ms', met: p99 < 5,
      note: `p50 ${percentile(p.samples, 50).toFixed(3)} ms, max ${Math.max(...p.samples).toFixed(3)} ms over ${p.samples.length}; first call (key import) ${p.first.toFixed(2)} ms; 20 hashes per path; ${note}`,
    });
  }

  const chain = await call<Compared & { sequentialBaseline: number }>('chain', f.chain, ROUNDS, f.now);
  rows.push(ratioRow(suite, `chain verify (verifyChain, ${CHAIN_LENGTH} receipts, all five steps but inputs/outputs)`, chain, 'receipts/s', 'raw verify, 64 in flight', { text: '>= 0.80 of raw verify', min: 0.8 }, `raw verify one at a time: ${Math.round(chain.sequentialBaseline)}/s`));

  const env = await call<{ sequential: Compared; inFlight: Compared }>('envelopes', ENVELOPES, ROUNDS);
  rows.push(ratioRow(suite, 'envelope open (openEnvelope), 1 at a time', env.sequential, 'msgs/s', 'raw verify, 1 at a time', { text: '>= 0.50 of raw verify', min: 0.5 }));
  rows.push(ratioRow(suite, 'envelope open (openEnvelope), 64 in flight', env.inFlight, 'msgs/s', 'raw verify, 64 in flight', { text: '>= 0.50 of raw verify', min: 0.5 }));

  const appends = await call<Record<'adapter' | 'noble', { sequential: Compared; concurrent: Compared; verified: boolean }>>('appends', SEQUENTIAL_APPENDS, CONCURRENT_APPENDS, Math.max(3, Math.ceil(ROUNDS / 2)), RAW_MS);
  for (const [signing, label] of [['noble', 'before: @noble'], ['adapter', 'after: WebCrypto']] as const) {
    const a = appends[signing];
    const note = a.verified ? 'chain, proof and consistency verified in the page' : 'DID NOT VERIFY';
    rows.push(ratioRow(suite, `IndexedDB append, ${label}, 1 in flight (each durable before the next)`, a.sequential, 'receipts/s', 'raw sign, 1 at a time', undefined, note));
    rows.push(ratioRow(suite, `IndexedDB append, ${label}, ${CONCURRENT_APPENDS} in flight (group commit)`, a.concurrent, 'receipts/s', 'raw sign, 1 at a time', signing === 'adapter' ? { text: '>= 0.50 of raw sign', min: 0.5 } : undefined, note));
  }
}

/** Rates of the node adapter's sync and async forms, interleaved: what moving a caller to async costs on Node. */
async function nodeForms(f: Fixtures, rows: BenchRow[]): Promise<void> {
  const signer = nodeCrypto.createSigner(nodeCrypto.randomBytes(32));
  const message = nodeCrypto.randomBytes(330);
  const signature = signer.sign(message);
  const asyncRate = async (op: () => Promise<unknown>): Promise<number> => {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < NODE_ROUND_MS) {
      for (let i = 0; i < 50; i++) await op();
      n += 50;
    }
    return (n * 1000) / (performance.now() - t0);
  };
  const chainSync = (): number => {
    const t0 = performance.now();
    const v = new ChainVerifier({ now: f.now });
    for (const r of f.chain) if (!v.next(r).ok) throw new Error('bench chain does not verify');
    return (f.chain.length * 1000) / (performance.now() - t0);
  };
  const chainAsync = async (): Promise<number> => {
    const t0 = performance.now();
    if (!(await verifyChain(f.chain, { now: f.now })).ok) throw new Error('bench chain does not verify');
    return (f.chain.length * 1000) / (performance.now() - t0);
  };
  const pairs: Array<[string, string, () => number, () => Promise<number>]> = [
    ['sign', 'ops/s', () => opsPerSecond(() => signer.sign(message), NODE_ROUND_MS), () => asyncRate(() => signer.signAsync(message))],
    ['verify', 'ops/s', () => opsPerSecond(() => nodeCrypto.verify(signer.publicKey, message, signature), NODE_ROUND_MS), () => asyncRate(() => nodeCrypto.verifyAsync(signer.publicKey, message, signature))],
    [`chain verify, ${CHAIN_LENGTH} receipts`, 'receipts/s', chainSync, chainAsync],
  ];
  for (const [what, unit, sync, async] of pairs) {
    const syncs: number[] = [];
    const asyncs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      syncs.push(sync());
      asyncs.push(await async());
    }
    const med = (xs: number[]): number => percentile(xs, 50);
    rows.push({ suite: 'verify/node', name: `node:crypto ${what}, async form (awaited one at a time)`, value: med(asyncs), unit, baseline: { name: 'sync form', value: med(syncs) }, ratio: med(asyncs) / med(syncs) });
  }
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-verify-bench-'));
  try {
    const bundle = await buildVerifier(dir);
    rows.push({ suite: 'verify', name: 'standalone verifier (hypersync/verify), one ES module, gzipped', value: bundle.gzipBytes, unit: 'bytes', target: `<= ${MAX_VERIFY_GZIP_BYTES} (30 KB)`, met: bundle.gzipBytes <= MAX_VERIFY_GZIP_BYTES, note: `${bundle.bytes} bytes minified, ${bundle.modules.length} modules, no libp2p/storage/network` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const f = await fixtures();
  process.stderr.write(`bench: verify fixtures ready (tree of ${TREE_SIZE} built in ${(f.buildMs / 1000).toFixed(1)} s)\n`);
  await nodeForms(f, rows);

  const { url, server } = await startVitePage(join(import.meta.dirname, 'verify-page'), CROSS_ORIGIN_ISOLATED);
  try {
    for (const name of BROWSERS) {
      process.stderr.write(`bench: verify in ${name}...\n`);
      if (name === 'chromium') {
        const browser = await launchChromium();
        try {
          const page = await browser.newPage();
          page.setDefaultTimeout(PAGE_TIMEOUT_MS);
          await page.goto(url);
          await page.waitForFunction(() => window.verifyBench !== undefined, undefined, { timeout: 60_000 });
          if (!(await page.evaluate(() => window.verifyBench!.crossOriginIsolated))) throw new Error('the bench page is not cross-origin isolated');
          const call: Call = (method, ...args) => page.evaluate(([m, a]) => (window.verifyBench![m] as (...x: unknown[]) => Promise<never>)(...a), [method, args] as const);
          await inBrowser(name, call, f, rows);
        } finally {
          await browser.close();
        }
      } else if (name === 'firefox') {
        const ff = await launchFirefox();
        try {
          const page = await ff.browser.newPage();
          page.setDefaultTimeout(PAGE_TIMEOUT_MS);
          await page.goto(url);
          await page.waitForFunction(() => window.verifyBench !== undefined, { timeout: 60_000 });
          if (!(await page.evaluate(() => window.verifyBench!.crossOriginIsolated))) throw new Error('the bench page is not cross-origin isolated');
          const call: Call = (method, ...args) => page.evaluate((m, a) => (window.verifyBench![m] as (...x: unknown[]) => Promise<never>)(...a), method, args);
          await inBrowser(name, call, f, rows);
        } finally {
          await ff.close();
        }
      } else {
        throw new Error(`unknown browser '${name}' in VERIFY_BENCH_BROWSERS (chromium, firefox)`);
      }
    }
  } finally {
    await server.close();
  }
  return rows;
}
