// Test harness: runs real `hypersync` processes (relay, nodes, devnet) on loopback and
// turns their `--json-events` stdout into awaitable events. Every child is tracked and
// killed by `killAll()`, so a failing test leaves no orphans. Each child's stderr (its log)
// goes to a file of the test's log folder (test-logs.ts), never to the test reporter.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { childEnv, childLogFile, scratchDir } from './test-logs.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'hypersync.js');
/** How long a child may take to say it is ready: as src/cli/devnet.ts's CHILD_READY_TIMEOUT_MS. */
export const READY_TIMEOUT_MS = 90_000;

export interface JsonEvent {
  type: string;
  [key: string]: unknown;
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly events: JsonEvent[] = [];
  stderr = '';
  /** Where this child's stderr (its structured log) is written. */
  readonly logFile: string;
  readonly #waiters = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(name: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.logFile = childLogFile(name, this.child.pid);
    const log = createWriteStream(this.logFile);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as JsonEvent);
      } catch {
        this.events.push({ type: 'text', line });
      }
      for (const w of this.#waiters) w();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      log.write(d);
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    this.child.stderr!.once('end', () => log.end());
    this.exited = new Promise((r) => this.child.once('close', (code, signal) => {
      for (const w of this.#waiters) w();
      r({ code, signal });
    }));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves with the first event (already seen or future) matching `pred`. */
  waitFor(pred: (e: JsonEvent) => boolean, timeoutMs = 20_000, what = 'event'): Promise<JsonEvent> {
    return new Promise((resolveEvent, reject) => {
      const check = (): boolean => {
        const hit = this.events.find(pred);
        if (hit !== undefined) {
          cleanup();
          resolveEvent(hit);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          cleanup();
          reject(new Error(`${this.name} exited while waiting for ${what}; log ${this.logFile}, tail:\n${this.stderr.slice(-2000)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; log ${this.logFile}, tail:\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(onEvent);
      };
      const onEvent = (): void => void check();
      if (!check()) this.#waiters.add(onEvent);
    });
  }

  /** The default bound is the devnet's (CHILD_READY_TIMEOUT_MS): a loaded CI machine loads modules slowly. */
  ready(timeoutMs = READY_TIMEOUT_MS): Promise<JsonEvent> {
    return this.waitFor((e) => e.type === 'ready', timeoutMs, 'ready');
  }
}

const all = new Set<Proc>();

export function run(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const p = new Proc(name, args, env);
  all.add(p);
  return p;
}

export async function killAll(): Promise<void> {
  await Promise.all(
    [...all].map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
  all.clear();
}

/** A scratch folder for a test's data, removed when the test file passes (see scratchDir). */
export function tempDir(prefix = 'hypersync-test-'): string {
  return scratchDir(prefix);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
