// The faults the simulator injects into a cluster, one at a time: partitions (symmetric and
// one-way), healed links, power cuts of a node (the leader half the time) and restarts, drops,
// duplicates and delays, crashes between write and fsync, clock skew, leader transfers and
// membership changes (a learner promoted, a voter or learner removed, a fresh joiner added).
import { ConfChangeRejectedError, LeaderTransferError, ProposalDroppedError, type NodeId } from '../consensus/raft/index.ts';
import { SKEW_RATE_PERCENT, type SimCluster } from './cluster.ts';
import type { Xoshiro128 } from './prng.ts';

/** Most nodes (voters + learners + joiners) a run may create. */
export const MAX_NODES = 8;

export interface FaultState {
  /** Probability that an fsync is cut by a power failure. */
  crashMidReady: number;
  /** Id of the next joiner. */
  nextNodeNum: number;
  confChanges: number;
}

export function injectFault(c: SimCluster, rng: Xoshiro128, st: FaultState): void {
  const ids = [...c.nodes.keys()];
  const net = c.net;
  const r = rng.nextInt(100);
  if (r < 12) {
    // Symmetric partition into two random sides.
    net.blocked.clear();
    const side = new Set(ids.filter(() => rng.chance(0.5)));
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) net.blocked.add(`${a}>${b}`);
    c.trace(() => `partition {${[...side].join(',')}} | rest`);
  } else if (r < 20) {
    // Asymmetric: a few one-way links cut.
    const k = rng.range(1, 3);
    for (let i = 0; i < k; i++) {
      const a = rng.pick(ids);
      const b = rng.pick(ids);
      if (a !== b) net.blocked.add(`${a}>${b}`);
    }
    c.trace(() => `one-way cuts: ${[...net.blocked].join(' ')}`);
  } else if (r < 30) {
    net.blocked.clear();
    c.trace('links healed');
  } else if (r < 50) {
    // Cut the power of a node (the leader half of the time); most come back after a while.
    const up = [...c.nodes.values()].filter((n) => n.runtime !== undefined);
    const down = c.nodes.size - up.length;
    if (up.length > 0 && down < Math.floor(c.nodes.size / 2)) {
      const l = c.leader();
      const victim = l !== undefined && rng.chance(0.5) ? l : rng.pick(up);
      c.crash(victim, 'fault');
      if (rng.chance(0.7)) {
        const incarnation = victim.incarnation;
        c.clock.at(c.clock.now + rng.range(5, 1500), () => {
          if (victim.incarnation === incarnation) c.start(victim);
        });
      }
    }
  } else if (r < 56) {
    const down = [...c.nodes.values()].filter((n) => n.runtime === undefined && !n.starting);
    if (down.length > 0) c.start(rng.pick(down));
  } else if (r < 68) {
    net.dropRate = rng.pick([0, 0, 0.02, 0.1, 0.3]);
    net.dupRate = rng.pick([0, 0.02, 0.1]);
    net.maxDelay = rng.pick([15, 40, 75, 200]);
    st.crashMidReady = rng.pick([0, 0, 0.002, 0.01]);
    c.trace(() => `net drop=${net.dropRate} dup=${net.dupRate} maxDelay=${net.maxDelay} crashMidReady=${st.crashMidReady}`);
  } else if (r < 74) {
    for (const n of c.nodes.values()) {
      n.rate = rng.range(SKEW_RATE_PERCENT[0], SKEW_RATE_PERCENT[1]) / 100;
      if (n.timers !== undefined) n.timers.rate = n.rate;
    }
    c.trace('clock skew changed');
  } else if (r < 84) {
    const l = c.leader();
    if (l?.runtime !== undefined) {
      const voters = l.runtime.core.config().voters.filter((v) => v !== l.id);
      if (voters.length > 0) {
        const to = rng.pick(voters);
        try {
          l.runtime.transferLeadership(to);
          c.trace(() => `transfer leadership ${l.id} -> ${to}`);
        } catch (err) {
          if (!(err instanceof LeaderTransferError)) throw err;
        }
      }
    }
  } else {
    changeMembership(c, rng, st);
  }
}

function changeMembership(c: SimCluster, rng: Xoshiro128, st: FaultState): void {
  const l = c.leader();
  if (l?.runtime === undefined) return;
  const conf = l.runtime.core.config();
  const r = rng.nextInt(3);
  let cc: { type: 'addVoter' | 'addLearner' | 'removeNode'; node: NodeId } | undefined;
  let fresh: NodeId | undefined;
  if (r === 0 && conf.learners.length > 0) {
    cc = { type: 'addVoter', node: rng.pick(conf.learners) };
  } else if (r === 1 && conf.voters.length > 3) {
    cc = { type: 'removeNode', node: rng.pick(conf.voters) };
  } else if (r === 2 && c.nodes.size < MAX_NODES) {
    fresh = `n${st.nextNodeNum}`;
    cc = { type: 'addLearner', node: fresh };
  } else if (conf.learners.length > 0 && conf.voters.length + conf.learners.length > 3) {
    cc = { type: 'removeNode', node: rng.pick(conf.learners) };
  }
  if (cc === undefined) return;
  try {
    l.runtime.changeMembership(cc);
  } catch (err) {
    if (err instanceof ConfChangeRejectedError || err instanceof ProposalDroppedError) return;
    throw err;
  }
  st.confChanges++;
  c.trace(() => `conf change ${cc.type} ${cc.node} via ${l.id}`);
  if (fresh !== undefined) {
    st.nextNodeNum++;
    // A joiner starts empty: it learns the members from the log or a snapshot.
    c.addNode(fresh, false, false);
  }
}
