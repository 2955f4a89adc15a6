// The Byzantine PBFT simulator: n = 3f + 1 replicas (f of them Byzantine, see
// pbft-byzantine.ts), honest clients, a non-member sending junk, and a network that drops,
// duplicates, delays (so reorders) and partitions until the heal time (GST), all driven by one
// seeded PRNG and a discrete event queue. Each run checks, for the honest replicas: agreement
// (no two execute different batches at one seq), in-order exactly-once execution, equal
// states at equal points; for the clients: every certificate verifies and carries what honest
// replicas computed; and after GST: every request completes and every honest replica catches up.
import { bytesKey } from '../consensus/pbft/auth.ts';
import { commitCertificate, verifyCertificate } from '../consensus/pbft/certificate.ts';
import { PbftClient } from '../consensus/pbft/client.ts';
import { DROP_REASONS, type DropReason } from '../consensus/pbft/errors.ts';
import { PbftAuth } from '../consensus/pbft/auth.ts';
import { BROADCAST, type Membership, type NodeId, type PbftLimits, type PbftMessage, type ReplyMessage } from '../consensus/pbft/types.ts';
import { EventQueue } from './event-queue.ts';
import { encodeKvOp } from './pbft-app.ts';
import { Adversary, BEHAVIOURS, type Behaviour } from './pbft-byzantine.ts';
import { fakeKey, fakeVerifier, type FakeKey } from './pbft-crypto.ts';
import { PbftHost } from './pbft-host.ts';
import { Xoshiro128 } from './prng.ts';

/** Simulated time units per tick at nominal clock speed (skewed per replica). */
export const UNITS_PER_TICK = 10;
/** Upper bound on events per run (a runaway run is a failure, not a hang). */
export const MAX_EVENTS_PER_RUN = 2_000_000;
/** Ticks at the end with no new requests: everything outstanding must finish and replicas converge. */
export const QUIET_TICKS = 80;
/** Ticks a client waits before broadcasting an unanswered request. */
export const CLIENT_RETRANSMIT_TICKS = 6;

/** Small windows so checkpoints, watermark stalls and state transfer happen in every run. */
export const SIM_LIMITS: Partial<PbftLimits> = {
  checkpointInterval: 4,
  watermarkWindow: 8,
  maxBatchRequests: 8,
  maxInflightBatches: 2,
  requestTimeoutTicks: 8,
  viewChangeTimeoutTicks: 8,
  maxViewChangeBackoff: 3,
  statusTicks: 6,
  fetchTimeoutTicks: 4,
  stateChunkBytes: 64,
  maxPendingRequests: 256,
  maxMissingBatches: 16,
  maxRetransmitPerStatus: 8,
  maxReplyCacheBatches: 16,
};

export interface PbftSimOptions {
  readonly seed: number;
  /** Replicas: 4, 7, 10, ... (default 4). */
  readonly n?: number;
  /** Byzantine replicas (default f). More than f is allowed to show the checks catch it. */
  readonly byzantine?: number;
  /** Behaviours to draw from (default all). */
  readonly behaviours?: readonly Behaviour[];
  readonly faultTicks?: number;
  readonly healTicks?: number;
  readonly trace?: boolean;
}

export interface PbftSimViolation {
  readonly property: string;
  readonly detail: string;
}

export interface PbftSimStats {
  n: number;
  f: number;
  byzantine: string[];
  events: number;
  messages: number;
  requestsCompleted: number;
  /** Requests submitted after GST that completed. */
  completedAfterGst: number;
  highestSeq: number;
  highestView: number;
  stateTransfers: number;
  stableCheckpoints: number;
  signaturesMade: number;
  signaturesVerified: number;
  clientSignaturesVerified: number;
  certificatesChecked: number;
  rewrites: number;
  dropped: Record<DropReason, number>;
}

export interface PbftSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation?: PbftSimViolation;
  readonly stats: PbftSimStats;
  readonly trace: readonly string[];
}

class Violation extends Error {
  override name = 'PbftSimViolation';
  readonly property: string;
  constructor(property: string, detail: string) {
    super(detail);
    this.property = property;
  }
}

interface SimReplica {
  readonly id: NodeId;
  readonly index: number;
  readonly hosts: PbftHost[];
  readonly adversary: Adversary | undefined;
  readonly honest: boolean;
  tickPeriod: number;
  /** Honest replicas: last executed seq and every request executed (exactly-once check). */
  lastSeq: number;
  readonly executedRequests: Set<string>;
}

