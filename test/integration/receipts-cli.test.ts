// The receipts CLI round trip on a node's data dir (peer.key + LevelDB store), as an
// operator would run it: export → verify (with inputs/outputs) → prove → verify-proof, and
// every bad input (garbage and truncated lines, tampered receipts and proofs) caught clearly.
// The same commands against a running relay API (paged export, prove by index), and what a
// running node's locked data dir and an empty receipts file answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { crypto as cryptoAdapter, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { MAX_LIST_LIMIT } from '../../relay/api/schemas.ts';
import { buildApi } from '../../relay/api/server.ts';
import { generateDevCa } from '../../relay/api/tls.ts';
import { BIN, ROOT, tempDir } from '../harness/processes.ts';

const dir = tempDir('hypersync-receipts-cli-');
const dataDir = join(dir, 'node');
const N = 25;

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'receipts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** The CLI without blocking this process: needed while this process serves the API it calls. */
async function cliAsync(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, 'receipts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
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
  assert.match(cli('--help').out, /--data-dir DIR/);
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
  for (const [command, line] of [['export', /--data-dir DIR reads <DIR>\/store/], ['verify', /five steps/], ['prove', /inclusion proof/], ['verify-proof', /offline/], ['append', /by hand/]] as const) {
    const h = cli(command, '--help');
    assert.equal(h.code, 0);
    assert.match(h.out, line, command);
  }
});

test('verifying a file without receipts is an error, not "ok: 0"', () => {
  for (const [name, text] of [['empty.jsonl', ''], ['blank.jsonl', '\n\n  \n']] as const) {
    writeFileSync(join(dir, name), text);
    const r = cli('verify', join(dir, name));
    assert.equal(r.code, 1, name);
    assert.equal(r.out, '', 'no "ok" line');
    assert.match(r.err, /RECEIPTS_EMPTY: .* holds no receipts: nothing was verified/);
  }
});

test("a running node's data dir (LevelDB locked by another process) is DATA_DIR_IN_USE, saying to use the API", async () => {
  // This test process holds the store open, as a running peer does.
  const held = await LevelStore.open(join(dataDir, 'store'), { createIfMissing: false });
  try {
    for (const args of [['export', '--data-dir', dataDir], ['prove', '--data-dir', dataDir, '--index', '0']]) {
      const r = cli(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, /DATA_DIR_IN_USE: .*belongs to a running node.*npx hypersync receipts export/);
      assert.equal(r.out, '');
    }
  } finally {
    await held.close();
  }
  assert.equal(cli('export', '--data-dir', dataDir).code, 0, 'readable again once the holder closed it');
});

test('prove --index on a data dir, and exactly one of --id and --index', () => {
  const prove = cli('prove', '--data-dir', dataDir, '--index', '4');
  assert.equal(prove.code, 0, prove.err);
  assert.equal((JSON.parse(prove.out) as { receipt: { index: number } }).receipt.index, 4);
  writeFileSync(join(dir, 'proof-4.json'), prove.out);
  assert.equal(cli('verify-proof', join(dir, 'proof-4.json')).code, 0);
  assert.equal(cli('prove', '--data-dir', dataDir, '--index', '999').code, 1);
  assert.equal(cli('prove', '--data-dir', dataDir).code, 2);
  assert.equal(cli('prove', '--data-dir', dataDir, '--index', '1', '--id', 'receipt_x').code, 2);
});

describeApi();

/** export and prove against a real relay API (HTTPS, bearer token) over an EngineBackend (single engine). */
function describeApi(): void {
  const TOKEN = 'receipts-cli-token-0123456789';
  /** More than one page, so the export has to page. */
  const RECEIPTS = MAX_LIST_LIMIT + 7;
  let app: FastifyInstance;
  let url: string;
  let caPath: string;
  let devnetDir: string;

  before(async () => {
    const tls = await generateDevCa(join(dir, 'api-tls'));
    caPath = tls.ca;
    const signer = cryptoAdapter.createSigner(cryptoAdapter.randomBytes(32));
    const backend = new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
    for (let i = 0; i < RECEIPTS; i++) await backend.execute({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: i }, options: {}, principal: 'test' });
    app = await buildApi({
      backend,
      auth: await KeyStoreAuthenticator.open({ tokens: [{ name: 'test', token: TOKEN, scopes: ['execute', 'read'] }] }),
      tls: { key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert), ca: readFileSync(tls.ca) },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    assert.ok(typeof address === 'object' && address !== null);
    url = `https://127.0.0.1:${address.port}`;
    // What a devnet writes, for the default (no --api) path.
    devnetDir = join(dir, 'devnet');
    mkdirSync(devnetDir);
    writeFileSync(join(devnetDir, 'endpoints.json'), JSON.stringify({ rest: url, ca: caPath, token: TOKEN }));
  });

  after(async () => {
    await app?.close();
  });

  test('export pages through the relay API; the export verifies; --from skips ahead', async () => {
    const exp = await cliAsync('export', '--api', url, '--ca', caPath, '--token', TOKEN);
    assert.equal(exp.code, 0, exp.err);
    const lines = exp.out.trim().split('\n');
    assert.equal(lines.length, RECEIPTS);
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { index: number }).index), Array.from({ length: RECEIPTS }, (_, i) => i));
    writeFileSync(join(dir, 'api.jsonl'), exp.out);
    const ver = cli('verify', join(dir, 'api.jsonl'));
    assert.equal(ver.code, 0, ver.out + ver.err);
    assert.equal(ver.out, `ok: ${RECEIPTS} receipts verified\n`);
    const tail = await cliAsync('export', '--devnet', devnetDir, '--from', String(MAX_LIST_LIMIT + 2));
    assert.equal(tail.code, 0, tail.err);
    assert.equal(tail.out.trim().split('\n').length, RECEIPTS - MAX_LIST_LIMIT - 2);
  });

  test('prove --index / --id through the API gives a bundle verify-proof accepts', async () => {
    const byIndex = await cliAsync('prove', '--devnet', devnetDir, '--index', '3');
    assert.equal(byIndex.code, 0, byIndex.err);
    const bundle = JSON.parse(byIndex.out) as { receipt: { index: number; receipt_id: string }; tree_head: { size: number } };
    assert.equal(bundle.receipt.index, 3);
    assert.equal(bundle.tree_head.size, RECEIPTS);
    writeFileSync(join(dir, 'api-proof.json'), byIndex.out);
    const vp = cli('verify-proof', join(dir, 'api-proof.json'));
    assert.equal(vp.code, 0, vp.out);
    const byId = await cliAsync('prove', '--api', url, '--ca', caPath, '--token', TOKEN, '--id', bundle.receipt.receipt_id);
    assert.equal((JSON.parse(byId.out) as { receipt: { index: number } }).receipt.index, 3);
    const missing = await cliAsync('prove', '--devnet', devnetDir, '--index', String(RECEIPTS));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /RECEIPT_NOT_FOUND/);
  });

  test('API failures are typed errors: a wrong token, no devnet', async () => {
    const denied = await cliAsync('export', '--api', url, '--ca', caPath, '--token', 'wrong');
    assert.equal(denied.code, 1);
    assert.match(denied.err, /UNAUTHENTICATED/);
    const none = await cliAsync('export', '--devnet', join(dir, 'no-devnet-here'));
    assert.equal(none.code, 2);
    assert.match(none.err, /endpoints\.json not found \(is the devnet running\? npm start\)/);
  });
}
