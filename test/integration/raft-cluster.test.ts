// The Raft group for real: three `hypersync node` voters and the relay (a learner serving the
// API), separate processes on loopback with LevelDB. The leader is SIGKILLed under concurrent
// client load; a new leader must appear within 2 s, every acknowledged write must be read back
// by a linearizable read, and the killed peer, restarted far behind, must catch up by snapshot.
// KILL_RUNS=N repeats the kill N times in one run (the issue asks for ten in a row).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { BIN, killAll } from '../harness/processes.ts';
import { verifyChain } from '../../src/receipts/receipt.ts';
import { clusterStatus, execute, lastStatus, startRaftCluster, until, type RaftCluster } from '../harness/raft-cluster.ts';

const SNAPSHOT_EVERY = 200;
const NEW_LEADER_WITHIN_MS = 2_000;
const CLIENTS = 8;
const RUNS = Math.max(1, Number(process.env['KILL_RUNS'] ?? 1));

let c: RaftCluster;

before(async () => {
  c = await startRaftCluster({ voters: 3, snapshotEvery: SNAPSHOT_EVERY });
  await until('a leader known to the relay', () => clusterStatus(c.api), (s) => s.leader !== null, 30_000);
});

after(async () => {
  await killAll();
});

describe('raft cluster: relay learner + three voters', () => {
  test('a write is applied by every replica and read back linearizably; status names leader, term and members', async () => {
    const put = await execute(c.api, 'kv.put', { key: 'hello', value: 'world' });
    assert.equal(put.httpStatus, 200, JSON.stringify(put.body));
    assert.match(String(put.body.receipt_id), /^receipt_[0-9a-f]{64}$/);
    const read = await execute(c.api, 'kv.get', { key: 'hello' }, { read: 'linearizable' });
    assert.deepEqual(read.body.outputs, { found: true, value: 'world' });
    const s = await clusterStatus(c.api);
    assert.equal(s.members.filter((m) => m.role === 'voter').length, 3);
    assert.equal(s.members.filter((m) => m.role === 'learner').length, 1);
    assert.ok(s.term >= 2 && s.leader !== null && s.commit_index >= 5, JSON.stringify(s));
    // The operator's view: `hypersync cluster status` names the same leader and members.
    const cli = await promisify(execFile)(process.execPath, [BIN, 'cluster', 'status', '--api', c.api, '--token', c.token]);
    assert.match(cli.stdout, new RegExp(`leader: +${s.leader}`));
    assert.equal(cli.stdout.match(/ voter/g)?.length, 3, cli.stdout);
    assert.match(cli.stdout, /learner \(this relay\)/);
    // Every voter applies it too (its raft:status lines report the applied index).
    const target = s.commit_index;
    for (const n of c.nodes) await until(`${n.name} applied ${target}`, async () => lastStatus(n.proc), (st) => Number(st?.['applied']) >= target, 10_000, 100);
  });

  test('exactly once: a retried idempotency key returns the first receipt and does not execute again', async () => {
    const first = await execute(c.api, 'counter.add', { key: 'ctr', delta: 5 }, { idempotency_key: 'once-1' });
    const again = await execute(c.api, 'counter.add', { key: 'ctr', delta: 5 }, { idempotency_key: 'once-1' });
    assert.equal(first.httpStatus, 200, JSON.stringify(first.body));
    assert.deepEqual(again.body.outputs, first.body.outputs);
    assert.equal(again.body.receipt_id, first.body.receipt_id);
    assert.equal(again.body.replayed, true);
    const read = await execute(c.api, 'kv.get', { key: 'ctr' }, { read: 'linearizable' });
    assert.deepEqual(read.body.outputs, { found: true, value: 5 });
  });

  test('without a quorum a write answers 503 UNAVAILABLE (retryable); once the quorum is back, the same idempotency key executes it exactly once', async () => {
    const frozen = c.nodes.slice(0, 2);
    for (const n of frozen) n.proc.child.kill('SIGSTOP');
    try {
      const r = await execute(c.api, 'counter.add', { key: 'noquorum', delta: 7 }, { idempotency_key: 'nq-1', timeout_ms: 1500 });
      assert.equal(r.httpStatus, 503, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, 'UNAVAILABLE');
      assert.equal((r.body.error as { retryable?: boolean } | undefined)?.retryable, true);
    } finally {
      for (const n of frozen) n.proc.child.kill('SIGCONT');
    }
    let again = await execute(c.api, 'counter.add', { key: 'noquorum', delta: 7 }, { idempotency_key: 'nq-1', timeout_ms: 3000 });
    for (const end = Date.now() + 20_000; again.httpStatus !== 200 && Date.now() < end; ) {
      await new Promise((res) => setTimeout(res, 200));
      again = await execute(c.api, 'counter.add', { key: 'noquorum', delta: 7 }, { idempotency_key: 'nq-1', timeout_ms: 3000 });
    }
    assert.equal(again.httpStatus, 200, JSON.stringify(again.body));
    const read = await execute(c.api, 'kv.get', { key: 'noquorum' }, { read: 'linearizable' });
    assert.deepEqual(read.body.outputs, { found: true, value: 7 }, 'applied exactly once');
  });

  test('SIGKILL the relay (the API replica, a learner) under load: after a restart every acknowledged receipt is served by id, the chain verifies, and writes go on', async () => {
    const acked = new Map<string, { value: number; receipt: string }>();
    let stop = false;
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const n = seq++;
        const r = await execute(c.api, 'kv.put', { key: `relay-crash-${n}`, value: n }, { idempotency_key: `relay-crash-${n}` });
        if (r.httpStatus === 200) acked.set(`relay-crash-${n}`, { value: n, receipt: String(r.body.receipt_id) });
        else if (r.httpStatus === 0) return;
      }
    };
    const workers = Array.from({ length: CLIENTS }, () => worker());
    await until('acknowledged writes', async () => acked.size, (n) => n >= 100, 20_000, 50);
    c.relay.child.kill('SIGKILL');
    await c.relay.exited;
    stop = true;
    await Promise.all(workers);
    await c.restartRelay();
    await until('the restarted relay to know a leader', () => clusterStatus(c.api), (s) => typeof s.leader === 'string', 20_000, 100);
    const headers = { authorization: `Bearer ${c.token}` };
    for (const [key, { value, receipt }] of acked) {
      const got = await fetch(`${c.api}/api/v1/receipts/${receipt}`, { headers });
      assert.equal(got.status, 200, `receipt of ${key} after the crash`);
      const read = await execute(c.api, 'kv.get', { key }, { read: 'linearizable' });
      assert.deepEqual(read.body.outputs, { found: true, value }, key);
    }
    const list = (await (await fetch(`${c.api}/api/v1/receipts?from=0&limit=1000`, { headers })).json()) as { receipts: unknown[] };
    const verdict = await verifyChain(list.receipts);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    const after = await execute(c.api, 'kv.put', { key: 'after-relay-crash', value: 1 });
    assert.equal(after.httpStatus, 200, JSON.stringify(after.body));
  });

  for (let run = 1; run <= RUNS; run++) {
    test(`SIGKILL the leader under load (run ${run}/${RUNS}): new leader within ${NEW_LEADER_WITHIN_MS} ms, no acknowledged write lost, the killed peer catches up by snapshot`, async () => {
      const acked = new Map<string, number>();
      let stop = false;
      let seq = 0;
      const worker = async (w: number): Promise<void> => {
        while (!stop) {
          const n = seq++;
          const key = `r${run}-w${w}-${n}`;
          // A real client: retry a failed or timed-out write with the same idempotency key.
          for (let attempt = 0; attempt < 40 && !stop; attempt++) {
            const r = await execute(c.api, 'kv.put', { key, value: n }, { idempotency_key: key, timeout_ms: 3000 });
            if (r.httpStatus === 200) {
              acked.set(key, n);
              break;
            }
            assert.ok([0, 503, 504].includes(r.httpStatus), `unexpected ${r.httpStatus}: ${JSON.stringify(r.body)}`);
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      };
      const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));
      let victimIndex = -1;
      try {
        await until('some acknowledged writes', async () => acked.size, (n) => n >= 50, 20_000, 50);
        const before = await clusterStatus(c.api);
        const leaderIndex = c.nodes.findIndex((n) => n.peerId === before.leader);
        assert.ok(leaderIndex >= 0, `leader ${before.leader} is not a node`);
        const victim = c.nodes[leaderIndex]!;
        victimIndex = leaderIndex;
        const killedAt = Date.now();
        victim.proc.child.kill('SIGKILL');
        await victim.proc.exited;

        // The new leader's own role event carries its wall-clock time.
        const survivors = c.nodes.filter((_, i) => i !== leaderIndex);
        const elected = await Promise.race(
          survivors.map((n) => n.proc.waitFor((e) => e.type === 'raft:role' && e['role'] === 'leader' && Date.parse(String(e['at'])) >= killedAt, 15_000, 'a new leader')),
        );
        const electionMs = Date.parse(String(elected['at'])) - killedAt;
        process.stdout.write(`# run ${run}: new leader ${electionMs} ms after SIGKILL\n`);
        assert.ok(electionMs <= NEW_LEADER_WITHIN_MS, `new leader after ${electionMs} ms`);

        // Keep writing while the victim is down, well past two snapshot intervals, so the
        // leader compacts away what the victim would need and must send a snapshot.
        const downCommit = (await clusterStatus(c.api)).commit_index;
        await until('the log to move past two snapshots', () => clusterStatus(c.api), (s) => s.commit_index >= downCommit + 2 * SNAPSHOT_EVERY + 50, 60_000, 100);
        stop = true;
        await Promise.all(workers);

        // No acknowledged write is lost.
        const lost: string[] = [];
        const keys = [...acked.keys()];
        for (let i = 0; i < keys.length; i += 16) {
          await Promise.all(
            keys.slice(i, i + 16).map(async (key) => {
              const r = await execute(c.api, 'kv.get', { key }, { read: 'linearizable', timeout_ms: 5000 });
              const out = r.body.outputs as { found?: boolean; value?: number } | undefined;
              if (r.httpStatus !== 200 || out?.found !== true || out.value !== acked.get(key)) lost.push(`${key}: ${JSON.stringify(r.body)}`);
            }),
          );
        }
        assert.deepEqual(lost.slice(0, 5), [], `${lost.length} of ${acked.size} acknowledged writes lost`);

        // Restart the victim: it is far behind and catches up by snapshot.
        const target = (await clusterStatus(c.api)).commit_index;
        const back = await c.startNode(leaderIndex);
        victimIndex = -1;
        await back.proc.waitFor((e) => e.type === 'raft:snapshot-installed', 30_000, 'a snapshot from the leader');
        await until(`${back.name} to apply ${target}`, async () => lastStatus(back.proc), (st) => Number(st?.['applied']) >= target, 30_000, 100);
        process.stdout.write(`# run ${run}: ${acked.size} acknowledged writes all read back; ${back.name} caught up to ${target} by snapshot\n`);
        // The next run's bound is for a whole cluster losing its leader: wait until the restarted
        // peer has a session with every other node again (a kill before that is a double fault;
        // seen once in ten runs: the survivors could not reach each other for 1.4 s).
        const others = c.nodes.filter((_, i) => i !== leaderIndex).map((n) => n.peerId);
        await back.proc.waitFor(() => others.every((id) => back.proc.events.some((e) => e.type === 'peer:established' && (e['peer'] as { peerId?: string } | undefined)?.peerId === id)), 30_000, `${back.name} in session with every other node`);
      } finally {
        stop = true;
        await Promise.all(workers);
        // A failed run leaves the cluster whole for the next one.
        if (victimIndex >= 0) await c.startNode(victimIndex);
      }
    });
  }
});
