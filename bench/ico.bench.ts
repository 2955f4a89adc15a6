// ICO envelope bench: sealing (JCS + ed25519 sign + JSON) and decoding (parse + checks +
// verify + replay window) against raw node:crypto sign/verify of the same bytes, same run.
// Then the hot path's question: per message, what does a Raft-sized CONSENSUS payload cost
// as one JSON envelope each (JCS + sign, parse + JCS + verify) against binary frames of
// 1/16/64 messages (one sign and one verify per frame), sealed and decoded, same run.
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer, signingBytes } from '../src/ico/envelope.ts';
import { decodeFrame, encodeJsonPayload, PAYLOAD_JSON, sealBinaryFrame } from '../src/ico/frame.ts';
import type { JsonObject } from '../src/ico/types.ts';
import { ReplayGuard } from '../src/ico/replay.ts';
import { opsPerSecond, type BenchRow } from './table.ts';

export async function run(): Promise<BenchRow[]> {
  const key = await generateKeyPair('Ed25519');
  const seed = seedFromLibp2pPrivateKey(key);
  const sender = peerIdFromPrivateKey(key).toString();
  const sealer = new EnvelopeSealer({ signer: crypto.createSigner(seed), sender });
  const payload = { beat: 42, term: 7, commit: 1234 };
  const now = Date.now();
  const sample = sealer.seal('HEARTBEAT', payload, now);
  const message = signingBytes(sample.envelope);

  const rawPriv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const rawPub = createPublicKey(rawPriv);
  const rawSig = sign(null, message, rawPriv);
  const rawSign = opsPerSecond(() => sign(null, message, rawPriv));
  const rawVerify = opsPerSecond(() => verify(null, message, rawPub, rawSig));

  const seal = opsPerSecond(() => sealer.seal('HEARTBEAT', payload, now));
  // Fresh, increasing seqs so the replay window accepts each one (as on a live link).
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 20_000; i++) frames.push(sealer.seal('HEARTBEAT', payload, now).bytes);
  let i = 0;
  const replay = new ReplayGuard();
  const decode = opsPerSecond(() => {
    const r = decodeEnvelope(frames[i++ % frames.length]!, { now, expectedSender: sender, replay: i < frames.length ? replay : undefined });
    if (!r.ok && r.error.code !== 'ICO_REPLAYED') throw r.error;
  }, 1000, 50);
  const size = sample.bytes.length;
  const rows: BenchRow[] = [
    { suite: 'ico', name: 'raw node:crypto sign (envelope signing bytes)', value: rawSign, unit: 'ops/s' },
    { suite: 'ico', name: 'raw node:crypto verify (envelope signing bytes)', value: rawVerify, unit: 'ops/s' },
    { suite: 'ico', name: `envelope seal (JCS+sign+JSON, ${size} B frame)`, value: seal, unit: 'msgs/s', baseline: { name: 'raw sign', value: rawSign }, ratio: seal / rawSign, target: '>= 0.80 of raw sign', met: seal / rawSign >= 0.8 },
    { suite: 'ico', name: 'envelope decode+verify+replay check', value: decode, unit: 'msgs/s', baseline: { name: 'raw verify', value: rawVerify }, ratio: decode / rawVerify, target: '>= 0.80 of raw verify', met: decode / rawVerify >= 0.8 },
  ];
  rows.push(...hotPath(sender, seed, now));
  return rows;
}

/** A Raft append as the driver sends it today: one entry of ~100 bytes of command, base64url. */
function raftLikePayload(i: number): JsonObject {
  return { k: 'raft', msgs: [{ type: 'append', term: 7, from: 'A'.repeat(52), to: 'B'.repeat(52), prevIndex: 1000 + i, prevTerm: 7, commit: 999 + i, entries: [[7, 1001 + i, 0, 'x'.repeat(200)]] }] };
}

/**
 * ops/s of each function from its best of `trials` short runs, the functions taking turns, so
 * a shared machine's load hits each alike and preemption does not pass for cost.
 */
function interleavedBest(fns: Record<string, () => void>, trials = 30, iterations = 20): Record<string, number> {
  const best: Record<string, number> = {};
  for (const fn of Object.values(fns)) for (let i = 0; i < iterations; i++) fn();
  for (let t = 0; t < trials; t++) {
    for (const [name, fn] of Object.entries(fns)) {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) fn();
      const perOp = (performance.now() - start) / iterations;
      best[name] = Math.min(best[name] ?? Infinity, perOp);
    }
  }
  return Object.fromEntries(Object.entries(best).map(([name, ms]) => [name, 1000 / ms]));
}

const HOT_PATH_BATCHES = [1, 16, 64] as const;

/** Seal then decode (with the replay window) per message: JSON envelopes vs binary frames of n. */
function hotPath(sender: string, seed: Uint8Array, now: number): BenchRow[] {
  const payloads = Array.from({ length: 64 }, (_, i) => raftLikePayload(i));
  const signer = crypto.createSigner(seed);
  const jsonSealer = new EnvelopeSealer({ signer, sender });
  const jsonReplay = new ReplayGuard();
  let k = 0;
  const fns: Record<string, () => void> = {
    json: () => {
      const { bytes } = jsonSealer.seal('CONSENSUS', payloads[k++ % 64]!, now);
      const r = decodeFrame(bytes, { now, expectedSender: sender, replay: jsonReplay });
      if (!r.ok) throw r.error;
    },
  };
  const frameBytes: Record<number, number> = {};
  for (const n of HOT_PATH_BATCHES) {
    const binarySealer = new EnvelopeSealer({ signer, sender });
    const replay = new ReplayGuard();
    fns[`binary${n}`] = () => {
      const sealed = sealBinaryFrame(binarySealer, payloads.slice(0, n).map((p) => ({ type: 'CONSENSUS' as const, encoding: PAYLOAD_JSON, body: encodeJsonPayload(p) })), now);
      frameBytes[n] = sealed.frame.length;
      const r = decodeFrame(sealed.frame, { now, expectedSender: sender, replay });
      if (!r.ok) throw r.error;
    };
  }
  const ops = interleavedBest(fns);
  const json = ops['json']!;
  const rows: BenchRow[] = [
    { suite: 'ico', name: 'CONSENSUS message as a JSON envelope: seal + decode', value: json, unit: 'msgs/s', note: `Raft-append-like payload, ${jsonSealer.seal('CONSENSUS', payloads[0]!, now).bytes.length} B frame; best of 30 interleaved runs` },
  ];
  for (const n of HOT_PATH_BATCHES) {
    const perMessage = ops[`binary${n}`]! * n;
    rows.push({
      suite: 'ico',
      name: `CONSENSUS messages in binary frames of ${n}: seal + decode`,
      value: perMessage,
      unit: 'msgs/s',
      baseline: { name: 'JSON envelope each', value: json },
      ratio: perMessage / json,
      note: `${frameBytes[n]} B per frame of ${n}`,
    });
  }
  return rows;
}
