// The runtime's client commands: a command the leader of the current term appended is not
// appended again while that leader leads (its entry commits or a new term overwrites it).
// Before, every attempt timeout appended it once more, so on a loaded cluster, where a commit
// takes longer than an attempt, the log grew with copies and the cluster fell further behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapState, RaftNode } from '../../src/consensus/raft/index.ts';
import { ClientCommands } from '../../src/consensus/raft/runtime/commands.ts';
import { ATTEMPT_TIMEOUT_MS } from '../../src/consensus/raft/runtime/limits.ts';
import type { Timers } from '../../src/consensus/ports.ts';

/** Manual time: timers run only when the test advances the clock. */
class ManualTimers implements Timers {
  #now = 1_000_000;
  #due: Array<{ at: number; fn: () => void }> = [];
  #soon: Array<() => void> = [];
  now(): number {
    return this.#now;
  }
  after(ms: number, fn: () => void): () => void {
    const t = { at: this.#now + ms, fn };
    this.#due.push(t);
    return () => (this.#due = this.#due.filter((x) => x !== t));
  }
  defer(fn: () => void): void {
    this.#soon.push(fn);
  }
  /** Runs deferred work, then every timer due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const soon = this.#soon.shift();
      if (soon !== undefined) {
        soon();
        continue;
      }
      this.#due.sort((a, b) => a.at - b.at);
      const next = this.#due[0];
      if (next === undefined || next.at > end) break;
      this.#due.shift();
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}

test('a command appended by the current leader is not appended again on each attempt timeout', () => {
  const timers = new ManualTimers();
  const node = new RaftNode({ id: 'a', random: { nextInt: () => 0 }, storage: bootstrapState(['a']) });
  node.campaign();
  assert.equal(node.currentRole(), 'leader');
  const before = node.log.lastIndex();
  // Nothing persists or commits here: the entry stays uncommitted, as on a slow cluster.
  const commands = new ClientCommands({ id: 'a', node, timers, tickMs: 50, leaderlessWaitMs: 60_000, send: () => undefined, kick: () => undefined, applied: () => 0 });
  void commands.submit({ operator_id: 'kv.put', inputs: { key: 'k', value: 1 }, client: 'c', key: 'idem:k' }, undefined).catch(() => undefined);
  timers.advance(10 * ATTEMPT_TIMEOUT_MS);
  assert.equal(node.log.lastIndex() - before, 1, `appended ${node.log.lastIndex() - before} times in ${10 * ATTEMPT_TIMEOUT_MS} ms`);
  commands.stop('test over');
});
