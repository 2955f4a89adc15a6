// Seeded convergence simulator for the sync layer: 2–5 peers, each the real DocStore and
// SyncEngine on a MemoryStore, joined by a simulated network that drops, delays, reorders
// and partitions messages, with skewed clocks, offline writes, restarts (indexes rebuilt from
// the store), manual conflicts and their resolutions. After the faults heal, every pair
// syncs; then the property: all peers hold identical state (same ids, same values, same
// conflicts), and it is the state an oracle gets by merging every written version in
// writing order. Termination: once the faults heal, every session must end, equal, within
// MAX_SESSION_ROUNDS rounds and a message bound that follows from the batch limits. Peers
// speak the binary session messages or the JSON form at random, so mixed pairs are
// simulated too. One seed is one deterministic run: a failure prints its seed and replays.
import type { JsonObject } from '../ico/types.ts';
import { Xoshiro128 } from '../sim/prng.ts';
import { MemoryStore } from '../store/memory.ts';
import { DocStore } from './docstore.ts';
import { MAX_PASSES, SyncEngine, SESSION_IDLE_MS, type SyncReport, type SyncTransport } from './engine.ts';
import { decodeBinarySyncMessage } from './binary.ts';
import { MAX_TRIE_DEPTH } from './itemset.ts';
import { identityFromSeed, type SyncIdentity } from './identity.ts';
import { ConflictPolicies, type Resolver } from './policy.ts';
import { recordBytes, recordId, type DocRecord } from './record.ts';
import { encodeRoot, MAX_BATCH_RECORDS } from './wire.ts';

/**
 * Rounds (range, vector, open, fin, check messages, both ways) one session may take once the
 * network is stable: per pass, one range message per trie level and a few around them.
 */
export const MAX_SESSION_ROUNDS = MAX_PASSES * (MAX_TRIE_DEPTH + 8);

/** Messages one stable session may take: its rounds, and per pass a batch and an ack for every MAX_BATCH_RECORDS versions either side holds. */
export function maxSessionMessages(heldA: number, heldB: number): number {
  const batches = Math.ceil(heldA / MAX_BATCH_RECORDS) + Math.ceil(heldB / MAX_BATCH_RECORDS) + 2;
  return MAX_SESSION_ROUNDS + MAX_PASSES * 2 * batches;
}

export interface SyncSimOptions {
  seed: number;
  trace?: boolean;
  /** Simulated events of the fault phase. */
  faultSteps?: number;
}

export interface SyncSimResult {
  seed: number;
  ok: boolean;
  violation?: { property: string; detail: string };
  trace: string[];
  stats: { peers: number; writes: number; messages: number; dropped: number; sessions: number; restarts: number; conflicts: number; resolutions: number };
}

/** The simulation's policy table: one prefix per policy. */
export function simPolicies(): ConflictPolicies {
  const sum: Resolver = (versions) => versions.reduce((a, v) => a + (typeof v.value === 'number' ? v.value : 0), 0);
  return new ConflictPolicies(
    [
      { prefix: 'm/', policy: 'manual' },
      { prefix: 'u/', policy: 'union' },
      { prefix: 'x/', policy: 'max' },
      { prefix: 'n/', policy: 'min' },
      { prefix: 'r/', policy: 'resolver', resolver: 'sum' },
    ],
    new Map([['sum', sum]]),
  );
}

const KEYS = ['a', 'b', 'c', 'm/1', 'm/2', 'u/1', 'u/2', 'x/1', 'n/1', 'r/1', 'r/2'];
/** Largest clock skew of a peer (well inside MAX_HLC_DRIFT_MS, so nothing is refused). */
const MAX_SKEW_MS = 25_000;

interface SimPeer {
  id: SyncIdentity;
  store: MemoryStore;
  /** Speaks the binary session messages (with peers that do too). */
  binary: boolean;
  docs: DocStore;
  engine: SyncEngine;
  skew: number;
}

interface InFlight {
  from: string;
  to: string;
  payload: JsonObject | Uint8Array;
  at: number;
}

