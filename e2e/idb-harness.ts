// Serves a test page folder of e2e/ (its index.html and the TypeScript it loads) with Vite
// on loopback: the IndexedDB compliance page (e2e/idb/), the crypto adapter page (e2e/crypto/).
import { createServer, type ViteDevServer } from 'vite';
import { join } from 'node:path';

export async function startVitePage(folder: string): Promise<{ url: string; server: ViteDevServer }> {
  const server = await createServer({
    root: join(import.meta.dirname, folder),
    configFile: false,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0 },
    build: { target: 'es2022' },
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0];
  if (url === undefined) {
    await server.close();
    throw new Error('vite did not report a URL');
  }
  return { url, server };
}

export function startIdbPage(): Promise<{ url: string; server: ViteDevServer }> {
  return startVitePage('idb');
}
