// The devnet starts its relay and peers from a JavaScript build of the CLI (dist/node/main.js,
// src/cli/vite.node.config.ts), not from the TypeScript sources: a process that runs .ts loads
// Node's TypeScript stripper and keeps every stripped source as a string (about 20 MB of
// resident memory per process, measured). The build is made on demand and cached: its stamp
// lists every source file's size and modification time, and the next start reuses the build
// while the stamp matches (a fresh clone builds once, in a few seconds).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

/** Where the build goes, under the project root. */
export const NODE_BUILD_DIR = join('dist', 'node');
/** The entry the devnet runs (with the CLI's arguments, as bin/hypersync.js takes them). */
export const NODE_BUILD_ENTRY = 'main.js';
const STAMP_FILE = 'stamp.json';
/** Source folders the build reads (and the stamp covers), under the project root. */
const SOURCE_DIRS = ['src', 'relay', 'proto'];
/** Files outside them that change what the build resolves. */
const SOURCE_FILES = ['package.json', 'package-lock.json', join('src', 'cli', 'vite.node.config.ts')];
/** A build taking longer than this fails (the devnet then runs the sources). */
export const NODE_BUILD_TIMEOUT_MS = 300_000;
/** Files the stamp walks at most (a bound on the walk; the tree holds a few hundred). */
export const MAX_STAMPED_FILES = 20_000;

export class NodeBuildError extends Error {
  override name = 'NodeBuildError';
  readonly code = 'NODE_BUILD_FAILED';
}

/** The stamp of the sources: a hash over each file's path, size and modification time. */
export async function sourceStamp(root: string): Promise<string> {
  const h = createHash('sha256');
  let files = 0;
  const visit = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        await visit(path);
        continue;
      }
      if (++files > MAX_STAMPED_FILES) throw new NodeBuildError(`more than ${MAX_STAMPED_FILES} source files under ${root}`);
      const s = await stat(path);
      h.update(`${relative(root, path)}\0${s.size}\0${s.mtimeMs}\n`);
    }
  };
  for (const d of SOURCE_DIRS) await visit(join(root, d));
  for (const f of SOURCE_FILES) {
    const s = await stat(join(root, f)).catch(() => undefined);
    h.update(`${f}\0${s?.size ?? -1}\0${s?.mtimeMs ?? -1}\n`);
  }
  return h.digest('hex');
}

/**
 * The path of an up-to-date build of the CLI, building it first when the sources changed since
 * the last one (or there is none). Throws NodeBuildError when the build fails.
 */
export async function ensureNodeBuild(root: string, log: (line: string) => void = () => undefined): Promise<string> {
  const dir = join(root, NODE_BUILD_DIR);
  const entry = join(dir, NODE_BUILD_ENTRY);
  const stamp = await sourceStamp(root);
  const previous = await readFile(join(dir, STAMP_FILE), 'utf8').catch(() => '');
  if (previous.trim() === stamp && existsSync(entry)) return entry;
  log('devnet: building the CLI into dist/node/ for the relay and peers (once per source change)…\n');
  // Built beside the old one and swapped in whole, so a process starting meanwhile never
  // loads half of a build.
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    // In a child process: Vite loaded here would stay in the devnet's own memory for its lifetime.
    const vite = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
    await new Promise<void>((done, fail) => {
      execFile(process.execPath, [vite, 'build', '--config', join(root, 'src', 'cli', 'vite.node.config.ts'), '--outDir', tmp, '--emptyOutDir', '--logLevel', 'warn'], { cwd: root, timeout: NODE_BUILD_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (e, _stdout, stderr) => {
        if (e === null) done();
        else fail(new Error(`${e.message.split('\n')[0]}${stderr !== '' ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
      });
    });
    await writeFile(join(tmp, STAMP_FILE), `${stamp}\n`);
    // Another devnet may have built the same sources meanwhile: keep its build (its children
    // may be loading from it) and drop ours.
    const now = await readFile(join(dir, STAMP_FILE), 'utf8').catch(() => '');
    if (now.trim() === stamp && existsSync(entry)) {
      await rm(tmp, { recursive: true, force: true });
      return entry;
    }
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw new NodeBuildError(`cannot build the CLI into ${dir}: ${(e as Error).message}`);
  }
  return entry;
}
