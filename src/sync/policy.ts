// Conflict resolution. Each key keeps the antichain of its versions under its policy's
// "supersedes" order: one version for last-writer-wins, max and min (total orders), the
// causally concurrent ones for union, manual escalation and registered resolvers. Keeping
// the maximal elements of everything ever seen is a join-semilattice, so peers that have
// seen the same versions hold the same antichain whatever the order of arrival.
// Policies are chosen per key prefix (longest prefix wins); every peer must run the same
// table and the same resolver code, as with any replicated state machine.
import { canonicalize } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { compareHlc } from './hlc.ts';
import type { CausalContext, DocRecord } from './record.ts';

export type PolicyName = 'lww' | 'max' | 'min' | 'union' | 'manual' | 'resolver';
export const POLICY_NAMES: readonly PolicyName[] = ['lww', 'max', 'min', 'union', 'manual', 'resolver'];

export interface PolicyRule {
  prefix: string;
  policy: PolicyName;
  /** For `resolver`: the name it was registered under. */
  resolver?: string;
}

/** Deterministic merge of concurrent versions (given in last-writer order, oldest first). */
export type Resolver = (versions: readonly DocRecord[]) => Json;

/**
 * The built-in table every peer starts from (cluster.json `sync.policies` adds to it and
 * may override a prefix): anything else is last-writer-wins.
 */
export const DEFAULT_POLICY_RULES: readonly PolicyRule[] = [
  { prefix: 'manual/', policy: 'manual' },
  { prefix: 'max/', policy: 'max' },
  { prefix: 'min/', policy: 'min' },
  { prefix: 'set/', policy: 'union' },
];

/** The default table with `extra` rules (prefix → policy name) on top. */
export function policiesWith(extra: Record<string, string> = {}, resolvers: Map<string, Resolver> = new Map()): ConflictPolicies {
  const rules = new Map(DEFAULT_POLICY_RULES.map((r) => [r.prefix, r]));
  for (const [prefix, policy] of Object.entries(extra)) rules.set(prefix, { prefix, policy: policy as PolicyName });
  return new ConflictPolicies([...rules.values()], resolvers);
}

/** Policy rules one table may hold. */
export const MAX_POLICY_RULES = 256;

/** Total order for last-writer-wins: HLC, then origin PeerId, then seq and signature (only a misbehaving origin reuses a seq). */
export function compareLww(a: DocRecord, b: DocRecord): number {
  const t = compareHlc(a.t, b.t);
  if (t !== 0) return t;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  if (a.seq !== b.seq) return a.seq - b.seq;
  return a.sig < b.sig ? -1 : a.sig > b.sig ? 1 : 0;
}

