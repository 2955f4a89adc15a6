// Raft messages and client requests inside CONSENSUS envelope payloads (JSON; bytes as
// base64url). The envelope is signed by a cluster member, but the payload is still a trust
// boundary: decodeConsensusPayload turns unknown JSON into a checked value or null, never throws.
import { base64urlDecode, base64urlEncode } from '../../../crypto/index.ts';
import type { Entry, Message, SnapshotMeta } from '../types.ts';
import type { Json, JsonObject } from '../../../ico/types.ts';

/** Raft messages per envelope at most (a Ready's messages to one peer go in one envelope). */
export const MAX_MESSAGES_PER_ENVELOPE = 512;
/**
 * Estimated JSON bytes of the Raft messages in one envelope at most: the 1 MiB ICO frame holds
 * them with room for the envelope. One Ready's messages to a peer (a window of 128 KiB snapshot
 * chunks, or of 256 KiB appends) used to go in one envelope of several MiB, which the transport
 * refused as too large, on every retry: a snapshot over a few chunks was never installed.
 */
export const MAX_ENVELOPE_MESSAGE_BYTES = 768 * 1024;
/** JSON bytes per message and per entry besides their data (fields, ids, a snapshot's conf). */
const MESSAGE_OVERHEAD_BYTES = 1024;
const ENTRY_OVERHEAD_BYTES = 48;
/** Client requests per proposal envelope at most. */
export const MAX_PROPOSALS_PER_ENVELOPE = 1024;
const MAX_ID = 128;

/** One client command forwarded to the leader (session key makes retries exactly-once). */
export interface ForwardedProposal {
  /** Requester-local id, echoed in the answer. */
  id: number;
  /** The encoded Command without a timestamp: the leader stamps it. */
  operator_id: string;
  inputs: Json;
  client: string;
  key: string;
}

export type ProposalAnswer = { id: number; index: number; term: number } | { id: number; error: 'notLeader' | 'dropped'; leader: string };

export type ConsensusPayload =
  | { k: 'raft'; msgs: Message[] }
  | { k: 'propose'; props: ForwardedProposal[] }
  | { k: 'proposed'; answers: ProposalAnswer[] };

function entryToJson(e: Entry): Json {
  return [e.term, e.index, e.type === 'normal' ? 0 : 1, base64urlEncode(e.data)];
}

function metaToJson(m: SnapshotMeta): Json {
  return { index: m.index, term: m.term, voters: [...m.conf.voters], learners: [...m.conf.learners] };
}

function messageToJson(m: Message): JsonObject {
  switch (m.type) {
    case 'append':
      return { ...m, entries: m.entries.map(entryToJson) };
    case 'snapshot':
      return { ...m, meta: metaToJson(m.meta), chunk: base64urlEncode(m.chunk) };
    default:
      // The other messages are flat objects of strings, numbers and booleans: JSON as they are.
      return m as unknown as JsonObject;
  }
}

const base64urlBytes = (n: number): number => Math.ceil((n * 4) / 3);

/** An upper estimate of a message's JSON size on the wire (bytes travel as base64url). */
export function estimatedMessageBytes(m: Message): number {
  switch (m.type) {
    case 'append': {
      let bytes = MESSAGE_OVERHEAD_BYTES;
      for (const e of m.entries) bytes += ENTRY_OVERHEAD_BYTES + base64urlBytes(e.data.byteLength);
      return bytes;
    }
    case 'snapshot':
      return MESSAGE_OVERHEAD_BYTES + base64urlBytes(m.chunk.byteLength) + 128 * (m.meta.conf.voters.length + m.meta.conf.learners.length);
    default:
      return MESSAGE_OVERHEAD_BYTES;
  }
}

/**
 * Messages to one peer, in order, cut into envelopes of at most MAX_MESSAGES_PER_ENVELOPE
 * messages and MAX_ENVELOPE_MESSAGE_BYTES estimated bytes (a larger message goes alone).
 */
export function packRaftMessages(msgs: readonly Message[]): Message[][] {
  const envelopes: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const m of msgs) {
    const size = estimatedMessageBytes(m);
    if (current.length > 0 && (current.length >= MAX_MESSAGES_PER_ENVELOPE || bytes + size > MAX_ENVELOPE_MESSAGE_BYTES)) {
      envelopes.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) envelopes.push(current);
  return envelopes;
}

export function encodeConsensusPayload(p: ConsensusPayload): JsonObject {
  if (p.k === 'raft') return { k: 'raft', msgs: p.msgs.map(messageToJson) };
  if (p.k === 'propose') return { k: 'propose', props: p.props as unknown as Json[] };
  return { k: 'proposed', answers: p.answers as unknown as Json[] };
}

// ---- decoding (untrusted) ----------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_ID;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

class Bad extends Error {}
function need(cond: boolean): asserts cond {
  if (!cond) throw new Bad();
}

function bytes(v: unknown): Uint8Array {
  need(typeof v === 'string');
  return base64urlDecode(v);
}

function entryFromJson(v: unknown): Entry {
  need(Array.isArray(v) && v.length === 4 && isNat(v[0]) && isNat(v[1]) && (v[2] === 0 || v[2] === 1));
  return { term: v[0] as number, index: v[1] as number, type: v[2] === 0 ? 'normal' : 'confChange', data: bytes(v[3]) };
}

