// js-libp2p's yamux (8.x) answers every data frame it receives with a window update: one more
// 12-byte frame, Noise message and socket write per message, on every hop. Go's and Rust's
// yamux (and the yamux spec's intent) send the update once half of the receive window is used.
// deferYamuxWindowUpdates() makes ours do the same, for every yamux stream in this process.
// The flow-control contract is unchanged: the sender still never sends past the window it was
// granted, and the window is topped up while half of it is still unused, so a sender is never
// left waiting on a window that a receiver would have refilled before.
import { StreamState, YamuxStream } from '@libp2p/yamux/stream';

/** A stream tops up the peer's send window once fewer than this share of its receive window remain. */
export const WINDOW_UPDATE_THRESHOLD = 0.5;

/** The fields of YamuxStream (private in its typings) the threshold reads. */
interface WindowState {
  state: StreamState;
  recvWindow: unknown;
  recvWindowCapacity: unknown;
}

let installed: boolean | undefined;

/**
 * Installs the threshold once per process (idempotent). Returns whether it is active: if a
 * yamux release no longer has the method, nothing is changed; if it lacks the fields, each
 * call falls through to the original behaviour.
 */
export function deferYamuxWindowUpdates(): boolean {
  if (installed !== undefined) return installed;
  const proto = YamuxStream.prototype as { sendWindowUpdate?: () => void };
  const original = proto.sendWindowUpdate;
  if (typeof original !== 'function') return (installed = false);
  proto.sendWindowUpdate = function sendWindowUpdateAtThreshold(this: WindowState): void {
    const { state, recvWindow, recvWindowCapacity } = this;
    // Only a plain top-up is deferred: frames carrying SYN/ACK (Init, SYNReceived) go out as
    // before, and so does any update once half the window is used (also after a pause).
    if (state === StreamState.Established && typeof recvWindow === 'number' && typeof recvWindowCapacity === 'number' && recvWindowCapacity >= recvWindow * WINDOW_UPDATE_THRESHOLD) return;
    original.call(this);
  };
  return (installed = true);
}
