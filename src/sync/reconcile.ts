// Range-based set reconciliation over the id trie of an ItemSet (Negentropy's idea, with
// implicit hash-prefix ranges instead of transmitted bounds). Pure and deterministic: the
// caller moves the bytes and the records. Each message answers the sender's previous
// fingerprints with one tag per node and carries fingerprints for the nodes still open:
//   DONE   equal, or settled by a push the tag's sender makes
//   NEED   I hold nothing here: push me all of yours
//   ECHO   you hold exactly one more: here is my fingerprint, find it by subtraction
//   SPLIT  here are my fingerprints of both halves
//   SWAP   deepest level and still different: we both push everything in the node
// A node whose counts differ by one and whose lane difference names an id the larger side
// holds is settled by pushing that id, so most differences end one level below the depth
// where they stop sharing nodes: O(log n) rounds and O(d) bytes for d differences.
import { MalformedSyncMessageError } from './errors.ts';
import { fingerprintsEqual, LANES, MAX_TRIE_DEPTH, subtractFingerprints, type Fingerprint, type ItemSet } from './itemset.ts';
import { ByteReader, ByteWriter } from './varint.ts';

export const TAG = { DONE: 0, NEED: 1, ECHO: 2, SPLIT: 3, SWAP: 4 } as const;
type Tag = (typeof TAG)[keyof typeof TAG];

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
        default:
          throw new MalformedSyncMessageError(`unknown range tag ${tag}`);
      }
    }
    const nFps = r.varint(MAX_OPEN_NODES * 2);
    if (nFps !== open.length) throw new MalformedSyncMessageError(`${nFps} fingerprints for ${open.length} nodes`);
    const tags: Tag[] = [];
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
        tags.push(TAG.SPLIT);
        for (const c of children(node)) {
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
    for (const t of tags) w.byte(t);
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
