// Types of the pure PBFT core (Castro & Liskov, OSDI 1999 / TOCS 2002, the signature variant):
// the membership, the protocol messages (plain immutable objects; codec.ts turns them into the
// signed binary form), the Ready batch handed to the driver, the injected crypto, and every
// limit the core enforces (PBFT_DEFAULTS). Replicas are named by their index in the membership.

export type NodeId = string;
/** Position of a replica in `Membership.replicas`; the primary of view v is `v mod n`. */
export type ReplicaIndex = number;

export interface Member {
  /** The replica's identity on the wire (a PeerId in HyperSync). */
  readonly id: NodeId;
  /** 32-byte ed25519 public key (in the simulator: any 32 bytes its fake verifier knows). */
  readonly publicKey: Uint8Array;
}

/** n = 3f + 1 replicas; the order is part of the protocol (primary rotation, indexes on the wire). */
export interface Membership {
  /** Domain of every signature: signatures of one cluster never verify in another. */
  readonly cluster: string;
  readonly replicas: readonly Member[];
}

/** Hash and signature verification; production is SHA-256 + ed25519 (auth.ts), the simulator fakes it. */
export interface PbftVerifier {
  /** 32-byte collision-resistant digest. */
  digest(bytes: Uint8Array): Uint8Array;
  /** Never throws: a malformed key or signature is `false`. */
  verify(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
}

/** Signs 32-byte message digests with this replica's (or client's) key: 64-byte signatures. */
export interface PbftSigner {
  sign(digest: Uint8Array): Uint8Array;
}

/** A replica signature inside a certificate: who signed the (reconstructible) message. */
export interface Endorsement {
  readonly replica: ReplicaIndex;
  readonly signature: Uint8Array;
}

// ---- messages ----------------------------------------------------------------------------

/** A client operation. `(client, timestamp)` identifies it: timestamps grow per client. */
export interface RequestMessage {
  readonly type: 'request';
  /** Opaque client id (HyperSync: `<PeerId>` or `<PeerId>/<slot>`), at most `maxClientIdBytes`. */
  readonly client: string;
  readonly timestamp: number;
  readonly op: Uint8Array;
  /**
   * The client's signature: over the request's signing digest, or, when `bundle` is set, over
   * the root of the bundle of requests it signed at once (codec.ts bundleSignedPart).
   */
  readonly signature: Uint8Array;
  /** Present when the client signed a bundle of requests with one signature: where this one sits in it. */
  readonly bundle?: RequestBundleProof;
}

/**
 * A request's place in a bundle its client signed once: leaf `index` of `size` (leaves are
 * H(0x00 ‖ request signed part)), and the RFC 9162 path from it to the signed root.
 */
export interface RequestBundleProof {
  readonly index: number;
  readonly size: number;
  readonly path: readonly Uint8Array[];
}

/** Requests one client signature covers at most (a bundle's path is then at most 6 hashes). */
export const MAX_REQUEST_BUNDLE = 64;

interface Signed {
  /** The signer. */
  readonly replica: ReplicaIndex;
  readonly signature: Uint8Array;
}

/** The primary orders batch `digest` at `seq` in `view`; the batch rides along, unsigned (it must hash to `digest`). */
export interface PrePrepareMessage extends Signed {
  readonly type: 'prePrepare';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly batch: readonly RequestMessage[];
}

export interface PrepareMessage extends Signed {
  readonly type: 'prepare';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
}

export interface CommitMessage extends Signed {
  readonly type: 'commit';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
}

/** The state after executing `seq` hashes to `digest`. */
export interface CheckpointMessage extends Signed {
  readonly type: 'checkpoint';
  readonly seq: number;
  readonly digest: Uint8Array;
}

/** 2f+1 CHECKPOINTs for (seq, digest); seq 0 (the initial state) needs none. */
export interface CheckpointProof {
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly signatures: readonly Endorsement[];
}

/** A pre-prepare (signed by the primary of `view`) and 2f matching prepares from other replicas. */
export interface PreparedCertificate {
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly prePrepare: Uint8Array;
  readonly prepares: readonly Endorsement[];
}

export interface ViewChangeMessage extends Signed {
  readonly type: 'viewChange';
  /** The view the sender moves to. */
  readonly view: number;
  readonly checkpoint: CheckpointProof;
  /** For each seq above the checkpoint that prepared at the sender: the certificate of its highest view. */
  readonly prepared: readonly PreparedCertificate[];
}

/** A pre-prepare of the new view without its batch (replicas hold or fetch it by digest). */
export interface NewViewPrePrepare {
  readonly seq: number;
  readonly digest: Uint8Array;
  /** The new primary's signature over PRE-PREPARE(view, seq, digest). */
  readonly signature: Uint8Array;
}

export interface NewViewMessage extends Signed {
  readonly type: 'newView';
  readonly view: number;
  /** 2f+1 valid VIEW-CHANGEs for `view` from distinct replicas. */
  readonly viewChanges: readonly ViewChangeMessage[];
  /** Exactly what computeNewViewOrder(viewChanges) gives, each signed. */
  readonly prePrepares: readonly NewViewPrePrepare[];
}

/** Periodic liveness beacon; receivers retransmit what the sender evidently lacks. */
export interface StatusMessage extends Signed {
  readonly type: 'status';
  readonly view: number;
  /** False while the sender waits for the NEW-VIEW of `view`. */
  readonly active: boolean;
  readonly stableSeq: number;
  readonly lastExecuted: number;
}

/** Ask for the next chunk of the stable checkpoint state at `seq` (or a newer one), from `offset`. */
export interface FetchStateMessage extends Signed {
  readonly type: 'fetchState';
  readonly seq: number;
  readonly offset: number;
}

/** One chunk of the sender's stable checkpoint state; `proof` lets the receiver check the whole. */
export interface StateChunkMessage extends Signed {
  readonly type: 'stateChunk';
  readonly proof: CheckpointProof;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

export interface FetchBatchMessage extends Signed {
  readonly type: 'fetchBatch';
  readonly digest: Uint8Array;
}

/** A batch by its digest (self-certifying: the receiver recomputes the digest). */
export interface BatchMessage extends Signed {
  readonly type: 'batch';
  readonly digest: Uint8Array;
  readonly batch: readonly RequestMessage[];
}

/** Retransmission of a decided slot: 2f+1 COMMITs for (view, seq, digest) and the batch. */
export interface CommitCertificateMessage extends Signed {
  readonly type: 'commitCertificate';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly commits: readonly Endorsement[];
  readonly batch: readonly RequestMessage[];
}

/**
 * A replica's answer to one request. The signature covers only (view, seq, root): one signature
 * per executed batch, `root` being the Merkle root over the batch's reply leaves; `index`,
 * `leafCount` and `path` prove this request's leaf (client, timestamp, digest(result)) is in it.
 */
export interface ReplyMessage extends Signed {
  readonly type: 'reply';
  readonly view: number;
  readonly seq: number;
  readonly root: Uint8Array;
  readonly client: string;
  readonly timestamp: number;
  readonly result: Uint8Array;
  readonly index: number;
  readonly leafCount: number;
  readonly path: readonly Uint8Array[];
}

/** Messages replicas exchange (REQUEST also arrives from clients; REPLY goes to clients). */
export type ReplicaMessage =
  | PrePrepareMessage
  | PrepareMessage
  | CommitMessage
  | CheckpointMessage
  | ViewChangeMessage
  | NewViewMessage
  | StatusMessage
  | FetchStateMessage
  | StateChunkMessage
  | FetchBatchMessage
  | BatchMessage
  | CommitCertificateMessage;

export type PbftMessage = RequestMessage | ReplicaMessage | ReplyMessage;
export type PbftMessageType = PbftMessage['type'];

// ---- Ready -------------------------------------------------------------------------------

/** `to === BROADCAST` means every other replica. */
export const BROADCAST = '*';

export interface Outbound {
  readonly to: NodeId;
  readonly message: ReplicaMessage | RequestMessage;
}

export interface ClientReply {
  readonly to: string;
  readonly message: ReplyMessage;
}

/** A decided batch to execute, in seq order. `execute[i]` is false for a duplicate request. */
export interface CommittedBatch {
  readonly seq: number;
  readonly view: number;
  readonly digest: Uint8Array;
  readonly requests: readonly RequestMessage[];
  readonly execute: readonly boolean[];
  /** seq is a checkpoint: the execution must carry the application snapshot after it. */
  readonly checkpoint: boolean;
}

/** What the driver reports back for one CommittedBatch. */
export interface BatchExecution {
  readonly seq: number;
  /** One result per request with `execute[i]` true, in batch order. */
  readonly results: readonly Uint8Array[];
  /** The application state after `seq`, when the batch is a checkpoint (any deterministic bytes). */
  readonly appSnapshot?: Uint8Array;
}

/** State transfer finished: replace the application state by `appSnapshot` (the state after `seq`). */
export interface StateRestore {
  readonly seq: number;
  readonly appSnapshot: Uint8Array;
}

export interface SoftState {
  readonly view: number;
  readonly primary: NodeId;
  /** False while waiting for a NEW-VIEW. */
  readonly active: boolean;
}

/**
 * One batch of work, processed in this order: 1. send `messages` and `replies`; 2. install
 * `restore` if present; 3. execute `committed` in order; 4. call advance(ready, executions).
 * The core keeps no durable state (see replica.ts for what a restart means).
 */
export interface PbftReady {
  readonly softState?: SoftState;
  readonly messages: readonly Outbound[];
  readonly replies: readonly ClientReply[];
  readonly restore?: StateRestore;
  readonly committed: readonly CommittedBatch[];
}

// ---- limits and configuration ------------------------------------------------------------

export interface PbftLimits {
  /** K: a checkpoint every K sequence numbers. */
  readonly checkpointInterval: number;
  /** L: sequence numbers accepted are in (h, h + L], h the stable checkpoint; a multiple of K. */
  readonly watermarkWindow: number;
  /** Requests in one batch (one three-phase round). */
  readonly maxBatchRequests: number;
  /** Bytes of requests in one batch (at least one request is always taken). */
  readonly maxBatchBytes: number;
  /** Batches the primary has ordered and not yet executed (the pipeline depth). */
  readonly maxInflightBatches: number;
  /** Bytes of one request's operation. */
  readonly maxOpBytes: number;
  /** Bytes of one result in a REPLY. */
  readonly maxResultBytes: number;
  /** UTF-8 bytes of a client id. */
  readonly maxClientIdBytes: number;
  /**
   * Requests known and not yet executed (the primary's queue and the backups' watch list); at
   * most one per client (a newer request of a client replaces its older one).
   */
  readonly maxPendingRequests: number;
  /** Clients in the duplicate table; the one idle longest is forgotten first (deterministically). */
  readonly maxClients: number;
  /** Requests a backup forwards to a new primary when a view starts. */
  readonly maxForwardOnNewView: number;
  /** Executed batches whose signed reply roots are kept to answer retransmitted requests. */
  readonly maxReplyCacheBatches: number;
  /** Slots retransmitted to one lagging replica per STATUS. */
  readonly maxRetransmitPerStatus: number;
  /** Bytes of checkpoint state in one STATE-CHUNK. */
  readonly stateChunkBytes: number;
  /** STATE-CHUNKs served to one replica per tick (a fetch is 80 bytes, a chunk up to stateChunkBytes). */
  readonly maxStateChunksPerTick: number;
  /** NEW-VIEWs checked per view (each can cost thousands of signature checks). */
  readonly maxNewViewChecks: number;
  /** Bytes of a checkpoint state (client table + application snapshot). */
  readonly maxStateBytes: number;
  /** Batches being fetched by digest at once. */
  readonly maxMissingBatches: number;
  /**
   * PRE-PREPAREs, PREPAREs and COMMITs for the view being entered (they may overtake its
   * NEW-VIEW) held until it starts; the rest are dropped and counted.
   */
  readonly maxEarlyMessages: number;
  /** Ticks a backup waits for a known request to execute before starting a view change. */
  readonly requestTimeoutTicks: number;
  /** Ticks to wait for the NEW-VIEW after 2f+1 VIEW-CHANGEs; doubles per failed view. */
  readonly viewChangeTimeoutTicks: number;
  /** Doublings of viewChangeTimeoutTicks at most (the timeout stops growing there). */
  readonly maxViewChangeBackoff: number;
  /** Ticks between STATUS broadcasts (and retransmissions of an unanswered VIEW-CHANGE). */
  readonly statusTicks: number;
  /** Ticks before a state or batch fetch is asked again (of another replica). */
  readonly fetchTimeoutTicks: number;
}

export const PBFT_DEFAULTS: PbftLimits = {
  checkpointInterval: 64,
  watermarkWindow: 256,
  maxBatchRequests: 64,
  maxBatchBytes: 512 * 1024,
  maxInflightBatches: 4,
  maxOpBytes: 64 * 1024,
  maxResultBytes: 64 * 1024,
  maxClientIdBytes: 128,
  maxPendingRequests: 4096,
  maxClients: 65_536,
  maxForwardOnNewView: 256,
  maxReplyCacheBatches: 512,
  maxRetransmitPerStatus: 16,
  stateChunkBytes: 128 * 1024,
  maxStateChunksPerTick: 8,
  maxNewViewChecks: 4,
  maxStateBytes: 256 * 1024 * 1024,
  maxMissingBatches: 64,
  maxEarlyMessages: 1024,
  requestTimeoutTicks: 20,
  viewChangeTimeoutTicks: 20,
  maxViewChangeBackoff: 4,
  statusTicks: 10,
  fetchTimeoutTicks: 10,
};

/** Most replicas a membership may have (indexes are u16 on the wire; quorums are small sets). */
export const MAX_REPLICAS = 64;

export interface PbftConfig {
  readonly id: NodeId;
  readonly membership: Membership;
  readonly signer: PbftSigner;
  readonly verifier: PbftVerifier;
  /** The public key a client signs requests with, or undefined for an unknown client. */
  readonly clientKey: (client: string) => Uint8Array | undefined;
  readonly limits?: Partial<PbftLimits>;
}
