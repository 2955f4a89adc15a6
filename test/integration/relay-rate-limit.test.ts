// `hypersync relay --rate-limit N`: a principal gets N requests/s with a burst of 2N, then 429
// RATE_LIMITED (the raft-cluster bench lifts it, as etcd has no per-client limit).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { initCluster } from '../../src/cli/keys.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { killAll, run, tempDir } from '../harness/processes.ts';

const TOKEN = 'rate-limit-test-token-0123456789';
const RATE = 3;
const REQUESTS = 20;

after(async () => {
  await killAll();
});

test('a relay started with --rate-limit N answers a burst of 2N and refuses the rest with 429 RATE_LIMITED', async () => {
  const dir = tempDir();
  await initCluster(dir, 'ratetest', [peerIdFromPrivateKey(await loadOrCreateKey(join(dir, 'relay'))).toString()]);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  const relay = run('relay', ['relay', '--cluster-config', join(dir, 'cluster.json'), '--data-dir', join(dir, 'relay'), '--port', '0', '--http-port', '0', '--insecure', '--token-file', join(dir, 'token'), '--rate-limit', String(RATE), '--json-events']);
  const api = String((await relay.ready())['http']);
  const started = performance.now();
  const statuses: number[] = [];
  for (let i = 0; i < REQUESTS; i++) statuses.push((await fetch(`${api}/api/v1/cluster`, { headers: { authorization: `Bearer ${TOKEN}` } })).status);
  const seconds = (performance.now() - started) / 1000;
  const ok = statuses.filter((s) => s === 200).length;
  assert.deepEqual(statuses.slice(0, 2 * RATE), Array(2 * RATE).fill(200), 'the burst is answered');
  assert.ok(ok <= 2 * RATE + Math.ceil(RATE * seconds), `${ok} answered in ${seconds.toFixed(2)} s`);
  assert.ok(statuses.includes(429), `refused past the rate: ${statuses.join(',')}`);
  assert.ok(statuses.every((s) => s === 200 || s === 429), statuses.join(','));
});
