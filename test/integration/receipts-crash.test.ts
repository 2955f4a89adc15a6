// Crash safety: a writer appending receipts to LevelDB is killed with SIGKILL at random
// moments, 20 times. After each reopen every acknowledged append is there and the whole
// chain (and its Merkle root) verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { verifyChain } from '../../src/receipts/receipt.ts';
import { LevelStore } from '../../src/store/level.ts';
import { ROOT, tempDir } from '../harness/processes.ts';

const KILLS = 20;

test(`SIGKILL at random moments (${KILLS} times) loses no acknowledged receipt`, async () => {
  const dir = tempDir('hypersync-crash-');
  let seed = Number(process.env['CRASH_SEED'] ?? Date.now() % 100_000);
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  process.stderr.write(`crash test seed ${seed} (replay with CRASH_SEED=${seed})\n`);
  let maxAcked = -1;
  for (let round = 0; round < KILLS; round++) {
    const child = spawn(process.execPath, [join(ROOT, 'test/harness/receipts-writer.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let started = false;
    const killAfter = 20 + Math.floor(rnd() * 300);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('writer made no progress in 20 s')), 20_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('start ')) {
          started = true;
          setTimeout(() => {
            child.kill('SIGKILL');
          }, killAfter);
        } else if (line.startsWith('ack ')) {
          maxAcked = Math.max(maxAcked, Number(line.slice(4)));
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.ok(started, `round ${round}: writer never started`);
    const key = await loadOrCreateKey(dir);
    const log = await ReceiptLog.open(await LevelStore.open(join(dir, 'store')), { signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), peerId: peerIdFromPrivateKey(key).toString() });
    try {
      assert.ok(log.size > maxAcked, `round ${round}: acknowledged index ${maxAcked} but the log has only ${log.size} receipts`);
      const result = await verifyChain(log.iterate(), { now: Date.now() + 1000, signer: log.peerId });
      assert.ok(result.ok, `round ${round}: chain does not verify: ${JSON.stringify(result)}`);
      assert.equal(result.count, log.size);
      // The stored Merkle tree agrees with the chain: the newest receipt's proof verifies.
      const last = await log.get(log.size - 1);
      if (last !== undefined) {
        const { proofBundleProblem } = await import('../../src/receipts/proof.ts');
        assert.equal(proofBundleProblem({ receipt: last, proof: await log.inclusionProof(last.receipt_id), tree_head: log.signedTreeHead() }), null);
      }
    } finally {
      await log.close();
    }
  }
  assert.ok(maxAcked > KILLS, `only ${maxAcked + 1} receipts acknowledged over ${KILLS} rounds`);
});
