// Builds the standalone verifier into one ES module, dist/verify/hypersync-verify.js, for a
// plain page, a worker, or any runtime with ES modules (`npm run build:verify`). The
// `browser` condition of package.json `imports` picks the WebCrypto adapter (with its @noble
// fallback), so nothing from Node, libp2p or storage reaches the file. buildVerifier() is the
// same build for tests and benches, with the bundle's size and the modules inside it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, defineConfig } from 'vite';

const CONFIG_FILE = fileURLToPath(import.meta.url);
const VERIFY_ENTRY = fileURLToPath(new URL('./index.ts', import.meta.url));
export const VERIFY_FILE = 'hypersync-verify.js';
/** The budget for the verifier on its own. */
export const MAX_VERIFY_GZIP_BYTES = 30 * 1024;

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

export interface VerifierBundle {
  file: string;
  bytes: number;
  /** gzip at zlib's default level, as a server would send it. */
  gzipBytes: number;
  /** Every source module inside the bundle (absolute paths). */
  modules: string[];
  /** Modules the bundle imports at run time (none: it is self-contained). */
  imports: string[];
}

/** Builds the verifier into `outDir` and measures it. */
export async function buildVerifier(outDir: string): Promise<VerifierBundle> {
  const result = await build({ configFile: CONFIG_FILE, logLevel: 'silent', build: { outDir, emptyOutDir: true } });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => ('output' in r ? r.output : []));
  const chunk = outputs.find((o) => o.type === 'chunk' && o.fileName === VERIFY_FILE);
  if (chunk === undefined || chunk.type !== 'chunk') throw new Error(`vite did not emit ${VERIFY_FILE}`);
  const file = join(outDir, VERIFY_FILE);
  const bytes = readFileSync(file);
  return { file, bytes: bytes.length, gzipBytes: gzipSync(bytes).length, modules: chunk.moduleIds, imports: [...chunk.imports, ...chunk.dynamicImports] };
}
