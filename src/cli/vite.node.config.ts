// Builds the `hypersync` CLI into plain JavaScript for Node, dist/node/main.js: the devnet runs
// its relay and peers from it (src/cli/node-build.ts), so they do not load Node's TypeScript
// stripper nor hold the TypeScript sources (about 20 MB of resident memory per process).
// Packages stay external (loaded from node_modules as before); the `node` condition of
// package.json `imports` picks the node:crypto adapter and the Node net platform.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  logLevel: 'warn',
  publicDir: false,
  resolve: { conditions: ['node'] },
  ssr: { target: 'node' },
  build: {
    ssr: fileURLToPath(new URL('./run.ts', import.meta.url)),
    target: 'node22',
    outDir: 'dist/node',
    emptyOutDir: true,
    minify: false,
    sourcemap: false,
    rollupOptions: { output: { format: 'es', entryFileNames: 'main.js' } },
  },
});
