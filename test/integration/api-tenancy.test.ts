// Tenancy at the relay API, with two principals (alice, bob), a reader and an auditor over REST
// and gRPC: outputs go to the principal that produced them and to the audit scope only, both in
// idempotent replays and in StreamResults (also after a restart, read from disk, and on a Raft
// replica, where the owner travels in the replicated command); receipts (hashes only) stay
// readable by any read scope.
import '../harness/test-logs.ts';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toJson } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { LevelStore } from '../../src/store/level.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import type { OutputViewer, ResultRecord } from '../../relay/api/backend.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { HyperSync } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { buildApi } from '../../relay/api/server.ts';
import { generateDevCa } from '../../relay/api/tls.ts';
import { call } from '../harness/https-client.ts';
import { startInProcessCluster } from '../harness/raft-inprocess.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef01';
const READER = 'reader-token-0123456789abcdef';
const AUDITOR = 'auditor-token-0123456789abcdef';

const dir = mkdtempSync(join(tmpdir(), 'hypersync-tenancy-'));
const signer = crypto.createSigner(crypto.randomBytes(32));
let caPem: string;
let tls: { key: Buffer; cert: Buffer };
let auth: KeyStoreAuthenticator;
let engineStore: LevelStore;
let backend: EngineBackend;
let app: Awaited<ReturnType<typeof buildApi>>;
let base: string;

