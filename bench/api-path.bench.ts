// API path bench (issue 11 item 7): CPU per request of what the relay does for a REST execute
// on one node besides HTTP and TLS: authenticate the caller (an API key), then
// EngineBackend.execute over the single-node engine on LevelDB (edge checks, state machine,
// command log, outputs, signed receipt in one synced, group-committed batch). In-process, CPU
// from process.cpuUsage, so the machine's load distorts it far less than a throughput figure.
// API_PATH_BEFORE=<dir> (an older checkout of this repository: `git archive <commit>` unpacked
// with a node_modules link) runs the same path from that tree too, in interleaved rounds of the
// same run, and reports after/before. Knobs: API_PATH_OPS (4000), API_PATH_ROUNDS (5),
// API_PATH_CALLERS (16,64).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as AuthModule from '../relay/api/auth.ts';
import type * as BackendModule from '../relay/api/engine-backend.ts';
import type * as KeysFileModule from '../relay/api/keys-file.ts';
import type * as EngineModule from '../src/consensus/single/engine.ts';
import type * as CryptoModule from '../src/crypto/index.ts';
import type * as LevelModule from '../src/store/level.ts';
import type { Json } from '../src/ico/types.ts';
import type { BenchRow } from './table.ts';

const OPS = Number(process.env['API_PATH_OPS'] ?? 4000);
const ROUNDS = Number(process.env['API_PATH_ROUNDS'] ?? 5);
const CALLERS = (process.env['API_PATH_CALLERS'] ?? '16,64').split(',').map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
const BEFORE = process.env['API_PATH_BEFORE'];

interface Tree {
  name: string;
  auth: typeof AuthModule;
  backend: typeof BackendModule;
  keys: typeof KeysFileModule;
  engine: typeof EngineModule;
  crypto: typeof CryptoModule;
  level: typeof LevelModule;
}

async function loadTree(root: string, name: string): Promise<Tree> {
  const at = (p: string): string => join(root, p);
  return {
    name,
    auth: (await import(at('relay/api/auth.ts'))) as typeof AuthModule,
    backend: (await import(at('relay/api/engine-backend.ts'))) as typeof BackendModule,
    keys: (await import(at('relay/api/keys-file.ts'))) as typeof KeysFileModule,
    engine: (await import(at('src/consensus/single/engine.ts'))) as typeof EngineModule,
    crypto: (await import(at('src/crypto/index.ts'))) as typeof CryptoModule,
    level: (await import(at('src/store/level.ts'))) as typeof LevelModule,
  };
}

/** CPU µs per request of `callers` concurrent callers doing OPS requests through `tree`. */
async function round(tree: Tree, callers: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-api-path-'));
  try {
    const keysFile = join(dir, 'keys.json');
    const key = await tree.keys.createApiKey(keysFile, 'bench', ['execute', 'read']);
    const auth = await tree.auth.KeyStoreAuthenticator.open({ keysFile, ratePerSecond: 1_000_000_000, rateBurst: 1_000_000_000 });
    const signer = tree.crypto.crypto.createSigner(tree.crypto.crypto.randomBytes(32));
    const store = await tree.level.LevelStore.open(join(dir, 'db'));
    const backend = new tree.backend.EngineBackend({ engine: await tree.engine.SingleEngine.open({ store, signer, peerId: 'bench' }) });
    let next = 0;
    const c0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (next < OPS) {
          const i = next++;
          // A fresh request body per call, as JSON.parse makes one.
          const body = JSON.parse(`{"operator_id":"kv.put","inputs":{"key":"k${i}","value":{"n":${i}}}}`) as { operator_id: string; inputs: Json };
          const who = auth.authenticate({ authorization: `Bearer ${key.secret}`, source: '127.0.0.1' });
          if (!('id' in who)) throw new Error(`authentication failed: ${who.message}`);
          await backend.execute({ operator_id: body.operator_id, inputs: body.inputs, options: {}, principal: who.id });
        }
      }),
    );
    const cpu = process.cpuUsage(c0);
    await backend.close();
    auth.close();
    return (cpu.user + cpu.system) / OPS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

export async function run(): Promise<BenchRow[]> {
  const trees = [await loadTree(join(import.meta.dirname, '..'), 'this tree')];
  if (BEFORE !== undefined) trees.unshift(await loadTree(BEFORE, `before (${BEFORE})`));
  const rows: BenchRow[] = [];
  for (const callers of CALLERS) {
    const samples = new Map<string, number[]>(trees.map((t) => [t.name, []]));
    const loads: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Alternating which goes first, so neither always meets the other's garbage.
      for (const t of r % 2 === 0 ? trees : [...trees].reverse()) samples.get(t.name)?.push(await round(t, callers));
      loads.push(loadavg()[0] ?? Number.NaN);
      process.stderr.write(`  api-path: ${callers} callers round ${r + 1}: ${trees.map((t) => `${t.name} ${samples.get(t.name)?.at(-1)?.toFixed(0)} µs`).join(', ')} (load ${loads.at(-1)?.toFixed(1)})\n`);
    }
    const note = `median of ${ROUNDS} interleaved rounds × ${OPS} requests; load1 ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
    const before = trees.length > 1 ? median(samples.get(trees[0]!.name) ?? []) : undefined;
    const after = median(samples.get('this tree') ?? []);
    if (before !== undefined) rows.push({ suite: 'api-path', name: `CPU per request, auth + execute on one node (LevelDB), ${callers} callers, ${trees[0]!.name}`, value: Math.round(before), unit: 'µs', note });
    rows.push({
      suite: 'api-path',
      name: `CPU per request, auth + execute on one node (LevelDB), ${callers} callers, this tree`,
      value: Math.round(after),
      unit: 'µs',
      ...(before !== undefined ? { baseline: { name: 'before', value: Math.round(before) }, ratio: Math.round((after / before) * 100) / 100 } : {}),
      note,
    });
  }
  return rows;
}
