// The Byzantine PBFT simulator: each behaviour on its own passes every check and really acts
// (its rewrites are counted and honest replicas drop what it sends), a run is a pure function
// of its seed, and with f+1 Byzantine replicas (beyond what PBFT tolerates) the checks catch
// violations, so a passing seed means something. `npm run test:sim` runs 1,000 seeds per size.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BEHAVIOURS, type Behaviour } from '../../src/sim/pbft-byzantine.ts';
import { runPbftSimulation, type PbftSimStats } from '../../src/sim/pbft-simulator.ts';

const SEEDS_PER_BEHAVIOUR = 8;

function runMany(n: number, behaviour: Behaviour, seeds: number): PbftSimStats[] {
  const out: PbftSimStats[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runPbftSimulation({ seed, n, behaviours: [behaviour] });
    assert.ok(r.ok, `n=${n} ${behaviour} seed ${seed}: ${r.violation?.property}: ${r.violation?.detail}\nreplay: npm run sim:pbft -- --n ${n} --seed ${seed} --behaviours ${behaviour} --trace`);
    out.push(r.stats);
  }
  return out;
}

const sum = (stats: PbftSimStats[], f: (s: PbftSimStats) => number): number => stats.reduce((a, s) => a + f(s), 0);

describe('pbft simulator: each Byzantine behaviour alone (f of them), with network faults', () => {
  for (const n of [4, 7]) {
    for (const behaviour of BEHAVIOURS) {
      it(`n=${n}: ${behaviour}`, () => {
        const stats = runMany(n, behaviour, SEEDS_PER_BEHAVIOUR);
        assert.ok(sum(stats, (s) => s.requestsCompleted) > 20 * SEEDS_PER_BEHAVIOUR / 4, 'clients got certified results');
        assert.ok(sum(stats, (s) => s.certificatesChecked) > 0);
        assert.ok(sum(stats, (s) => s.completedAfterGst) > 0, 'requests submitted after GST completed');
        const dropped = (k: keyof PbftSimStats['dropped']): number => sum(stats, (s) => s.dropped[k]);
        switch (behaviour) {
          case 'forge':
            assert.ok(dropped('badSignature') > 0 && dropped('badCertificate') > 0, 'forgeries are refused');
            break;
          case 'wrongDigest':
            assert.ok(dropped('digestMismatch') > 0, 'wrong digests are refused');
            break;
          case 'equivocate':
            assert.ok(sum(stats, (s) => s.rewrites) > 0);
            break;
          case 'replay':
            assert.ok(dropped('staleView') + dropped('duplicate') + dropped('outsideWatermarks') > 0);
            break;
          case 'silent':
          case 'censor':
          case 'mixed':
            assert.ok(sum(stats, (s) => s.rewrites) > 0, `${behaviour} acted`);
            break;
          case 'twins':
            assert.ok(sum(stats, (s) => s.highestView) > 0);
            break;
        }
        assert.ok(dropped('nonMember') > 0, 'the outsider was refused');
      });
    }
  }
});

describe('pbft simulator: replay and teeth', () => {
  it('a seed replays exactly (trace and stats)', () => {
    const a = runPbftSimulation({ seed: 42, n: 7, trace: true });
    const b = runPbftSimulation({ seed: 42, n: 7, trace: true });
    assert.deepEqual(a.stats, b.stats);
    assert.deepEqual(a.trace, b.trace);
    assert.ok(a.trace.length > 1000);
  });

  it('with f+1 Byzantine replicas the checks report violations (they are not vacuous)', () => {
    const failed = new Map<string, number>();
    for (let seed = 1; seed <= 30; seed++) {
      const r = runPbftSimulation({ seed, n: 4, byzantine: 2, behaviours: ['equivocate', 'twins'] });
      if (!r.ok) failed.set(r.violation?.property ?? '', (failed.get(r.violation?.property ?? '') ?? 0) + 1);
    }
    assert.ok([...failed.values()].reduce((a, b) => a + b, 0) >= 5, `violations: ${JSON.stringify([...failed])}`);
  });
});