interface SimClient {
  readonly client: PbftClient;
  submittedAt: number;
  completed: number;
}

type SimEvent =
  | { kind: 'tick'; node: NodeId; twin: number }
  | { kind: 'clientTick' }
  | { kind: 'deliver'; from: NodeId; to: NodeId; message: PbftMessage }
  | { kind: 'submit'; client: string }
  | { kind: 'fault' }
  | { kind: 'outsider' }
  | { kind: 'heal' }
  | { kind: 'end' };

const KEYS = ['a', 'b', 'c'];
const OUTSIDER = 'x0';

export function runPbftSimulation(opts: PbftSimOptions): PbftSimResult {
  return new PbftSimulation(opts).run();
}

class PbftSimulation {
  private readonly seed: number;
  private readonly rng: Xoshiro128;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly traceOn: boolean;
  private readonly traceLines: string[] = [];
  private now = 0;
  private readonly healTime: number;
  private readonly end: number;
  private readonly stopIssuing: number;
  private healed = false;

  private readonly membership: Membership;
  private readonly auth: PbftAuth;
  private readonly replicas = new Map<NodeId, SimReplica>();
  private readonly replicaIds: NodeId[];
  private readonly clients = new Map<string, SimClient>();
  private readonly outsiderKey: FakeKey;

  private dropRate = 0;
  private dupRate = 0;
  private maxDelay = 8;
  private readonly blocked = new Set<string>();
  /** Twins: which of the two instances a sender's messages reach. */
  private readonly twinSide = new Map<NodeId, number>();

  private readonly crashed = new Set<PbftHost>();
  private readonly decided = new Map<number, string>();
  private readonly results = new Map<string, string>();
  private readonly stats: PbftSimStats;

  constructor(opts: PbftSimOptions) {
    this.seed = opts.seed;
    this.rng = new Xoshiro128(opts.seed);
    this.traceOn = opts.trace === true;
    const n = opts.n ?? 4;
    const f = Math.floor((n - 1) / 3);
    const faultTicks = opts.faultTicks ?? 80;
    const healTicks = opts.healTicks ?? 130;
    this.healTime = faultTicks * UNITS_PER_TICK;
    this.end = this.healTime + healTicks * UNITS_PER_TICK;
    this.stopIssuing = this.end - QUIET_TICKS * UNITS_PER_TICK;
    this.replicaIds = Array.from({ length: n }, (_, i) => `r${i}`);
    const keys = this.replicaIds.map(() => fakeKey(this.rng));
    this.membership = { cluster: 'sim', replicas: this.replicaIds.map((id, i) => ({ id, publicKey: (keys[i] as FakeKey).publicKey })) };
    this.auth = new PbftAuth(this.membership, fakeVerifier);
    this.outsiderKey = fakeKey(this.rng);

    // Byzantine replicas: the view-0 primary half of the time, the rest at random.
    const byzCount = opts.byzantine ?? f;
    const pool = opts.behaviours ?? BEHAVIOURS;
    const byz = new Map<number, Behaviour>();
    const candidates = this.replicaIds.map((_, i) => i);
    if (byzCount > 0 && this.rng.chance(0.5)) byz.set(0, this.rng.pick(pool));
    while (byz.size < Math.min(byzCount, n)) {
      const i = this.rng.pick(candidates);
      if (!byz.has(i)) byz.set(i, this.rng.pick(pool));
    }

    const nClients = this.rng.range(2, 4);
    const clientKeys = new Map<string, Uint8Array>();
    for (let c = 1; c <= nClients; c++) {
      const id = `c${c}`;
      const key = fakeKey(this.rng);
      clientKeys.set(id, key.publicKey);
      const client = new PbftClient({ id, membership: this.membership, signer: key.signer, verifier: fakeVerifier, firstTimestamp: 1, retransmitTicks: CLIENT_RETRANSMIT_TICKS, auth: this.auth });
      this.clients.set(id, { client, submittedAt: 0, completed: 0 });
      this.queue.push(this.rng.range(1, 50), { kind: 'submit', client: id });
    }

    this.stats = {
      n,
      f,
      byzantine: [...byz.entries()].sort(([a], [b]) => a - b).map(([i, b]) => `r${i}:${b}`),
      events: 0,
      messages: 0,
      requestsCompleted: 0,
      completedAfterGst: 0,
      highestSeq: 0,
      highestView: 0,
      stateTransfers: 0,
      stableCheckpoints: 0,
      signaturesMade: 0,
      signaturesVerified: 0,
      clientSignaturesVerified: 0,
      certificatesChecked: 0,
      rewrites: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    };

    this.replicaIds.forEach((id, index) => {
      const behaviour = byz.get(index);
      const key = keys[index] as FakeKey;
      const cfg = { id, membership: this.membership, signer: key.signer, verifier: fakeVerifier, clientKey: (c: string) => clientKeys.get(c), limits: SIM_LIMITS };
      const hosts = behaviour === 'twins' ? [new PbftHost(cfg, this.auth), new PbftHost(cfg, this.auth)] : [new PbftHost(cfg, this.auth)];
      const adversary = behaviour === undefined ? undefined : new Adversary(behaviour, index, key.signer, this.auth, this.rng.fork(), 'c1');
      const node: SimReplica = { id, index, hosts, adversary, honest: behaviour === undefined, tickPeriod: UNITS_PER_TICK, lastSeq: 0, executedRequests: new Set() };
      this.replicas.set(id, node);
      if (node.honest) this.watch(node);
      hosts.forEach((_, twin) => this.queue.push(this.rng.range(1, UNITS_PER_TICK), { kind: 'tick', node: id, twin }));
    });
    this.shuffleTwins();
    this.queue.push(UNITS_PER_TICK, { kind: 'clientTick' });
    this.queue.push(this.rng.range(20, 200), { kind: 'fault' });
    this.queue.push(this.rng.range(50, 300), { kind: 'outsider' });
    this.queue.push(this.healTime, { kind: 'heal' });
    this.queue.push(this.end, { kind: 'end' });
    if (this.traceOn) this.trace(() => `n=${n} f=${f} byzantine [${this.stats.byzantine.join(' ')}] clients ${nClients}`);
  }

