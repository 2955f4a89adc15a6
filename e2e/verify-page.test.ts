// The standalone verifier where a third party would use it: the one-file bundle
// (`npm run build:verify`, built here) loaded by a plain HTML page with no build step and by
// a module Web Worker, in Chromium and in Firefox, served from loopback. Both run the same
// checks (e2e/verify-page/checks.js) on receipts, chains, bundles and a PBFT quorum certificate
// from an in-process cluster, written here, valid and tampered, and must give exactly the
// verdicts Node gives, with WebCrypto doing the signatures.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { crypto, peerIdFromPublicKeyBytes } from '../src/crypto/index.ts';
import { ReceiptLog } from '../src/receipts/log.ts';
import type { Receipt } from '../src/receipts/receipt.ts';
import { MemoryStore } from '../src/store/memory.ts';
import * as verify from '../src/verify/index.ts';
import { buildVerifier, VERIFY_FILE } from '../src/verify/vite.config.ts';
import { certificateFromText, certificateToText } from '../src/consensus/pbft/certificate.ts';
import { membershipToJson } from '../src/consensus/pbft/receipt-certificate.ts';
import { startInProcessPbft } from '../test/harness/pbft-inprocess.ts';
import { launchChromium, launchFirefox } from './browsers.ts';
import { until } from './harness.ts';

const PAGE_DIR = join(import.meta.dirname, 'verify-page');
const T0 = Date.parse('2026-11-24T12:00:00.000Z');

interface Results {
  backend: string;
  verdicts: Record<string, { ok: boolean; code?: string; index?: number; count?: number }>;
}
type RunChecks = (v: typeof verify, fixtures: unknown) => Promise<Results>;

let dir: string;
let server: Server;
let url: string;
let expected: Results;

function flip(text: string): string {
  return `${text.slice(0, 20)}${text[20] === 'A' ? 'B' : 'A'}${text.slice(21)}`;
}

async function fixtures(): Promise<Record<string, unknown>> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const log = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  const io = Array.from({ length: 40 }, (_, k) => ({ inputs: { k }, outputs: { v: `out-${k}` } }));
  const chain: Receipt[] = [];
  for (const [i, e] of io.entries()) chain.push(await log.append({ operator_id: 'kv.put', ...e }, T0 + i * 1000));
  // The first head covers 20 receipts: a log that had only those signs it.
  const small = await ReceiptLog.open(new MemoryStore(), { signer, peerId });
  for (const [i, e] of io.slice(0, 20).entries()) await small.append({ operator_id: 'kv.put', ...e }, T0 + i * 1000);
  const head20 = small.signedTreeHead(T0);
  const proof20 = await small.inclusionProof(chain[17]!.receipt_id);
  const consistency = { first: head20, second: log.signedTreeHead(T0 + 60_000), proof: await log.consistencyProof(20) };
  const forged = { ...chain[30]!, signature: flip(chain[30]!.signature) };
  const pbft = await pbftFixtures();
  return {
    ...pbft,
    t0: T0,
    now: T0 + 3_600_000,
    signer: peerId,
    io,
    chain,
    forgedSignature: { ...chain[5]!, signature: flip(chain[5]!.signature) },
    chainForged: chain.map((r, i) => (i === 30 ? forged : r)),
    chainGap: [...chain.slice(0, 12), ...chain.slice(13)],
    bundle: { receipt: chain[17]!, proof: proof20, tree_head: head20 },
    bundleAltered: { receipt: chain[17]!, proof: { ...proof20, path: proof20.path.map((h, i) => (i === 0 ? `${h[0] === 'a' ? 'b' : 'a'}${h.slice(1)}` : h)) }, tree_head: head20 },
    bundleForgedHead: { receipt: chain[17]!, proof: proof20, tree_head: { ...head20, signature: flip(head20.signature) } },
    consistency,
    consistencyAltered: { ...consistency, proof: consistency.proof.slice(0, -1) },
  };
}

/**
 * A PBFT execution certified by a real in-process cluster (four runtimes, a relay-side gateway):
 * its receipt, the certificate it travels with and the membership as cluster.json gives it;
 * then the same with one replica's reply signature altered, with only one signer, and checked
 * against another cluster's membership (same keys, another signing domain).
 */
