// Free loopback ports for tests that cannot bind port 0 themselves: a devnet takes three
// consecutive ports (relay libp2p, relay API, web app) from one base. Other engineers' runs
// share the machine, so the default 9090–9092 may be taken.
import { createServer } from 'node:net';

/** Bases tried before giving up. */
export const PORT_BASE_ATTEMPTS = 32;

function listenOn(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : null;
      server.close(() => resolve(bound));
    });
  });
}

/** A base N with N, N+1 and N+2 free on 127.0.0.1 right now (the OS picks N). */
export async function freePortBase(span = 3): Promise<number> {
  for (let attempt = 0; attempt < PORT_BASE_ATTEMPTS; attempt++) {
    const base = await listenOn(0);
    if (base === null || base + span - 1 > 65000) continue;
    let free = true;
    for (let i = 1; i < span && free; i++) free = (await listenOn(base + i)) !== null;
    if (free) return base;
  }
  throw new Error(`no ${span} consecutive free ports on 127.0.0.1 after ${PORT_BASE_ATTEMPTS} tries`);
}