  private trace(line: string | (() => string)): void {
    this.traceLines.push(`[${this.now}] ${typeof line === 'string' ? line : line()}`);
  }

  /** Safety bookkeeping on every batch an honest replica executes. */
  private watch(node: SimReplica): void {
    const host = node.hosts[0] as PbftHost;
    host.onRestore = (seq) => {
      if (this.traceOn) this.trace(() => `${node.id} restored state at ${seq}`);
      node.lastSeq = seq;
    };
    host.onExecute = (b, results) => {
      if (b.seq !== node.lastSeq + 1) throw new Violation('execution order', `${node.id} executes ${b.seq} after ${node.lastSeq}`);
      node.lastSeq = b.seq;
      const key = bytesKey(b.digest);
      const known = this.decided.get(b.seq);
      if (known === undefined) this.decided.set(b.seq, key);
      else if (known !== key) throw new Violation('agreement', `${node.id} executes a different batch at seq ${b.seq}`);
      if (b.seq > this.stats.highestSeq) this.stats.highestSeq = b.seq;
      let r = 0;
      b.requests.forEach((req, i) => {
        if (!b.execute[i]) return;
        const rk = `${req.client}:${req.timestamp}`;
        if (node.executedRequests.has(rk)) throw new Violation('exactly once', `${node.id} executes ${rk} twice`);
        node.executedRequests.add(rk);
        const digest = bytesKey(fakeVerifier.digest(results[r++] as Uint8Array));
        const prev = this.results.get(rk);
        if (prev === undefined) this.results.set(rk, digest);
        else if (prev !== digest) throw new Violation('determinism', `${node.id} computes another result for ${rk}`);
      });
      if (this.traceOn) this.trace(() => `${node.id} executes seq ${b.seq} (${b.requests.length} requests, view ${b.view})`);
      if (b.seq % 5 === 0 && b.requests.length > 0) this.checkCommitCertificate(node, b.seq);
    };
  }

  private checkCommitCertificate(node: SimReplica, seq: number): void {
    const proof = (node.hosts[0] as PbftHost).replica.commitProof(seq);
    if (proof === undefined) return;
    const cert = commitCertificate(this.auth, { ...proof, seq }, proof.batch.length - 1);
    const v = verifyCertificate(cert, this.membership, fakeVerifier);
    this.stats.certificatesChecked++;
    if (!v.ok) throw new Violation('certificate', `commit certificate of ${node.id} at ${seq}: ${v.problem} ${v.detail}`);
  }

