// Membership changes, one server at a time: encoding of a ConfChange into an entry's bytes,
// validation, and applying it to a ConfState. A node is a voter or a learner, never both.
// Bootstrap writes the initial members as conf-change entries 1..n so joiners replay them.
import { invariant } from './errors.ts';
import type { ConfChange, ConfChangeType, ConfState, Entry, NodeId, PersistedState } from './types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

/** Conf-change entries are written by our own leaders, so a bad one is a broken invariant. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const v: unknown = JSON.parse(decoder.decode(data));
  invariant(typeof v === 'object' && v !== null, 'confchange: not an object');
  const o = v as { type?: unknown; node?: unknown };
  invariant(typeof o.node === 'string' && o.node !== '', 'confchange: bad node');
  invariant(TYPES.includes(o.type as ConfChangeType), 'confchange: bad type');
  return { type: o.type as ConfChangeType, node: o.node };
}

export const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/** Why `cc` cannot apply to `conf`, or undefined if it can. */
export function confChangeProblem(conf: ConfState, cc: ConfChange): string | undefined {
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case 'addVoter':
      return isVoter ? `${cc.node} is already a voter` : undefined;
    case 'addLearner':
      // Demoting a voter straight to learner is two changes in one; remove it first.
      if (isVoter) return `${cc.node} is a voter; remove it first`;
      return isLearner ? `${cc.node} is already a learner` : undefined;
    case 'removeNode':
      if (!isVoter && !isLearner) return `${cc.node} is not a member`;
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter';
      return undefined;
  }
}

/** Applies a change; changes that do not apply (stale duplicates) leave the conf as it is. */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  if (confChangeProblem(conf, cc) !== undefined) return conf;
  const voters = conf.voters.filter((n) => n !== cc.node);
  const learners = conf.learners.filter((n) => n !== cc.node);
  if (cc.type === 'addVoter') voters.push(cc.node);
  else if (cc.type === 'addLearner') learners.push(cc.node);
  return { voters: voters.sort(), learners: learners.sort() };
}

/** The durable state every initial member starts from: members as committed entries at term 1. */
export function bootstrapState(voters: readonly NodeId[], learners: readonly NodeId[] = []): PersistedState {
  invariant(voters.length > 0, 'bootstrap: at least one voter');
  const changes: ConfChange[] = [
    ...voters.map((node): ConfChange => ({ type: 'addVoter', node })),
    ...learners.map((node): ConfChange => ({ type: 'addLearner', node })),
  ];
  const entries: Entry[] = changes.map((cc, i) => ({ term: 1, index: i + 1, type: 'confChange', data: encodeConfChange(cc) }));
  return { hardState: { term: 1, vote: '', commit: entries.length }, entries };
}
