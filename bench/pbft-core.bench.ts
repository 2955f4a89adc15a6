// In-process PBFT commit throughput: n replicas and their clients in one thread (no network,
// no disk), real SHA-256 + ed25519 (node:crypto), for n = 4 and 7 at batch sizes 1, 16 and 64,
// closed loop (each round every client has one request in, the primary orders them as one
// batch). Reports committed requests/s, CPU per request (all replicas together), and signatures
// made and verified per committed request. Same-run baseline: raw ed25519 sign and verify, from
// which the crypto-only bound for the measured signature counts is computed; the ratio says how
// much of the cost is crypto. A fake-crypto run shows the protocol's own cost.
import { crypto } from '../src/crypto/index.ts';
import { encodeKvOp } from '../src/sim/pbft-app.ts';
import { PbftMemoryCluster } from '../src/sim/pbft-harness.ts';
import { opsPerSecond, type BenchRow } from './table.ts';

/** Wall time per measurement. */
const RUN_MS = 1500;
const SIZES = [4, 7] as const;
const BATCHES = [1, 16, 64] as const;

interface Measurement {
  requestsPerSec: number;
  cpuUsPerRequest: number;
  signedPerRequest: number;
  verifiedPerRequest: number;
  clientVerifiedPerRequest: number;
  requestSigsPerRequest: number;
}

export function measure(n: number, batch: number, kind: 'ed25519' | 'fake', ms: number): Measurement {
  const c = new PbftMemoryCluster({ n, clients: batch, crypto: kind, limits: { maxBatchRequests: batch, maxInflightBatches: 1, checkpointInterval: 128, watermarkWindow: 256 } });
  const clients = [...c.clients.keys()];
  const ops = clients.map((id, i) => encodeKvOp({ k: 'put', key: `k${i}`, value: id }));
  const primary = c.host('r0').replica;
  let requests = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let verifiedBefore = 0;
  for (const cl of c.clients.values()) verifiedBefore += cl.verifications;
  while (performance.now() - start < ms) {
    clients.forEach((id, i) => c.submit(id, ops[i] as Uint8Array));
    // Every request reaches the primary before it cuts a batch: one batch per round.
    for (const e of c.take((x) => x.message.type === 'request')) primary.step(e.from, e.message);
    c.deliverAll();
    requests += batch;
  }
  const secs = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  let signed = 0;
  let verified = 0;
  let requestSigs = 0;
  let executed = 0;
  for (const h of c.hosts.values()) {
    const s = h.replica.stats();
    signed += s.signaturesMade;
    verified += s.signaturesVerified;
    requestSigs += s.clientSignaturesVerified;
    executed = Math.max(executed, s.requestsExecuted);
  }
  let clientVerified = -verifiedBefore;
  for (const cl of c.clients.values()) clientVerified += cl.verifications;
  if (executed !== requests) throw new Error(`bench: ${executed} executed of ${requests} submitted`);
  return {
    requestsPerSec: requests / secs,
    cpuUsPerRequest: (cpu.user + cpu.system) / requests,
    signedPerRequest: signed / requests,
    verifiedPerRequest: verified / requests,
    clientVerifiedPerRequest: clientVerified / requests,
    requestSigsPerRequest: requestSigs / requests,
  };
}

export async function run(): Promise<BenchRow[]> {
  measure(4, 16, 'ed25519', 300); // warm-up
  const seed = crypto.randomBytes(32);
  const signer = crypto.createSigner(seed);
  const msg = crypto.sha256(seed);
  const sig = signer.sign(msg);
  const signRate = opsPerSecond(() => signer.sign(msg), 1000);
  const verifyRate = opsPerSecond(() => crypto.verify(signer.publicKey, msg, sig), 1000);
  const rows: BenchRow[] = [
    { suite: 'pbft-core', name: 'baseline: raw ed25519 sign (node:crypto)', value: signRate, unit: 'ops/s' },
    { suite: 'pbft-core', name: 'baseline: raw ed25519 verify (node:crypto)', value: verifyRate, unit: 'ops/s' },
  ];
  for (const n of SIZES) {
    let single = 0;
    for (const batch of BATCHES) {
      const m = measure(n, batch, 'ed25519', RUN_MS);
      if (batch === 1) single = m.requestsPerSec;
      // What the signatures alone would allow (replica + client + request-signature checks, one thread).
      const cryptoBound = 1 / (m.signedPerRequest / signRate + (m.verifiedPerRequest + m.clientVerifiedPerRequest + m.requestSigsPerRequest) / verifyRate);
      const label = `n=${n} batch ${batch}`;
      rows.push({
        suite: 'pbft-core',
        name: `${label}: committed requests/s (all replicas, one thread)`,
        value: m.requestsPerSec,
        unit: 'req/s',
        baseline: { name: 'crypto-only bound', value: cryptoBound },
        ratio: m.requestsPerSec / cryptoBound,
        ...(batch === 1 ? {} : { note: `${(m.requestsPerSec / single).toFixed(1)}x batch 1` }),
      });
      rows.push({ suite: 'pbft-core', name: `${label}: CPU per committed request`, value: m.cpuUsPerRequest, unit: 'us' });
      rows.push({ suite: 'pbft-core', name: `${label}: signatures made per request (all replicas)`, value: m.signedPerRequest, unit: 'sigs' });
      rows.push({ suite: 'pbft-core', name: `${label}: signatures verified per request (all replicas)`, value: m.verifiedPerRequest, unit: 'sigs', note: `+ ${m.requestSigsPerRequest.toFixed(2)} client request checks, + ${m.clientVerifiedPerRequest.toFixed(2)} reply checks at the client` });
    }
  }
  for (const n of SIZES) {
    const m = measure(n, 64, 'fake', RUN_MS);
    rows.push({ suite: 'pbft-core', name: `n=${n} batch 64, fake crypto: committed requests/s (protocol cost only)`, value: m.requestsPerSec, unit: 'req/s', note: `${m.cpuUsPerRequest.toFixed(1)} us CPU/request` });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatTable } = await import('./table.ts');
  process.stdout.write(formatTable(await run()) + '\n');
}
