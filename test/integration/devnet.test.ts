// `hypersync devnet` end to end: it comes up, writes the endpoints contract, its peers and
// relay are healthy, and Ctrl-C (SIGINT) stops every child: no orphans. A SIGKILLed
// devnet's children notice their parent is gone and stop by themselves.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_BUILD_DIR, NODE_BUILD_ENTRY } from '../../src/cli/node-build.ts';
import { isAlive, killAll, ROOT, run, tempDir } from '../harness/processes.ts';
import { call } from '../harness/https-client.ts';
import { freePortBase } from '../harness/ports.ts';

after(async () => {
  await killAll();
});

interface Endpoints {
  rest: string;
  grpc: string;
  libp2p: string[];
  web: string | null;
  token: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  peers: Array<{ peerId: string; pid: number; dataDir: string; role: string }>;
}

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > end) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a devnet on free ports: by --port-base, or (byEnv) by HYPERSYNC_PORT_BASE as `npm start` would. */
async function startDevnet(portBase: number, extra: string[] = [], byEnv = false): Promise<{ dir: string; endpoints: Endpoints; proc: ReturnType<typeof run> }> {
  const dir = join(tempDir(), 'devnet');
  const ports = byEnv ? [] : ['--port-base', String(portBase)];
  const proc = run('devnet', ['devnet', '--dir', dir, ...ports, '--heartbeat-ms', '300', ...extra], byEnv ? { HYPERSYNC_PORT_BASE: String(portBase) } : {});
  await waitForFile(join(dir, 'endpoints.json'), 60_000);
  const endpoints = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')) as Endpoints;
  return { dir, endpoints, proc };
}

