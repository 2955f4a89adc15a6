// The API's audit line per request: refused and failed requests at info, answered ones only at
// debug (a line per answered request cost a measurable share of its CPU on one node).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { pino } from 'pino';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { KeyStoreAuthenticator } from '../../relay/api/auth.ts';
import { EngineBackend } from '../../relay/api/engine-backend.ts';
import { buildApi } from '../../relay/api/server.ts';

const TOKEN = 'audit-token-0123456789abcdef';

async function withApi(level: 'info' | 'debug', body: (inject: (token: string, inputs: unknown) => Promise<number>, lines: () => Array<Record<string, unknown>>) => Promise<void>): Promise<void> {
  const written: string[] = [];
  const logger = pino({ level }, { write: (s: string) => void written.push(s) });
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const backend = new EngineBackend({ engine: await SingleEngine.open({ store: new MemoryStore(), signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) }) });
  const auth = await KeyStoreAuthenticator.open({ tokens: [{ name: 'audit', token: TOKEN, scopes: ['execute', 'read'] }] });
  const app = await buildApi({ backend, auth, logger });
  try {
    const inject = async (token: string, inputs: unknown): Promise<number> =>
      (await app.inject({ method: 'POST', url: '/api/v1/operators/execute', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify({ operator_id: 'kv.put', inputs }) })).statusCode;
    const lines = (): Array<Record<string, unknown>> => written.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'api request');
    await body(inject, lines);
  } finally {
    await app.close();
    auth.close();
    await backend.close();
  }
}

test('at info, an answered request writes no audit line; a refused or failed one does', async () => {
  await withApi('info', async (inject, lines) => {
    assert.equal(await inject(TOKEN, { key: 'a', value: 1 }), 200);
    assert.deepEqual(lines(), [], 'no line for a 200');
    assert.equal(await inject('wrong-token-0123456789abcdef', { key: 'a', value: 1 }), 401);
    assert.equal(await inject(TOKEN, { key: 7 }), 400);
    const got = lines();
    assert.deepEqual(got.map((l) => [l['status'], l['level']]), [[401, 30], [400, 30]], 'one info line each');
    assert.equal(got[1]?.['principal'], 'token:audit');
    assert.equal(got[1]?.['route'], '/api/v1/operators/execute');
  });
});

test('at debug, every request writes its audit line', async () => {
  await withApi('debug', async (inject, lines) => {
    assert.equal(await inject(TOKEN, { key: 'b', value: 2 }), 200);
    assert.equal(await inject('wrong-token-0123456789abcdef', { key: 'b', value: 2 }), 401);
    assert.deepEqual(lines().map((l) => [l['status'], l['level']]), [[200, 20], [401, 30]]);
  });
});