const TYPE_RANK: Record<string, number> = { null: 0, boolean: 1, number: 2, string: 3, array: 4, object: 5 };
function typeOf(v: Json): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** A total order on JSON values: by type, then numerically / lexically / canonically. */
export function compareJson(a: Json, b: Json): number {
  const ta = typeOf(a);
  const tb = typeOf(b);
  if (ta !== tb) return (TYPE_RANK[ta] as number) - (TYPE_RANK[tb] as number);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const sa = typeof a === 'string' ? a : canonicalize(a);
  const sb = typeof b === 'string' ? b : canonicalize(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** `a` was written by a peer that had seen `b` (its causal context covers b's dot). */
export function covers(a: DocRecord, b: DocRecord): boolean {
  return (a.ctx?.[b.origin] ?? 0) >= b.seq;
}

export interface ResolvedPolicy {
  name: PolicyName;
  resolver?: Resolver;
}

export interface Materialized {
  value: Json;
  deleted: boolean;
  /** Manual policy only: more than one concurrent version awaits a resolution. */
  conflict: boolean;
}

export class ConflictPolicies {
  readonly #rules: PolicyRule[];
  readonly #resolvers: Map<string, Resolver>;

  constructor(rules: PolicyRule[] = [], resolvers: Map<string, Resolver> = new Map()) {
    if (rules.length > MAX_POLICY_RULES) throw new RangeError(`at most ${MAX_POLICY_RULES} policy rules`);
    for (const r of rules) {
      if (!POLICY_NAMES.includes(r.policy)) throw new RangeError(`unknown policy '${r.policy}' for prefix '${r.prefix}'`);
      if (r.policy === 'resolver' && (r.resolver === undefined || !resolvers.has(r.resolver))) {
        throw new RangeError(`prefix '${r.prefix}' names resolver '${r.resolver ?? ''}', which is not registered`);
      }
    }
    // Longest prefix first, so the first match is the most specific rule.
    this.#rules = [...rules].sort((a, b) => b.prefix.length - a.prefix.length);
    this.#resolvers = resolvers;
  }

  rules(): PolicyRule[] {
    return [...this.#rules];
  }

  policyFor(key: string): ResolvedPolicy {
    for (const r of this.#rules) {
      if (!key.startsWith(r.prefix)) continue;
      if (r.policy === 'resolver') return { name: 'resolver', resolver: this.#resolvers.get(r.resolver as string) as Resolver };
      return { name: r.policy };
    }
    return { name: 'lww' };
  }

  /** True when the policy keeps the causal context of versions (and so concurrent versions). */
  isCausal(key: string): boolean {
    const n = this.policyFor(key).name;
    return n === 'union' || n === 'manual' || n === 'resolver';
  }

  /** `a` supersedes `b` under the key's policy (a strict partial order). */
  supersedes(a: DocRecord, b: DocRecord): boolean {
    const p = this.policyFor(a.key).name;
    switch (p) {
      case 'lww':
        return compareLww(a, b) > 0;
      case 'max':
      case 'min': {
        // A delete under max/min is ordered by time against other deletes, after any value.
        const c = a.op === 'del' || b.op === 'del' ? (a.op === 'del' ? 1 : 0) - (b.op === 'del' ? 1 : 0) : compareJson(a.value, b.value) * (p === 'max' ? 1 : -1);
        return c !== 0 ? c > 0 : compareLww(a, b) > 0;
      }
      default:
        return covers(a, b);
    }
  }

  /**
   * The antichain after adding `incoming` to `current` (an antichain): whether it was kept,
   * and which current versions it superseded.
   */
  merge(current: readonly DocRecord[], incoming: DocRecord): { kept: boolean; superseded: DocRecord[] } {
    for (const c of current) if (this.supersedes(c, incoming)) return { kept: false, superseded: [] };
    return { kept: true, superseded: current.filter((c) => this.supersedes(incoming, c)) };
  }

  materialize(key: string, versions: readonly DocRecord[]): Materialized {
    const sorted = [...versions].sort(compareLww);
    const last = sorted[sorted.length - 1];
    if (last === undefined) return { value: null, deleted: true, conflict: false };
    const policy = this.policyFor(key);
    if (sorted.length === 1) return { value: last.value, deleted: last.op === 'del', conflict: false };
    switch (policy.name) {
      case 'union': {
        const live = sorted.filter((v) => v.op !== 'del');
        return { value: unionOf(live.map((v) => v.value)), deleted: live.length === 0, conflict: false };
      }
      case 'resolver':
        return { value: (policy.resolver as Resolver)(sorted), deleted: false, conflict: false };
      case 'manual':
        return { value: last.value, deleted: last.op === 'del', conflict: true };
      default:
        return { value: last.value, deleted: last.op === 'del', conflict: false };
    }
  }
}

/** Set union of JSON arrays (non-arrays count as one element), canonical order, no duplicates. */
export function unionOf(values: readonly Json[]): Json[] {
  const seen = new Map<string, Json>();
  for (const v of values) for (const e of Array.isArray(v) ? v : [v]) seen.set(canonicalize(e), e);
  return [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, e]) => e);
}

/** The causal context a new write of a key carries: everything its current versions saw, plus their dots. */
export function contextOf(versions: readonly DocRecord[]): CausalContext | undefined {
  const ctx: CausalContext = {};
  for (const v of versions) {
    for (const [o, s] of Object.entries(v.ctx ?? {})) ctx[o] = Math.max(ctx[o] ?? 0, s);
    ctx[v.origin] = Math.max(ctx[v.origin] ?? 0, v.seq);
  }
  return Object.keys(ctx).length === 0 ? undefined : ctx;
}
