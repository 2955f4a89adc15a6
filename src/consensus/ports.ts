// What an engine's runtime is given instead of reaching for the world: a transport to the other
// members, timers with a clock, and (in each runtime's options) its storage. Production passes
// the libp2p adapter (src/net/consensus-transport.ts) and systemTimers; the seeded simulator
// passes a faulty network and simulated time, so it drives exactly the production code.
import type { JsonObject } from '../ico/types.ts';

export interface EngineTransport {
  /**
   * Sends one payload to member `to`. Resolves once it is handed to the wire; rejects when it
   * cannot be (no connection). Delivery is not guaranteed either way: protocols retry.
   */
  send(to: string, payload: JsonObject): Promise<void>;
  /** The payloads members send us; `from` is authenticated by the transport. Returns an unsubscribe. */
  onMessage(handler: (from: string, payload: JsonObject) => void): () => void;
}

/** Cancels a scheduled callback (a no-op once it ran). */
export type Cancel = () => void;

export interface Timers {
  /** Wall-clock time in ms since the epoch (stamps commands; may jump). */
  now(): number;
  /** Monotonic time in ms (never jumps; leader leases). Absent: now() is monotonic enough. */
  monotonic?(): number;
  /** Runs `fn` once after `ms`. */
  after(ms: number, fn: () => void): Cancel;
  /** Runs `fn` soon, after the current work and before any timer (setImmediate). */
  defer(fn: () => void): void;
}

/**
 * Runs `fn` every `ms` at a fixed cadence, as setInterval does: a late run does not push the
 * next ones later (timeouts counted in ticks would stretch on a busy machine), and a stall
 * causes no burst. Returns the cancel of whichever run is scheduled.
 */
export function fixedCadence(timers: Timers, ms: number, fn: () => void): Cancel {
  let cancel: Cancel = () => undefined;
  let stopped = false;
  let due = timers.now() + ms;
  const run = (): void => {
    if (stopped) return;
    fn();
    const now = timers.now();
    due = now - due > ms ? now + ms : due + ms;
    cancel = timers.after(Math.max(0, due - now), run);
  };
  cancel = timers.after(ms, run);
  return () => {
    stopped = true;
    cancel();
  };
}

/** Real time. Timers are unref'd: an engine never keeps a process alive by itself. */
export const systemTimers: Timers = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  defer(fn) {
    setImmediate(fn);
  },
};

/** What logSendFailure needs of a logger (pino's shape). */
export interface SendFailureLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * Logs a send to member `to` that failed. A payload the transport refuses as over the frame
 * limit (`NET_MESSAGE_TOO_LARGE`) is a packing bug on this side, never a passing fault of the
 * link: at warn (a debug line once hid a Raft leader re-sending an oversized snapshot window
 * forever). Anything else (no connection, a full send queue) is at debug: protocols retry.
 */
export function logSendFailure(log: SendFailureLog, protocol: string, to: string, e: unknown): void {
  const err = e instanceof Error ? e.message : String(e);
  if ((e as { code?: unknown } | null)?.code === 'NET_MESSAGE_TOO_LARGE') log.warn({ to, err }, `${protocol} envelope refused: over the frame limit`);
  else log.debug({ to, err }, `${protocol} send failed`);
}
