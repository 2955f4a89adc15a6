// Can this tab use WebRTC at all? A peer connection that gathers no ICE candidate has no
// address to offer, so every WebRTC dial from or to this tab would fail only after the ICE
// timeout, each with an "ICE failed" page error, while the peers show "down". Firefox is the
// case seen: on a machine whose only network is loopback it gathers candidates only for a
// page that may use the microphone (`media.peerconnection.ice.loopback` alone gives none).
// Checked once at start; a tab without candidates leaves WebRTC off and uses WebSocket and
// the relay instead.

/**
 * How long the probe waits for gathering to begin. A browser with an address starts within
 * tens of ms (measured: 20–45 ms in Firefox and Chromium here); one with none never leaves
 * the 'new' gathering state (Firefox) or completes empty.
 */
export const WEBRTC_PROBE_TIMEOUT_MS = 2_000;

/** True when a throwaway peer connection gathers an ICE candidate (or at least starts to). */
export async function webrtcUsable(timeoutMs = WEBRTC_PROBE_TIMEOUT_MS): Promise<boolean> {
  if (typeof RTCPeerConnection !== 'function') return false;
  const pc = new RTCPeerConnection({ iceServers: [] });
  try {
    const { promise, resolve } = Promise.withResolvers<boolean>();
    // Still gathering when time is up (a slow, loaded machine): there is an address to try.
    const timer = setTimeout(() => resolve(pc.iceGatheringState !== 'new'), timeoutMs);
    pc.onicecandidate = (e) => {
      if (e.candidate === null) resolve(false);
      else if (e.candidate.candidate !== '') resolve(true);
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') resolve(false);
    };
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    const usable = await promise;
    clearTimeout(timer);
    return usable;
  } catch {
    return false;
  } finally {
    pc.close();
  }
}