function idList(v: unknown): string[] {
  need(Array.isArray(v) && v.length <= 1024 && v.every(isId));
  return v as string[];
}

function messageFromJson(v: unknown): Message {
  need(isObj(v) && isNat(v['term']) && isId(v['from']) && isId(v['to']) && typeof v['type'] === 'string');
  const base = { term: v['term'], from: v['from'], to: v['to'] };
  switch (v['type']) {
    case 'vote':
      need(isBool(v['preVote']) && isNat(v['lastIndex']) && isNat(v['lastTerm']) && isBool(v['transfer']));
      return { ...base, type: 'vote', preVote: v['preVote'], lastIndex: v['lastIndex'], lastTerm: v['lastTerm'], transfer: v['transfer'] };
    case 'voteResp':
      need(isBool(v['preVote']) && isBool(v['reject']));
      return { ...base, type: 'voteResp', preVote: v['preVote'], reject: v['reject'] };
    case 'append': {
      need(isNat(v['prevIndex']) && isNat(v['prevTerm']) && isNat(v['commit']) && Array.isArray(v['entries']));
      return { ...base, type: 'append', prevIndex: v['prevIndex'], prevTerm: v['prevTerm'], commit: v['commit'], entries: (v['entries'] as unknown[]).map(entryFromJson) };
    }
    case 'appendResp':
      need(isNat(v['index']) && isBool(v['reject']) && isNat(v['hintIndex']) && isNat(v['hintTerm']));
      return { ...base, type: 'appendResp', index: v['index'], reject: v['reject'], hintIndex: v['hintIndex'], hintTerm: v['hintTerm'] };
    case 'heartbeat':
      need(isNat(v['commit']) && isNat(v['readSeq']));
      return { ...base, type: 'heartbeat', commit: v['commit'], readSeq: v['readSeq'] };
    case 'heartbeatResp':
      need(isNat(v['readSeq']));
      return { ...base, type: 'heartbeatResp', readSeq: v['readSeq'] };
    case 'snapshot': {
      const m = v['meta'];
      need(isObj(m) && isNat(m['index']) && isNat(m['term']) && isNat(v['offset']) && isNat(v['totalBytes']));
      const meta: SnapshotMeta = { index: m['index'], term: m['term'], conf: { voters: idList(m['voters']), learners: idList(m['learners']) } };
      return { ...base, type: 'snapshot', meta, offset: v['offset'], totalBytes: v['totalBytes'], chunk: bytes(v['chunk']) };
    }
    case 'snapshotResp':
      need(isNat(v['snapIndex']) && isNat(v['nextOffset']) && isBool(v['reject']));
      return { ...base, type: 'snapshotResp', snapIndex: v['snapIndex'], nextOffset: v['nextOffset'], reject: v['reject'] };
    case 'timeoutNow':
      return { ...base, type: 'timeoutNow' };
    case 'readIndex':
      need(isId(v['ctx']));
      return { ...base, type: 'readIndex', ctx: v['ctx'] };
    case 'readIndexResp':
      need(isId(v['ctx']) && isNat(v['index']));
      return { ...base, type: 'readIndexResp', ctx: v['ctx'], index: v['index'] };
    default:
      throw new Bad();
  }
}

function proposalFromJson(v: unknown): ForwardedProposal {
  need(isObj(v) && isNat(v['id']) && typeof v['operator_id'] === 'string' && v['operator_id'].length <= MAX_ID && 'inputs' in v && isId(v['client']) && isId(v['key']));
  return { id: v['id'], operator_id: v['operator_id'], inputs: v['inputs'] as Json, client: v['client'], key: v['key'] };
}

function answerFromJson(v: unknown): ProposalAnswer {
  need(isObj(v) && isNat(v['id']));
  if ('error' in v) {
    need((v['error'] === 'notLeader' || v['error'] === 'dropped') && isId(v['leader']));
    return { id: v['id'], error: v['error'], leader: v['leader'] };
  }
  need(isNat(v['index']) && isNat(v['term']));
  return { id: v['id'], index: v['index'], term: v['term'] };
}

/** A checked payload, or null for anything malformed (the caller counts and drops it). */
export function decodeConsensusPayload(p: JsonObject): ConsensusPayload | null {
  try {
    switch (p['k']) {
      case 'raft': {
        const msgs = p['msgs'];
        need(Array.isArray(msgs) && msgs.length > 0 && msgs.length <= MAX_MESSAGES_PER_ENVELOPE);
        return { k: 'raft', msgs: msgs.map(messageFromJson) };
      }
      case 'propose': {
        const props = p['props'];
        need(Array.isArray(props) && props.length > 0 && props.length <= MAX_PROPOSALS_PER_ENVELOPE);
        return { k: 'propose', props: props.map(proposalFromJson) };
      }
      case 'proposed': {
        const answers = p['answers'];
        need(Array.isArray(answers) && answers.length > 0 && answers.length <= MAX_PROPOSALS_PER_ENVELOPE);
        return { k: 'proposed', answers: answers.map(answerFromJson) };
      }
      default:
        return null;
    }
  } catch {
    return null;
  }
}
