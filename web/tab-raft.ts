// A Raft group of browser tabs: the same Raft runtime the Node members run (src/consensus/raft/
// runtime), here over the tab's peer (CONSENSUS envelopes on the direct ICO stream, WebRTC
// between tabs) with its log and replica in IndexedDB. Invariants are the runtime's: term and
// vote are durable before a message of that term leaves, entries before they are acknowledged,
// so a reloaded tab recovers its log from IndexedDB. Payloads carry the group's name, so a tab's
// group never mixes with another group's traffic on the same peers.
import { RaftRuntime, type RaftRuntimeStatus } from '../src/consensus/raft/runtime/index.ts';
import { invariant } from '../src/consensus/raft/index.ts';
import type { CommandOutcome, ReadConsistency } from '../src/consensus/engine.ts';
import type { EngineTransport, Timers } from '../src/consensus/ports.ts';
import type { Json, JsonObject } from '../src/ico/types.ts';
import { TabReplica } from './tab-replica.ts';
import type { ApplyResult } from '../src/statemachine/types.ts';
import { IdbStore } from '../src/store/idb.ts';
import type { Envelope } from '../src/ico/types.ts';

/** The CONSENSUS payload kind of tab groups: `{ k: 'tabraft', g: <group>, p: <Raft runtime payload> }`. */
export const TAB_RAFT_KIND = 'tabraft';
/** Members of a tab group at most (every member holds a stream to every other). */
export const MAX_TAB_GROUP_MEMBERS = 7;
/** Longest group name (it is a database name and rides in every payload). */
export const MAX_GROUP_NAME_CHARS = 64;
/** Callbacks waiting in the deferred queue at most (the runtime defers one Ready run at a time). */
export const MAX_DEFERRED = 1024;
/** Longest a propose or linearizable read waits by default. */
export const TAB_RAFT_WAIT_MS = 10_000;
/**
 * One tick, and the election timeout in ticks (the core randomizes it in [E, 2E)): a follower
 * that stops hearing its leader campaigns after 400–800 ms, so a closed leader's tab is replaced
 * within 2 s. Shorter timeouts were tried and were slower under load: the vote round holds a
 * durable IndexedDB write on each side (measured up to ~0.5 s on a loaded machine), and a
 * candidate whose timeout ends first campaigns again in a new term. Heartbeats every 2 ticks.
 */
export const TAB_RAFT_TICK_MS = 50;
export const TAB_RAFT_ELECTION_TICKS = 8;
export const TAB_RAFT_HEARTBEAT_TICKS = 2;
invariant(TAB_RAFT_ELECTION_TICKS >= 4 * TAB_RAFT_HEARTBEAT_TICKS, 'several heartbeats per election timeout');
const GROUP_NAME = /^[A-Za-z0-9._-]+$/;