  run(): PbftSimResult {
    try {
      this.loop();
      this.finalChecks();
      this.collectStats();
      return { seed: this.seed, ok: true, stats: this.stats, trace: this.traceLines };
    } catch (err) {
      this.collectStats();
      if (err instanceof Violation) return { seed: this.seed, ok: false, violation: { property: err.property, detail: err.message }, stats: this.stats, trace: this.traceLines };
      const e = err as Error;
      const property = e.name === 'PbftInvariantError' ? 'pbft invariant' : 'exception';
      return { seed: this.seed, ok: false, violation: { property, detail: `${e.name}: ${e.message}\n${e.stack ?? ''}` }, stats: this.stats, trace: this.traceLines };
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
          const node = this.replicas.get(ev.node) as SimReplica;
          const host = node.hosts[ev.twin] as PbftHost;
          if (node.adversary?.behaviour !== 'silent') this.run1(node, host, () => host.replica.tick());
          this.queue.push(this.now + node.tickPeriod, ev);
          break;
        }
        case 'clientTick':
          for (const c of this.clients.values()) {
            c.client.tick();
            this.flushClient(c);
          }
          this.queue.push(this.now + UNITS_PER_TICK, ev);
          break;
        case 'deliver':
          this.deliver(ev.from, ev.to, ev.message);
          break;
        case 'submit':
          this.submit(this.clients.get(ev.client) as SimClient);
          break;
        case 'fault':
          if (!this.healed) {
            this.injectFault();
            this.queue.push(this.now + this.rng.range(20, 160), ev);
          }
          break;
        case 'outsider':
          this.outsiderAct();
          this.queue.push(this.now + this.rng.range(50, 300), ev);
          break;
        case 'heal':
          this.heal();
          break;
        case 'end':
          return;
      }
    }
  }

  // ---- replicas and the network ---------------------------------------------------------------

  /**
   * Runs one input on a replica and drains it. A Byzantine replica's core may trip its own
   * invariants (twins confuse each other): that instance then stops, as a crashed faulty one.
   */
  private run1(node: SimReplica, host: PbftHost, input: () => void): void {
    if (this.crashed.has(host)) return;
    if (node.honest) {
      input();
      this.drain(node, host);
      return;
    }
    try {
      input();
      this.drain(node, host);
    } catch (err) {
      this.crashed.add(host);
      if (this.traceOn) this.trace(() => `Byzantine ${node.id} stops: ${(err as Error).message}`);
    }
  }

  private drain(node: SimReplica, host: PbftHost): void {
    host.drain({
      send: (from, to, message) => this.send(from, to, message),
      reply: (from, to, message) => this.send(from, to, message),
    });
  }

  private send(from: NodeId, to: NodeId, m: PbftMessage): void {
    if (to === BROADCAST) {
      for (const id of this.replicaIds) if (id !== from) this.sendOne(from, id, m);
      return;
    }
    this.sendOne(from, to, m);
  }

  private sendOne(from: NodeId, to: NodeId, m: PbftMessage): void {
    const adversary = this.replicas.get(from)?.adversary;
    if (adversary === undefined) {
      this.transmit(from, to, m);
      return;
    }
    for (const out of adversary.outgoing(this.replicas.get(to)?.index ?? -1, m)) this.transmit(from, to, out);
  }

  private transmit(from: NodeId, to: NodeId, m: PbftMessage): void {
    this.stats.messages++;
    if (this.blocked.has(`${from}>${to}`)) return;
    if (this.dropRate > 0 && this.rng.chance(this.dropRate)) return;
    this.queue.push(this.now + this.rng.range(1, this.maxDelay), { kind: 'deliver', from, to, message: m });
    if (this.dupRate > 0 && this.rng.chance(this.dupRate)) this.queue.push(this.now + this.rng.range(1, this.maxDelay * 3), { kind: 'deliver', from, to, message: m });
  }

  private deliver(from: NodeId, to: NodeId, m: PbftMessage): void {
    const node = this.replicas.get(to);
    if (node !== undefined) {
      if (node.adversary !== undefined && !node.adversary.incoming(m)) return;
      const host = node.hosts[node.hosts.length === 1 ? 0 : (this.twinSide.get(from) ?? 0)] as PbftHost;
      if (this.traceOn) this.trace(() => `deliver ${from}->${to} ${describe(m)}`);
      this.run1(node, host, () => host.replica.step(from, m));
      return;
    }
    const c = this.clients.get(to);
    if (c !== undefined && m.type === 'reply') {
      c.client.step(m as ReplyMessage);
      this.flushClient(c);
    }
  }

  private flushClient(c: SimClient): void {
    const out = c.client.drain();
    for (const m of out.messages) this.send(c.client.id, m.to, m.message);
    for (const done of out.completed) {
      const rk = `${done.request.client}:${done.request.timestamp}`;
      const v = verifyCertificate(done.certificate, this.membership, fakeVerifier);
      this.stats.certificatesChecked++;
      if (!v.ok) throw new Violation('certificate', `${rk}: ${v.problem} ${v.detail}`);
      const honest = this.results.get(rk);
      if (honest === undefined) throw new Violation('client result', `${rk} accepted with no honest replica having executed it`);
      if (honest !== bytesKey(fakeVerifier.digest(done.result))) throw new Violation('client result', `${rk} accepted a result no honest replica computed`);
      c.completed++;
      if (this.healed && c.submittedAt >= this.healTime) this.stats.completedAfterGst++;
      this.stats.requestsCompleted++;
      if (this.traceOn) this.trace(() => `${c.client.id} completed ${done.request.timestamp} at seq ${done.seq}`);
      this.queue.push(this.now + this.rng.range(1, 20) * UNITS_PER_TICK / 2, { kind: 'submit', client: c.client.id });
    }
    if (out.failed.length > 0) throw new Violation('liveness', `${c.client.id} gave up request ${out.failed[0]?.timestamp}`);
  }

  private submit(c: SimClient): void {
    if (c.client.busy() || this.now >= this.stopIssuing) return;
    const key = this.rng.pick(KEYS);
    const op = this.rng.chance(0.6) ? encodeKvOp({ k: 'put', key, value: `${c.client.id}-${c.completed}` }) : encodeKvOp({ k: 'get', key });
    c.submittedAt = this.now;
    const r = c.client.submit(op);
    if (this.traceOn) this.trace(() => `${c.client.id} submits ${r.timestamp}`);
    this.flushClient(c);
  }

  // ---- faults ---------------------------------------------------------------------------------

  private currentPrimary(): NodeId {
    let view = 0;
    for (const r of this.replicas.values()) if (r.honest) view = Math.max(view, (r.hosts[0] as PbftHost).replica.currentView());
    return this.replicaIds[view % this.replicaIds.length] as NodeId;
  }

  private shuffleTwins(): void {
    for (const id of [...this.replicaIds, ...this.clients.keys()]) this.twinSide.set(id, this.rng.nextInt(2));
  }

  private injectFault(): void {
    const ids = this.replicaIds;
    const r = this.rng.nextInt(100);
    if (r < 15) {
      this.blocked.clear();
      const side = new Set(ids.filter(() => this.rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
      if (this.traceOn) this.trace(() => `partition {${[...side].join(',')}} | rest`);
    } else if (r < 25) {
      for (let i = this.rng.range(1, 3); i > 0; i--) {
        const a = this.rng.pick(ids);
        const b = this.rng.pick(ids);
        if (a !== b) this.blocked.add(`${a}>${b}`);
      }
      if (this.traceOn) this.trace(() => `one-way cuts: ${[...this.blocked].join(' ')}`);
    } else if (r < 35) {
      this.blocked.clear();
      if (this.traceOn) this.trace('links healed');
    } else if (r < 50) {
      const p = this.currentPrimary();
      this.blocked.clear();
      for (const x of [...ids, ...this.clients.keys()]) {
        if (x === p) continue;
        this.blocked.add(`${p}>${x}`);
        this.blocked.add(`${x}>${p}`);
      }
      if (this.traceOn) this.trace(() => `primary ${p} isolated`);
    } else if (r < 70) {
      this.dropRate = this.rng.pick([0, 0.02, 0.1, 0.3]);
      this.dupRate = this.rng.pick([0, 0.02, 0.1]);
      this.maxDelay = this.rng.pick([3, 8, 15, 40]);
      if (this.traceOn) this.trace(() => `net drop=${this.dropRate} dup=${this.dupRate} maxDelay=${this.maxDelay}`);
    } else if (r < 80) {
      for (const node of this.replicas.values()) node.tickPeriod = this.rng.range(UNITS_PER_TICK - 3, UNITS_PER_TICK + 3);
      if (this.traceOn) this.trace('clock skew changed');
    } else if (r < 90) {
      this.shuffleTwins();
      if (this.traceOn) this.trace('twin sides reshuffled');
    }
  }

  private heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelay = 8;
    if (this.traceOn) this.trace('HEAL (GST): no more drops, partitions or long delays; Byzantine replicas keep going');
  }

  /** A non-member with its own key sends well-signed junk: it must only be counted. */
  private outsiderAct(): void {
    const to = this.rng.pick(this.replicaIds);
    const replica = this.rng.nextInt(this.replicaIds.length);
    const digest = fakeVerifier.digest(new Uint8Array([this.rng.nextInt(256)]));
    const unsigned = { type: 'commit' as const, view: this.rng.nextInt(3), seq: this.rng.range(1, 20), digest, replica, signature: new Uint8Array(64) };
    const m = { ...unsigned, signature: this.outsiderKey.signer.sign(this.auth.signingDigest(unsigned)) };
    this.transmit(OUTSIDER, to, m);
  }

  // ---- end of run -------------------------------------------------------------------------------

  private finalChecks(): void {
    // Clients submit until QUIET_TICKS before the end: whatever they were waiting for, before or
    // after GST, must have completed by then.
    for (const c of this.clients.values()) {
      if (c.client.busy()) throw new Violation('liveness', `${c.client.id} still waits for a request submitted at ${c.submittedAt} (GST ${this.healTime}, end ${this.end})`);
    }
    const honest = [...this.replicas.values()].filter((r) => r.honest);
    const last = honest.map((r) => (r.hosts[0] as PbftHost).replica.lastExecuted());
    const max = Math.max(...last);
    honest.forEach((r, i) => {
      if (last[i] !== max) throw new Violation('convergence', `${r.id} executed up to ${last[i]}, others up to ${max}`);
    });
    const snap = (r: SimReplica): string => bytesKey((r.hosts[0] as PbftHost).app.snapshot());
    const first = honest[0];
    if (first !== undefined) for (const r of honest) if (snap(r) !== snap(first)) throw new Violation('state', `${r.id} and ${first.id} hold different states at ${max}`);
  }

  private collectStats(): void {
    for (const r of this.replicas.values()) {
      this.stats.rewrites += r.adversary?.rewrites ?? 0;
      for (const h of r.hosts) {
        const s = h.replica.stats();
        this.stats.highestView = Math.max(this.stats.highestView, h.replica.currentView());
        if (!r.honest) continue;
        this.stats.stateTransfers += s.stateTransfers;
        this.stats.stableCheckpoints += s.stableCheckpoints;
        this.stats.signaturesMade += s.signaturesMade;
        this.stats.signaturesVerified += s.signaturesVerified;
        this.stats.clientSignaturesVerified += s.clientSignaturesVerified;
        for (const reason of DROP_REASONS) this.stats.dropped[reason] += s.dropped[reason];
      }
    }
  }
}

