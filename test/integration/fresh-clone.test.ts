// The first ten minutes, as a newcomer lives them: clone the committed tree into a temporary
// folder, reuse the installed node_modules, run `npm start` exactly as typed (through npm, in a
// shell environment without npm's PATH), wait for .devnet/endpoints.json, then run every command
// the devnet printed (each curl, each `npx hypersync …` hint, each `buf curl`; the streaming one
// must stream until it is stopped), then the README's blocks marked to run against the devnet,
// and press Ctrl-C (SIGINT to npm's process group). Nothing may fail, warn, or keep running.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { call } from '../harness/https-client.ts';
import { freePortBase } from '../harness/ports.ts';
import { isAlive, ROOT, tempDir } from '../harness/processes.ts';
import { childLogFile } from '../harness/test-logs.ts';

/** Bounds: a loaded shared machine is slow, but nothing here may hang the suite. */
const START_TIMEOUT_MS = 120_000;
const COMMAND_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
/** The README marks the blocks that run against a devnet with this comment before the fence. */
const README_MARK = '<!-- fresh-clone test: run against the devnet -->';
/** Ports the README's commands assume (the default port base). */
const README_PORT_BASE = 9090;

let clone: string;
let base: number;
let npm: ChildProcess;
const stdout: string[] = [];
let stderr = '';
const waiters = new Set<() => void>();
let npmExit: Promise<number | null>;
/** The clone (with its .devnet/logs) is kept when the test fails. */
let passed = false;

