// Serves the IndexedDB compliance page (e2e/idb/) with Vite on loopback.
import { createServer, type ViteDevServer } from 'vite';
import { join } from 'node:path';

export async function startIdbPage(): Promise<{ url: string; server: ViteDevServer }> {
  const server = await createServer({
    root: join(import.meta.dirname, 'idb'),
    configFile: false,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0 },
    build: { target: 'es2022' },
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0];
  if (url === undefined) throw new Error('vite did not report a URL');
  return { url, server };
}
