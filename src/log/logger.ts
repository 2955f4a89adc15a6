// Structured logging: pino on Node, pino's browser build in the tab (Vite picks it through
// pino's `browser` field). Level from HYPERSYNC_LOG / LOG_LEVEL on Node, `localStorage.hypersyncLog`
// in the browser; child loggers carry a `component` name so output can be filtered by it.
import { pino, type Logger } from 'pino';

export type { Logger };

function defaultLevel(): string {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; localStorage?: Storage };
  const fromEnv = g.process?.env?.['HYPERSYNC_LOG'] ?? g.process?.env?.['LOG_LEVEL'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    const fromStorage = g.localStorage?.getItem('hypersyncLog');
    if (fromStorage !== null && fromStorage !== undefined) return fromStorage;
  } catch {
    // localStorage may be unavailable (opaque origins); fall through to the default.
  }
  return 'info';
}

let root: Logger | undefined;

/**
 * The process-wide root logger. On Node it writes JSON lines synchronously to stderr, or
 * appends them to the file HYPERSYNC_LOG_FILE names, so stdout stays free for command output
 * (JSON Lines exports) and a crash loses no log line.
 */
export function rootLogger(): Logger {
  if (root !== undefined) return root;
  const proc = (globalThis as { process?: { pid?: number; versions?: { node?: string }; env?: Record<string, string | undefined> } }).process;
  const options = { level: defaultLevel(), base: { pid: proc?.pid } };
  const file = proc?.env?.['HYPERSYNC_LOG_FILE'];
  const dest = file !== undefined && file !== '' ? file : 2;
  root = proc?.versions?.node !== undefined ? pino(options, pino.destination({ dest, sync: true, mkdir: true })) : pino(options);
  return root;
}

export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/** A logger that writes nothing (the simulator runs thousands of clusters per second). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
