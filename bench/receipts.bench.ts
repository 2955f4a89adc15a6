// Receipts bench: durable appends on LevelDB (group-committed and one-at-a-time) against the
// raw node:crypto sign rate; streaming chain verification against raw verify; RFC 9162
// inclusion proof generation (from store reads) and verification at n = 1,000,000; receipt
// appends on IndexedDB inside Chromium. Baselines are measured in the same run; appends are
// also compared by CPU per operation against raw sign (RECEIPTS_BENCH_PARTS=append runs only that).
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalBytes, crypto, peerIdFromPublicKeyBytes } from '../src/crypto/index.ts';
import { inclusionPath, leafHash, verifyInclusion } from '../src/receipts/merkle.ts';
import { ReceiptLog } from '../src/receipts/log.ts';
import { ChainVerifier, type Receipt } from '../src/receipts/receipt.ts';
import { LevelStore } from '../src/store/level.ts';
import { buildTree, indexLeafData } from './merkle-fixture.ts';
import { opsPerSecond, percentile, type BenchRow } from './table.ts';

/** Measured rounds of appends and of chain verification (the best round of each is reported). */
const ROUNDS = 7;
const VERIFY_ROUNDS = 3;
const APPENDS_PER_ROUND = 4_000;
/** Length of each raw sign / verify baseline measurement. */
const BASELINE_MS = 400;
/** Appends in flight at once (callers awaiting acknowledgement), as under a busy API. */
const IN_FLIGHT = 256;
const TREE_SIZE = 1_000_000;
/** RECEIPTS_BENCH_PARTS=append: only the append measurements (the rest takes minutes). */
const APPEND_ONLY = process.env['RECEIPTS_BENCH_PARTS'] === 'append';
/** Raw signs per CPU-time baseline measurement (one before each append round). */
const RAW_SIGN_OPS = 4_000;

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seed = crypto.randomBytes(32);
  const signer = crypto.createSigner(seed);
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const sample = { operator_id: 'kv.put', inputs: { key: 'user/42', value: 'x'.repeat(64) }, outputs: { ok: true, version: 7 } };
  const msg = canonicalBytes(sample);
  const rawPriv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const rawPub = createPublicKey(rawPriv);
  const rawSig = sign(null, msg, rawPriv);
  const rawSignRate = (): number => opsPerSecond(() => sign(null, msg, rawPriv), BASELINE_MS);
  /** CPU µs (user + system, every thread of this process) per raw sign, over RAW_SIGN_OPS signs. */
  const rawSignCpuUs = (): number => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < RAW_SIGN_OPS; i++) sign(null, msg, rawPriv);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / RAW_SIGN_OPS;
  };
  const rawVerifyRate = (): number => opsPerSecond(() => verify(null, msg, rawPub, rawSig), BASELINE_MS);

  // Durable appends on LevelDB: IN_FLIGHT callers (group commit), then strictly one at a
  // time. The machine is shared, so each round measures its baseline right before itself,
  // and the best round of each is reported (interference only ever slows a round down).
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-bench-'));
  const receipts: Receipt[] = [];
  let rawSign = 0;
  let grouped = 0;
  const signCpu: number[] = [];
  const appendCpu: number[] = [];
  try {
    const log = await ReceiptLog.open(await LevelStore.open(join(dir, 'store')), { signer, peerId });
    // Warm-up (JIT, LevelDB files), not counted.
    await Promise.all(Array.from({ length: 1000 }, () => log.append(sample)));
    for (let round = 0; round < ROUNDS; round++) {
      rawSign = Math.max(rawSign, rawSignRate());
      signCpu.push(rawSignCpuUs());
      let next = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < APPENDS_PER_ROUND) {
            next++;
            await log.append(sample);
          }
        }),
      );
      grouped = Math.max(grouped, (APPENDS_PER_ROUND * 1000) / (performance.now() - t0));
      const c = process.cpuUsage(c0);
      appendCpu.push((c.user + c.system) / APPENDS_PER_ROUND);
    }
    // CPU per operation is what a shared machine's load distorts least: the ratio of raw sign
    // CPU to append CPU is the append rate a saturated core would reach, as a share of raw sign's.
    // Append CPU counts every thread of the process (LevelDB's write and fsync threads included).
    // Interference (cache, frequency, preemption inside a syscall) only ever adds CPU time, so
    // each side's least-disturbed round (its minimum) is compared.
    const signUs = Math.min(...signCpu);
    const appendUs = Math.min(...appendCpu);
    const cpuRatio = signUs / appendUs;
    rows.push({ suite: 'receipts', name: `raw node:crypto ed25519 sign, CPU per sign (least of ${ROUNDS})`, value: signUs, unit: 'µs' });
    rows.push({ suite: 'receipts', name: `append+sign+persist, LevelDB sync, ${IN_FLIGHT} in flight, CPU per append (least of ${ROUNDS})`, value: appendUs, unit: 'µs', baseline: { name: 'raw sign CPU', value: signUs }, ratio: cpuRatio, target: '>= 0.50 of raw sign (CPU)', met: cpuRatio >= 0.5, note: `per round (sign/append µs): ${appendCpu.map((a, i) => `${(signCpu[i] ?? 0).toFixed(0)}/${a.toFixed(0)}`).join(', ')}; all threads of the process` });
    rows.push({ suite: 'receipts', name: 'raw node:crypto ed25519 sign', value: rawSign, unit: 'ops/s' });
    rows.push({ suite: 'receipts', name: `append+sign+persist, LevelDB sync, ${IN_FLIGHT} in flight (best of ${ROUNDS})`, value: grouped, unit: 'receipts/s', baseline: { name: 'raw sign', value: rawSign }, ratio: grouped / rawSign, target: '>= 0.50 of raw sign', met: grouped / rawSign >= 0.5 });
    const t1 = performance.now();
    for (let i = 0; i < 300; i++) await log.append(sample);
    const single = (300 * 1000) / (performance.now() - t1);
    rows.push({ suite: 'receipts', name: 'append+sign+persist, LevelDB sync, 1 in flight', value: single, unit: 'receipts/s', note: 'one fsync per receipt' });
    // The chain to verify, read back from the store (not held during the appends, as a
    // caller that only awaits acknowledgements would not hold it).
    for await (const r of log.iterate()) receipts.push(r);
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (APPEND_ONLY) return rows;

  // Chain verification (all five steps but inputs/outputs), streaming, constant memory:
  // one warm-up pass, then rounds of passes (each with a fresh verifier), each round after
  // its own raw-verify baseline; best of each.
  const verifyPass = (): void => {
    const v = new ChainVerifier({ now: Date.now() + 1000 });
    for (const r of receipts) if (!v.next(r).ok) throw new Error('bench chain does not verify');
  };
  verifyPass();
  let rawVerify = 0;
  let verifyRate = 0;
  for (let round = 0; round < VERIFY_ROUNDS; round++) {
    rawVerify = Math.max(rawVerify, rawVerifyRate());
    const tv = performance.now();
    verifyPass();
    verifyRate = Math.max(verifyRate, (receipts.length * 1000) / (performance.now() - tv));
  }
  rows.push({ suite: 'receipts', name: 'raw node:crypto ed25519 verify', value: rawVerify, unit: 'ops/s' });
  rows.push({ suite: 'receipts', name: `chain verify (signature, id, link, time) (best of ${VERIFY_ROUNDS})`, value: verifyRate, unit: 'receipts/s', baseline: { name: 'raw verify', value: rawVerify }, ratio: verifyRate / rawVerify, target: '>= 0.80 of raw verify', met: verifyRate / rawVerify >= 0.8 });

  // Merkle proofs at one million leaves: nodes in a store, proofs built from store reads.
  const tree = await buildTree(TREE_SIZE, indexLeafData);
  const genTimes: number[] = [];
  const verTimes: number[] = [];
  for (let k = 0; k < 2000; k++) {
    const m = Math.floor(Math.random() * TREE_SIZE);
    const g0 = performance.now();
    const path = await inclusionPath(tree.read, m, 0, TREE_SIZE);
    const g1 = performance.now();
    const ok = verifyInclusion(leafHash(indexLeafData(m)), m, TREE_SIZE, path, tree.root);
    const g2 = performance.now();
    if (!ok) throw new Error('proof failed to verify');
    genTimes.push(g1 - g0);
    verTimes.push(g2 - g1);
  }
  const genP50 = percentile(genTimes, 50);
  const verP50 = percentile(verTimes, 50);
  rows.push({ suite: 'receipts', name: `inclusion proof generation, n = 1,000,000 (p50; p99 ${percentile(genTimes, 99).toFixed(3)} ms)`, value: genP50, unit: 'ms', target: '< 1 ms', met: genP50 < 1, note: `tree built in ${(tree.buildMs / 1000).toFixed(1)} s` });
  rows.push({ suite: 'receipts', name: `inclusion proof verification, n = 1,000,000 (p50; p99 ${percentile(verTimes, 99).toFixed(3)} ms)`, value: verP50, unit: 'ms', target: '< 1 ms', met: verP50 < 1 });
  await tree.close();

  // IndexedDB in Chromium (the browser adapter: WebCrypto Ed25519; real IndexedDB).
  try {
    const { launchChromium } = await import('../e2e/browsers.ts');
    const { startIdbPage } = await import('../e2e/idb-harness.ts');
    const { url, server } = await startIdbPage();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.storeResults !== undefined, undefined, { timeout: 60_000 });
      const rate = await page.evaluate(() => window.measureIdbAppends(300));
      rows.push({ suite: 'receipts', name: `IndexedDB append (Chromium, ${rate.adapter}), 1 in flight`, value: rate.sequentialPerSec, unit: 'receipts/s' });
      rows.push({ suite: 'receipts', name: `IndexedDB append (Chromium, ${rate.adapter}), 300 in flight`, value: rate.concurrentPerSec, unit: 'receipts/s', note: rate.verified ? 'chain verified in the page' : 'CHAIN DID NOT VERIFY' });
    } finally {
      await browser.close();
      await server.close();
    }
  } catch (e) {
    rows.push({ suite: 'receipts', name: 'IndexedDB append (Chromium)', value: Number.NaN, unit: 'receipts/s', note: `skipped: ${(e as Error).message.slice(0, 80)}` });
  }
  return rows;
}