/**
 * A newcomer's shell: the machine's PATH without anything npm put there (no node_modules/.bin,
 * so `node` is the machine's own), no npm_* variables, no test-only variables.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k === 'INIT_CWD' || k.startsWith('HYPERSYNC_') || k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  env['PATH'] = (process.env['PATH'] ?? '').split(':').filter((p) => p !== '' && !p.includes('/node_modules/')).join(':');
  return { ...env, ...extra };
}

function waitForLine(pred: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const hit = stdout.find(pred);
      if (hit !== undefined) {
        done();
        resolve(hit);
        return true;
      }
      if (npm.exitCode !== null || npm.signalCode !== null) {
        done();
        reject(new Error(`npm start exited while waiting for ${what}:\n${stdout.join('\n')}\n${stderr}`));
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${stdout.join('\n')}\n${stderr}`));
    }, timeoutMs);
    const onLine = (): void => void check();
    const done = (): void => {
      clearTimeout(timer);
      waiters.delete(onLine);
    };
    if (!check()) waiters.add(onLine);
  });
}

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs one pasted line in `sh`, in the clone, as the newcomer's shell would. */
function sh(line: string): Ran {
  const r = spawnSync('sh', ['-c', line], { cwd: clone, env: userEnv(), encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A pasted command worked: exit 0, no error reply, no npm warning. */
function assertWorked(line: string, r: Ran): void {
  const shown = `\n$ ${line}\nexit ${r.code}\n${r.out.slice(0, 2000)}\n${r.err.slice(0, 2000)}`;
  assert.equal(r.code, 0, `command failed:${shown}`);
  assert.ok(!r.out.includes('"status":"error"') && !r.out.includes('"status": "error"'), `command answered an error:${shown}`);
  assert.ok(!/npm warn/i.test(r.err), `npm warned:${shown}`);
}

/** Starts a streaming command, waits for its first message, checks it is still streaming, then Ctrl-C. */
async function streamThenStop(line: string): Promise<string> {
  const child = spawn('sh', ['-c', line], { cwd: clone, env: userEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no streamed message within ${COMMAND_TIMEOUT_MS} ms:\n$ ${line}\n${out}\n${err}`)), COMMAND_TIMEOUT_MS);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // buf curl prints each message as an indented JSON object closed by a `}` line.
        if (/^\}$/m.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`the stream ended by itself:\n$ ${line}\n${out}\n${err}`));
      });
    });
    assert.equal(child.exitCode, null, 'still streaming when stopped');
  } finally {
    if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
    await exited;
  }
  return out;
}

/** Processes whose working directory is inside the clone (what Ctrl-C must have stopped). */
function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) found.push(Number(entry));
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

before(
  async () => {
    clone = join(tempDir('hypersync-fresh-clone-'), 'hypersync');
    const cloned = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8' });
    assert.equal(cloned.status, 0, `git clone failed: ${cloned.stderr}`);
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    base = await freePortBase();
    npm = spawn('npm', ['start'], { cwd: clone, env: userEnv({ HYPERSYNC_PORT_BASE: String(base) }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    npmExit = new Promise((r) => npm.once('close', (code) => r(code)));
    createInterface({ input: npm.stdout! }).on('line', (line) => {
      stdout.push(line);
      for (const w of waiters) w();
    });
    const log = createWriteStream(childLogFile('npm-start', npm.pid));
    npm.stdout!.pipe(log);
    npm.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      log.write(d);
    });
    npm.once('close', () => {
      for (const w of waiters) w();
    });
  },
  { timeout: 60_000 },
);

after(
  async () => {
    if (npm?.pid !== undefined && npm.exitCode === null && npm.signalCode === null) {
      process.kill(-npm.pid, 'SIGKILL');
      await npmExit;
    }
    if (clone === undefined) return;
    if (passed) rmSync(join(clone, '..'), { recursive: true, force: true });
    else process.stderr.write(`fresh clone kept for a look: ${clone} (devnet logs in .devnet/logs)\n`);
  },
  { timeout: STOP_TIMEOUT_MS + 5_000 },
);

test('npm start on a fresh clone: every command it prints works when pasted, the README devnet blocks too, and Ctrl-C stops everything', { timeout: 6 * 60_000 }, async () => {
  await waitForLine((l) => l === 'Ctrl-C stops everything.', START_TIMEOUT_MS, 'the devnet to say it is up');
  assert.ok(existsSync(join(clone, '.devnet', 'endpoints.json')), 'endpoints.json written before the banner');
  const endpoints = JSON.parse(readFileSync(join(clone, '.devnet', 'endpoints.json'), 'utf8')) as { rest: string; peers: Array<{ pid: number }> };
  assert.equal(endpoints.rest, `https://127.0.0.1:${base + 1}`, 'HYPERSYNC_PORT_BASE moved the ports');
  assert.doesNotMatch(`${stdout.join('\n')}\n${stderr}`, /npm warn|EBADENGINE|not found/i);

  const commands = stdout.map((l) => l.trim()).filter((l) => /^(curl|npx) /.test(l));
  const kinds = commands.map((c) => (c.startsWith('curl ') ? 'curl' : c.startsWith('npx buf curl ') ? 'buf curl' : c.startsWith('npx hypersync ') ? 'hypersync' : c));
  assert.deepEqual(
    [...new Set(kinds)].sort(),
    ['buf curl', 'curl', 'hypersync'],
    `the devnet printed only curl, buf curl and npx hypersync commands:\n${commands.join('\n')}`,
  );
  let streamed = 0;
  for (const line of commands) {
    if (line.includes('StreamResults')) {
      assert.match(await streamThenStop(line), /"receipt"/);
      streamed++;
    } else {
      assertWorked(line, sh(line));
    }
  }
  assert.equal(streamed, 1, 'the StreamResults example ran');

  // The two addresses printed for a person: the web app and the API docs.
  const webUrl = stdout.find((l) => l.includes('open the web app:'))?.split('open the web app:')[1]?.trim();
  assert.ok(webUrl !== undefined && webUrl.startsWith(`http://127.0.0.1:${base + 2}/`), 'the web app URL is printed');
  const page = await fetch(webUrl);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /HyperSync/);
  const docsUrl = /API docs:\s+(\S+)/.exec(stdout.join('\n'))?.[1];
  assert.equal(docsUrl, `https://127.0.0.1:${base + 1}/docs`);
  assert.equal((await call(docsUrl, { ca: readFileSync(join(clone, '.devnet', 'ca.pem')) })).status, 200);

  // The README's devnet blocks, as printed there, on this devnet's ports.
  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const blocks = readme.split(README_MARK).slice(1).map((rest) => /^\s*```sh\n([\s\S]*?)\n```/.exec(rest)?.[1]);
  assert.ok(blocks.length >= 5 && blocks.every((b) => b !== undefined), 'every README mark is followed by a sh block');
  const ports = (line: string): string => line.replace(/127\.0\.0\.1:(909[0-2])\b/g, (_m, p: string) => `127.0.0.1:${base + Number(p) - README_PORT_BASE}`);
  for (const block of blocks as string[]) {
    const lines = block.replace(/\\\n\s*/g, '').split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    for (const line of lines) assertWorked(line, sh(ports(line)));
  }

  // Ctrl-C in the terminal: SIGINT to the foreground process group (npm, sh, the devnet).
  const pids = endpoints.peers.map((p) => p.pid);
  process.kill(-npm.pid!, 'SIGINT');
  const code = await Promise.race([npmExit, new Promise<'hung'>((r) => setTimeout(() => r('hung'), STOP_TIMEOUT_MS))]);
  assert.notEqual(code, 'hung', `npm start did not stop within ${STOP_TIMEOUT_MS} ms of SIGINT`);
  assert.ok(stdout.includes('devnet: stopping…'), 'the devnet stopped its children');
  for (const end = Date.now() + STOP_TIMEOUT_MS; (pids.some(isAlive) || processesIn(clone).length > 0) && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(pids.filter(isAlive), [], 'relay or peers still running');
  assert.deepEqual(processesIn(clone), [], 'processes still running in the clone');
  assert.ok(!existsSync(join(clone, '.devnet', 'endpoints.json')), 'a stopped devnet leaves no endpoints.json behind');
  passed = true;
});