function kindOf(payload: JsonObject | Uint8Array): string {
  if (!(payload instanceof Uint8Array)) return String(payload['k']);
  try {
    return `${decodeBinarySyncMessage(payload).k}(bin)`;
  } catch {
    return 'bin?';
  }
}

export async function runSyncSimulation(o: SyncSimOptions): Promise<SyncSimResult> {
  const rng = new Xoshiro128(o.seed);
  const trace: string[] = [];
  const log = (s: string): void => {
    if (o.trace === true) trace.push(`${String(time).padStart(7)} ${s}`);
  };
  const stats = { peers: 0, writes: 0, messages: 0, dropped: 0, sessions: 0, restarts: 0, conflicts: 0, resolutions: 0 };
  let time = 1_000_000;
  const n = rng.range(2, 5);
  stats.peers = n;
  const policies = simPolicies();
  const flight: InFlight[] = [];
  const peers: SimPeer[] = [];
  const byId = new Map<string, SimPeer>();
  const cut = new Set<string>();
  let dropRate = 0;
  let sidCounter = 0;
  const written: DocRecord[] = [];

  const link = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);
  const transportFor = (self: string): SyncTransport => ({
    send: async (to, payload) => {
      flight.push({ from: self, to, payload, at: time + rng.range(1, 20) });
    },
    broadcast: async (payload) => {
      for (const p of peers) if (p.id.peerId !== self) flight.push({ from: self, to: p.id.peerId, payload, at: time + rng.range(1, 20) });
    },
    binary: (to) => byId.get(self)?.binary === true && byId.get(to)?.binary === true,
  });
  const openPeer = async (p: Omit<SimPeer, 'docs' | 'engine'>): Promise<SimPeer> => {
    const docs = await DocStore.open({ store: p.store, self: p.id.peerId, signer: p.id.signer, policies, now: () => time + p.skew });
    const engine = new SyncEngine({ docs, transport: transportFor(p.id.peerId), now: () => time, newSid: () => `s${++sidCounter}` });
    return { ...p, docs, engine };
  };
  for (let i = 0; i < n; i++) {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, o.seed >>> 0);
    seed[31] = i + 1;
    const p = await openPeer({ id: identityFromSeed(seed), store: new MemoryStore(), skew: rng.range(-MAX_SKEW_MS, MAX_SKEW_MS), binary: rng.chance(0.5) });
    peers.push(p);
    byId.set(p.id.peerId, p);
  }
  const name = (peerId: string): string => `p${peers.findIndex((p) => p.id.peerId === peerId)}`;
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

  /** Delivers one message (a random one among the due ones: reordering). */
  const deliverOne = async (faults: boolean): Promise<boolean> => {
    if (flight.length === 0) return false;
    let earliest = Infinity;
    for (const f of flight) earliest = Math.min(earliest, f.at);
    const due = flight.map((f, i) => [f, i] as const).filter(([f]) => f.at <= earliest + (faults ? 15 : 0));
    const [msg, index] = rng.pick(due);
    flight.splice(index, 1);
    time = Math.max(time, msg.at);
    stats.messages++;
    if (faults && (cut.has(link(msg.from, msg.to)) || rng.chance(dropRate))) {
      stats.dropped++;
      log(`drop ${name(msg.from)}→${name(msg.to)} ${kindOf(msg.payload)}`);
      return true;
    }
    const to = byId.get(msg.to);
    if (to === undefined) return true;
    log(`deliver ${name(msg.from)}→${name(msg.to)} ${kindOf(msg.payload)}`);
    // A bytes payload's JSON form is {"$bytes": …}; the engine reads the raw bytes given beside it.
    if (msg.payload instanceof Uint8Array) await to.engine.receive(msg.from, { $bytes: '' }, msg.payload);
    else await to.engine.receive(msg.from, msg.payload);
    await settle();
    return true;
  };

  let open = 0;
  const startSync = (a: SimPeer, b: SimPeer, sessions: Array<Promise<unknown>>): Promise<SyncReport | Error> => {
    stats.sessions++;
    open++;
    log(`sync ${name(a.id.peerId)}→${name(b.id.peerId)}`);
    const outcome = a.engine.sync(b.id.peerId)
      .then((r) => {
        log(`sync ${name(a.id.peerId)}→${name(b.id.peerId)} done: ${r.mode}, equal ${r.equal}, ${r.passes} passes, ${r.rounds} rounds`);
        return r;
      }, (e: unknown) => {
        log(`sync ${name(a.id.peerId)}→${name(b.id.peerId)} ended: ${(e as Error).message}`);
        return e instanceof Error ? e : new Error(String(e));
      })
      .finally(() => open--);
    sessions.push(outcome);
    return outcome;
  };
  /**
   * Delivers without faults until every sync settled; silent sessions time out. False when
   * `limit` messages were delivered and a session is still open.
   */
  const runToQuiet = async (limit: number): Promise<boolean> => {
    let delivered = 0;
    // Each pass delivers a message or lets the idle timeout fire; the timeouts end every open session.
    for (let i = 0; i < limit + MAX_PASSES * 2 + 2; i++) {
      if (delivered < limit && (await deliverOne(false))) {
        delivered++;
        continue;
      }
      if (open === 0) return true;
      if (delivered >= limit) return false;
      time += SESSION_IDLE_MS + 1;
      for (const p of peers) p.engine.tick(time);
      await settle();
    }
    return false;
  };
  const largest = (): number => Math.max(...peers.map((p) => p.docs.size));

  const write = async (p: SimPeer): Promise<void> => {
    const key = rng.pick(KEYS);
    const r = rng.next();
    let rec: DocRecord;
    if (key.startsWith('m/') && p.docs.conflictKeys().includes(key) && r < 0.5) {
      rec = await p.docs.resolve(key, rng.range(0, 99));
      stats.resolutions++;
    } else if (r < 0.12) {
      rec = await p.docs.delete(key);
    } else {
      const value = key.startsWith('u/') ? [rng.range(0, 9)] : rng.range(0, 99);
      rec = await p.docs.put(key, value);
    }
    written.push(rec);
    stats.writes++;
    log(`write ${name(p.id.peerId)} ${rec.op} ${key}=${JSON.stringify(rec.value)} seq ${rec.seq}`);
  };

  const steps = o.faultSteps ?? 120;
  const sessions: Array<Promise<unknown>> = [];
  try {
    for (let step = 0; step < steps; step++) {
      const r = rng.next();
      if (r < 0.12) {
        await write(rng.pick(peers));
      } else if (r < 0.17) {
        const a = rng.pick(peers);
        const b = rng.pick(peers.filter((x) => x !== a));
        startSync(a, b, sessions);
      } else if (r < 0.2) {
        const a = rng.pick(peers).id.peerId;
        const b = rng.pick(peers).id.peerId;
        if (a !== b) {
          const l = link(a, b);
          if (cut.has(l)) cut.delete(l);
          else cut.add(l);
          log(`partition ${name(a)}|${name(b)} ${cut.has(l) ? 'cut' : 'healed'}`);
        }
      } else if (r < 0.22) {
        dropRate = rng.pick([0, 0, 0.05, 0.2]);
      } else if (r < 0.23) {
        // Restart: the engine dies with its sessions; the store survives and indexes rebuild.
        const i = rng.nextInt(peers.length);
        const old = peers[i] as SimPeer;
        old.engine.close();
        const fresh = await openPeer({ id: old.id, store: old.store.reopen(), skew: old.skew, binary: old.binary });
        peers[i] = fresh;
        byId.set(fresh.id.peerId, fresh);
        stats.restarts++;
        log(`restart ${name(old.id.peerId)}`);
      } else {
        if (!(await deliverOne(true))) time += rng.range(1, 50);
      }
      for (const p of peers) p.engine.tick(time);
    }
    // Heal: no cuts, no drops; drain, let stalled sessions time out, then every pair syncs.
    cut.clear();
    dropRate = 0;
    // What was in flight, and every session still open, must end within the bound of its sessions.
    const drainBound = (open + 1) * maxSessionMessages(largest(), largest()) + flight.length;
    const before = stats.messages;
    if (!(await runToQuiet(drainBound))) {
      return { seed: o.seed, ok: false, violation: { property: 'termination', detail: `${open} sessions still open ${stats.messages - before} messages after the network healed (bound ${drainBound})` }, trace, stats };
    }
    await Promise.all(sessions);
    for (let round = 0; round < 2; round++) {
      for (const a of peers) {
        for (const b of peers) {
          if (a === b) continue;
          const done: Array<Promise<unknown>> = [];
          const messagesBefore = stats.messages;
          const bound = maxSessionMessages(a.docs.size, b.docs.size);
          const outcome = startSync(a, b, done);
          const quiet = await runToQuiet(bound);
          const messages = stats.messages - messagesBefore;
          const pair = `${name(a.id.peerId)}→${name(b.id.peerId)}`;
          if (!quiet) {
            return { seed: o.seed, ok: false, violation: { property: 'termination', detail: `session ${pair} on a stable network still open after ${messages} messages (bound ${bound})` }, trace, stats };
          }
          await Promise.all(done);
          const r = await outcome;
          if (r instanceof Error || !r.equal || r.rounds > MAX_SESSION_ROUNDS || messages > bound) {
            const how = r instanceof Error ? `ended with ${r.message}` : `ended equal=${r.equal} after ${r.rounds} rounds (bound ${MAX_SESSION_ROUNDS})`;
            return { seed: o.seed, ok: false, violation: { property: 'termination', detail: `session ${pair} on a stable network ${how}, ${messages} messages (bound ${bound})` }, trace, stats };
          }
        }
      }
    }
  } catch (e) {
    return { seed: o.seed, ok: false, violation: { property: 'no-exception', detail: (e as Error).stack ?? String(e) }, trace, stats };
  }

  // Property 1: identical state everywhere.
  const summaries = await Promise.all(peers.map(async (p) => ({
    root: encodeRoot(p.docs.items.fingerprint(0, 0)),
    entries: JSON.stringify(await p.docs.list({ limit: 1000, withDeleted: true })),
    conflicts: p.docs.conflictKeys().join(','),
  })));
  const first = summaries[0] as (typeof summaries)[number];
  for (let i = 1; i < summaries.length; i++) {
    const s = summaries[i] as (typeof summaries)[number];
    if (s.root.h !== first.root.h || s.root.n !== first.root.n || s.entries !== first.entries || s.conflicts !== first.conflicts) {
      return { seed: o.seed, ok: false, violation: { property: 'convergence', detail: `p0 and p${i} differ after exchanging everything:\n  p0: ${first.entries}\n  p${i}: ${s.entries}` }, trace, stats };
    }
  }
  // Property 2: that state is the oracle's (every written version merged in writing order).
  const oracle = new Map<string, DocRecord[]>();
  for (const w of written) {
    const cur = oracle.get(w.key) ?? [];
    const { kept, superseded } = policies.merge(cur, w);
    oracle.set(w.key, kept ? [...cur.filter((c) => !superseded.includes(c)), w] : cur);
  }
  const hex = (r: DocRecord): string => Buffer.from(recordId(recordBytes(r))).toString('hex');
  for (const [key, versions] of oracle) {
    const got = await (peers[0] as SimPeer).docs.get(key);
    const want = versions.map(hex).sort().join(',');
    const have = (got?.versions ?? []).map((v) => v.id).sort().join(',');
    if (want !== have) return { seed: o.seed, ok: false, violation: { property: 'oracle', detail: `${key}: peers hold [${have}], the oracle [${want}]` }, trace, stats };
    if (got !== undefined && got.conflict) stats.conflicts++;
  }
  return { seed: o.seed, ok: true, trace, stats };
}
