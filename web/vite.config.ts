// Vite config of the web app: a full HyperSync peer in a tab. Client code resolves the
// `browser` condition of package.json `imports` (noble crypto, browser transports).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  clearScreen: false,
  logLevel: 'warn',
  server: { host: '127.0.0.1', strictPort: true },
  preview: { host: '127.0.0.1' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
});
