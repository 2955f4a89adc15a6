// ICO envelope bench: sealing (JCS + ed25519 sign + JSON) and decoding (parse + checks +
// verify + replay window) against raw node:crypto sign/verify of the same bytes, same run.
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { decodeEnvelope, EnvelopeSealer, signingBytes } from '../src/ico/envelope.ts';
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
  return [
    { suite: 'ico', name: 'raw node:crypto sign (envelope signing bytes)', value: rawSign, unit: 'ops/s' },
    { suite: 'ico', name: 'raw node:crypto verify (envelope signing bytes)', value: rawVerify, unit: 'ops/s' },
    { suite: 'ico', name: `envelope seal (JCS+sign+JSON, ${size} B frame)`, value: seal, unit: 'msgs/s', baseline: { name: 'raw sign', value: rawSign }, ratio: seal / rawSign, target: '>= 0.80 of raw sign', met: seal / rawSign >= 0.8 },
    { suite: 'ico', name: 'envelope decode+verify+replay check', value: decode, unit: 'msgs/s', baseline: { name: 'raw verify', value: rawVerify }, ratio: decode / rawVerify, target: '>= 0.80 of raw verify', met: decode / rawVerify >= 0.8 },
  ];
}
