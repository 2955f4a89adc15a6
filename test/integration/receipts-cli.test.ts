// The receipts CLI round trip on a node's data dir (peer.key + LevelDB store), as an
// operator would run it: export → verify (with inputs/outputs) → prove → verify-proof, and
// every bad input (garbage and truncated lines, tampered receipts and proofs) caught clearly.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { LevelStore } from '../../src/store/level.ts';
import { BIN, ROOT, tempDir } from '../harness/processes.ts';

const dir = tempDir('hypersync-receipts-cli-');
const dataDir = join(dir, 'node');
const N = 25;

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'receipts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

before(async () => {
  const key = await loadOrCreateKey(dataDir);
  const log = await ReceiptLog.open(await LevelStore.open(join(dataDir, 'store')), { signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), peerId: peerIdFromPrivateKey(key).toString() });
  const inputs: string[] = [];
  const outputs: string[] = [];
  for (let i = 0; i < N; i++) {
    await log.append({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, outputs: { ok: true, version: i } });
    inputs.push(JSON.stringify({ key: `k${i}`, value: i }));
    outputs.push(JSON.stringify({ ok: true, version: i }));
  }
  await log.close();
  writeFileSync(join(dir, 'inputs.jsonl'), `${inputs.join('\n')}\n`);
  writeFileSync(join(dir, 'outputs.jsonl'), `${outputs.join('\n')}\n`);
});

test('append adds to the same log from the command line', () => {
  const r = cli('append', '--data-dir', dataDir, '--operator', 'echo', '--inputs', '{"m":"hi"}', '--outputs', '{"m":"hi"}');
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { index: number }).index, N);
  assert.equal(cli('append', '--data-dir', dataDir, '--operator', 'echo', '--inputs', '{oops', '--outputs', '1').code, 2);
});

test('export → verify → prove → verify-proof', () => {
  const exp = cli('export', '--data-dir', dataDir);
  assert.equal(exp.code, 0, exp.err);
  const lines = exp.out.trim().split('\n');
  assert.equal(lines.length, N + 1);
  const file = join(dir, 'receipts.jsonl');
  writeFileSync(file, `${lines.slice(0, N).join('\n')}\n`);
  const ver = cli('verify', file, '--inputs', join(dir, 'inputs.jsonl'), '--outputs', join(dir, 'outputs.jsonl'));
  assert.equal(ver.code, 0, ver.out + ver.err);
  assert.match(ver.out, new RegExp(`ok: ${N} receipts verified`));
  const from = cli('export', '--data-dir', dataDir, '--from', '20');
  assert.equal(from.out.trim().split('\n').length, N + 1 - 20);
  const id = (JSON.parse(lines[7]!) as { receipt_id: string }).receipt_id;
  const prove = cli('prove', '--data-dir', dataDir, '--id', id);
  assert.equal(prove.code, 0, prove.err);
  const bundlePath = join(dir, 'proof.json');
  writeFileSync(bundlePath, prove.out);
  const vp = cli('verify-proof', bundlePath);
  assert.equal(vp.code, 0, vp.out);
  assert.match(vp.out, /is in the signed tree of size 26/);
  // A proof bundle with an altered path, or for another receipt, fails.
  const bundle = JSON.parse(prove.out) as { proof: { path: string[] }; receipt: unknown };
  const bad = structuredClone(bundle);
  bad.proof.path[0] = bad.proof.path[0]!.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
  writeFileSync(join(dir, 'bad-proof.json'), JSON.stringify(bad));
  const vb = cli('verify-proof', join(dir, 'bad-proof.json'));
  assert.equal(vb.code, 1);
  assert.match(vb.out, /does not lead to the signed root/);
  assert.equal(cli('prove', '--data-dir', dataDir, '--id', 'receipt_missing').code, 1);
});

test('verify reports the first failure with index, step and reason', () => {
  const lines = cli('export', '--data-dir', dataDir).out.trim().split('\n').slice(0, N);
  const tampered = [...lines];
  const r = JSON.parse(tampered[9]!) as { operation: { operator_id: string } };
  r.operation.operator_id = 'kv.delete';
  tampered[9] = JSON.stringify(r);
  writeFileSync(join(dir, 'tampered.jsonl'), `${tampered.join('\n')}\n`);
  const t = cli('verify', join(dir, 'tampered.jsonl'));
  assert.equal(t.code, 1);
  assert.match(t.out, /FAILED at index 9 \(line 10\), step 1 \(signature\)/);
  const gap = [...lines.slice(0, 5), ...lines.slice(6)];
  writeFileSync(join(dir, 'gap.jsonl'), `${gap.join('\n')}\n`);
  assert.match(cli('verify', join(dir, 'gap.jsonl')).out, /FAILED at index 6 \(line 6\), step 2 \(link\)/);
  const wrongOutputs = readFileSync(join(dir, 'outputs.jsonl'), 'utf8').replace('"version":3', '"version":33');
  writeFileSync(join(dir, 'wrong-outputs.jsonl'), wrongOutputs);
  assert.match(cli('verify', join(dir, 'receipts.jsonl'), '--outputs', join(dir, 'wrong-outputs.jsonl')).out, /index 3 .*step 4 \(outputs\)/);
});

test('garbage and truncated lines are clear errors with the line number', () => {
  const lines = cli('export', '--data-dir', dataDir).out.trim().split('\n');
  writeFileSync(join(dir, 'truncated.jsonl'), `${lines[0]}\n${lines[1]!.slice(0, 60)}\n`);
  const t = cli('verify', join(dir, 'truncated.jsonl'));
  assert.equal(t.code, 1);
  assert.match(t.err, /truncated\.jsonl:2: not valid JSON/);
  writeFileSync(join(dir, 'garbage.jsonl'), '\u0000\u0001garbage\n');
  assert.match(cli('verify', join(dir, 'garbage.jsonl')).err, /garbage\.jsonl:1: not valid JSON/);
  writeFileSync(join(dir, 'object.jsonl'), '{"hello":"world"}\n');
  assert.match(cli('verify', join(dir, 'object.jsonl')).out, /FAILED at index 0 \(line 1\), step 1 \(signature\): malformed receipt: unexpected field 'hello'/);
  assert.equal(cli('verify').code, 2);
  assert.match(cli('verify', join(dir, 'missing.jsonl')).err, /ENOENT|no such file/);
  assert.match(cli('--help').out, /export --data-dir/);
});

test('reading commands create nothing; each command has its own --help', async () => {
  const fresh = join(dir, 'fresh-node');
  await loadOrCreateKey(fresh);
  const exp = cli('export', '--data-dir', fresh);
  assert.equal(exp.code, 0, exp.err);
  assert.equal(exp.out, '', 'a node that never appended has no receipts');
  assert.equal(cli('prove', '--data-dir', fresh, '--id', `receipt_${'0'.repeat(64)}`).code, 1);
  assert.ok(!existsSync(join(fresh, 'store')), 'export and prove did not create a store');
  const bare = join(dir, 'not-a-node');
  mkdirSync(bare);
  const r = cli('export', '--data-dir', bare);
  assert.equal(r.code, 2);
  assert.match(r.err, /no peer\.key/);
  assert.ok(!existsSync(join(bare, 'peer.key')), 'export did not create a key');
  for (const [command, line] of [['export', /receipts export --data-dir/], ['verify', /five steps/], ['prove', /inclusion proof/], ['verify-proof', /offline/], ['append', /by hand/]] as const) {
    const h = cli(command, '--help');
    assert.equal(h.code, 0);
    assert.match(h.out, line, command);
  }
});
