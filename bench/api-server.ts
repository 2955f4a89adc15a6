// Server side of the API bench, one process per server so the load generator never shares its
// event loop: `relay` is the relay's API as `hypersync relay --consensus none` builds it (buildApi +
// the single-node engine on LevelDB + keys-file auth, HTTPS h1/h2 from the dev CA, gRPC mounted), and
// `baseline` a bare Fastify route on the same TLS doing schema validation + sha256 + ed25519 sign.
// Prints one JSON ready line {url, pid}; exits cleanly on SIGTERM (so --cpu-prof gets written).
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { join } from 'node:path';
import fastify from 'fastify';
import { crypto } from '../src/crypto/index.ts';
import { LevelStore } from '../src/store/level.ts';
import { KeyStoreAuthenticator } from '../relay/api/auth.ts';
import { EngineBackend } from '../relay/api/engine-backend.ts';
import { SingleEngine } from '../src/consensus/single/engine.ts';
import { buildApi } from '../relay/api/server.ts';
import { executeBodySchema } from '../relay/api/schemas.ts';
import { readTlsFiles } from '../relay/api/tls.ts';

interface ServerArgs {
  mode: 'relay' | 'baseline';
  /** Dev CA files (server.pem, server-key.pem, ca.pem). */
  tlsDir: string;
  /** relay: LevelDB dir and keys file. */
  dataDir?: string;
  keysFile?: string;
  /** relay: per-principal rate limit (the relay's default is 1000/s per key). */
  ratePerSecond?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
const tls = await readTlsFiles({ cert: join(args.tlsDir, 'server.pem'), key: join(args.tlsDir, 'server-key.pem'), ca: join(args.tlsDir, 'ca.pem') });

async function relayApp(): Promise<{ listen: () => Promise<string>; close: () => Promise<void> }> {
  if (args.dataDir === undefined || args.keysFile === undefined) throw new Error('relay mode needs dataDir and keysFile');
  const store = await LevelStore.open(join(args.dataDir, 'api'));
  const backend = new EngineBackend({ engine: await SingleEngine.open({ store, signer: crypto.createSigner(crypto.randomBytes(32)), peerId: 'bench-relay' }) });
  const auth = await KeyStoreAuthenticator.open({ keysFile: args.keysFile, ...(args.ratePerSecond !== undefined ? { ratePerSecond: args.ratePerSecond, rateBurst: args.ratePerSecond } : {}) });
  const app = await buildApi({ backend, auth, tls });
  return {
    listen: () => app.listen({ host: '127.0.0.1', port: 0 }),
    close: async () => {
      await app.close();
      auth.close();
      await backend.close();
      await store.close();
    },
  };
}

async function baselineApp(): Promise<{ listen: () => Promise<string>; close: () => Promise<void> }> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const app = fastify({ logger: false, http2: true, https: { allowHTTP1: true, key: tls.key, cert: tls.cert } });
  app.post(
    '/api/v1/operators/execute',
    {
      schema: {
        body: executeBodySchema,
        response: { 200: { type: 'object', required: ['status', 'hash', 'signature'], properties: { status: { type: 'string' }, hash: { type: 'string' }, signature: { type: 'string' } } } },
      },
    },
    async (req) => {
      const bytes = Buffer.from(JSON.stringify(req.body));
      const hash = createHash('sha256').update(bytes).digest();
      return { status: 'success', hash: hash.toString('hex'), signature: sign(null, hash, privateKey).toString('base64url') };
    },
  );
  return { listen: () => app.listen({ host: '127.0.0.1', port: 0 }), close: () => app.close() };
}

const server = args.mode === 'relay' ? await relayApp() : await baselineApp();
const url = await server.listen();
process.stdout.write(`${JSON.stringify({ url, pid: process.pid })}\n`);
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void server.close().finally(() => process.exit(0));
});