async function startApi(): Promise<void> {
  engineStore = await LevelStore.open(join(dir, 'engine'));
  backend = new EngineBackend({ engine: await SingleEngine.open({ store: engineStore, signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
  app = await buildApi({ backend, auth, tls });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  base = `https://127.0.0.1:${address.port}`;
}

async function stopApi(): Promise<void> {
  await app.close();
  await backend.close();
}

before(async () => {
  const ca = await generateDevCa(join(dir, 'tls'));
  caPem = readFileSync(ca.ca, 'utf8');
  tls = { key: readFileSync(ca.serverKey), cert: readFileSync(ca.serverCert) };
  auth = await KeyStoreAuthenticator.open({
    tokens: [
      { name: 'alice', token: ALICE, scopes: ['execute', 'read'] },
      { name: 'bob', token: BOB, scopes: ['execute', 'read'] },
      { name: 'reader', token: READER, scopes: ['read'] },
      { name: 'auditor', token: AUDITOR, scopes: ['read', 'audit'] },
    ],
  });
  await startApi();
});

after(async () => {
  await stopApi();
  auth.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rest(token: string, operator_id: string, inputs: unknown, options: Record<string, unknown> = {}): Promise<{ status: number; body: { outputs?: unknown; receipt_id?: string; replayed?: boolean } }> {
  const r = await call(`${base}/api/v1/operators/execute`, { ca: caPem, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ operator_id, inputs, options }) });
  return { status: r.status, body: r.json() };
}

function grpc(token: string): Client<typeof HyperSync> {
  return createClient(HyperSync, createGrpcTransport({ baseUrl: base, nodeOptions: { ca: caPem }, interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${token}`), next(req))] }));
}

/** StreamResults from index 0 as `token`, until `count` records: receipt id → outputs (undefined when withheld). */
async function streamed(token: string, count: number): Promise<Map<string, unknown>> {
  const abort = new AbortController();
  const seen = new Map<string, unknown>();
  try {
    for await (const r of grpc(token).streamResults({ fromIndex: 0n }, { signal: abort.signal })) {
      seen.set(r.receipt?.receiptId ?? '', r.outputs === undefined ? undefined : toJson(ValueSchema, r.outputs));
      if (seen.size >= count) break;
    }
  } finally {
    abort.abort();
  }
  return seen;
}

describe('tenancy: outputs belong to their principal and the audit scope; receipts to every reader', () => {
  let a: { outputs?: unknown; receipt_id?: string };
  let b: { outputs?: unknown; receipt_id?: string };

  test("an idempotency key is the caller's own: bob's replay of alice's key runs bob's command and never returns alice's outputs (REST and gRPC)", async () => {
    const first = await rest(ALICE, 'echo', { secret: 'alice' }, { idempotency_key: 'shared' });
    assert.equal(first.status, 200);
    a = first.body;
    const viaRest = await rest(BOB, 'echo', { secret: 'bob' }, { idempotency_key: 'shared' });
    assert.equal(viaRest.status, 200);
    assert.deepEqual(viaRest.body.outputs, { secret: 'bob' });
    assert.equal(viaRest.body.replayed, false);
    assert.notEqual(viaRest.body.receipt_id, a.receipt_id);
    b = viaRest.body;
    const viaGrpc = await grpc(BOB).executeOperator({ operatorId: 'echo', inputs: { secret: 'other' }, options: { idempotencyKey: 'shared' } });
    assert.equal(viaGrpc.replayed, true, "bob's own execution of the key is replayed");
    assert.deepEqual(viaGrpc.outputs === undefined ? undefined : toJson(ValueSchema, viaGrpc.outputs), { secret: 'bob' });
    const again = await rest(ALICE, 'echo', { secret: 'ignored' }, { idempotency_key: 'shared' });
    assert.deepEqual(again.body.outputs, { secret: 'alice' });
    assert.equal(again.body.replayed, true);
  });

  test('StreamResults shows each principal only its own outputs, the auditor all, a reader none; every record carries its receipt', async () => {
    const alice = await streamed(ALICE, 2);
    const bob = await streamed(BOB, 2);
    const auditor = await streamed(AUDITOR, 2);
    const reader = await streamed(READER, 2);
    const ids = [a.receipt_id, b.receipt_id] as string[];
    for (const seen of [alice, bob, auditor, reader]) assert.deepEqual([...seen.keys()].sort(), [...ids].sort(), 'every reader gets every receipt');
    assert.deepEqual(alice.get(a.receipt_id!), { secret: 'alice' });
    assert.equal(alice.get(b.receipt_id!), undefined, "alice does not see bob's outputs");
    assert.deepEqual(bob.get(b.receipt_id!), { secret: 'bob' });
    assert.equal(bob.get(a.receipt_id!), undefined, "bob does not see alice's outputs");
    assert.deepEqual(auditor.get(a.receipt_id!), { secret: 'alice' });
    assert.deepEqual(auditor.get(b.receipt_id!), { secret: 'bob' });
    assert.deepEqual([...reader.values()], [undefined, undefined]);
  });

  test('receipts (hashes only) are readable by a read-only principal over REST', async () => {
    const one = await call(`${base}/api/v1/receipts/${a.receipt_id}`, { ca: caPem, headers: { authorization: `Bearer ${READER}` } });
    assert.equal(one.status, 200);
    assert.ok(!one.text.includes('"secret"'), 'a receipt carries no outputs');
    const list = await call(`${base}/api/v1/receipts?from=0&limit=10`, { ca: caPem, headers: { authorization: `Bearer ${READER}` } });
    assert.equal(list.status, 200);
    assert.equal(list.json<{ receipts: unknown[] }>().receipts.length, 2);
  });

  test('after a restart the owners come back from disk: alice still sees her outputs, bob still not', async () => {
    await stopApi();
    await startApi();
    const alice = await streamed(ALICE, 2);
    assert.deepEqual(alice.get(a.receipt_id!), { secret: 'alice' });
    assert.equal(alice.get(b.receipt_id!), undefined);
    const auditor = await streamed(AUDITOR, 2);
    assert.deepEqual(auditor.get(b.receipt_id!), { secret: 'bob' });
  });
});

describe('tenancy on a Raft replica: the owner travels in the replicated command', () => {
  test('a follower replica streams each principal its own outputs, with and without an idempotency key', async () => {
    const cluster = await startInProcessCluster({ voters: 3 });
    try {
      const leader = await cluster.leader();
      const follower = cluster.members.find((m) => m !== leader)!;
      const viaLeader = new EngineBackend({ engine: leader });
      const viaFollower = new EngineBackend({ engine: follower });
      const x = await viaLeader.execute({ operator_id: 'echo', inputs: { secret: 'alice' }, options: {}, principal: 'alice' });
      const y = await viaFollower.execute({ operator_id: 'echo', inputs: { secret: 'bob' }, options: { idempotency_key: 'k' }, principal: 'bob' });
      const take = async (viewer: OutputViewer): Promise<ResultRecord[]> => {
        const abort = new AbortController();
        const out: ResultRecord[] = [];
        for await (const r of viaFollower.stream(0, ['echo'], viewer, abort.signal)) {
          out.push(r);
          if (out.length === 2) break;
        }
        abort.abort();
        return out;
      };
      const byId = (rs: ResultRecord[]): Map<string, unknown> => new Map(rs.map((r) => [r.receipt.operation.inputs_hash, r.outputs]));
      const hashOf = (r: typeof x): string => r.receipt!.operation.inputs_hash;
      const alice = byId(await take({ principal: 'alice', allOutputs: false }));
      assert.deepEqual(alice.get(hashOf(x)), { secret: 'alice' });
      assert.equal(alice.get(hashOf(y)), null);
      const bob = byId(await take({ principal: 'bob', allOutputs: false }));
      assert.equal(bob.get(hashOf(x)), null);
      assert.deepEqual(bob.get(hashOf(y)), { secret: 'bob' });
      const audit = byId(await take({ principal: 'ops', allOutputs: true }));
      assert.deepEqual([...audit.values()].length, 2);
      assert.ok([...audit.values()].every((v) => v !== null));
    } finally {
      await cluster.close();
    }
  });
});
