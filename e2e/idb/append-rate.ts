// Receipt appends on IndexedDB inside the page: sequential (each durable before the next)
// and concurrent (group-committed), with noble crypto — what a browser peer really pays.
import { crypto, hexDecode, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { verifyConsistency } from '../../src/receipts/merkle.ts';
import { verifyChain } from '../../src/receipts/receipt.ts';
import { proofBundleProblem } from '../../src/receipts/proof.ts';
import { IdbStore } from '../../src/store/idb.ts';

export interface AppendRate {
  adapter: string;
  sequentialPerSec: number;
  concurrentPerSec: number;
  verified: boolean;
  /** An inclusion proof from the IndexedDB-backed log, checked in the page. */
  proofChecked: boolean;
  /** A consistency proof between the log's two heads (after each phase), checked in the page. */
  consistencyChecked: boolean;
}

export async function measureIdbAppends(n = 300): Promise<AppendRate> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const log = await ReceiptLog.open(await IdbStore.open(`bench-${Date.now()}`), { signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) });
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: true } });
  const sequentialPerSec = (n * 1000) / (performance.now() - t0);
  const firstRoot = log.root();
  t0 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: true } })));
  const concurrentPerSec = (n * 1000) / (performance.now() - t0);
  const verified = (await verifyChain(log.iterate(), { now: Date.now() + 1000 })).ok;
  const receipt = await log.get(Math.floor(log.size / 2));
  let proofChecked = false;
  if (receipt !== undefined) {
    const bundle = { receipt, proof: await log.inclusionProof(receipt.receipt_id), tree_head: log.signedTreeHead() };
    const tampered = { ...bundle, proof: { ...bundle.proof, path: bundle.proof.path.map((h, i) => (i === 0 ? h.replace(/^./, (c) => (c === '0' ? '1' : '0')) : h)) } };
    proofChecked = proofBundleProblem(bundle) === null && proofBundleProblem(tampered) !== null;
  }
  const consistency = (await log.consistencyProof(n)).map(hexDecode);
  const consistencyChecked = verifyConsistency(n, log.size, firstRoot, log.root(), consistency) && !verifyConsistency(n, log.size, log.root(), firstRoot, consistency);
  await log.close();
  return { adapter: crypto.name, sequentialPerSec, concurrentPerSec, verified, proofChecked, consistencyChecked };
}
