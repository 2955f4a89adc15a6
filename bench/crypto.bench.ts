// Crypto bench: each adapter's ed25519 and sha256 rates against raw node:crypto (KeyObjects
// prebuilt: the fastest Node can do), envelope seal and decode+verify against raw sign and
// verify, and JCS + sign of a 1 KiB payload. The machine is shared, so every ratio comes from
// interleaved short rounds of the measured code and its baseline (median over the rounds):
// load that comes and goes hits both sides alike instead of skewing one of them.
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { nodeCrypto } from '../src/crypto/node.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { canonicalBytes, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer, signingBytes } from '../src/ico/envelope.ts';
import { ReplayGuard } from '../src/ico/replay.ts';
import { opsPerSecond, type BenchRow } from './table.ts';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Interleaved rounds per comparison, and the length of each measurement in a round. */
const ROUNDS = 7;
const ROUND_MS = 150;
/** Frames pre-sealed for the decode bench (each is decoded once per pass through the list). */
const DECODE_FRAMES = 20_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

interface Compared {
  value: number;
  baseline: number;
  ratio: number;
}

/** Alternates `fn` and `base` in short rounds; medians of each rate and of the per-round ratio. */
function compare(fn: () => void, base: () => void, batch = 50, rounds = ROUNDS, ms = ROUND_MS): Compared {
  const values: number[] = [];
  const baselines: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const b = opsPerSecond(base, ms, batch);
    const v = opsPerSecond(fn, ms, batch);
    values.push(v);
    baselines.push(b);
    ratios.push(v / b);
  }
  return { value: median(values), baseline: median(baselines), ratio: median(ratios) };
}

function payload1KiB(): Record<string, unknown> {
  const items: Array<Record<string, unknown>> = [];
  for (let i = 0; items.length < 10; i++) items.push({ key: `user/${i}/profile`, value: 'x'.repeat(40), n: i * 1.5, ok: i % 2 === 0 });
  return { operator_id: 'kv.put', inputs: { items }, options: { consensus: 'raft', timeout_ms: 5000 } };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seed = nodeCrypto.randomBytes(32);
  const message = nodeCrypto.randomBytes(256);

  const rawPriv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const rawPub = createPublicKey(rawPriv);
  const rawSig = sign(null, message, rawPriv);
  const rawSign = (): void => void sign(null, message, rawPriv);
  const rawVerify = (): void => void verify(null, message, rawPub, rawSig);
  const rawSha = (): void => void createHash('sha256').update(message).digest();

  for (const adapter of [nodeCrypto, nobleCrypto]) {
    const signer = adapter.createSigner(seed);
    const sig = signer.sign(message);
    // noble is ~10x slower: fewer calls per batch keep its rounds as short as node's.
    const batch = adapter.name === 'noble' ? 5 : 50;
    const s = compare(() => signer.sign(message), rawSign, batch);
    const v = compare(() => adapter.verify(signer.publicKey, message, sig), rawVerify, batch);
    const h = compare(() => adapter.sha256(message), rawSha, 200);
    if (adapter.name === 'node') {
      rows.push({ suite: 'crypto', name: 'raw node:crypto ed25519 sign (256 B)', value: s.baseline, unit: 'ops/s' });
      rows.push({ suite: 'crypto', name: 'raw node:crypto ed25519 verify (256 B)', value: v.baseline, unit: 'ops/s' });
      rows.push({ suite: 'crypto', name: 'raw node:crypto sha256 (256 B)', value: h.baseline, unit: 'ops/s' });
    }
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter sign (256 B)`, value: s.value, unit: 'ops/s', baseline: { name: 'raw sign', value: s.baseline }, ratio: s.ratio });
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter verify (256 B)`, value: v.value, unit: 'ops/s', baseline: { name: 'raw verify', value: v.baseline }, ratio: v.ratio });
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter sha256 (256 B)`, value: h.value, unit: 'ops/s', baseline: { name: 'raw sha256', value: h.baseline }, ratio: h.ratio });
  }

  // Envelopes: the baseline signs / verifies the very bytes the envelope signature covers.
  const key = await generateKeyPair('Ed25519');
  const keySeed = seedFromLibp2pPrivateKey(key);
  const sender = peerIdFromPrivateKey(key).toString();
  const sealer = new EnvelopeSealer({ signer: nodeCrypto.createSigner(keySeed), sender });
  const envPayload = { beat: 42, term: 7, commit: 1234 };
  const now = Date.now();
  const sample = sealer.seal('HEARTBEAT', envPayload, now);
  const envMessage = signingBytes(sample.envelope);
  const envPriv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, keySeed]), format: 'der', type: 'pkcs8' });
  const envPub = createPublicKey(envPriv);
  const envSig = sign(null, envMessage, envPriv);
  const seal = compare(() => sealer.seal('HEARTBEAT', envPayload, now), () => void sign(null, envMessage, envPriv));
  rows.push({
    suite: 'crypto', name: `envelope seal (JCS+sign+wire, ${sample.bytes.length} B frame)`, value: seal.value, unit: 'msgs/s',
    baseline: { name: 'raw sign', value: seal.baseline }, ratio: seal.ratio, target: '>= 0.80 of raw sign', met: seal.ratio >= 0.8,
  });
  // Fresh, increasing seqs so the replay window accepts each one (as on a live link); the
  // window is only consulted on the first pass, later passes measure the rest alone.
  const frames: Uint8Array[] = [];
  for (let i = 0; i < DECODE_FRAMES; i++) frames.push(sealer.seal('HEARTBEAT', envPayload, now).bytes);
  const replay = new ReplayGuard();
  let next = 0;
  const decode = compare(() => {
    const r = decodeEnvelope(frames[next % frames.length] as Uint8Array, { now, expectedSender: sender, replay: next < frames.length ? replay : undefined });
    next++;
    if (!r.ok) throw r.error;
  }, () => void verify(null, envMessage, envPub, envSig));
  rows.push({
    suite: 'crypto', name: 'envelope decode+verify+replay check', value: decode.value, unit: 'msgs/s',
    baseline: { name: 'raw verify', value: decode.baseline }, ratio: decode.ratio, target: '>= 0.80 of raw verify', met: decode.ratio >= 0.8,
  });

  const doc = payload1KiB();
  const size = canonicalBytes(doc).length;
  const signer = nodeCrypto.createSigner(seed);
  const docBytes = canonicalBytes(doc);
  const jcsSign = compare(() => signer.sign(canonicalBytes(doc)), () => void sign(null, docBytes, rawPriv));
  rows.push({
    suite: 'crypto', name: `JCS + sign, ${size} B payload (node adapter)`, value: jcsSign.value, unit: 'ops/s',
    baseline: { name: `raw sign of the ${size} B`, value: jcsSign.baseline }, ratio: jcsSign.ratio, target: '>= 20,000 ops/s', met: jcsSign.value >= 20_000,
  });
  return rows;
}
