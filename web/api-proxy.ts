// Node side of the tab's relay API access: the Vite `server.proxy` entry that forwards the
// page's same-origin `/api/v1/…` calls to the relay API (HTTPS with the devnet CA, or plain
// HTTP in tests). Used by `hypersync devnet` and the e2e harness; never bundled into the page.
import type { ProxyOptions } from 'vite';

/** `url` is the relay API's base (https://127.0.0.1:9091); `ca` the PEM that signs its certificate. */
export function relayApiProxy(url: string, ca?: string): Record<string, ProxyOptions> {
  const u = new URL(url);
  const port = Number(u.port !== '' ? u.port : u.protocol === 'https:' ? 443 : 80);
  return {
    '/api/v1/': {
      target: { protocol: u.protocol, host: u.hostname, port, ...(ca !== undefined ? { ca } : {}) },
      // The relay checks the bearer token itself; the proxy adds no credential of its own.
      changeOrigin: true,
      secure: true,
    },
  };
}
