// The engine compliance suite: one list of cases every Consensus engine must pass (single,
// Raft in-process, Raft in the simulator, and PBFT next), with their own tiny assertions so
// they run unchanged under any runner. A harness opens a fresh engine on the real replica
// (operator state machine + receipts) and says how to wait for a promise: directly for real
// time, or by running simulated time until it settles.
import type { Json } from '../ico/types.ts';
import { verifyChain, type Receipt } from '../receipts/receipt.ts';
import type { Replica } from '../replica/replica.ts';
import type { ApplyResult } from '../statemachine/types.ts';
import { ConsensusError, type CommandOutcome, type Consensus, type ConsensusErrorCode } from './engine.ts';

export interface EngineHarness {
  /** A fresh engine (started), on the real replica, its cluster already able to commit. */
  engine: Consensus<Replica>;
  /** Waits for `p` (simulated engines run their clock until it settles). */
  wait<T>(p: Promise<T>): Promise<T>;
  /** Releases whatever else the harness started (the rest of a cluster). */
  dispose(): Promise<void>;
}

export interface EngineCase {
  name: string;
  run(open: () => Promise<EngineHarness>): Promise<void>;
}

class ComplianceFailure extends Error {
  override name = 'EngineComplianceFailure';
}

function ok(cond: boolean, message: string): asserts cond {
  if (!cond) throw new ComplianceFailure(message);
}

