// Logs of what a test runs go to files, never into the test reporter's output: one folder per
// test file (its name says which), holding `in-process.log` (servers the test runs in its own
// process, through HYPERSYNC_LOG_FILE) and `<name>-<pid>.log` per child process. The folder is
// removed when the file's tests pass and kept, with its path printed, when one fails; so are the
// data folders made with scratchDir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const testFile = basename(process.argv[1] ?? 'test').replace(/\.test\.ts$/, '');
export const TEST_LOG_DIR = mkdtempSync(join(tmpdir(), `hypersync-logs-${testFile}-`));
export const IN_PROCESS_LOG = join(TEST_LOG_DIR, 'in-process.log');

// Read by src/log/logger.ts when the first logger is made (never at import time).
process.env['HYPERSYNC_LOG_FILE'] = IN_PROCESS_LOG;

/** Data folders of this test file (scratchDir): removed with the logs when its tests pass. */
const scratchDirs: string[] = [];

process.on('exit', (code) => {
  if (code === 0 && (process.exitCode === undefined || process.exitCode === 0)) {
    for (const dir of [TEST_LOG_DIR, ...scratchDirs]) rmSync(dir, { recursive: true, force: true });
  } else {
    process.stderr.write(`logs of the processes under test kept in ${TEST_LOG_DIR}\n`);
    if (scratchDirs.length > 0) process.stderr.write(`their data folders kept too: ${scratchDirs.join(' ')}\n`);
  }
});

/**
 * A new empty folder under the system temp dir for a test's data (data dirs, cluster files),
 * removed when the file's tests pass and kept, with its path printed, when one fails: a full
 * `npm test` used to leave hundreds of them (gigabytes) behind.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** The log file of a child process the test starts. */
export function childLogFile(name: string, pid: number | undefined): string {
  return join(TEST_LOG_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}-${pid ?? 'nopid'}.log`);
}

/** The environment of a child: it logs to its stderr, which the harness writes to its file. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['HYPERSYNC_LOG_FILE'];
  return env;
}
