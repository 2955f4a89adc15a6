// Vite config of the web app: a full HyperSync peer in a tab. Client code resolves the
// `browser` condition of package.json `imports` (noble crypto, browser transports), so no
// node: module reaches the bundle.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  clearScreen: false,
  logLevel: 'warn',
  server: { host: '127.0.0.1', strictPort: true },
  preview: { host: '127.0.0.1' },
  // libp2p (noise, yamux, gossipsub, WebRTC), the panels and the Raft runtime of tab groups are
  // one ~825 kB chunk (~241 kB gzipped) that every page needs at once; splitting it would only
  // add round trips. The budget that matters is the gzipped size (≤ 250 KB, bench/web.bench.ts).
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 900 },
});
