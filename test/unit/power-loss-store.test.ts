// The power-loss store: what a power cut keeps (synced writes and everything written before
// them, atomically per batch) and drops (writes never followed by a sync); a cut handle goes
// silent; it passes the storage compliance cases like every other adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { complianceCases } from '../../src/store/compliance.ts';
import { PowerLossStore } from '../../src/store/power-loss.ts';

const k = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

for (const c of complianceCases()) {
  test(`power-loss store passes the compliance case: ${c.name}`, async () => {
    let current = new PowerLossStore();
    let first = true;
    await c.run(async () => {
      if (!first) current = await current.reopen();
      first = false;
      return current;
    });
  });
}

test('a power cut keeps synced batches and drops writes that no sync followed', async () => {
  const s = new PowerLossStore();
  await s.batch([{ type: 'put', key: k('synced'), value: k('1') }]);
  await s.batch([{ type: 'put', key: k('cached'), value: k('2') }], { sync: false });
  assert.equal(text(await s.get(k('cached'))), '2', 'reads see unsynced writes');
  assert.equal(s.unsynced, 1);
  const after = await s.powerLoss();
  assert.equal(text(await after.get(k('synced'))), '1');
  assert.equal(await after.get(k('cached')), undefined, 'an unsynced write is gone after a power cut');
});

test('a synced write makes every earlier unsynced write durable too (one log, one fsync)', async () => {
  const s = new PowerLossStore();
  await s.batch([{ type: 'put', key: k('a'), value: k('1') }], { sync: false });
  await s.batch([{ type: 'del', key: k('a') }, { type: 'put', key: k('b'), value: k('2') }], { sync: false });
  await s.put(k('c'), k('3'));
  assert.equal(s.unsynced, 0);
  assert.equal(s.syncs, 1);
  const after = await s.powerLoss();
  assert.equal(await after.get(k('a')), undefined);
  assert.equal(text(await after.get(k('b'))), '2');
  assert.equal(text(await after.get(k('c'))), '3');
});

test('a process restart (reopen) keeps the OS cache; a power cut after it still drops it', async () => {
  const s = new PowerLossStore();
  await s.batch([{ type: 'put', key: k('x'), value: k('1') }], { sync: false });
  const restarted = await s.reopen();
  assert.equal(text(await restarted.get(k('x'))), '1');
  assert.equal(await (await restarted.powerLoss()).get(k('x')), undefined);
});

test('a cut handle never answers again, and its late writes do not reach the disk', async () => {
  const s = new PowerLossStore();
  await s.put(k('before'), k('1'));
  const survivor = await s.powerLoss();
  let answered = false;
  void s.put(k('late'), k('2')).then(() => (answered = true));
  void s.get(k('before')).then(() => (answered = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(answered, false);
  assert.equal(s.cut, true);
  assert.equal(await survivor.get(k('late')), undefined);
  assert.equal(text(await survivor.get(k('before'))), '1');
});

test('failSync cuts the power before the fsync: that write and the cache are lost', async () => {
  let cuts = 0;
  let failNext = false;
  const s = new PowerLossStore({ failSync: () => failNext, onCut: () => cuts++ });
  await s.put(k('kept'), k('1'));
  await s.batch([{ type: 'put', key: k('cached'), value: k('2') }], { sync: false });
  failNext = true;
  let settled = false;
  void s.put(k('torn'), k('3')).finally(() => (settled = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'the write never completes');
  assert.equal(cuts, 1);
  const after = await s.powerLoss();
  assert.equal(text(await after.get(k('kept'))), '1');
  assert.equal(await after.get(k('cached')), undefined);
  assert.equal(await after.get(k('torn')), undefined);
});

test('a refused batch (over the limits) changes nothing, synced or not', async () => {
  const s = new PowerLossStore();
  await assert.rejects(s.batch([{ type: 'put', key: new Uint8Array(0), value: k('v') }]), (e: unknown) => (e as { code?: string }).code === 'STORE_INVALID');
  assert.equal(s.unsynced, 0);
  assert.equal(s.syncs, 0);
});
