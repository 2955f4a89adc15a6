// The nemesis run: the devnet's process kinds for real (a relay serving the API as a Raft
// learner, three `hypersync node` voters, LevelDB, libp2p on loopback) under a mixed kv and
// counter workload from several clients, while a nemesis kills and restarts the leader, pauses
// a follower (SIGSTOP/SIGCONT), kills and restarts the relay and cuts a voter off the network
// (its connection gater). The recorded history must be linearizable (src/sim/linearizability.ts),
// every acknowledged write must read back, and the relay must serve every acknowledged receipt.
// NEMESIS_S sets the length of the faulty phase (default 60 s); NEMESIS_SEED the clients' and
// the nemesis' choices (printed, so a run's workload can be repeated).
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkKvCounterHistory, kvCounterModel } from '../../src/sim/linearizability.ts';
import { FAULT_KINDS, Nemesis, Workload } from '../harness/nemesis.ts';
import { killAll, ROOT } from '../harness/processes.ts';
import { clusterStatus, startRaftCluster, until, type RaftCluster } from '../harness/raft-cluster.ts';

const NEMESIS_S = Math.max(10, Number(process.env['NEMESIS_S'] ?? 60));
const SEED = Number(process.env['NEMESIS_SEED'] ?? Date.now() % 1_000_000);
const CLIENTS = 5;
/** Small, so the voters snapshot and compact their logs several times during the run. */
const SNAPSHOT_EVERY = 300;
/** A restarted process's ready line may take this long on a loaded, shared machine. */
const RESTART_READY_MS = 120_000;
/** Final reads and receipt lookups in flight at once. */
const CHECK_PARALLELISM = 16;
/** Times one receipt lookup may meet the rate limit (429) before it counts as not served. */
const MAX_RATE_LIMITED_ATTEMPTS = 10;

let c: RaftCluster;

before(async () => {
  c = await startRaftCluster({ voters: 3, snapshotEvery: SNAPSHOT_EVERY, nodeArgs: ['--fault-signals'], readyTimeoutMs: RESTART_READY_MS });
  await until('a leader known to the relay', () => clusterStatus(c.api), (s) => s.leader !== null, 30_000, 100);
});

after(async () => {
  await killAll();
});

async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHECK_PARALLELISM) await Promise.all(items.slice(i, i + CHECK_PARALLELISM).map(fn));
}

describe('nemesis: the Raft devnet under process, pause, relay and network faults', () => {
  test(`${NEMESIS_S} s of kv and counter clients against leader kills, follower pauses, relay restarts and network cuts: linearizable, nothing acknowledged lost`, { timeout: (NEMESIS_S + 240) * 1000 }, async () => {
    process.stdout.write(`# nemesis: NEMESIS_S=${NEMESIS_S} NEMESIS_SEED=${SEED}\n`);
    const workload = new Workload(c, `n${SEED}`);
    const nemesis = new Nemesis(c, SEED);
    const stopClients = new AbortController();
    const stopNemesis = new AbortController();
    const clients = workload.run(CLIENTS, SEED, stopClients.signal);
    const faults = nemesis.run(stopNemesis.signal);
    const timer = setTimeout(() => stopNemesis.abort(), NEMESIS_S * 1000);
    try {
      await faults; // the last fault is healed before this resolves
    } finally {
      clearTimeout(timer);
      stopNemesis.abort();
      stopClients.abort();
      await clients;
    }
    // Healed: one last read of every key, recorded in the history like any other.
    await until('a leader after the last fault', () => clusterStatus(c.api), (s) => s.leader !== null, 30_000, 100);
    const unread: string[] = [];
    await inBatches(workload.keys(), async (key) => {
      for (let attempt = 0; attempt < 50; attempt++) if ((await workload.read('final', key)) !== undefined) return;
      unread.push(key);
    });
    assert.deepEqual(unread, [], 'every key is readable once the faults are healed');

    const report = workload.report();
    // 0 acknowledged writes lost: each unique-key put reads back with its value.
    const lost: string[] = [];
    await inBatches(report.acked, async (w) => {
      const got = await workload.read('lost-check', w.key);
      if (got !== w.value) lost.push(`${w.key}: wrote ${w.value}, read ${JSON.stringify(got)}`);
    });
    // The restarted relay serves every receipt it acknowledged.
    const missing: string[] = [];
    // Thousands of lookups on a fast run meet the API's per-principal rate limit: a 429 is
    // answered as a client should (wait Retry-After, ask again), anything else is a miss.
    await inBatches(report.receipts, async (id) => {
      for (let attempt = 1; ; attempt++) {
        const r = await fetch(`${c.api}/api/v1/receipts/${id}`, { headers: { authorization: `Bearer ${c.token}` } });
        await r.body?.cancel();
        if (r.status === 429 && attempt < MAX_RATE_LIMITED_ATTEMPTS) {
          await new Promise((done) => setTimeout(done, 1000 * Number(r.headers.get('retry-after') ?? 1)));
          continue;
        }
        if (r.status !== 200) missing.push(`${id}: ${r.status}`);
        return;
      }
    });
    const check = checkKvCounterHistory(report.history);
    const byKind = nemesis.countByKind();
    const summary = {
      seconds: NEMESIS_S,
      seed: SEED,
      clients: CLIENTS,
      operations: report.history.length,
      acknowledged: report.counts.ok,
      unknownOutcome: report.counts.unknown,
      failedReads: report.counts.failedReads,
      retries: report.counts.retries,
      uniqueWritesChecked: report.acked.length,
      receiptsChecked: report.receipts.length,
      faults: byKind,
      faultLog: nemesis.faults,
      linearizability: check.result,
      searchSteps: check.steps,
      violations: check.result === 'illegal' ? 1 : 0,
      lostWrites: lost.length,
      missingReceipts: missing.length,
      unexpectedAnswers: report.unexpected.length,
    };
    process.stdout.write(`# nemesis: ${JSON.stringify({ ...summary, faultLog: undefined })}\n`);
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `nemesis-${NEMESIS_S}s.json`), `${JSON.stringify(summary, null, 2)}\n`);

    if (check.result === 'illegal' && check.failedPartition !== undefined) {
      const part = kvCounterModel.partition?.(report.history)[check.failedPartition] ?? [];
      process.stdout.write(`# nemesis: the non-linearizable key's history:\n${part.map((o) => `#   ${JSON.stringify(o)}`).join('\n')}\n`);
    }
    assert.deepEqual(report.unexpected.slice(0, 5), [], `${report.unexpected.length} unexpected answers`);
    for (const kind of FAULT_KINDS) assert.ok(byKind[kind] >= 1, `no ${kind} fault was injected in ${NEMESIS_S} s`);
    assert.equal(check.result, 'ok', 'the history is linearizable');
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} of ${report.acked.length} acknowledged writes lost`);
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${report.receipts.length} acknowledged receipts not served`);
    assert.ok(report.counts.ok > 100, `only ${report.counts.ok} operations completed`);
  });
});
