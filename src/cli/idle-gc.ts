// Gives memory back while a long-running process (relay, peer, devnet) is idle. V8 keeps the
// young generation it grew to during start-up and sync bursts, and the pages it freed, for
// as long as the process lives: an idle devnet peer held about 55 MB more than a full,
// memory-reducing collection leaves (measured through the inspector: 177 → 121 MB). Nothing
// in an idle Node process triggers one, so this does: every IDLE_GC_CHECK_MS, when the process
// used less than IDLE_GC_MAX_CPU_SHARE of one core since the last check (CPU time, not event
// loop utilization: on a loaded machine an idle peer's few callbacks take long in wall time)
// and the resident memory grew by IDLE_GC_MIN_GROWTH_BYTES since the last such collection (or
// there was none), it runs V8's last-resort collection (the one a memory-pressure signal runs).
// A busy process is never collected by it, so requests pay nothing; an idle one pays one
// collection (tens of ms for a peer's heap) each time it grew.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the CPU share is looked at. */
export const IDLE_GC_CHECK_MS = 15_000;
/** Below this share of one core's time used since the last check, the process counts as idle (an idle devnet peer uses 3-4%). */
export const IDLE_GC_MAX_CPU_SHARE = 0.1;
/** After one idle collection, the next needs the resident memory to have grown this much. */
export const IDLE_GC_MIN_GROWTH_BYTES = 8 * 1024 * 1024;

type GcOptions = { type: 'major'; execution: 'sync'; flavor: 'last-resort' };
type Gc = (options: GcOptions) => void;

let gcFunction: Gc | null | undefined;

/** V8's gc() (exposed once, by flag, without `--expose-gc` on the command line); null if refused. */
function v8Gc(): Gc | null {
  if (gcFunction !== undefined) return gcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    gcFunction = typeof gc === 'function' ? (gc as Gc) : null;
  } catch {
    gcFunction = null;
  }
  return gcFunction;
}

export interface IdleGc {
  /** Memory-reducing collections run so far. */
  readonly collections: number;
  /** Looks now (what the timer does); true when it collected. */
  check(): boolean;
  stop(): void;
}

export interface IdleGcOptions {
  checkMs?: number;
  maxCpuShare?: number;
  minGrowthBytes?: number;
  /** Resident bytes now (tests); default process.memoryUsage.rss. */
  rss?: () => number;
}

export function startIdleGc(opts: IdleGcOptions = {}): IdleGc {
  const checkMs = opts.checkMs ?? IDLE_GC_CHECK_MS;
  const maxCpuShare = opts.maxCpuShare ?? IDLE_GC_MAX_CPU_SHARE;
  const minGrowth = opts.minGrowthBytes ?? IDLE_GC_MIN_GROWTH_BYTES;
  const rss = opts.rss ?? ((): number => process.memoryUsage.rss());
  /** CPU µs (user + system) and wall ms at the last check. */
  const sample = (): { cpuUs: number; wallMs: number } => {
    const c = process.cpuUsage();
    return { cpuUs: c.user + c.system, wallMs: performance.now() };
  };
  let last = sample();
  let rssAfterLast: number | null = null;
  let collections = 0;
  const check = (): boolean => {
    const now = sample();
    const share = (now.cpuUs - last.cpuUs) / 1000 / Math.max(1, now.wallMs - last.wallMs);
    last = now;
    if (share >= maxCpuShare) return false;
    if (rssAfterLast !== null && rss() - rssAfterLast < minGrowth) return false;
    const gc = v8Gc();
    if (gc === null) return false;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    collections++;
    rssAfterLast = rss();
    // The collection itself must not count as the next interval's work.
    last = sample();
    return true;
  };
  const timer = setInterval(check, checkMs);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    check,
    stop: () => clearInterval(timer),
  };
}
