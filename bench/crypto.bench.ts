// Crypto bench: each adapter's ed25519 and sha256 rates against raw node:crypto in the same
// run (KeyObjects prebuilt: the fastest Node can do), and JCS + sign of a 1 KiB payload.
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { nodeCrypto } from '../src/crypto/node.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { canonicalBytes } from '../src/crypto/index.ts';
import { opsPerSecond, type BenchRow } from './table.ts';

function payload1KiB(): Record<string, unknown> {
  const items: Array<Record<string, unknown>> = [];
  for (let i = 0; items.length < 10; i++) items.push({ key: `user/${i}/profile`, value: 'x'.repeat(40), n: i * 1.5, ok: i % 2 === 0 });
  return { operator_id: 'kv.put', inputs: { items }, options: { consensus: 'raft', timeout_ms: 5000 } };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seed = nodeCrypto.randomBytes(32);
  const message = nodeCrypto.randomBytes(256);

  const rawPriv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const rawPub = createPublicKey(rawPriv);
  const rawSig = sign(null, message, rawPriv);
  const rawSign = opsPerSecond(() => sign(null, message, rawPriv));
  const rawVerify = opsPerSecond(() => verify(null, message, rawPub, rawSig));
  const rawSha = opsPerSecond(() => createHash('sha256').update(message).digest());
  rows.push({ suite: 'crypto', name: 'raw node:crypto ed25519 sign (256 B)', value: rawSign, unit: 'ops/s' });
  rows.push({ suite: 'crypto', name: 'raw node:crypto ed25519 verify (256 B)', value: rawVerify, unit: 'ops/s' });
  rows.push({ suite: 'crypto', name: 'raw node:crypto sha256 (256 B)', value: rawSha, unit: 'ops/s' });

  for (const adapter of [nodeCrypto, nobleCrypto]) {
    const signer = adapter.createSigner(seed);
    const sig = signer.sign(message);
    const ms = adapter.name === 'noble' ? 600 : 1000;
    const s = opsPerSecond(() => signer.sign(message), ms, adapter.name === 'noble' ? 10 : 100);
    const v = opsPerSecond(() => adapter.verify(signer.publicKey, message, sig), ms, adapter.name === 'noble' ? 10 : 100);
    const h = opsPerSecond(() => adapter.sha256(message), ms);
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter sign`, value: s, unit: 'ops/s', baseline: { name: 'raw sign', value: rawSign }, ratio: s / rawSign });
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter verify`, value: v, unit: 'ops/s', baseline: { name: 'raw verify', value: rawVerify }, ratio: v / rawVerify });
    rows.push({ suite: 'crypto', name: `${adapter.name} adapter sha256`, value: h, unit: 'ops/s', baseline: { name: 'raw sha256', value: rawSha }, ratio: h / rawSha });
  }

  const doc = payload1KiB();
  const size = canonicalBytes(doc).length;
  const signer = nodeCrypto.createSigner(seed);
  const jcsSign = opsPerSecond(() => signer.sign(canonicalBytes(doc)));
  rows.push({
    suite: 'crypto', name: `JCS + sign, ${size} B payload (node adapter)`, value: jcsSign, unit: 'ops/s',
    baseline: { name: 'raw sign', value: rawSign }, ratio: jcsSign / rawSign, target: '>= 20,000 ops/s', met: jcsSign >= 20_000,
  });
  return rows;
}
