// Deterministic cluster simulator: Raft cores + a faulty network + crashing disks + a client
// workload on a replicated KV, all driven by one seeded PRNG and a discrete event queue.
// Every run checks election safety, log matching, leader completeness, state machine safety,
// linearizability of the client history, and liveness once the faults heal.
import {
  ConfChangeRejectedError,
  LeaderTransferError,
  ProposalDroppedError,
  RaftNode,
  bootstrapState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type Snapshot,
} from '../consensus/raft/index.ts';
import { KvStateMachine, decodeCommand, encodeCommand, type KvCommand, type KvResult } from './kv.ts';
import { checkKvHistory, type KvInput, type KvOperation, type KvOutput } from './linearizability.ts';
import { Xoshiro128 } from './prng.ts';

/** Simulated time units per tick at nominal clock speed (skewed per node). */
export const UNITS_PER_TICK = 10;
/** Ticks after healing within which a leader must be elected and a client write committed. */
export const LIVENESS_TICKS = 120;
/** Upper bound on events per run (a runaway run is a failure, not a hang). */
export const MAX_EVENTS_PER_RUN = 2_000_000;
/** Most nodes (voters + learners + joiners) a run may create. */
export const MAX_NODES = 8;

export interface SimOptions {
  readonly seed: number;
  /** Ticks with faults injected, then the heal phase. */
  readonly faultTicks?: number;
  readonly healTicks?: number;
  readonly trace?: boolean;
}

export interface SimViolation {
  readonly property: string;
  readonly detail: string;
}

export interface SimStats {
  voters: number;
  learners: number;
  events: number;
  messages: number;
  elections: number;
  crashes: number;
  confChanges: number;
  snapshotsSent: number;
  opsCompleted: number;
  opsChecked: number;
  maxCommit: number;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation?: SimViolation;
  readonly stats: SimStats;
  readonly trace: readonly string[];
}

class Violation extends Error {
  override name = 'SimViolation';
  readonly property: string;
  constructor(property: string, detail: string) {
    super(detail);
    this.property = property;
  }
}

interface Disk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

interface SimNode {
  readonly id: NodeId;
  raft: RaftNode | undefined;
  disk: Disk;
  kv: KvStateMachine;
  applied: number;
  tickPeriod: number;
  /** Monotonic: a tick event of an older incarnation is ignored. */
  incarnation: number;
  writeWaiters: Map<string, string>;
  readWaiters: Map<string, string>;
  readQueue: { index: number; ctx: string }[];
}

type EventKind =
  | { kind: 'tick'; node: NodeId; incarnation: number }
  | { kind: 'deliver'; msg: Message }
  | { kind: 'client'; client: string; seq: number; attempt: number }
  | { kind: 'fault' }
  | { kind: 'restart'; node: NodeId; incarnation: number }
  | { kind: 'heal' }
  | { kind: 'end' };

interface QueuedEvent {
  time: number;
  seq: number;
  ev: EventKind;
}

/** Binary min-heap on (time, seq): deterministic order for equal times. */
class EventQueue {
  private readonly heap: QueuedEvent[] = [];
  private seq = 0;

  push(time: number, ev: EventKind): void {
    const h = this.heap;
    h.push({ time, seq: this.seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p] as QueuedEvent, h[i] as QueuedEvent)) break;
      [h[p], h[i]] = [h[i] as QueuedEvent, h[p] as QueuedEvent];
      i = p;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l] as QueuedEvent, h[m] as QueuedEvent)) m = l;
        if (r < h.length && less(h[r] as QueuedEvent, h[m] as QueuedEvent)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as QueuedEvent, h[m] as QueuedEvent];
        i = m;
      }
    }
    return top;
  }
}