function describe(m: PbftMessage): string {
  switch (m.type) {
    case 'request':
      return `request ${m.client}:${m.timestamp}`;
    case 'reply':
      return `reply r${m.replica} ${m.client}:${m.timestamp} seq ${m.seq}`;
    case 'prePrepare':
      return `prePrepare r${m.replica} v${m.view} n${m.seq} (${m.batch.length} requests)`;
    case 'prepare':
    case 'commit':
      return `${m.type} r${m.replica} v${m.view} n${m.seq}`;
    case 'checkpoint':
      return `checkpoint r${m.replica} n${m.seq}`;
    case 'viewChange':
      return `viewChange r${m.replica} v${m.view} h=${m.checkpoint.seq} P=${m.prepared.length}`;
    case 'newView':
      return `newView r${m.replica} v${m.view} O=${m.prePrepares.length}`;
    case 'status':
      return `status r${m.replica} v${m.view}${m.active ? '' : ' (changing)'} h=${m.stableSeq} exec=${m.lastExecuted}`;
    case 'stateChunk':
      return `stateChunk r${m.replica} n${m.proof.seq} ${m.offset}+${m.data.byteLength}/${m.totalBytes}`;
    case 'fetchState':
      return `fetchState r${m.replica} n${m.seq} @${m.offset}`;
    case 'commitCertificate':
      return `commitCertificate r${m.replica} v${m.view} n${m.seq}`;
    default:
      return `${m.type} r${m.replica}`;
  }
}
