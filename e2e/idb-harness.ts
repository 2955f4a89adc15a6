// Serves a test page folder (its index.html and the TypeScript it loads) with Vite on
// loopback: the IndexedDB compliance page (e2e/idb/), the crypto adapter page (e2e/crypto/),
// the verify bench page (bench/verify-page/). `folder` is relative to e2e/ or absolute.
import { createServer, type ViteDevServer } from 'vite';
import { isAbsolute, join } from 'node:path';

/** Response headers that make a page cross-origin isolated, for fine-grained performance.now() in benches. */
export const CROSS_ORIGIN_ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export async function startVitePage(folder: string, headers: Record<string, string> = {}): Promise<{ url: string; server: ViteDevServer }> {
  const server = await createServer({
    root: isAbsolute(folder) ? folder : join(import.meta.dirname, folder),
    configFile: false,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, headers },
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
