// The verify bench inside a real browser (driven by bench/verify.bench.ts): raw WebCrypto
// Ed25519 and @noble rates (the sync-vs-async decision), verifying one receipt with its
// inclusion proof, chain verification and envelope opening against raw WebCrypto verify, and
// receipt appends to IndexedDB signed by WebCrypto (after) and @noble (before) against raw
// WebCrypto sign. Every comparison alternates short rounds of the code and its baseline in
// this page and reports medians, so load on the shared machine hits both sides alike.
import { base64urlDecode, crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';
import { EnvelopeSealer, openEnvelope, signingBytes } from '../../src/ico/envelope.ts';
import { prepareReceipt, receiptShapeProblem, type Receipt, type SignatureCheck } from '../../src/receipts/receipt.ts';
import { verifyChain, verifyProofBundle } from '../../src/verify/index.ts';
import { measureIdbAppends } from '../../e2e/idb/append-rate.ts';

const ALG = { name: 'Ed25519' } as const;
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/** Operations in flight for the "in flight" rates (the chain verifier's own window). */
const DEPTH = 64;
/** The signed text of a receipt is about this long. */
const MESSAGE_BYTES = 330;

export interface Compared {
  value: number;
  baseline: number;
  ratio: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Runs `op` back to back, each awaited, for about `ms`; ops/s. */
async function sequentialRate(op: () => Promise<unknown>, ms: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    await op();
    n++;
    if ((n & 7) === 0) now = performance.now();
  }
  return (n * 1000) / (performance.now() - t0);
}

/** Keeps `depth` calls of `op` in flight for about `ms`; ops/s. */
async function inFlightRate(op: () => Promise<unknown>, depth: number, ms: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (performance.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return (n * 1000) / (performance.now() - t0);
}

/** Alternates `baseline` and `subject` rounds (each returns ops/s); medians of each and of the per-round ratio. */
async function compare(subject: () => Promise<number>, baseline: () => Promise<number>, rounds: number): Promise<Compared> {
  const values: number[] = [];
  const baselines: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const b = await baseline();
    const v = await subject();
    baselines.push(b);
    values.push(v);
    ratios.push(v / b);
  }
  return { value: median(values), baseline: median(baselines), ratio: median(ratios) };
}

interface RawKeys {
  sign: CryptoKey;
  verify: CryptoKey;
  message: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

async function rawKeys(): Promise<RawKeys> {
  const seed = crypto.randomBytes(32);
  const der = new Uint8Array([...PKCS8_PREFIX, ...seed]);
  const sign = await globalThis.crypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  const verify = await globalThis.crypto.subtle.importKey('raw', Uint8Array.from(nobleCrypto.createSigner(seed).publicKey), ALG, false, ['verify']);
  const message = Uint8Array.from(crypto.randomBytes(MESSAGE_BYTES));
  const signature = new Uint8Array(await globalThis.crypto.subtle.sign(ALG, sign, message));
  return { sign, verify, message, signature };
}

/** Raw rates in this page: WebCrypto one at a time and DEPTH in flight, and @noble (synchronous). */
async function raw(ms: number): Promise<Record<string, number>> {
  const k = await rawKeys();
  const subtle = globalThis.crypto.subtle;
  const noble = nobleCrypto.createSigner(crypto.randomBytes(32));
  const nobleSig = noble.sign(k.message);
  return {
    webcryptoSignSequential: await sequentialRate(() => subtle.sign(ALG, k.sign, k.message), ms),
    webcryptoVerifySequential: await sequentialRate(() => subtle.verify(ALG, k.verify, k.signature, k.message), ms),
    webcryptoSignInFlight: await inFlightRate(() => subtle.sign(ALG, k.sign, k.message), DEPTH, ms),
    webcryptoVerifyInFlight: await inFlightRate(() => subtle.verify(ALG, k.verify, k.signature, k.message), DEPTH, ms),
    nobleSign: await sequentialRate(async () => noble.sign(k.message), ms),
    nobleVerify: await sequentialRate(async () => nobleCrypto.verify(noble.publicKey, k.message, nobleSig), ms),
  };
}

/** Latency (ms) of verifyProofBundle on each bundle, `passes` times; the very first call (cold) apart. */
async function proofLatency(bundles: unknown[], passes: number): Promise<{ first: number; samples: number[]; failures: number }> {
  const samples: number[] = [];
  let failures = 0;
  let t = performance.now();
  if (!(await verifyProofBundle(bundles[0])).ok) failures++;
  const first = performance.now() - t;
  for (let p = 0; p < passes; p++) {
    for (const b of bundles) {
      t = performance.now();
      const v = await verifyProofBundle(b);
      samples.push(performance.now() - t);
      if (!v.ok) failures++;
    }
  }
  return { first, samples, failures };
}

/** verifyChain over `receipts` against raw WebCrypto verify of the same signatures, DEPTH in flight, with the key imported once. */
async function chain(receipts: Receipt[], rounds: number, now: number): Promise<Compared & { sequentialBaseline: number }> {
  const checks: SignatureCheck[] = receipts.map((r) => {
    if (receiptShapeProblem(r) !== null) throw new Error('bench receipt is malformed');
    const p = prepareReceipt(r);
    if ('problem' in p) throw new Error(p.problem);
    return p.check;
  });
  const key = await globalThis.crypto.subtle.importKey('raw', Uint8Array.from(checks[0]!.publicKey), ALG, false, ['verify']);
  const owned = checks.map((c) => ({ message: Uint8Array.from(c.message), signature: Uint8Array.from(c.signature) }));
  const rawPass = async (depth: number): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: depth }, async () => {
        while (next < owned.length) {
          const c = owned[next++]!;
          if (!(await globalThis.crypto.subtle.verify(ALG, key, c.signature, c.message))) throw new Error('raw verify failed');
        }
      }),
    );
    return (owned.length * 1000) / (performance.now() - t0);
  };
  const chainPass = async (): Promise<number> => {
    const t0 = performance.now();
    const v = await verifyChain(receipts, { now });
    if (!v.ok) throw new Error(`bench chain does not verify: ${v.reason}`);
    return (receipts.length * 1000) / (performance.now() - t0);
  };
  await chainPass(); // warm-up: JIT, the public key import
  const compared = await compare(chainPass, () => rawPass(DEPTH), rounds);
  return { ...compared, sequentialBaseline: await rawPass(1) };
}

