// The devnet's JavaScript build of the CLI (src/cli/node-build.ts): the stamp follows the
// sources, a second start reuses the build, and the built CLI runs like bin/hypersync.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureNodeBuild, NODE_BUILD_DIR, NODE_BUILD_ENTRY, sourceStamp } from '../../src/cli/node-build.ts';
import { ROOT, tempDir } from '../harness/processes.ts';

test('the source stamp changes with a source file, and only then', async () => {
  const root = tempDir();
  mkdirSync(join(root, 'src', 'cli'), { recursive: true });
  mkdirSync(join(root, 'relay'), { recursive: true });
  writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(root, 'relay', 'b.ts'), 'export const b = 2;\n');
  writeFileSync(join(root, 'package.json'), '{}\n');
  const first = await sourceStamp(root);
  assert.match(first, /^[0-9a-f]{64}$/);
  assert.equal(await sourceStamp(root), first, 'nothing changed');
  writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 10;\n');
  const edited = await sourceStamp(root);
  assert.notEqual(edited, first, 'an edit (size) changes it');
  const t = new Date(Date.now() + 5_000);
  utimesSync(join(root, 'relay', 'b.ts'), t, t);
  const touched = await sourceStamp(root);
  assert.notEqual(touched, edited, 'a newer modification time changes it');
  writeFileSync(join(root, 'src', 'cli', 'c.ts'), '');
  assert.notEqual(await sourceStamp(root), touched, 'a new file changes it');
});

test('the build is made once, reused while the sources are unchanged, and runs the CLI', async () => {
  const entry = await ensureNodeBuild(ROOT);
  assert.equal(entry, join(ROOT, NODE_BUILD_DIR, NODE_BUILD_ENTRY));
  const built = statSync(entry);
  const lines: string[] = [];
  assert.equal(await ensureNodeBuild(ROOT, (l) => lines.push(l)), entry);
  assert.deepEqual(lines, [], 'the second call does not build');
  const again = statSync(entry);
  assert.equal(again.ino, built.ino, 'the same file, not a new build');
  assert.equal(again.mtimeMs, built.mtimeMs);
  // The built CLI is the same program: its help and a command that fails on bad input.
  const help = spawnSync(process.execPath, [entry, 'node', '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /usage: hypersync node --relay MULTIADDR/);
  const bad = spawnSync(process.execPath, [entry, 'node', '--no-such-flag'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2, `${bad.stdout}${bad.stderr}`);
  assert.match(bad.stderr, /no-such-flag/);
});
