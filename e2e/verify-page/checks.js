// Runs every verifier entry point on the fixtures the test wrote (valid and tampered
// receipts, chains, proof and consistency bundles, tree heads, PBFT quorum certificates) and
// returns the verdicts, so the test can hold them equal to Node's. Plain JavaScript: it runs as served, unbundled.
export async function runChecks(verify, f) {
  const verdicts = {};
  const record = async (name, promise) => {
    try {
      verdicts[name] = await promise;
    } catch (e) {
      verdicts[name] = { threw: String(e) };
    }
  };
  const now = f.now;
  await record('receipt', verify.verifyReceipt(f.chain[5], { now, previous: f.chain[4], inputs: f.io[5].inputs, outputs: f.io[5].outputs }));
  await record('receipt: forged signature', verify.verifyReceipt(f.forgedSignature, { now }));
  await record('receipt: wrong inputs', verify.verifyReceipt(f.chain[5], { now, previous: f.chain[4], inputs: { k: -1 } }));
  await record('receipt: broken link', verify.verifyReceipt(f.chain[6], { now, previous: f.chain[4] }));
  await record('receipt: from the future', verify.verifyReceipt(f.chain[5], { now: f.t0, maxFutureSkewMs: 1000 }));
  await record('receipt: garbage', verify.verifyReceipt({ hello: 'world' }));
  await record('chain', verify.verifyChain(f.chain, { now, signer: f.signer }));
  await record('chain: forged at 30', verify.verifyChain(f.chainForged, { now }));
  await record('chain: gap at 12', verify.verifyChain(f.chainGap, { now }));
  await record('bundle', verify.verifyProofBundle(f.bundle, { signer: f.signer }));
  await record('bundle: altered path', verify.verifyProofBundle(f.bundleAltered));
  await record('bundle: forged tree head', verify.verifyProofBundle(f.bundleForgedHead));
  await record('consistency', verify.verifyConsistencyBundle(f.consistency, { signer: f.signer }));
  await record('consistency: swapped', verify.verifyConsistencyBundle({ first: f.consistency.second, second: f.consistency.first, proof: f.consistency.proof }));
  await record('consistency: altered', verify.verifyConsistencyBundle(f.consistencyAltered));
  await record('tree head', verify.verifySignedTreeHead(f.consistency.second));
  // A PBFT receipt and its quorum certificate, against the membership as cluster.json gives it.
  const certified = async (x) => {
    const membership = verify.membershipFromJson(x.membership);
    const carried = verify.carriedCertificateFromJson(x.certificate);
    if (typeof membership === 'string' || typeof carried === 'string') return { ok: false, code: 'MALFORMED', reason: [membership, carried].filter((r) => typeof r === 'string').join('; ') };
    return verify.verifyCertifiedReceipt(x.receipt, carried, membership, verify.pbftCertificateScheme);
  };
  await record('pbft certificate', certified(f.pbft));
  await record('pbft certificate: forged reply signature', certified(f.pbftForged));
  await record('pbft certificate: one signer', certified(f.pbftThin));
  await record('pbft certificate: other cluster', certified(f.pbftOtherCluster));
  return { backend: verify.cryptoBackend, verdicts };
}
