// The storage compliance suite on Node: the memory adapter and real LevelDB on disk.
// (IndexedDB runs the same cases in Chromium and Firefox: e2e/store-idb.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { complianceCases } from '../../src/store/compliance.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { LevelStore } from '../../src/store/level.ts';
import type { Store } from '../../src/store/types.ts';

for (const c of complianceCases()) {
  test(`memory: ${c.name}`, async () => {
    let current = new MemoryStore();
    let first = true;
    await c.run(async () => {
      if (!first) current = current.reopen();
      first = false;
      return current;
    });
  });
}

for (const c of complianceCases()) {
  test(`level: ${c.name}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hypersync-level-'));
    try {
      await c.run((): Promise<Store> => LevelStore.open(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('level: opening a path that is not a database directory is a typed error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-level-'));
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'file'), 'x');
  await assert.rejects(LevelStore.open(join(dir, 'file')), (e: unknown) => (e as { code?: string }).code === 'STORE_IO');
  rmSync(dir, { recursive: true, force: true });
});
