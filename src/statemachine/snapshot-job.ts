// A snapshot of the state machine written in bounded steps, so a large state never holds the
// event loop: the caller runs step() and yields between steps while applies go on. The bytes
// are those of the state when the job began (copy-on-write: the machine hands the job each
// kv value and session before it changes or forgets it) and equal StateMachine.snapshot()'s
// bit for bit. Each step does a bounded amount of work counted in records and bytes, never in
// time, so a seeded simulator that drives steps stays deterministic.
import { canonicalize } from '../crypto/jcs.ts';
import type { Json } from '../ico/types.ts';

/** Work units (records sorted or moved, kv keys or sessions listed) per step. */
export const SNAPSHOT_STEP_WORK = 8192;
/** Records serialized per step at most... */
export const SNAPSHOT_STEP_RECORDS = 2048;
/** ...and characters of them at most (one record larger than this is still one step). */
export const SNAPSHOT_STEP_CHARS = 512 * 1024;
/** Bytes copied into the final buffer per step. */
export const SNAPSHOT_STEP_COPY_BYTES = 4 * 1024 * 1024;
/** Runs of this many items are sorted by Array#sort before the stepwise merges. */
const SORT_RUN = 2048;
const NEWLINE = 0x0a;

/** A session as the snapshot writes it (the machine's sessions are never mutated in place). */
export interface SnapshotSession {
  readonly client: string;
  readonly key: string;
  readonly retry: boolean;
  readonly ordinal: number;
  readonly timestamp: number;
  readonly outputs: Json;
}

