// Linearizability checking in the style of Porcupine: Wing & Gong's search over the history's
// call/return events with Lowe's memoization (cache of linearized-set × model-state), run per
// partition (per key for the KV). Operations with an unknown outcome return at +Infinity.
// The search is bounded (MAX_SEARCH_STEPS); exceeding it reports 'unknown', never 'ok'.

export interface Operation<I, O> {
  readonly client: string;
  readonly input: I;
  /** undefined: the outcome is unknown (the client never heard back). */
  readonly output: O | undefined;
  readonly call: number;
  /** Infinity when the outcome is unknown. */
  readonly ret: number;
}

export interface Model<S, I, O> {
  init(): S;
  /** Whether `input` may return `output` in `state` (any output when undefined), and the next state. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; next: S };
  /** Equal states must hash equally. */
  hash(state: S): string;
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
}

export type CheckResult = 'ok' | 'illegal' | 'unknown';

export interface CheckReport {
  readonly result: CheckResult;
  /** For 'illegal': the operations of the partition that failed. */
  readonly failedPartition?: number;
  readonly steps: number;
}

/** Search steps per partition before giving up with 'unknown'. */
export const MAX_SEARCH_STEPS = 5_000_000;

interface Node {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

export function checkOperations<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], maxSteps = MAX_SEARCH_STEPS): CheckReport {
  const parts = model.partition !== undefined ? model.partition(ops) : [ops.slice()];
  let steps = 0;
  let unknown = false;
  for (let p = 0; p < parts.length; p++) {
    const r = checkPartition(model, parts[p] as Operation<I, O>[], maxSteps);
    steps += r.steps;
    if (r.result === 'illegal') return { result: 'illegal', failedPartition: p, steps };
    if (r.result === 'unknown') unknown = true;
  }
  return { result: unknown ? 'unknown' : 'ok', steps };
}

function buildList<I, O>(ops: readonly Operation<I, O>[]): Node {
  const events: Node[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as Operation<I, O>;
    if (!(op.ret >= op.call)) throw new RangeError(`operation ${i} returns before its call`);
    const call: Node = { op: i, isCall: true, time: op.call, match: undefined, prev: undefined, next: undefined };
    const ret: Node = { op: i, isCall: false, time: op.ret, match: undefined, prev: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  }
  // At equal times calls go first: treating touching operations as concurrent never
  // reports a false violation.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(call: Node): void {
  (call.prev as Node).next = call.next;
  if (call.next !== undefined) call.next.prev = call.prev;
  const ret = call.match as Node;
  (ret.prev as Node).next = ret.next;
  if (ret.next !== undefined) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match as Node;
  (ret.prev as Node).next = ret;
  if (ret.next !== undefined) ret.next.prev = ret;
  (call.prev as Node).next = call;
  if (call.next !== undefined) call.next.prev = call;
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], maxSteps: number): { result: CheckResult; steps: number } {
  if (ops.length === 0) return { result: 'ok', steps: 0 };
  const head = buildList(ops);
  const words = Math.ceil(ops.length / 32);
  const linearized = new Uint32Array(words);
  const cache = new Set<string>();
  const stack: { call: Node; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { result: 'unknown', steps };
    const e = entry as Node;
    if (e.isCall) {
      const op = ops[e.op] as Operation<I, O>;
      const r = model.step(state, op.input, op.output);
      if (r.ok) {
        const w = e.op >>> 5;
        const bit = 1 << (e.op & 31);
        linearized[w] = (linearized[w] as number) | bit;
        const key = `${linearized.join(',')}|${model.hash(r.next)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: e, state });
          state = r.next;
          lift(e);
          entry = head.next;
          continue;
        }
        linearized[w] = (linearized[w] as number) & ~bit;
      }
      entry = e.next;
    } else {
      // A return whose call is not linearized yet: backtrack.
      const top = stack.pop();
      if (top === undefined) return { result: 'illegal', steps };
      state = top.state;
      const w = top.call.op >>> 5;
      linearized[w] = (linearized[w] as number) & ~(1 << (top.call.op & 31));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { result: 'ok', steps };
}

// ---- the KV model --------------------------------------------------------------------------

export type KvInput =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvOutput = string | null | boolean | 'ok';

export type KvOperation = Operation<KvInput, KvOutput>;

/** get, put and cas on one register holding `S` (a string, or also a counter's number) or nothing. */
function registerStep<S extends string | number | null>(state: S, input: KvInput, output: unknown): { ok: boolean; next: S | string } {
  switch (input.kind) {
    case 'get':
      return { ok: output === undefined || output === state, next: state };
    case 'put':
      return { ok: output === undefined || output === 'ok', next: input.value };
    case 'cas': {
      const success = state === input.expected;
      return { ok: output === undefined || output === success, next: success ? input.value : state };
    }
  }
}

/** One register per key: state is the value or null. */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step: (state, input, output) => registerStep(state, input, output),
  hash: (state) => (state === null ? '\u0000' : state),
  partition: (ops) => partitionByKey(ops),
};

export function checkKvHistory(ops: readonly KvOperation[], maxSteps = MAX_SEARCH_STEPS): CheckReport {
  return checkOperations(kvModel, ops, maxSteps);
}

// ---- the KV-with-counters model (the devnet nemesis run) -------------------------------------

/** What the operators `kv.get/put/cas` and `counter.add` do to one key, as the nemesis records it. */
export type KvCounterInput =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly kind: 'add'; readonly key: string; readonly delta: number };

/** get: the value (null when absent); put: 'ok'; cas: whether it set; add: the sum it returned. */
export type KvCounterOutput = string | number | null | boolean;

export type KvCounterOperation = Operation<KvCounterInput, KvCounterOutput>;

type KvCounterState = string | number | null;

/** One register per key holding a string, a counter (number) or nothing. */
export const kvCounterModel: Model<KvCounterState, KvCounterInput, KvCounterOutput> = {
  init: () => null,
  step(state, input, output) {
    if (input.kind !== 'add') return registerStep(state, input, output);
    // counter.add fails on a non-number without changing anything; the nemesis keeps counters apart.
    if (typeof state === 'string') return { ok: false, next: state };
    const next = (state ?? 0) + input.delta;
    return { ok: output === undefined || output === next, next };
  },
  hash: (state) => (state === null ? '\u0000' : typeof state === 'number' ? `#${state}` : `s${state}`),
  partition: (ops) => partitionByKey(ops),
};

function partitionByKey<I extends { readonly key: string }, O>(ops: readonly Operation<I, O>[]): Operation<I, O>[][] {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of ops) {
    let list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, (list = []));
    list.push(op);
  }
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as Operation<I, O>[]);
}

export function checkKvCounterHistory(ops: readonly KvCounterOperation[], maxSteps = MAX_SEARCH_STEPS): CheckReport {
  return checkOperations(kvCounterModel, ops, maxSteps);
}
