// Range-based set reconciliation over the id trie of an ItemSet (Negentropy's idea, with
// implicit hash-prefix ranges instead of transmitted bounds). Pure and deterministic: the
// caller moves the bytes and the records. Each message answers the sender's previous
// fingerprints with one tag per node and carries fingerprints for the nodes still open:
//   DONE   equal, or settled by a push the tag's sender makes
//   NEED   I hold nothing here: push me all of yours
//   ECHO   you hold exactly one more: here is my fingerprint, find it by subtraction
//   SPLIT  here are my fingerprints of both halves
//   SWAP   deepest level and still different: we both push everything in the node
//   SPLITK k: here are my fingerprints of the node's 2^k descendants k levels down; sent
//          where the counts differ by Δ ≥ 4 (at least Δ differences below: k = log2 Δ,
//          at most MAX_FANOUT_BITS), so a dense difference skips the levels where every
//          node differs anyway (fewer rounds, the same fingerprints)
// A node whose counts differ by one and whose lane difference names an id the larger side
// holds is settled by pushing that id, so most differences end one level below the depth
// where they stop sharing nodes: O(log n) rounds and O(d) bytes for d differences.
import { MalformedSyncMessageError } from './errors.ts';
import { fingerprintsEqual, LANES, MAX_TRIE_DEPTH, subtractFingerprints, type Fingerprint, type ItemSet } from './itemset.ts';
import { ByteReader, ByteWriter } from './varint.ts';

export const TAG = { DONE: 0, NEED: 1, ECHO: 2, SPLIT: 3, SWAP: 4, SPLITK: 5 } as const;
type Tag = (typeof TAG)[keyof typeof TAG];
/** Levels one SPLITK may skip at most (2^8 = 256 descendants). */
export const MAX_FANOUT_BITS = 8;

/** Nodes one message may open; past it, differing nodes are swapped whole instead of split. */
export const MAX_OPEN_NODES = 65_536;
/** Lanes per fingerprint on the wire by default (a retry pass uses all four). */
export const DEFAULT_WIRE_LANES = 2;

export interface TrieNode {
  depth: number;
  prefix: number;
}

export interface RangeStep {
  /** Message to send, or null when the exchange is over and nothing is owed. */
  message: Uint8Array | null;
  /** Push every id we hold in these nodes. */
  pushNodes: TrieNode[];
  /** Push these ids. */
  pushIds: Uint8Array[];
  /** True once neither side will send another range message. */
  finished: boolean;
}

function children(n: TrieNode): [TrieNode, TrieNode] {
  return [{ depth: n.depth + 1, prefix: n.prefix * 2 }, { depth: n.depth + 1, prefix: n.prefix * 2 + 1 }];
}

/** The 2^k descendants of `n`, k levels down, in prefix order. */
function descendants(n: TrieNode, k: number): TrieNode[] {
  const out: TrieNode[] = [];
  const base = n.prefix * 2 ** k;
  for (let p = 0; p < 2 ** k; p++) out.push({ depth: n.depth + k, prefix: base + p });
  return out;
}

/** Levels a SPLITK skips for counts that differ by `delta` at `depth` (1: a plain SPLIT). */
function fanoutBits(delta: number, depth: number): number {
  if (delta < 4) return 1;
  return Math.max(1, Math.min(Math.floor(Math.log2(delta)), MAX_FANOUT_BITS, MAX_TRIE_DEPTH - depth));
}

export class RangeReconciler {
  readonly #items: ItemSet;
  readonly #lanes: number;
  /** Nodes whose fingerprints our last message carried, awaiting the peer's tags. */
  #sent: TrieNode[] = [];
  #finished = false;
  rounds = 0;

  constructor(items: ItemSet, lanes = DEFAULT_WIRE_LANES) {
    if (!(lanes >= 1 && lanes <= LANES)) throw new RangeError(`lanes must be 1..${LANES}`);
    this.#items = items;
    this.#lanes = lanes;
  }

  get finished(): boolean {
    return this.#finished;
  }

  #writeFp(w: ByteWriter, fp: Fingerprint): void {
    w.varint(fp.count);
    for (let l = 0; l < this.#lanes; l++) w.u32(fp.lanes[l] as number);
  }

  /** The initiator's first message: no tags, the root's fingerprint. */
  initiate(): Uint8Array {
    const w = new ByteWriter();
    w.varint(0);
    w.varint(1);
    const root = { depth: 0, prefix: 0 };
    this.#writeFp(w, this.#items.fingerprint(0, 0));
    this.#sent = [root];
    this.rounds++;
    return w.finish();
  }