function less(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

interface PendingOp {
  readonly historyIndex: number;
  readonly input: KvInput;
  readonly seq: number;
  attempt: number;
  target: NodeId;
  ctx: string;
}

interface Client {
  readonly id: string;
  seq: number;
  pending: PendingOp | undefined;
  leaderHint: NodeId;
}

interface HistoryEntry {
  client: string;
  input: KvInput;
  call: number;
  ret: number;
  output: KvOutput | undefined;
}

const KEYS = ['a', 'b', 'c'];

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs one seeded scenario to completion and checks every property. */
export function runSimulation(opts: SimOptions): SimResult {
  const sim = new Simulation(opts);
  return sim.run();
}

class Simulation {
  private readonly seed: number;
  private readonly rng: Xoshiro128;
  private readonly queue = new EventQueue();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: Client[] = [];
  private readonly history: HistoryEntry[] = [];
  private readonly traceOn: boolean;
  private readonly traceLines: string[] = [];
  private now = 0;
  private readonly faultEnd: number;
  private readonly end: number;
  private healed = false;
  private healTime = 0;
  private firstCommitAfterHeal = -1;
  private nextNodeNum: number;

  // network fault state
  private dropRate = 0;
  private dupRate = 0;
  private maxDelay = 8;
  private readonly blocked = new Set<string>();
  private crashMidReady = 0;

  // safety bookkeeping
  private readonly leaders = new Map<number, NodeId>();
  private readonly committed: (Entry | undefined)[] = [];
  private maxCommitted = 0;
  private readonly compactEvery: number;
  private readonly stats: SimStats;

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    this.rng = new Xoshiro128(opts.seed);
    this.traceOn = opts.trace === true;
    const faultTicks = opts.faultTicks ?? 160;
    const healTicks = opts.healTicks ?? LIVENESS_TICKS + 20;
    this.faultEnd = faultTicks * UNITS_PER_TICK;
    this.end = this.faultEnd + healTicks * UNITS_PER_TICK;
    const voters = this.rng.chance(0.7) ? 3 : 5;
    const learners = this.rng.range(0, 2);
    this.compactEvery = this.rng.range(5, 40);
    this.stats = {
      voters,
      learners,
      events: 0,
      messages: 0,
      elections: 0,
      crashes: 0,
      confChanges: 0,
      snapshotsSent: 0,
      opsCompleted: 0,
      opsChecked: 0,
      maxCommit: 0,
    };
    const voterIds = Array.from({ length: voters }, (_, i) => `n${i + 1}`);
    const learnerIds = Array.from({ length: learners }, (_, i) => `n${voters + i + 1}`);
    this.nextNodeNum = voters + learners + 1;
    const boot = bootstrapState(voterIds, learnerIds);
    for (const id of [...voterIds, ...learnerIds]) {
      this.addNode(id, { hardState: boot.hardState, snapshot: undefined, entries: boot.entries.slice() });
    }
    const nClients = this.rng.range(2, 5);
    for (let i = 0; i < nClients; i++) {
      const c: Client = { id: `c${i + 1}`, seq: 0, pending: undefined, leaderHint: '' };
      this.clients.push(c);
      this.queue.push(this.rng.range(1, 50), { kind: 'client', client: c.id, seq: 1, attempt: 0 });
    }
    this.queue.push(this.rng.range(20, 200), { kind: 'fault' });
    this.queue.push(this.faultEnd, { kind: 'heal' });
    this.queue.push(this.end, { kind: 'end' });
  }

  private trace(line: string | (() => string)): void {
    if (this.traceOn) this.traceLines.push(`[${this.now}] ${typeof line === 'string' ? line : line()}`);
  }

  private addNode(id: NodeId, disk: Disk): SimNode {
    const node: SimNode = {
      id,
      raft: undefined,
      disk,
      kv: new KvStateMachine(),
      applied: 0,
      tickPeriod: UNITS_PER_TICK,
      incarnation: 0,
      writeWaiters: new Map(),
      readWaiters: new Map(),
      readQueue: [],
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  /** (Re)start a node from its durable disk. */
  private start(node: SimNode): void {
    const d = node.disk;
    const snapIndex = d.snapshot?.meta.index ?? 0;
    node.raft = new RaftNode({
      id: node.id,
      random: this.rng.fork(),
      electionTicks: 10,
      heartbeatTicks: 2,
      preVote: true,
      checkQuorum: true,
      storage: { hardState: d.hardState, snapshot: d.snapshot, entries: d.entries.slice() },
      applied: snapIndex,
      limits: { snapshotChunkBytes: 48, maxInflightMsgs: 4, maxEntriesPerMsg: 8, maxBytesPerMsg: 512, maxPendingReads: 64 },
    });
    node.kv = d.snapshot !== undefined ? KvStateMachine.restore(d.snapshot.data) : new KvStateMachine();
    node.applied = snapIndex;
    node.incarnation++;
    node.writeWaiters.clear();
    node.readWaiters.clear();
    node.readQueue = [];
    node.tickPeriod = this.rng.range(UNITS_PER_TICK - 2, UNITS_PER_TICK + 2);
    this.queue.push(this.now + this.rng.range(1, node.tickPeriod), { kind: 'tick', node: node.id, incarnation: node.incarnation });
    this.trace(() => `start ${node.id} (snap ${snapIndex}, ${d.entries.length} entries, term ${d.hardState.term})`);
  }

  private crash(node: SimNode, why: string): void {
    if (node.raft === undefined) return;
    node.raft = undefined;
    node.incarnation++;
    this.stats.crashes++;
    this.trace(() => `crash ${node.id} (${why})`);
  }

  run(): SimResult {
    try {
      this.loop();
      this.checkLogMatching();
      this.checkLinearizability();
      return { seed: this.seed, ok: true, stats: this.stats, trace: this.traceLines };
    } catch (err) {
      if (err instanceof Violation) {
        return { seed: this.seed, ok: false, violation: { property: err.property, detail: err.message }, stats: this.stats, trace: this.traceLines };
      }
      const e = err as Error;
      return {
        seed: this.seed,
        ok: false,
        violation: { property: e.name === 'RaftInvariantError' ? 'raft invariant' : 'exception', detail: `${e.name}: ${e.message}\n${e.stack ?? ''}` },
        stats: this.stats,
        trace: this.traceLines,
      };
    }
  }

  private loop(): void {
    for (;;) {
      const qe = this.queue.pop();
      if (qe === undefined) return;
      if (++this.stats.events > MAX_EVENTS_PER_RUN) throw new Violation('bounded run', `more than ${MAX_EVENTS_PER_RUN} events`);
      this.now = qe.time;
      const ev = qe.ev;
      switch (ev.kind) {
        case 'tick': {
          const node = this.nodes.get(ev.node) as SimNode;
          if (node.raft === undefined || node.incarnation !== ev.incarnation) break;
          node.raft.tick();
          this.drain(node);
          this.queue.push(this.now + node.tickPeriod, ev);
          break;
        }
        case 'deliver': {
          const node = this.nodes.get(ev.msg.to);
          if (node?.raft === undefined) break;
          this.trace(() => `deliver ${describe(ev.msg)}`);
          node.raft.step(ev.msg);
          this.drain(node);
          break;
        }
        case 'client':
          this.clientAct(ev.client, ev.seq, ev.attempt);
          break;
        case 'fault':
          if (!this.healed) {
            this.injectFault();
            this.queue.push(this.now + this.rng.range(20, 160), { kind: 'fault' });
          }
          break;
        case 'restart': {
          const node = this.nodes.get(ev.node) as SimNode;
          if (node.raft !== undefined || node.incarnation !== ev.incarnation) break;
          this.start(node);
          this.drain(node);
          break;
        }
        case 'heal':
          this.heal();
          break;
        case 'end':
          if (this.firstCommitAfterHeal < 0) {
            throw new Violation('liveness', `no client operation completed within ${LIVENESS_TICKS} ticks after healing`);
          }
          return;
      }
      if (this.healed && this.firstCommitAfterHeal < 0 && this.now > this.healTime + LIVENESS_TICKS * UNITS_PER_TICK) {
        throw new Violation('liveness', `no client operation completed within ${LIVENESS_TICKS} ticks after healing`);
      }
    }
  }

  // ---- Ready processing -------------------------------------------------------------------

  private drain(node: SimNode): void {
    for (let guard = 0; guard < 1000; guard++) {
      const raft = node.raft;
      if (raft === undefined) return;
      const rd = raft.ready();
      if (rd === null) return;
      // A crash between writing and fsync loses this Ready's writes; nothing was sent yet.
      if (this.crashMidReady > 0 && (rd.entries.length > 0 || rd.hardState !== undefined) && this.rng.chance(this.crashMidReady)) {
        this.crash(node, 'before fsync');
        return;
      }
      this.persist(node, rd);
      for (const m of rd.messages) this.send(m);
      if (rd.softState !== undefined) this.onSoftState(node, raft, rd);
      if (rd.snapshot !== undefined) {
        node.kv = KvStateMachine.restore(rd.snapshot.data);
        node.applied = rd.snapshot.meta.index;
        node.readQueue = node.readQueue.filter((r) => r.index > node.applied);
        this.trace(() => `${node.id} installed snapshot ${rd.snapshot?.meta.index}`);
      }
      for (const e of rd.committedEntries) this.apply(node, e);
      for (const rs of rd.readStates) node.readQueue.push(rs);
      this.serveReads(node);
      raft.advance(rd);
      if (node.applied - raft.log.snapIndex() >= this.compactEvery && node.applied <= raft.log.stableIndex) {
        raft.compact(node.applied, node.kv.serialize());
        const snap = raft.log.snapshot;
        node.disk.snapshot = snap;
        node.disk.entries = node.disk.entries.filter((e) => e.index > snap.meta.index);
      }
    }
    throw new Violation('bounded drain', `${node.id} produced 1000 Readies in a row`);
  }

  private persist(node: SimNode, rd: Ready): void {
    const d = node.disk;
    if (rd.snapshot !== undefined) {
      d.snapshot = rd.snapshot;
      d.entries = [];
    }
    if (rd.hardState !== undefined) d.hardState = rd.hardState;
    if (rd.entries.length > 0) {
      const first = (rd.entries[0] as Entry).index;
      const base = (d.snapshot?.meta.index ?? 0) + 1;
      if (first < base) throw new Violation('driver', `${node.id} persists entry ${first} below snapshot`);
      d.entries.length = Math.min(d.entries.length, first - base);
      if (d.entries.length !== first - base) throw new Violation('driver', `${node.id} persists entry ${first} leaving a gap`);
      for (const e of rd.entries) d.entries.push(e);
    }
  }

  private onSoftState(node: SimNode, raft: RaftNode, rd: Ready): void {
    const ss = rd.softState;
    if (ss === undefined) return;
    this.trace(() => `${node.id} is ${ss.role} (leader '${ss.leader}', term ${raft.currentTerm()})`);
    if (ss.role !== 'leader') return;
    const term = raft.currentTerm();
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== node.id) throw new Violation('election safety', `term ${term} has two leaders: ${prev} and ${node.id}`);
    this.leaders.set(term, node.id);
    this.stats.elections++;
    // Leader completeness: every entry known committed is in the new leader's log.
    const log = raft.log;
    for (let i = Math.max(1, log.firstIndex()); i <= this.maxCommitted; i++) {
      const c = this.committed[i];
      if (c === undefined) continue;
      if (log.term(i) !== c.term) {
        throw new Violation('leader completeness', `leader ${node.id} of term ${term} lacks committed entry ${i} (term ${c.term}); has term ${log.term(i)}`);
      }
    }
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.applied + 1) throw new Violation('state machine safety', `${node.id} applies ${e.index} after ${node.applied}`);
    node.applied = e.index;
    const known = this.committed[e.index];
    if (known === undefined) {
      this.committed[e.index] = e;
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      this.stats.maxCommit = this.maxCommitted;
    } else if (known.term !== e.term || known.type !== e.type || !bytesEqual(known.data, e.data)) {
      throw new Violation('state machine safety', `${node.id} applies a different entry at ${e.index} (term ${e.term} vs ${known.term})`);
    }
    if (e.type !== 'normal' || e.data.byteLength === 0) return;
    const cmd = decodeCommand(e.data);
    const result = node.kv.apply(cmd);
    const key = `${cmd.client}:${cmd.seq}`;
    const waiting = node.writeWaiters.get(key);
    if (waiting !== undefined && result !== undefined) {
      node.writeWaiters.delete(key);
      this.completeWrite(cmd, result, node.id);
    }
  }

  private serveReads(node: SimNode): void {
    if (node.readQueue.length === 0) return;
    const rest: { index: number; ctx: string }[] = [];
    for (const r of node.readQueue) {
      if (r.index > node.applied) {
        rest.push(r);
        continue;
      }
      const clientId = node.readWaiters.get(r.ctx);
      if (clientId === undefined) continue;
      node.readWaiters.delete(r.ctx);
      const c = this.client(clientId);
      const p = c.pending;
      if (p === undefined || p.ctx !== r.ctx || p.input.kind !== 'get') continue;
      this.complete(c, node.kv.get(p.input.key));
    }
    node.readQueue = rest;
  }

  // ---- network ------------------------------------------------------------------------------

  private send(m: Message): void {
    this.stats.messages++;
    if (m.type === 'snapshot') this.stats.snapshotsSent++;
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    if (this.dropRate > 0 && this.rng.chance(this.dropRate)) return;
    this.queue.push(this.now + this.rng.range(1, this.maxDelay), { kind: 'deliver', msg: m });
    if (this.dupRate > 0 && this.rng.chance(this.dupRate)) {
      this.queue.push(this.now + this.rng.range(1, this.maxDelay * 3), { kind: 'deliver', msg: m });
    }
  }

  // ---- faults -------------------------------------------------------------------------------

  private memberIds(): NodeId[] {
    return [...this.nodes.keys()];
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raft?.currentRole() !== 'leader') continue;
      if (best === undefined || n.raft.currentTerm() > (best.raft as RaftNode).currentTerm()) best = n;
    }
    return best;
  }

  private injectFault(): void {
    const ids = this.memberIds();
    const r = this.rng.nextInt(100);
    if (r < 12) {
      // Symmetric partition into two random sides.
      this.blocked.clear();
      const side = new Set(ids.filter(() => this.rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
      this.trace(() => `partition {${[...side].join(',')}} | rest`);
    } else if (r < 20) {
      // Asymmetric: a few one-way links cut.
      const k = this.rng.range(1, 3);
      for (let i = 0; i < k; i++) {
        const a = this.rng.pick(ids);
        const b = this.rng.pick(ids);
        if (a !== b) this.blocked.add(`${a}>${b}`);
      }
      this.trace(() => `one-way cuts: ${[...this.blocked].join(' ')}`);
    } else if (r < 30) {
      this.blocked.clear();
      this.trace('links healed');
    } else if (r < 50) {
      // Crash a node (the leader half of the time); most come back after a while.
      const up = [...this.nodes.values()].filter((n) => n.raft !== undefined);
      const down = this.nodes.size - up.length;
      if (up.length > 0 && down < Math.floor(this.nodes.size / 2)) {
        const l = this.currentLeader();
        const victim = l !== undefined && this.rng.chance(0.5) ? l : this.rng.pick(up);
        this.crash(victim, 'fault');
        if (this.rng.chance(0.7)) {
          this.queue.push(this.now + this.rng.range(1, 300), { kind: 'restart', node: victim.id, incarnation: victim.incarnation });
        }
      }
    } else if (r < 56) {
      const down = [...this.nodes.values()].filter((n) => n.raft === undefined);
      if (down.length > 0) {
        const n = this.rng.pick(down);
        this.start(n);
        this.drain(n);
      }
    } else if (r < 68) {
      this.dropRate = this.rng.pick([0, 0, 0.02, 0.1, 0.3]);
      this.dupRate = this.rng.pick([0, 0.02, 0.1]);
      this.maxDelay = this.rng.pick([3, 8, 15, 40]);
      this.crashMidReady = this.rng.pick([0, 0, 0.002, 0.01]);
      this.trace(() => `net drop=${this.dropRate} dup=${this.dupRate} maxDelay=${this.maxDelay} crashMidReady=${this.crashMidReady}`);
    } else if (r < 74) {
      for (const n of this.nodes.values()) n.tickPeriod = this.rng.range(UNITS_PER_TICK - 3, UNITS_PER_TICK + 3);
      this.trace('clock skew changed');
    } else if (r < 84) {
      const l = this.currentLeader();
      if (l?.raft !== undefined) {
        const voters = l.raft.config().voters.filter((v) => v !== l.id);
        if (voters.length > 0) {
          const to = this.rng.pick(voters);
          try {
            l.raft.transferLeader(to);
            this.trace(() => `transfer leadership ${l.id} -> ${to}`);
          } catch (err) {
            if (!(err instanceof LeaderTransferError)) throw err;
          }
          this.drain(l);
        }
      }
    } else {
      this.changeMembership();
    }
  }

  private changeMembership(): void {
    const l = this.currentLeader();
    if (l?.raft === undefined) return;
    const conf = l.raft.config();
    const r = this.rng.nextInt(3);
    let cc: { type: 'addVoter' | 'addLearner' | 'removeNode'; node: NodeId } | undefined;
    let fresh: NodeId | undefined;
    if (r === 0 && conf.learners.length > 0) {
      cc = { type: 'addVoter', node: this.rng.pick(conf.learners) };
    } else if (r === 1 && conf.voters.length > 3) {
      cc = { type: 'removeNode', node: this.rng.pick(conf.voters) };
    } else if (r === 2 && this.nodes.size < MAX_NODES) {
      fresh = `n${this.nextNodeNum}`;
      cc = { type: 'addLearner', node: fresh };
    } else if (conf.learners.length > 0 && conf.voters.length + conf.learners.length > 3) {
      cc = { type: 'removeNode', node: this.rng.pick(conf.learners) };
    }
    if (cc === undefined) return;
    try {
      l.raft.proposeConfChange(cc);
    } catch (err) {
      if (err instanceof ConfChangeRejectedError || err instanceof ProposalDroppedError) return;
      throw err;
    }
    this.stats.confChanges++;
    this.trace(() => `conf change ${cc.type} ${cc.node} via ${l.id}`);
    if (fresh !== undefined) {
      this.nextNodeNum++;
      // A joiner starts empty: it learns the members from the log or a snapshot.
      this.addNode(fresh, { hardState: { term: 0, vote: '', commit: 0 }, snapshot: undefined, entries: [] });
    }
    this.drain(l);
  }

  private heal(): void {
    this.healed = true;
    this.healTime = this.now;
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelay = 8;
    this.crashMidReady = 0;
    this.trace('HEAL: links, drops and crashes repaired');
    for (const n of this.nodes.values()) {
      if (n.raft === undefined) {
        this.start(n);
        this.drain(n);
      }
    }
  }

  // ---- clients ------------------------------------------------------------------------------

  private client(id: string): Client {
    const c = this.clients.find((x) => x.id === id);
    if (c === undefined) throw new Error(`unknown client ${id}`);
    return c;
  }

  private clientAct(clientId: string, seq: number, attempt: number): void {
    const c = this.client(clientId);
    let p = c.pending;
    if (p === undefined) {
      if (seq !== c.seq + 1) return; // a stale timer of a finished operation
      if (this.now >= this.end - 10 * UNITS_PER_TICK) return;
      p = this.newOp(c);
    } else if (seq !== p.seq || attempt !== p.attempt) {
      return; // a stale timer of an earlier attempt
    } else {
      p.attempt++;
    }
    this.attempt(c, p);
  }

  private newOp(c: Client): PendingOp {
    const key = this.rng.pick(KEYS);
    const r = this.rng.nextInt(10);
    let input: KvInput;
    if (r < 4) input = { kind: 'get', key };
    else if (r < 8) input = { kind: 'put', key, value: `${c.id}-${c.seq + 1}` };
    else input = { kind: 'cas', key, expected: this.rng.chance(0.3) ? null : `${this.rng.pick(this.clients).id}-${this.rng.range(1, c.seq + 2)}`, value: `${c.id}-${c.seq + 1}` };
    c.seq++;
    this.history.push({ client: c.id, input, call: this.now, ret: Infinity, output: undefined });
    const p: PendingOp = { historyIndex: this.history.length - 1, input, seq: c.seq, attempt: 0, target: '', ctx: '' };
    c.pending = p;
    this.trace(() => `${c.id} invokes ${JSON.stringify(input)}`);
    return p;
  }

  private attempt(c: Client, p: PendingOp): void {
    const ids = this.memberIds();
    const target = c.leaderHint !== '' && this.nodes.has(c.leaderHint) && this.rng.chance(0.8) ? c.leaderHint : this.rng.pick(ids);
    p.target = target;
    const node = this.nodes.get(target) as SimNode;
    const retry = (delay: number): void => this.queue.push(this.now + delay, { kind: 'client', client: c.id, seq: p.seq, attempt: p.attempt });
    if (node.raft === undefined) {
      c.leaderHint = '';
      retry(this.rng.range(5, 20));
      return;
    }
    try {
      if (p.input.kind === 'get') {
        p.ctx = `${c.id}:${p.seq}:${p.attempt}`;
        node.raft.readIndex(p.ctx);
        node.readWaiters.set(p.ctx, c.id);
      } else {
        const cmd: KvCommand =
          p.input.kind === 'put'
            ? { kind: 'put', client: c.id, seq: p.seq, key: p.input.key, value: p.input.value }
            : { kind: 'cas', client: c.id, seq: p.seq, key: p.input.key, expected: p.input.expected, value: p.input.value };
        node.raft.propose(encodeCommand(cmd));
        node.writeWaiters.set(`${c.id}:${p.seq}`, c.id);
      }
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      c.leaderHint = err.leaderHint;
      retry(this.rng.range(2, 15));
      return;
    }
    // Request timeout: retry (the same seq, so a write still applies at most once).
    retry(this.rng.range(20, 40) * UNITS_PER_TICK / 2);
    this.drain(node);
  }

  private completeWrite(cmd: KvCommand, result: KvResult, via: NodeId): void {
    const c = this.client(cmd.client);
    const p = c.pending;
    if (p === undefined || p.seq !== cmd.seq || p.target !== via) return;
    c.leaderHint = via;
    this.complete(c, result);
  }

  private complete(c: Client, output: KvOutput): void {
    const p = c.pending as PendingOp;
    const h = this.history[p.historyIndex] as HistoryEntry;
    h.ret = this.now;
    h.output = output;
    c.pending = undefined;
    this.stats.opsCompleted++;
    if (this.healed && this.firstCommitAfterHeal < 0 && h.call >= this.healTime) this.firstCommitAfterHeal = this.now;
    this.trace(() => `${c.id} got ${JSON.stringify(output)} for ${JSON.stringify(h.input)}`);
    this.queue.push(this.now + this.rng.range(1, 30), { kind: 'client', client: c.id, seq: c.seq + 1, attempt: 0 });
  }

  // ---- end-of-run checks --------------------------------------------------------------------

  private checkLogMatching(): void {
    const live = [...this.nodes.values()].filter((n) => n.raft !== undefined);
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = (live[x] as SimNode).raft as RaftNode;
        const b = (live[y] as SimNode).raft as RaftNode;
        const lo = Math.max(a.log.firstIndex(), b.log.firstIndex());
        let hi = Math.min(a.log.lastIndex(), b.log.lastIndex());
        while (hi >= lo && a.log.term(hi) !== b.log.term(hi)) hi--;
        for (let i = hi; i >= lo; i--) {
          const ea = a.log.entry(i) as Entry;
          const eb = b.log.entry(i) as Entry;
          if (ea.term !== eb.term || !bytesEqual(ea.data, eb.data)) {
            throw new Violation('log matching', `${a.id} and ${b.id} agree at ${hi} but differ at ${i}`);
          }
        }
      }
    }
  }

  private checkLinearizability(): void {
    // Reads that never returned had no effect; writes that never returned may have.
    const ops: KvOperation[] = [];
    for (const h of this.history) {
      if (h.output === undefined && h.input.kind === 'get') continue;
      ops.push({ client: h.client, input: h.input, output: h.output, call: h.call, ret: h.ret });
    }
    this.stats.opsChecked = ops.length;
    const report = checkKvHistory(ops);
    if (report.result === 'illegal') throw new Violation('linearizability', `client history of key partition ${report.failedPartition} is not linearizable`);
    if (report.result === 'unknown') throw new Violation('linearizability', 'checker gave up (search limit)');
  }
}

function describe(m: Message): string {
  switch (m.type) {
    case 'append':
      return `${m.from}->${m.to} append t${m.term} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appendResp':
      return `${m.from}->${m.to} appendResp t${m.term} idx=${m.index}${m.reject ? ` REJECT hint=${m.hintIndex}/${m.hintTerm}` : ''}`;
    case 'vote':
      return `${m.from}->${m.to} ${m.preVote ? 'preVote' : 'vote'} t${m.term} last=${m.lastIndex}/${m.lastTerm}`;
    case 'voteResp':
      return `${m.from}->${m.to} ${m.preVote ? 'preVoteResp' : 'voteResp'} t${m.term} ${m.reject ? 'REJECT' : 'grant'}`;
    case 'snapshot':
      return `${m.from}->${m.to} snapshot t${m.term} @${m.meta.index} off=${m.offset}/${m.totalBytes}`;
    case 'snapshotResp':
      return `${m.from}->${m.to} snapshotResp t${m.term} @${m.snapIndex} next=${m.nextOffset}${m.reject ? ' REJECT' : ''}`;
    default:
      return `${m.from}->${m.to} ${m.type} t${m.term}`;
  }
}
