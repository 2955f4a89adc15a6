// startIdleGc (src/cli/idle-gc.ts): on an idle event loop it runs V8's memory-reducing
// collection (the young generation V8 grew to shrinks back), again only after the resident
// memory grew, and never while the loop is busy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIdleGc } from '../../src/cli/idle-gc.ts';

const newSpace = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? Number.NaN;

/** Uses `ms` of CPU time (bounded by 15 s of wall time), as a request burst would. */
function busyFor(ms: number): void {
  const start = process.cpuUsage();
  const deadline = performance.now() + 15_000;
  let x = 0;
  while (process.cpuUsage(start).user < ms * 1000 && performance.now() < deadline) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
}

test('idle: one memory-reducing collection shrinks the young generation; the next waits for growth', async () => {
  let fakeRss = 100 * 1024 * 1024;
  // The CPU gate is left out here (the next test covers it): after an allocation burst V8's
  // background threads go on working, and on a loaded machine that can outlast any pause.
  const idle = startIdleGc({ checkMs: 3_600_000, maxCpuShare: Number.POSITIVE_INFINITY, minGrowthBytes: 8 * 1024 * 1024, rss: () => fakeRss });
  try {
    // Survivors grow the young generation, as start-up and sync bursts do (bounded rounds).
    const initial = newSpace();
    let keep: Array<{ i: number; s: string }> = [];
    for (let round = 0; round < 200 && newSpace() < 2 * initial; round++) for (let i = 0; i < 50_000; i++) keep.push({ i, s: `v${i}` });
    const grown = newSpace();
    assert.ok(grown >= 2 * initial, `the young generation grew from ${initial} to ${grown} bytes`);
    keep = [];
    assert.equal(keep.length, 0);
    assert.equal(idle.check(), true);
    assert.equal(idle.collections, 1);
    assert.ok(newSpace() < grown, `new space ${newSpace()} bytes after the collection, ${grown} before`);
    await sleep(100);
    assert.equal(idle.check(), false, 'no growth since the last collection');
    fakeRss += 9 * 1024 * 1024;
    await sleep(100);
    assert.equal(idle.check(), true, 'grew by more than minGrowthBytes');
    assert.equal(idle.collections, 2);
  } finally {
    idle.stop();
  }
});

test('busy: no collection while the process works', async () => {
  let fakeRss = 0;
  // 200 ms of CPU stays above a 1% share even if a loaded machine stretches it over 15 s.
  const idle = startIdleGc({ checkMs: 3_600_000, maxCpuShare: 0.01, rss: () => (fakeRss += 64 * 1024 * 1024) });
  try {
    busyFor(200);
    assert.equal(idle.check(), false);
    assert.equal(idle.collections, 0);
  } finally {
    idle.stop();
  }
});