  receive(message: Uint8Array): RangeStep {
    const r = new ByteReader(message);
    const pushNodes: TrieNode[] = [];
    const pushIds: Uint8Array[] = [];
    const nTags = r.varint(MAX_OPEN_NODES * 2);
    if (nTags !== this.#sent.length) throw new MalformedSyncMessageError(`${nTags} tags for ${this.#sent.length} open nodes`);
    // The initiator's first message opens the root; later ones open what our tags asked for.
    const open: TrieNode[] = this.rounds === 0 ? [{ depth: 0, prefix: 0 }] : [];
    for (const node of this.#sent) {
      const tag = r.byte();
      switch (tag) {
        case TAG.DONE:
          break;
        case TAG.NEED:
        case TAG.SWAP:
          pushNodes.push(node);
          break;
        case TAG.ECHO:
          open.push(node);
          break;
        case TAG.SPLIT:
          if (node.depth >= MAX_TRIE_DEPTH) throw new MalformedSyncMessageError('SPLIT below the deepest trie level');
          open.push(...children(node));
          break;
        case TAG.SPLITK: {
          const k = r.byte();
          if (k < 2 || k > MAX_FANOUT_BITS || node.depth + k > MAX_TRIE_DEPTH) throw new MalformedSyncMessageError(`SPLITK of ${k} levels at depth ${node.depth}`);
          if (open.length + 2 ** k > MAX_OPEN_NODES) throw new MalformedSyncMessageError(`SPLITK opens more than ${MAX_OPEN_NODES} nodes`);
          open.push(...descendants(node, k));
          break;
        }
        default:
          throw new MalformedSyncMessageError(`unknown range tag ${tag}`);
      }
    }
    const nFps = r.varint(MAX_OPEN_NODES * 2);
    if (nFps !== open.length) throw new MalformedSyncMessageError(`${nFps} fingerprints for ${open.length} nodes`);
    const tags: Tag[] = [];
    /** Levels of each SPLITK in `tags`, in order. */
    const fanouts: number[] = [];
    const next: TrieNode[] = [];
    const nextFps: Fingerprint[] = [];
    for (const node of open) {
      const theirs: Fingerprint = { count: r.varint(), lanes: new Uint32Array(LANES) };
      for (let l = 0; l < this.#lanes; l++) theirs.lanes[l] = r.u32();
      const mine = this.#items.fingerprint(node.depth, node.prefix);
      if (this.#lanes < LANES) mine.lanes.fill(0, this.#lanes);
      if (fingerprintsEqual(mine, theirs)) {
        tags.push(TAG.DONE);
      } else if (mine.count === 0) {
        tags.push(TAG.NEED);
      } else if (theirs.count === 0) {
        pushNodes.push(node);
        tags.push(TAG.DONE);
      } else if (mine.count === theirs.count + 1 && this.#recover(node, mine, theirs, pushIds)) {
        tags.push(TAG.DONE);
      } else if (theirs.count === mine.count + 1) {
        tags.push(TAG.ECHO);
        next.push(node);
        nextFps.push(mine);
      } else if (node.depth < MAX_TRIE_DEPTH && next.length + 2 <= MAX_OPEN_NODES) {
        let k = fanoutBits(Math.abs(mine.count - theirs.count), node.depth);
        if (next.length + 2 ** k > MAX_OPEN_NODES) k = 1;
        if (k === 1) tags.push(TAG.SPLIT);
        else {
          tags.push(TAG.SPLITK);
          fanouts.push(k);
        }
        for (const c of k === 1 ? children(node) : descendants(node, k)) {
          next.push(c);
          nextFps.push(this.#items.fingerprint(c.depth, c.prefix));
        }
      } else {
        tags.push(TAG.SWAP);
        pushNodes.push(node);
      }
    }
    if (!r.done) throw new MalformedSyncMessageError('trailing bytes after the range message');
    this.#sent = next;
    if (open.length === 0) {
      // The peer opened nothing: its message only settled our last nodes; nothing is owed back.
      this.#finished = true;
      return { message: null, pushNodes, pushIds, finished: true };
    }
    const w = new ByteWriter();
    w.varint(tags.length);
    let f = 0;
    for (const t of tags) {
      w.byte(t);
      if (t === TAG.SPLITK) w.byte(fanouts[f++] as number);
    }
    w.varint(nextFps.length);
    for (const fp of nextFps) this.#writeFp(w, fp);
    this.rounds++;
    if (next.length === 0) this.#finished = true;
    return { message: w.finish(), pushNodes, pushIds, finished: this.#finished };
  }

  /** We hold one more id than the peer here: the lane difference may name it. */
  #recover(node: TrieNode, mine: Fingerprint, theirs: Fingerprint, out: Uint8Array[]): boolean {
    const diff = subtractFingerprints(mine, theirs);
    const id = this.#items.findByWords(node.depth, node.prefix, diff.lanes, this.#lanes);
    if (id === undefined) return false;
    out.push(id);
    return true;
  }
}
