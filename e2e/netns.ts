// Runs an e2e file again inside a private network namespace whose only network is loopback
// (`unshare --net --map-root-user`, then `ip link set lo up`): a container-like machine where
// browsers find no default route, and nothing can phone home. Browser behaviour differs
// there (Firefox gathers no ICE candidate without microphone permission), so the tests that
// are about it must run there, not on whatever network the CI machine happens to have.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { childLogFile } from '../test/harness/test-logs.ts';

/** Set inside the namespace, so the file runs its real tests instead of re-running itself. */
export const NETNS_ENV = 'HYPERSYNC_E2E_NETNS';

export function insideLoopbackNamespace(): boolean {
  return process.env[NETNS_ENV] === 'loopback';
}

/** `ip` lives in sbin, which a non-root PATH may lack. */
const PATH_WITH_SBIN = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;
const UNSHARE = ['--net', '--map-root-user', 'sh', '-c', 'ip link set lo up && exec "$@"', 'netns'];

/** Null when this machine can make such a namespace; otherwise what is missing. */
export function loopbackNamespaceProblem(): string | null {
  const r = spawnSync('unshare', [...UNSHARE, 'true'], { encoding: 'utf8', env: { ...process.env, PATH: PATH_WITH_SBIN }, timeout: 10_000 });
  if (r.status === 0) return null;
  return `cannot make a loopback-only network namespace (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}): ` +
    'this test needs `unshare` (util-linux) and `ip` (iproute2), and user namespaces (root, or sysctl kernel.unprivileged_userns_clone=1)';
}

export interface NamespacedRun {
  code: number | null;
  /** The inner run's test report (spec reporter). */
  report: string;
  logFile: string;
}

/** Runs `node --test` on `file` inside the namespace; its report goes to a log file. */
export function runInLoopbackNamespace(file: string, timeoutMs: number): Promise<NamespacedRun> {
  // A fresh test run, not a child of ours: NODE_TEST_CONTEXT would make it report in the
  // runner's binary protocol instead of running as its own test process.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: PATH_WITH_SBIN, [NETNS_ENV]: 'loopback' };
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn('unshare', [...UNSHARE, process.execPath, '--test', '--test-reporter=spec', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logFile = childLogFile('netns-run', child.pid);
  const log = createWriteStream(logFile);
  let report = '';
  const collect = (d: Buffer): void => {
    report += d.toString();
    log.write(d);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      log.end();
      resolve({ code, report, logFile });
    });
  });
}