function same(got: unknown, want: unknown, message: string): void {
  ok(JSON.stringify(got) === JSON.stringify(want), `${message}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

async function rejectsWith(h: EngineHarness, p: Promise<unknown>, codes: readonly ConsensusErrorCode[], message: string): Promise<ConsensusError> {
  try {
    await h.wait(p);
  } catch (e) {
    ok(e instanceof ConsensusError, `${message}: expected a ConsensusError, got ${(e as Error).name}: ${(e as Error).message}`);
    ok(codes.includes(e.code), `${message}: expected ${codes.join(' or ')}, got ${e.code}`);
    return e;
  }
  throw new ComplianceFailure(`${message}: expected a rejection`);
}

function outputsOf(r: ApplyResult, what: string): Json {
  ok(r.ok, `${what}: ${r.ok ? '' : `${r.code}: ${r.message}`}`);
  return r.outputs;
}

async function receiptOf(h: EngineHarness, o: CommandOutcome, what: string): Promise<Receipt> {
  ok(o.receipt !== null, `${what}: no receipt`);
  return h.wait(o.receipt);
}

/** Opens, runs, and always disposes and closes. */
async function using(open: () => Promise<EngineHarness>, body: (h: EngineHarness) => Promise<void>): Promise<void> {
  const h = await open();
  try {
    await body(h);
  } finally {
    await h.wait(h.engine.close()).catch(() => undefined);
    await h.dispose();
  }
}

export function engineCases(): EngineCase[] {
  return [
    {
      name: 'submit applies a command and answers with this replica’s result and receipt; reads see it',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          const put = await h.wait(e.submit({ operator_id: 'kv.put', inputs: { key: 'a', value: { n: 1 } } }));
          same(outputsOf(put.result, 'kv.put'), { ok: true }, 'put outputs');
          const receipt = await receiptOf(h, put, 'kv.put');
          same(receipt.operation.operator_id, 'kv.put', 'receipt operator');
          same(receipt.signer, e.replica.log.peerId, 'the receipt is signed by this replica');
          same(outputsOf(await h.wait(e.read('kv.get', { key: 'a' })), 'linearizable read'), { found: true, value: { n: 1 } }, 'linearizable read (the default)');
          same(outputsOf(await h.wait(e.read('kv.get', { key: 'a' }, { consistency: 'serializable' })), 'serializable read'), { found: true, value: { n: 1 } }, 'serializable read on the replica that answered');
        }),
    },
    {
      name: 'an idempotency key executes once: a retry answers with the first result and receipt',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          const cmd = { operator_id: 'counter.add', inputs: { key: 'c', delta: 5 }, idempotency: { client: 'alice', key: 'k1' } };
          const first = await h.wait(e.submit(cmd));
          const again = await h.wait(e.submit(cmd));
          same(outputsOf(first.result, 'first'), { value: 5 }, 'first outputs');
          same(outputsOf(again.result, 'retry'), { value: 5 }, 'retry outputs');
          ok(first.result.ok && !first.result.replayed && again.result.ok && again.result.replayed, 'the retry is marked replayed');
          same((await receiptOf(h, again, 'retry')).receipt_id, (await receiptOf(h, first, 'first')).receipt_id, 'the same receipt');
          // Another client's key of the same name is its own.
          const bob = await h.wait(e.submit({ ...cmd, idempotency: { client: 'bob', key: 'k1' } }));
          same(outputsOf(bob.result, 'bob'), { value: 10 }, "another client's key executes");
        }),
    },
    {
      name: 'concurrent submits each execute exactly once, in one order every replica agrees on',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          const n = 24;
          const outcomes = await h.wait(Promise.all(Array.from({ length: n }, (_, i) => e.submit({ operator_id: 'counter.add', inputs: { key: 'n', delta: 1 }, ...(i % 2 === 0 ? { idempotency: { client: 'c', key: `k${i}` } } : {}) }))));
          const values = outcomes.map((o) => (outputsOf(o.result, 'counter.add') as { value: number }).value).sort((a, b) => a - b);
          same(values, Array.from({ length: n }, (_, i) => i + 1), 'each add saw a distinct total');
          same(outputsOf(await h.wait(e.read('kv.get', { key: 'n' })), 'read'), { found: true, value: n }, 'the total');
          const receipts = await h.wait(Promise.all(outcomes.map((o) => receiptOf(h, o, 'add'))));
          const sorted = receipts.sort((a, b) => a.index - b.index);
          const verdict = await h.wait(verifyChain(sorted, { now: Date.now() + 86_400_000 * 365 * 10, signer: e.replica.log.peerId }));
          ok(verdict.ok, `the receipts chain: ${JSON.stringify(verdict)}`);
        }),
    },
    {
      name: 'a failing operator changes nothing and answers its typed failure (no receipt)',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          await h.wait(e.submit({ operator_id: 'kv.put', inputs: { key: 's', value: 'text' } }));
          const before = e.replica.ordinal;
          const bad = await h.wait(e.submit({ operator_id: 'counter.add', inputs: { key: 's', delta: 1 } }));
          ok(!bad.result.ok && bad.result.code === 'OPERATOR_FAILED', `OPERATOR_FAILED, got ${JSON.stringify(bad.result)}`);
          same(bad.receipt, null, 'no receipt');
          same(e.replica.ordinal, before, 'no execution');
          same(outputsOf(await h.wait(e.read('kv.get', { key: 's' })), 'read'), { found: true, value: 'text' }, 'state unchanged');
        }),
    },
    {
      name: 'a malformed command is a typed INVALID_COMMAND before anything runs',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          const before = e.status().appliedIndex;
          await rejectsWith(h, e.submit({ operator_id: 'Not An Id!', inputs: {} }), ['INVALID_COMMAND'], 'bad operator id');
          await rejectsWith(h, e.submit({ operator_id: 'echo', inputs: {}, idempotency: { client: 'c', key: 'k'.repeat(300) } }), ['INVALID_COMMAND'], 'session key too long');
          await rejectsWith(h, e.submit({ operator_id: 'echo', inputs: {}, idempotency: { client: '', key: 'k' } }), ['INVALID_COMMAND'], 'empty session client');
          same(e.status().appliedIndex, before, 'nothing was ordered');
        }),
    },
    {
      name: 'an aborted signal rejects at once with a typed error: a timeout retryable, a cancel not',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          const cancelled = new AbortController();
          cancelled.abort();
          const c = await rejectsWith(h, e.submit({ operator_id: 'echo', inputs: { x: 1 } }, { signal: cancelled.signal }), ['CANCELLED'], 'cancelled submit');
          ok(!c.retryable, 'a cancel is not retryable');
          const timedOut = new AbortController();
          timedOut.abort(new DOMException('the deadline passed', 'TimeoutError'));
          const t = await rejectsWith(h, e.submit({ operator_id: 'echo', inputs: { x: 2 } }, { signal: timedOut.signal }), ['DEADLINE_EXCEEDED', 'UNAVAILABLE'], 'timed-out submit');
          ok(t.retryable, 'a deadline is retryable');
          await rejectsWith(h, e.read('kv.get', { key: 'a' }, { signal: timedOut.signal }), ['DEADLINE_EXCEEDED', 'UNAVAILABLE'], 'timed-out read');
          // The engine still works afterwards.
          same(outputsOf((await h.wait(e.submit({ operator_id: 'echo', inputs: { x: 3 } }))).result, 'echo'), { x: 3 }, 'a later submit');
        }),
    },
    {
      name: 'status and members describe this member, its leader and its progress',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          await h.wait(e.submit({ operator_id: 'kv.put', inputs: { key: 'm', value: 1 } }));
          const s = e.status();
          same(s.kind, e.kind, 'kind');
          same(s.self, e.id, 'self');
          ok(s.leader !== null, 'a leader is known after a write');
          ok(s.appliedIndex >= 1 && s.appliedIndex <= s.commitIndex, `applied ${s.appliedIndex} within commit ${s.commitIndex}`);
          const members = e.members();
          ok(members.some((m) => m.peerId === e.id), 'members include this member');
          ok(members.some((m) => m.peerId === s.leader && m.role === 'voter'), 'the leader is a voting member');
          ok(members.every((m) => m.role === 'voter' || m.role === 'learner'), 'roles are voter or learner');
          const before = s.appliedIndex;
          await h.wait(e.submit({ operator_id: 'kv.put', inputs: { key: 'm', value: 2 } }));
          ok(e.status().appliedIndex > before, 'applied index grows with a write');
        }),
    },
    {
      name: 'close rejects new calls with UNAVAILABLE (retryable) and is idempotent',
      run: (open) =>
        using(open, async (h) => {
          const e = h.engine;
          await h.wait(e.submit({ operator_id: 'kv.put', inputs: { key: 'z', value: 1 } }));
          await h.wait(e.close());
          await h.wait(e.close());
          const err = await rejectsWith(h, e.submit({ operator_id: 'echo', inputs: {} }), ['UNAVAILABLE'], 'submit after close');
          ok(err.retryable, 'UNAVAILABLE is retryable');
          await rejectsWith(h, e.read('kv.get', { key: 'z' }), ['UNAVAILABLE'], 'read after close');
        }),
    },
  ];
}
