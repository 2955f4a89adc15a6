// The engine compliance suite (src/consensus/compliance.ts) against every engine: the single
// node on memory and on LevelDB, Raft in this process on real time (asked through a follower,
// so forwarding is in play, and through the leader), and Raft in the seeded simulator (through
// the learner, on power-loss stores).
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineCases, type EngineHarness } from '../../src/consensus/compliance.ts';
import { SingleEngine } from '../../src/consensus/single/engine.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { Replica } from '../../src/replica/replica.ts';
import { SimCluster } from '../../src/sim/cluster.ts';
import { Xoshiro128 } from '../../src/sim/prng.ts';
import { LevelStore } from '../../src/store/level.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store } from '../../src/store/types.ts';
import { startInProcessCluster } from '../harness/raft-inprocess.ts';

const direct = <T>(p: Promise<T>): Promise<T> => p;

async function single(store: Store, after: () => Promise<void> = async () => undefined): Promise<EngineHarness> {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const engine = await SingleEngine.open({ store, signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) });
  await engine.start();
  return { engine, wait: direct, dispose: after };
}

async function raftInProcess(through: 'follower' | 'leader'): Promise<EngineHarness> {
  const c = await startInProcessCluster({ voters: 3 });
  const leader = await c.leader();
  const engine = through === 'leader' ? leader : (c.members.find((m) => m !== leader) as typeof leader);
  return { engine, wait: direct, dispose: () => c.close() };
}

let simSeed = 100;
async function raftSimulated(): Promise<EngineHarness> {
  const c = new SimCluster({ rng: new Xoshiro128(simSeed++), voters: ['n1', 'n2', 'n3'], learners: ['n4'], snapshotEvery: 10, receipts: true });
  if (!(await c.run(() => c.leader() !== undefined && c.engine('n4') !== undefined, c.clock.now + 30_000, 1_000_000))) throw new Error('the simulated cluster elected no leader');
  const engine = c.engine('n4');
  if (engine === undefined || !(engine.replica instanceof Replica)) throw new Error('n4 runs no real replica');
  return {
    engine: engine as typeof engine & { replica: Replica },
    wait: (p) => c.settled(p, 60_000),
    dispose: async () => c.stop(),
  };
}

for (const c of engineCases()) {
  test(`single (memory): ${c.name}`, () => c.run(() => single(new MemoryStore())));
  test(`single (LevelDB): ${c.name}`, () =>
    c.run(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'hypersync-engine-'));
      return single(await LevelStore.open(dir), async () => rmSync(dir, { recursive: true, force: true }));
    }));
  test(`raft in-process, through a follower: ${c.name}`, () => c.run(() => raftInProcess('follower')));
  test(`raft in-process, through the leader: ${c.name}`, () => c.run(() => raftInProcess('leader')));
  test(`raft simulated, through a learner: ${c.name}`, () => c.run(raftSimulated));
}