async function pbftFixtures(): Promise<Record<string, unknown>> {
  const c = await startInProcessPbft();
  try {
    const o = await c.gateway().submit({ operator_id: 'kv.put', inputs: { key: 'pbft', value: 1 } }, { signal: AbortSignal.timeout(30_000) });
    if (o.receipt === null || o.certificate === null) throw new Error('the PBFT cluster gave no certified receipt');
    const carried = JSON.parse(JSON.stringify(o.certificate)) as { scheme: string; certificate: string; result: string };
    const membership = membershipToJson(c.membership);
    const qc = certificateFromText(carried.certificate);
    if (qc.kind !== 'replies') throw new Error(`expected a reply certificate, got ${qc.kind}`);
    const sig = Uint8Array.from(qc.replies[0]!.signature);
    sig[5]! ^= 0x01;
    const forged = { ...carried, certificate: certificateToText({ ...qc, replies: [{ ...qc.replies[0]!, signature: sig }, ...qc.replies.slice(1)] }) };
    const thin = { ...carried, certificate: certificateToText({ ...qc, replies: qc.replies.slice(0, 1) }) };
    return {
      pbft: { receipt: o.receipt, certificate: carried, membership },
      pbftForged: { receipt: o.receipt, certificate: forged, membership },
      pbftThin: { receipt: o.receipt, certificate: thin, membership },
      pbftOtherCluster: { receipt: o.receipt, certificate: carried, membership: { ...membership, cluster: 'elsewhere' } },
    };
  } finally {
    await c.close();
  }
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.json': 'application/json' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hypersync-verify-page-'));
  const bundle = await buildVerifier(dir);
  const f = await fixtures();
  const files: Record<string, Buffer> = {
    '/': readFileSync(join(PAGE_DIR, 'index.html')),
    '/checks.js': readFileSync(join(PAGE_DIR, 'checks.js')),
    '/worker.js': readFileSync(join(PAGE_DIR, 'worker.js')),
    [`/${VERIFY_FILE}`]: readFileSync(bundle.file),
    '/fixtures.json': Buffer.from(JSON.stringify(f)),
  };
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const body = files[path];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path === '/' ? '.html' : path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  url = `http://127.0.0.1:${address.port}/`;
  // What Node says about the same fixtures, through the same checks.
  const { runChecks } = (await import(pathToFileURL(join(PAGE_DIR, 'checks.js')).href)) as { runChecks: RunChecks };
  expected = await runChecks(verify, JSON.parse(JSON.stringify(f)));
});

after(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function assertSameVerdicts(got: Results, where: string): void {
  assert.equal(got.backend, 'webcrypto', `${where} verifies with native Ed25519`);
  assert.deepEqual(got.verdicts, expected.verdicts, `${where} gives Node's verdicts`);
}

test('Node verdicts on the fixtures: valid ones pass, each tampering fails with its code', () => {
  const v = expected.verdicts;
  assert.equal(expected.backend, 'node');
  for (const name of ['receipt', 'chain', 'bundle', 'consistency', 'tree head', 'pbft certificate']) assert.equal(v[name]?.ok, true, name);
  const codes = Object.fromEntries(Object.entries(v).filter(([, r]) => !r.ok).map(([k, r]) => [k, r.code]));
  assert.deepEqual(codes, {
    'receipt: forged signature': 'RECEIPT_SIGNATURE_INVALID',
    'receipt: wrong inputs': 'RECEIPT_INPUTS_MISMATCH',
    'receipt: broken link': 'RECEIPT_LINK_BROKEN',
    'receipt: from the future': 'RECEIPT_TIMESTAMP_INVALID',
    'receipt: garbage': 'RECEIPT_MALFORMED',
    'chain: forged at 30': 'RECEIPT_SIGNATURE_INVALID',
    'chain: gap at 12': 'RECEIPT_LINK_BROKEN',
    'bundle: altered path': 'INCLUSION_PROOF_INVALID',
    'bundle: forged tree head': 'TREE_HEAD_SIGNATURE_INVALID',
    'consistency: swapped': 'PROOF_MISMATCH',
    'consistency: altered': 'CONSISTENCY_PROOF_INVALID',
    'pbft certificate: forged reply signature': 'CERTIFICATE_INVALID',
    'pbft certificate: one signer': 'CERTIFICATE_INVALID',
    'pbft certificate: other cluster': 'CERTIFICATE_INVALID',
  });
  assert.deepEqual([v['chain: forged at 30']?.index, v['chain: forged at 30']?.count], [30, 30]);
});

async function pageAndWorker(evaluate: <T>(fn: () => T) => Promise<T>, browser: string): Promise<void> {
  const page = await until(() => evaluate(() => window.pageResults as Results | undefined), 60_000, `the page's verdicts in ${browser}`);
  assertSameVerdicts(page, `${browser} page`);
  const worker = await until(() => evaluate(() => window.workerResults as (Results & { error?: string }) | undefined), 60_000, `the worker's verdicts in ${browser}`);
  assert.equal(worker.error, undefined, `${browser} worker: ${worker.error}`);
  assertSameVerdicts(worker, `${browser} worker`);
}

declare global {
  interface Window {
    pageResults?: unknown;
    workerResults?: unknown;
  }
}

test('Chromium: the bundle in a plain page and in a module worker gives Node\'s verdicts, with WebCrypto', { timeout: 120_000 }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`chromium page error: ${e.message}\n`));
    await page.goto(url);
    await pageAndWorker((fn) => page.evaluate(fn), 'Chromium');
  } finally {
    await browser.close();
  }
});

test('Firefox: the bundle in a plain page and in a module worker gives Node\'s verdicts, with WebCrypto', { timeout: 120_000 }, async () => {
  const ff = await launchFirefox();
  try {
    const page = await ff.browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`firefox page error: ${String(e)}\n`));
    await page.goto(url);
    await pageAndWorker((fn) => page.evaluate(fn), 'Firefox');
  } finally {
    await ff.close();
  }
});
