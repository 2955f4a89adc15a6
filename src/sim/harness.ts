// A minimal synchronous in-memory cluster for tests and benchmarks: every node's Ready is
// persisted to an in-memory disk, its messages queued, and delivery is explicit (or "until
// quiet"). No faults beyond a drop filter; the seeded simulator (simulator.ts) does the rest.
import {
  RaftNode,
  bootstrapState,
  type Entry,
  type HardState,
  type LeaseConfig,
  type Message,
  type NodeId,
  type RaftLimits,
  type ReadState,
  type Snapshot,
} from '../consensus/raft/index.ts';
import { Xoshiro128 } from './prng.ts';

/** Rounds of delivery before deliverAll gives up (a livelock is a test failure). */
export const MAX_DELIVERY_ROUNDS = 10_000;

export interface MemoryDisk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

export interface ClusterOptions {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly seed?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly limits?: Partial<RaftLimits>;
  /** Leader leases on every node, on one shared clock (tests move it by hand). */
  readonly lease?: LeaseConfig;
}

export class MemoryCluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly disks = new Map<NodeId, MemoryDisk>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Messages sent and not yet delivered, in send order. */
  inflight: Message[] = [];
  /** Return true to drop a message at delivery. */
  drop: (m: Message) => boolean = () => false;
  private readonly rng: Xoshiro128;
  private readonly opts: ClusterOptions;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.rng = new Xoshiro128(opts.seed ?? 1);
    const boot = bootstrapState(opts.voters, opts.learners ?? []);
    for (const id of [...opts.voters, ...(opts.learners ?? [])]) {
      this.disks.set(id, { hardState: boot.hardState, snapshot: undefined, entries: boot.entries.slice() });
      this.startNode(id);
    }
  }

  /** (Re)start `id` from its disk (a fresh, empty one if it has none). */
  startNode(id: NodeId): RaftNode {
    let disk = this.disks.get(id);
    if (disk === undefined) {
      disk = { hardState: { term: 0, vote: '', commit: 0 }, snapshot: undefined, entries: [] };
      this.disks.set(id, disk);
    }
    const node = new RaftNode({
      id,
      random: this.rng.fork(),
      preVote: this.opts.preVote ?? true,
      checkQuorum: this.opts.checkQuorum ?? true,
      electionTicks: this.opts.electionTicks ?? 10,
      heartbeatTicks: this.opts.heartbeatTicks ?? 1,
      storage: { hardState: disk.hardState, snapshot: disk.snapshot, entries: disk.entries.slice() },
      ...(this.opts.limits === undefined ? {} : { limits: this.opts.limits }),
      ...(this.opts.lease === undefined ? {} : { lease: this.opts.lease }),
    });
    this.nodes.set(id, node);
    this.applied.set(id, []);
    this.readStates.set(id, []);
    return node;
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Drain `id`'s Readies: persist, queue messages, record applied entries and read states. */
  process(id: NodeId): void {
    const node = this.node(id);
    const disk = this.disks.get(id) as MemoryDisk;
    for (let rd = node.ready(); rd !== null; rd = node.ready()) {
      if (rd.snapshot !== undefined) {
        disk.snapshot = rd.snapshot;
        disk.entries = [];
      }
      if (rd.hardState !== undefined) disk.hardState = rd.hardState;
      if (rd.entries.length > 0) {
        const base = (disk.snapshot?.meta.index ?? 0) + 1;
        const keep = (rd.entries[0] as Entry).index - base;
        if (keep < 0 || keep > disk.entries.length) throw new Error(`harness: ${id} persists a non-contiguous entry`);
        disk.entries.length = keep;
        for (const e of rd.entries) disk.entries.push(e);
      }
      for (const m of rd.messages) this.inflight.push(m);
      const applied = this.applied.get(id) as Entry[];
      for (const e of rd.committedEntries) applied.push(e);
      for (const r of rd.readStates) (this.readStates.get(id) as ReadState[]).push(r);
      node.advance(rd);
    }
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.process(id);
  }

  /** Takes the queued messages (after processing every node), optionally only those matching. */
  take(filter: (m: Message) => boolean = () => true): Message[] {
    this.processAll();
    const out = this.inflight.filter(filter);
    this.inflight = this.inflight.filter((m) => !filter(m));
    return out;
  }

  deliver(m: Message): void {
    if (this.drop(m)) return;
    const to = this.nodes.get(m.to);
    if (to === undefined) return;
    to.step(m);
    this.process(m.to);
  }

  /** Deliver until no message is left; returns how many were delivered. */
  deliverAll(): number {
    let n = 0;
    this.processAll();
    for (let round = 0; this.inflight.length > 0; round++) {
      if (round >= MAX_DELIVERY_ROUNDS) throw new Error('deliverAll: no quiescence');
      const batch = this.inflight;
      this.inflight = [];
      for (const m of batch) {
        this.deliver(m);
        n++;
      }
      this.processAll();
    }
    return n;
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).tick();
      this.process(id);
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.nodes.keys()) this.tick(id);
      this.deliverAll();
    }
  }

  /** Make `id` campaign and deliver everything; returns it for chaining. */
  elect(id: NodeId): RaftNode {
    this.node(id).campaign();
    this.deliverAll();
    return this.node(id);
  }

  leaders(): NodeId[] {
    return [...this.nodes.entries()].filter(([, n]) => n.currentRole() === 'leader').map(([id]) => id);
  }

  /** Drop every message to or from `id` (until the filter is reset). */
  isolate(...ids: NodeId[]): void {
    const cut = new Set(ids);
    this.drop = (m) => cut.has(m.from) !== cut.has(m.to);
  }

  heal(): void {
    this.drop = () => false;
  }
}