export interface SnapshotSource {
  readonly version: number;
  readonly ordinal: number;
  readonly kv: ReadonlyMap<string, Json>;
  /** The session tables, each iterated live (Map iterators survive changes between steps). */
  readonly sessions: ReadonlyArray<() => Iterator<SnapshotSession>>;
  /** Called once the job is finished or cancelled: the machine stops notifying it. */
  readonly detach: (job: SnapshotJob) => void;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Bottom-up merge sort in bounded steps (one run of Array#sort, or `budget` merge moves). */
class SteppedSort<T> {
  #src: T[];
  #dst: T[];
  readonly #cmp: (a: T, b: T) => number;
  #runStart = 0;
  #width = SORT_RUN;
  #lo = 0;
  #mid = 0;
  #hi = 0;
  #i = 0;
  #j = 0;
  #k = 0;
  #inPair = false;

  constructor(items: T[], cmp: (a: T, b: T) => number) {
    this.#src = items;
    this.#dst = new Array<T>(items.length);
    this.#cmp = cmp;
  }

  get sorted(): T[] {
    return this.#src;
  }

  /** Does up to about `budget` units of work; true once sorted. */
  step(budget: number): boolean {
    const n = this.#src.length;
    let work = 0;
    while (this.#runStart < n) {
      const end = Math.min(n, this.#runStart + SORT_RUN);
      const run = this.#src.slice(this.#runStart, end).sort(this.#cmp);
      for (let x = 0; x < run.length; x++) this.#src[this.#runStart + x] = run[x] as T;
      work += run.length;
      this.#runStart = end;
      if (work >= budget) return false;
    }
    while (this.#width < n) {
      if (!this.#inPair) {
        if (this.#lo >= n) {
          [this.#src, this.#dst] = [this.#dst, this.#src];
          this.#width *= 2;
          this.#lo = 0;
          continue;
        }
        this.#mid = Math.min(this.#lo + this.#width, n);
        this.#hi = Math.min(this.#lo + 2 * this.#width, n);
        this.#i = this.#lo;
        this.#j = this.#mid;
        this.#k = this.#lo;
        this.#inPair = true;
      }
      const src = this.#src;
      const dst = this.#dst;
      while (this.#k < this.#hi && work < budget) {
        if (this.#j >= this.#hi || (this.#i < this.#mid && this.#cmp(src[this.#i] as T, src[this.#j] as T) <= 0)) dst[this.#k++] = src[this.#i++] as T;
        else dst[this.#k++] = src[this.#j++] as T;
        work++;
      }
      if (this.#k < this.#hi) return false;
      this.#inPair = false;
      this.#lo = this.#hi;
    }
    return true;
  }
}

type Phase = 'listKv' | 'listSessions' | 'sortKv' | 'sortSessions' | 'encodeKv' | 'encodeSessions' | 'assemble' | 'done';

/**
 * One snapshot in progress. The machine calls beforeKv/beforeSessionGone while it runs;
 * step() until it returns true, then bytes() is the snapshot.
 */
export class SnapshotJob {
  readonly #src: SnapshotSource;
  /** The value at the start of every key changed since (undefined: it did not exist). */
  readonly #frozenKv = new Map<string, Json | undefined>();
  /** Sessions forgotten since the start (they belong in the snapshot). */
  readonly #goneSessions: SnapshotSession[] = [];
  #phase: Phase = 'listKv';
  #kvIter: Iterator<string>;
  #sessionTable = 0;
  #sessionIter: Iterator<SnapshotSession> | undefined;
  readonly #keys: string[] = [];
  readonly #sessions: SnapshotSession[] = [];
  #sort: SteppedSort<string> | SteppedSort<SnapshotSession> | undefined;
  #sortedKeys: string[] = [];
  #sortedSessions: SnapshotSession[] = [];
  #pos = 0;
  #kvCount = 0;
  #sessionCount = 0;
  readonly #parts: Uint8Array[] = [];
  #out: Uint8Array | undefined;
  #copied = 0;
  #partIndex = 0;
  #listening = true;
  readonly #encoder = new TextEncoder();

  constructor(src: SnapshotSource) {
    this.#src = src;
    this.#kvIter = src.kv.keys();
  }

  /** `key` is about to change; `prev` is its value now. */
  beforeKv(key: string, prev: Json | undefined): void {
    if (this.#listening && !this.#frozenKv.has(key)) this.#frozenKv.set(key, prev);
  }

  /** A session older than the job's start is being forgotten. */
  beforeSessionGone(s: SnapshotSession): void {
    const listing = this.#phase === 'listKv' || this.#phase === 'listSessions';
    if (listing && s.ordinal < this.#src.ordinal) this.#goneSessions.push(s);
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  /** Stops listening to the machine (the state was replaced, or the caller gave up). */
  cancel(): void {
    this.#stopListening();
    this.#phase = 'done';
    this.#out = undefined;
  }

  /** The snapshot's bytes, once step() returned true. */
  bytes(): Uint8Array {
    if (this.#phase !== 'done' || this.#out === undefined) throw new Error('snapshot job not finished');
    return this.#out;
  }

  /** Runs one bounded step; true when the snapshot is complete. */
  step(): boolean {
    switch (this.#phase) {
      case 'listKv':
        this.#listKv();
        break;
      case 'listSessions':
        this.#listSessions();
        break;
      case 'sortKv': {
        const sort = (this.#sort ??= new SteppedSort(this.#keys, compareStrings)) as SteppedSort<string>;
        if (sort.step(SNAPSHOT_STEP_WORK)) {
          this.#sortedKeys = sort.sorted;
          this.#sort = undefined;
          this.#phase = 'sortSessions';
        }
        break;
      }
      case 'sortSessions': {
        const sort = (this.#sort ??= new SteppedSort(this.#sessions, (a, b) => a.ordinal - b.ordinal)) as SteppedSort<SnapshotSession>;
        if (sort.step(SNAPSHOT_STEP_WORK)) {
          this.#sortedSessions = sort.sorted;
          this.#sort = undefined;
          this.#pos = 0;
          this.#phase = 'encodeKv';
        }
        break;
      }
      case 'encodeKv':
        this.#encodeKv();
        break;
      case 'encodeSessions':
        this.#encodeSessions();
        break;
      case 'assemble':
        this.#assemble();
        break;
      case 'done':
        break;
    }
    return this.#phase === 'done';
  }

  #listKv(): void {
    for (let n = 0; n < SNAPSHOT_STEP_WORK; n++) {
      const r = this.#kvIter.next();
      if (r.done === true) {
        this.#phase = 'listSessions';
        return;
      }
      this.#keys.push(r.value);
    }
  }

  #listSessions(): void {
    const tables = this.#src.sessions;
    for (let n = 0; n < SNAPSHOT_STEP_WORK; n++) {
      if (this.#sessionIter === undefined) {
        const table = tables[this.#sessionTable];
        if (table === undefined) {
          this.#endListing();
          return;
        }
        this.#sessionIter = table();
      }
      const r = this.#sessionIter.next();
      if (r.done === true) {
        this.#sessionIter = undefined;
        this.#sessionTable++;
        continue;
      }
      // Added since the start: not in this snapshot.
      if (r.value.ordinal < this.#src.ordinal) this.#sessions.push(r.value);
    }
  }

  /**
   * Everything listed so far plus what was removed before the live iterators reached it
   * (duplicates go after sorting). A key added since the start lists with no value: skipped
   * when encoding. Later changes cannot drop anything from the lists, so listening now only
   * keeps the values of kv keys.
   */
  #endListing(): void {
    for (const [key, prev] of this.#frozenKv) if (prev !== undefined) this.#keys.push(key);
    for (const s of this.#goneSessions) this.#sessions.push(s);
    this.#goneSessions.length = 0;
    this.#phase = 'sortKv';
  }

  #valueAtStart(key: string): Json | undefined {
    return this.#frozenKv.has(key) ? this.#frozenKv.get(key) : this.#src.kv.get(key);
  }

  #encodeKv(): void {
    const keys = this.#sortedKeys;
    let text = '';
    for (let n = 0; n < SNAPSHOT_STEP_RECORDS && text.length < SNAPSHOT_STEP_CHARS && this.#pos < keys.length; this.#pos++) {
      const key = keys[this.#pos] as string;
      if (this.#pos > 0 && keys[this.#pos - 1] === key) continue;
      const value = this.#valueAtStart(key);
      if (value === undefined) continue;
      text += canonicalize([key, value]) + '\n';
      this.#kvCount++;
      n++;
    }
    if (text.length > 0) this.#parts.push(this.#encoder.encode(text));
    if (this.#pos >= keys.length) {
      // Every value is read: the machine may change what it likes from here.
      this.#stopListening();
      this.#frozenKv.clear();
      this.#pos = 0;
      this.#phase = 'encodeSessions';
    }
  }

  #encodeSessions(): void {
    const sessions = this.#sortedSessions;
    let text = '';
    for (let n = 0; n < SNAPSHOT_STEP_RECORDS && text.length < SNAPSHOT_STEP_CHARS && this.#pos < sessions.length; this.#pos++) {
      const x = sessions[this.#pos] as SnapshotSession;
      if (this.#pos > 0 && (sessions[this.#pos - 1] as SnapshotSession).ordinal === x.ordinal) continue;
      text += canonicalize([x.retry ? 'retry' : 'key', x.client, x.key, x.ordinal, x.timestamp, x.outputs]) + '\n';
      this.#sessionCount++;
      n++;
    }
    if (text.length > 0) this.#parts.push(this.#encoder.encode(text));
    if (this.#pos >= sessions.length) {
      const header = this.#encoder.encode(canonicalize({ v: this.#src.version, ordinal: this.#src.ordinal, kv: this.#kvCount, sessions: this.#sessionCount }) + '\n');
      this.#parts.unshift(header);
      let total = 0;
      for (const p of this.#parts) total += p.length;
      this.#out = new Uint8Array(total);
      this.#sortedKeys = [];
      this.#sortedSessions = [];
      this.#phase = 'assemble';
    }
  }

  #assemble(): void {
    const out = this.#out as Uint8Array;
    let budget = SNAPSHOT_STEP_COPY_BYTES;
    while (this.#partIndex < this.#parts.length && budget > 0) {
      const part = this.#parts[this.#partIndex] as Uint8Array;
      out.set(part, this.#copied);
      this.#copied += part.length;
      budget -= part.length;
      this.#parts[this.#partIndex++] = EMPTY;
    }
    if (this.#partIndex >= this.#parts.length) {
      if (this.#copied !== out.length || (out.length > 0 && out[out.length - 1] !== NEWLINE)) throw new Error('snapshot job: assembled bytes do not add up');
      this.#parts.length = 0;
      this.#phase = 'done';
    }
  }

  #stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    this.#src.detach(this);
  }
}

const EMPTY = new Uint8Array(0);