/** Bad arguments to the tab group API (the group keeps running). */
export class TabRaftError extends Error {
  override name = 'TabRaftError';
  readonly code: 'TAB_RAFT_INVALID' | 'TAB_RAFT_NOT_FORMED' | 'TAB_RAFT_ALREADY_FORMED';
  constructor(code: TabRaftError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Browser timers: defer runs after the current task (a MessageChannel message), before timers. */
export function browserTimers(): Timers {
  const queue: Array<() => void> = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => {
    for (const fn of queue.splice(0)) fn();
  };
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    after(ms, fn) {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    },
    defer(fn) {
      invariant(queue.length < MAX_DEFERRED, 'deferred callbacks are bounded');
      queue.push(fn);
      if (queue.length === 1) channel.port2.postMessage(0);
    },
  };
}

/** How the group reaches the tab's peer (whichever peer runs now: working offline replaces it). */
export interface TabPeerPort {
  send(to: string, payload: JsonObject): Promise<void>;
  /** CONSENSUS and STATE_SYNC envelopes received; returns the unsubscribe. */
  onEnvelope(handler: (envelope: Envelope) => void): () => void;
}

/** The group's Raft payloads over the tab's peer: wrapped with the group's name, other groups' and other kinds ignored. */
export function groupTransport(group: string, port: TabPeerPort): EngineTransport {
  return {
    send: (to, payload) => port.send(to, { k: TAB_RAFT_KIND, g: group, p: payload }),
    onMessage(handler) {
      return port.onEnvelope((env) => {
        if (env.type !== 'CONSENSUS') return;
        const { k, g, p } = env.payload;
        if (k !== TAB_RAFT_KIND || g !== group || typeof p !== 'object' || p === null || Array.isArray(p)) return;
        handler(env.sender, p);
      });
    },
  };
}

export interface FormOptions {
  group: string;
  /** Every member's PeerId, this tab's included; every member must give the same set. */
  members: string[];
}

export interface FormResult {
  group: string;
  /** The last log index found in IndexedDB when the group opened (0 on a fresh tab). */
  recoveredIndex: number;
  /** The term found in IndexedDB. */
  recoveredTerm: number;
}

export interface TabRaftApi {
  /** Forms (or, after a reload, reopens from IndexedDB) this tab's Raft group and starts it. */
  form(options: FormOptions): Promise<FormResult>;
  /** Runs an operator through the group's log; resolves once this tab applied it. */
  propose(operator_id: string, inputs: Json): Promise<{ result: ApplyResult }>;
  /** linearizable (default): via the leader's lease or ReadIndex; serializable: this tab's state now. */
  read(operator_id: string, inputs: Json, options?: { consistency?: ReadConsistency }): Promise<ApplyResult>;
  /** null until form() ran. */
  status(): (RaftRuntimeStatus & { group: string }) | null;
  /** Stops this tab's member (its log stays in IndexedDB). */
  leave(): Promise<void>;
}

export function validateForm(self: string, o: FormOptions): void {
  if (typeof o.group !== 'string' || o.group.length === 0 || o.group.length > MAX_GROUP_NAME_CHARS || !GROUP_NAME.test(o.group)) throw new TabRaftError('TAB_RAFT_INVALID', `group must be 1–${MAX_GROUP_NAME_CHARS} characters of A-Z a-z 0-9 . _ -`);
  if (!Array.isArray(o.members) || o.members.some((m) => typeof m !== 'string' || m.length === 0)) throw new TabRaftError('TAB_RAFT_INVALID', 'members must be a list of PeerIds');
  const set = new Set(o.members);
  if (set.size !== o.members.length) throw new TabRaftError('TAB_RAFT_INVALID', 'members has duplicates');
  if (set.size > MAX_TAB_GROUP_MEMBERS) throw new TabRaftError('TAB_RAFT_INVALID', `at most ${MAX_TAB_GROUP_MEMBERS} members`);
  if (!set.has(self)) throw new TabRaftError('TAB_RAFT_INVALID', 'members must include this tab');
}

/** The tab-group API of one tab (identity `self`). */
export function tabRaft(opts: { self: () => string; port: TabPeerPort }): TabRaftApi {
  let group: string | undefined;
  let engine: RaftRuntime<TabReplica> | undefined;
  let opening = false;
  const requireEngine = (): RaftRuntime<TabReplica> => {
    if (engine === undefined) throw new TabRaftError('TAB_RAFT_NOT_FORMED', 'no tab group: call raft.form() first');
    return engine;
  };
  return {
    async form(o) {
      const self = opts.self();
      validateForm(self, o);
      if (engine !== undefined || opening) throw new TabRaftError('TAB_RAFT_ALREADY_FORMED', `this tab is already in group ${group ?? o.group}`);
      opening = true;
      try {
        const base = `hypersync-tabraft-${o.group}-${self}`;

        const opened = await RaftRuntime.open({
          id: self,
          transport: groupTransport(o.group, opts.port),
          store: await IdbStore.open(`${base}-log`),
          bootstrap: { voters: [...o.members], learners: [] },
          replica: new TabReplica(),
          timers: browserTimers(),
          tickMs: TAB_RAFT_TICK_MS,
          electionTicks: TAB_RAFT_ELECTION_TICKS,
          heartbeatTicks: TAB_RAFT_HEARTBEAT_TICKS,
        });
        const recovered = opened.core;
        const result = { group: o.group, recoveredIndex: recovered.log.lastIndex(), recoveredTerm: recovered.currentTerm() };
        await opened.start();
        engine = opened;
        group = o.group;
        return result;
      } finally {
        opening = false;
      }
    },
    async propose(operator_id, inputs) {
      const out: CommandOutcome = await requireEngine().submit({ operator_id, inputs }, { signal: AbortSignal.timeout(TAB_RAFT_WAIT_MS) });
      return { result: out.result };
    },
    read(operator_id, inputs, options = {}) {
      return requireEngine().read(operator_id, inputs, { consistency: options.consistency ?? 'linearizable', signal: AbortSignal.timeout(TAB_RAFT_WAIT_MS) });
    },
    status() {
      return engine === undefined || group === undefined ? null : { group, ...engine.raftStatus() };
    },
    async leave() {
      const e = engine;
      engine = undefined;
      group = undefined;
      await e?.close();
    },
  };
}