/** openEnvelope (what the tab runs on every frame) against raw WebCrypto verify of the same signing bytes. */
async function envelopes(count: number, rounds: number): Promise<{ sequential: Compared; inFlight: Compared }> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const sender = peerIdFromPublicKeyBytes(signer.publicKey);
  const sealer = new EnvelopeSealer({ signer, sender });
  const now = Date.now();
  const sealed = Array.from({ length: count }, (_, i) => sealer.seal('CONSENSUS', { term: 7, index: i, entries: [{ op: 'kv.put', key: `user/${i}`, value: 'x'.repeat(48) }] }, now));
  const frames = sealed.map((s) => s.bytes);
  const messages = sealed.map((s) => Uint8Array.from(signingBytes(s.envelope)));
  const signatures = sealed.map((s) => Uint8Array.from(base64urlDecode(s.envelope.signature)));
  const key = await globalThis.crypto.subtle.importKey('raw', Uint8Array.from(signer.publicKey), ALG, false, ['verify']);
  const pass = async (depth: number, one: (i: number) => Promise<boolean>): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: depth }, async () => {
        while (next < count) if (!(await one(next++))) throw new Error('bench envelope failed to verify');
      }),
    );
    return (count * 1000) / (performance.now() - t0);
  };
  const open = (i: number): Promise<boolean> => openEnvelope(frames[i]!, { now, expectedSender: sender }).then((r) => r.ok);
  const rawVerify = (i: number): Promise<boolean> => globalThis.crypto.subtle.verify(ALG, key, signatures[i]!, messages[i]!);
  await pass(DEPTH, open); // warm-up
  return {
    sequential: await compare(() => pass(1, open), () => pass(1, rawVerify), rounds),
    inFlight: await compare(() => pass(DEPTH, open), () => pass(DEPTH, rawVerify), rounds),
  };
}

/** IndexedDB appends signed by the adapter (after) and by @noble (before), each round after raw WebCrypto sign (one at a time). */
async function appends(n: number, concurrent: number, rounds: number, ms: number): Promise<Record<'adapter' | 'noble', { sequential: Compared; concurrent: Compared; verified: boolean }>> {
  const k = await rawKeys();
  const rawSign = (): Promise<number> => sequentialRate(() => globalThis.crypto.subtle.sign(ALG, k.sign, k.message), ms);
  const out = {} as Record<'adapter' | 'noble', { sequential: Compared; concurrent: Compared; verified: boolean }>;
  for (const signing of ['adapter', 'noble'] as const) {
    const seq: number[] = [];
    const conc: number[] = [];
    const base: number[] = [];
    let verified = true;
    for (let r = 0; r < rounds; r++) {
      base.push(await rawSign());
      const rate = await measureIdbAppends(n, signing, concurrent);
      verified &&= rate.verified && rate.proofChecked && rate.consistencyChecked;
      seq.push(rate.sequentialPerSec);
      conc.push(rate.concurrentPerSec);
    }
    const b = median(base);
    const ratio = (values: number[]): number => median(values.map((v, i) => v / base[i]!));
    out[signing] = { sequential: { value: median(seq), baseline: b, ratio: ratio(seq) }, concurrent: { value: median(conc), baseline: b, ratio: ratio(conc) }, verified };
  }
  return out;
}

export interface VerifyBench {
  adapter: string;
  crossOriginIsolated: boolean;
  raw: typeof raw;
  proofLatency: typeof proofLatency;
  chain: typeof chain;
  envelopes: typeof envelopes;
  appends: typeof appends;
}

declare global {
  interface Window {
    verifyBench?: VerifyBench;
  }
}

window.verifyBench = { adapter: crypto.name, crossOriginIsolated: globalThis.crossOriginIsolated, raw, proofLatency, chain, envelopes, appends };
document.getElementById('out')!.textContent = `ready: adapter ${crypto.name}, cross-origin isolated ${String(globalThis.crossOriginIsolated)}`;