test('devnet writes the endpoints contract, serves the web app, and SIGINT leaves no orphans', async () => {
  const base = await freePortBase();
  const { dir, endpoints, proc } = await startDevnet(base);
  assert.equal(endpoints.peers.length, 5);
  assert.deepEqual(endpoints.peers.map((p) => p.role).sort(), ['relay', 'replica', 'voter', 'voter', 'voter'], 'three Raft voters (PBFT replicas too), a PBFT-only replica, the relay');
  assert.equal(readFileSync(join(dir, 'token'), 'utf8').trim(), endpoints.token);
  assert.match(endpoints.web ?? '', new RegExp(`^http://127\\.0\\.0\\.1:${base + 2}/\\?relay=.+&cluster=devnet&key=[A-Za-z0-9_-]{43}#token=`));
  // The API is HTTPS only, on one port for REST and gRPC, trusted through the dev CA.
  assert.equal(endpoints.rest, `https://127.0.0.1:${base + 1}`);
  assert.equal(endpoints.grpc, `127.0.0.1:${base + 1}`);
  assert.equal(endpoints.ca, join(dir, 'ca.pem'));
  const ca = readFileSync(endpoints.ca);
  assert.deepEqual((await call(`${endpoints.rest}/healthz`, { ca })).json(), { status: 'ok' });
  const bearer = { authorization: `Bearer ${endpoints.token}` };
  const health = (await call(`${endpoints.rest}/api/v1/status`, { ca, headers: bearer })).json<{ status: string; peerId: string }>();
  assert.equal(health.status, 'ok');
  assert.equal(health.peerId, endpoints.peers.find((p) => p.role === 'relay')?.peerId);
  // The printed curl example's request works with the token file, and mTLS with the client pair.
  // Right after start the Raft group may still be electing: 503 (retryable) until it has a leader.
  const execute = (): ReturnType<typeof call> =>
    call(`${endpoints.rest}/api/v1/operators/execute`, {
      ca,
      headers: { authorization: `Bearer ${endpoints.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ operator_id: 'kv.put', inputs: { key: 'a', value: 1 }, options: { idempotency_key: 'devnet-test-1' } }),
    });
  let exec = await execute();
  for (const end = Date.now() + 20_000; exec.status === 503 && Date.now() < end; exec = await execute()) {
    await new Promise((r) => setTimeout(r, Number(exec.headers['retry-after'] ?? 1) * 100));
  }
  assert.equal(exec.status, 200, exec.text);
  assert.match(exec.json<{ receipt_id: string }>().receipt_id, /^receipt_[0-9a-f]{64}$/);
  // Through the Raft backend too, an unknown operator's error points at the field at fault.
  const unknown = await call(`${endpoints.rest}/api/v1/operators/execute`, {
    ca,
    headers: { authorization: `Bearer ${endpoints.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ operator_id: 'no.such.op', inputs: {} }),
  });
  assert.equal(unknown.status, 404, unknown.text);
  assert.deepEqual(unknown.json<{ error: { code: string; path: string } }>().error.path, '/operator_id');
  const head = await call(`${endpoints.rest}/api/v1/tree-head`, { ca, cert: readFileSync(endpoints.clientCert), key: readFileSync(endpoints.clientKey) });
  assert.equal(head.status, 200, head.text);
  assert.ok(head.json<{ size: number }>().size >= 1);
  const example = await proc.waitFor((e) => e.type === 'text' && /operators\/execute/.test(String(e['line'])), 10_000, 'the printed curl example');
  assert.match(String(example['line']), /curl --cacert \S*ca\.pem -H "Authorization: Bearer \$\(cat \S*token\)" -H 'content-type: application\/json' -d '\{"operator_id":"kv\.put"/);
  // The relay sees all four peers admitted (HELLO both ways), which is what the tab shows.
  let established = 0;
  for (const end = Date.now() + 20_000; established < 4 && Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    established = (await call(`${endpoints.rest}/api/v1/status`, { ca, headers: bearer })).json<{ peers: { established: number } }>().peers.established;
  }
  assert.equal(established, 4, 'the relay has an established session with each peer');
  const page = await fetch(endpoints.web!);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /HyperSync/);
  const pids = endpoints.peers.map((p) => p.pid);
  assert.ok(pids.every(isAlive));
  // The relay and peers run from the JavaScript build (less memory than the TypeScript sources).
  for (const pid of pids) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.equal(argv[1], join(ROOT, NODE_BUILD_DIR, NODE_BUILD_ENTRY), `pid ${pid} runs ${argv.slice(0, 3).join(' ')}`);
  }
  proc.child.kill('SIGINT');
  const exit = await proc.exited;
  assert.equal(exit.code, 0);
  assert.deepEqual(await waitGone(pids, 8000), [], 'children still running after devnet stopped');
  assert.ok(!existsSync(join(dir, 'endpoints.json')), 'a stopped devnet removes endpoints.json');
});

test('children of a SIGKILLed devnet stop by themselves (ports from HYPERSYNC_PORT_BASE)', async () => {
  const base = await freePortBase();
  const { endpoints, proc } = await startDevnet(base, ['--no-web'], true);
  assert.equal(endpoints.web, null);
  assert.equal(endpoints.rest, `https://127.0.0.1:${base + 1}`, 'HYPERSYNC_PORT_BASE moved the ports');
  const pids = endpoints.peers.map((p) => p.pid);
  proc.child.kill('SIGKILL');
  await proc.exited;
  assert.deepEqual(await waitGone(pids, 10_000), [], 'orphans left behind');
});

test('a busy port is a clear error, not a crash, and says how to move', async () => {
  const { createServer } = await import('node:net');
  const base = await freePortBase();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(base + 1, '127.0.0.1', () => r()));
  try {
    const proc = run('devnet-busy', ['devnet', '--dir', join(tempDir(), 'd'), '--port-base', String(base)]);
    const exit = await proc.exited;
    assert.equal(exit.code, 2);
    assert.match(proc.stderr, new RegExp(`port ${base + 1} \\(relay API\\) is busy: .*--port-base N \\(or HYPERSYNC_PORT_BASE=N npm start\\)`));
  } finally {
    blocker.close();
  }
  const bad = run('devnet-bad-env', ['devnet', '--dir', join(tempDir(), 'd')], { HYPERSYNC_PORT_BASE: 'ninety' });
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderr, /HYPERSYNC_PORT_BASE=ninety: must be an integer between 1024 and 65000/);
});
