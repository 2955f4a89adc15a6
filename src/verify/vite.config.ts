// Builds the standalone verifier into one ES module, dist/verify/hypersync-verify.js, for a
// plain page, a worker, or any runtime with ES modules (`npm run build:verify`). The
// `browser` condition of package.json `imports` picks the WebCrypto adapter (with its @noble
// fallback), so nothing from Node, libp2p or storage reaches the file.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export const VERIFY_ENTRY = fileURLToPath(new URL('./index.ts', import.meta.url));
export const VERIFY_FILE = 'hypersync-verify.js';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  logLevel: 'warn',
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'dist/verify',
    emptyOutDir: true,
    minify: true,
    lib: { entry: VERIFY_ENTRY, formats: ['es'], fileName: () => VERIFY_FILE },
  },
});
