// Receipt appends on IndexedDB inside the page: sequential (each durable before the next)
// and concurrent (group-committed), signed with the browser adapter (WebCrypto Ed25519 when
// the browser has it) or, for comparison, with @noble as before; then the chain, an
// inclusion proof and a consistency proof between two signed heads are checked in the page
// with the standalone verifier, which is what the tab verifies with.
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { nobleSigner } from '../../src/crypto/noble.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { IdbStore } from '../../src/store/idb.ts';
import { verifyChain, verifyConsistencyBundle, verifyProofBundle } from '../../src/verify/index.ts';

export interface AppendRate {
  /** What signed the receipts: the browser adapter (`webcrypto` or `noble`) or forced `noble`. */
  adapter: string;
  sequentialPerSec: number;
  concurrentPerSec: number;
  verified: boolean;
  /** An inclusion proof from the IndexedDB-backed log, checked in the page. */
  proofChecked: boolean;
  /** A consistency proof between the log's two signed heads (after each phase), checked in the page. */
  consistencyChecked: boolean;
}

/** `n` appends one at a time, then `concurrent` (default `n`) at once. */
export async function measureIdbAppends(n = 300, signing: 'adapter' | 'noble' = 'adapter', concurrent = n): Promise<AppendRate> {
  const seed = crypto.randomBytes(32);
  const signer = signing === 'noble' ? nobleSigner(seed) : crypto.createSigner(seed);
  const peerId = peerIdFromPublicKeyBytes(signer.publicKey);
  const log = await ReceiptLog.open(await IdbStore.open(`bench-${Date.now()}-${signing}`), { signer, peerId });
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: true } });
  const sequentialPerSec = (n * 1000) / (performance.now() - t0);
  const firstHead = log.signedTreeHead();
  t0 = performance.now();
  await Promise.all(Array.from({ length: concurrent }, (_, i) => log.append({ operator_id: 'kv.put', inputs: { i }, outputs: { ok: true } })));
  const concurrentPerSec = (concurrent * 1000) / (performance.now() - t0);
  const verified = (await verifyChain(log.iterate(), { now: Date.now() + 1000, signer: peerId })).ok;
  const receipt = await log.get(Math.floor(log.size / 2));
  let proofChecked = false;
  if (receipt !== undefined) {
    const bundle = { receipt, proof: await log.inclusionProof(receipt.receipt_id), tree_head: log.signedTreeHead() };
    const tampered = { ...bundle, proof: { ...bundle.proof, path: bundle.proof.path.map((h, i) => (i === 0 ? h.replace(/^./, (c) => (c === '0' ? '1' : '0')) : h)) } };
    proofChecked = (await verifyProofBundle(bundle, { signer: peerId })).ok && !(await verifyProofBundle(tampered)).ok;
  }
  const secondHead = log.signedTreeHead();
  const proof = await log.consistencyProof(n);
  const consistencyChecked = (await verifyConsistencyBundle({ first: firstHead, second: secondHead, proof }, { signer: peerId })).ok && !(await verifyConsistencyBundle({ first: secondHead, second: firstHead, proof })).ok;
  await log.close();
  return { adapter: signing === 'noble' ? 'noble' : crypto.name, sequentialPerSec, concurrentPerSec, verified, proofChecked, consistencyChecked };
}
