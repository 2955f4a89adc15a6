// JSON Schemas of the REST routes: Fastify validates requests with them (ajv, no coercion, no
// property removal) and serializes replies with them, and @fastify/swagger turns them into the
// OpenAPI 3 document at /docs/json. Reply schemas list every field: unlisted ones would be dropped.
import { MAX_WAIT_MS } from '../../src/consensus/engine.ts';
import { OPERATOR_ID_PATTERN, RECEIPT_ID_PATTERN } from '../../src/receipts/receipt.ts';

/** Receipts one list request returns at most. */
export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 100;
/** The longest `timeout_ms` a request may ask for: as long as any engine ever waits. */
export const MAX_TIMEOUT_MS = MAX_WAIT_MS;
/** `timeout_ms` when a request names none. */
export const DEFAULT_TIMEOUT_MS = 5_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

const anyJson = { description: 'any JSON value' } as const;

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['status', 'error'],
  properties: {
    status: { type: 'string', enum: ['error'] },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        path: { type: 'string', description: 'JSON Pointer of the failing input' },
        retryable: { type: 'boolean' },
      },
    },
  },
} as const;

export const receiptSchema = {
  $id: 'Receipt',
  type: 'object',
  required: ['receipt_id', 'timestamp', 'operation', 'prev_receipt_hash', 'signer', 'index', 'signature'],
  properties: {
    receipt_id: { type: 'string' },
    timestamp: { type: 'string', format: 'date-time' },
    operation: {
      type: 'object',
      required: ['type', 'operator_id', 'inputs_hash', 'outputs_hash'],
      properties: {
        type: { type: 'string', enum: ['operator_execution'] },
        operator_id: { type: 'string' },
        inputs_hash: { type: 'string' },
        outputs_hash: { type: 'string' },
      },
    },
    prev_receipt_hash: { type: 'string' },
    signer: { type: 'string', description: 'PeerId of the signer' },
    index: { type: 'integer' },
    signature: { type: 'string', description: 'ed25519, base64url' },
  },
} as const;

export const treeHeadSchema = {
  $id: 'TreeHead',
  type: 'object',
  required: ['size', 'root', 'timestamp', 'signer', 'signature'],
  properties: {
    size: { type: 'integer' },
    root: { type: 'string' },
    timestamp: { type: 'string' },
    signer: { type: 'string' },
    signature: { type: 'string' },
  },
} as const;

const proofSchema = {
  type: 'object',
  required: ['receipt_id', 'index', 'tree_size', 'leaf_hash', 'path'],
  properties: {
    receipt_id: { type: 'string' },
    index: { type: 'integer' },
    tree_size: { type: 'integer' },
    leaf_hash: { type: 'string' },
    path: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const executeBodySchema = {
  type: 'object',
  required: ['operator_id', 'inputs'],
  additionalProperties: false,
  properties: {
    operator_id: { type: 'string', pattern: OPERATOR_ID_PATTERN.source, description: 'an id from GET /api/v1/operators' },
    inputs: { ...anyJson, description: "the operator's inputs (checked against its input_schema)" },
    options: {
      type: 'object',
      additionalProperties: false,
      properties: {
        consensus: { type: 'string', enum: ['none', 'raft', 'pbft'] },
        timeout_ms: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS },
        idempotency_key: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH, description: 'a retry with the same key returns the same result and receipt, executed once' },
        read: { type: 'string', enum: ['log', 'linearizable'] },
      },
    },
  },
} as const;

export const executeReplySchema = {
  type: 'object',
  required: ['status', 'outputs', 'receipt_id', 'execution_time_ms', 'receipt', 'replayed'],
  properties: {
    status: { type: 'string', enum: ['success'] },
    outputs: anyJson,
    receipt_id: { type: ['string', 'null'], description: 'null only for a linearizable read' },
    execution_time_ms: { type: 'number' },
    receipt: { anyOf: [{ $ref: 'Receipt#' }, { type: 'null' }] },
    replayed: { type: 'boolean', description: 'true when an idempotent retry returned the stored result' },
    certificate: {
      type: 'object',
      description: "options.consensus 'pbft': the quorum certificate (f+1 signed replies) vouching for the receipt and outputs; check with `hypersync receipts verify --certificates`",
      required: ['scheme', 'certificate', 'result'],
      properties: { scheme: { type: 'string', enum: ['pbft/1'] }, certificate: { type: 'string' }, result: { type: 'string' } },
    },
  },
} as const;

export const receiptParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: RECEIPT_ID_PATTERN.source } },
} as const;

export const receiptReplySchema = {
  type: 'object',
  required: ['receipt', 'proof', 'tree_head'],
  properties: { receipt: { $ref: 'Receipt#' }, proof: proofSchema, tree_head: { $ref: 'TreeHead#' } },
} as const;

const uintString = '^(0|[1-9][0-9]{0,14})$';

/** Query strings stay strings (no type coercion): digits checked by pattern, range in the handler. */
export const receiptsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', pattern: uintString, description: 'first receipt index (default 0)' },
    limit: { type: 'string', pattern: uintString, description: `receipts to return, 1..${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})` },
  },
} as const;

export const receiptsReplySchema = {
  type: 'object',
  required: ['receipts', 'from', 'limit', 'next', 'tree_size'],
  properties: {
    receipts: { type: 'array', items: { $ref: 'Receipt#' } },
    from: { type: 'integer' },
    limit: { type: 'integer' },
    next: { type: 'integer', description: 'the `from` of the next page' },
    tree_size: { type: 'integer' },
  },
} as const;

export const operatorsReplySchema = {
  type: 'object',
  required: ['operators'],
  properties: {
    operators: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'description', 'readonly', 'input_schema', 'output_schema'],
        properties: {
          id: { type: 'string' },
          description: { type: 'string' },
          readonly: { type: 'boolean' },
          input_schema: { type: 'object', additionalProperties: true },
          output_schema: { type: 'object', additionalProperties: true },
        },
      },
    },
  },
} as const;

export const clusterReplySchema = {
  type: 'object',
  required: ['consensus', 'self', 'leader', 'term', 'commit_index', 'applied_index', 'members', 'peers'],
  properties: {
    consensus: { type: 'string', enum: ['none', 'raft', 'pbft'] },
    self: { type: 'string' },
    leader: { type: ['string', 'null'] },
    term: { type: 'integer' },
    commit_index: { type: 'integer' },
    applied_index: { type: 'integer' },
    members: {
      type: 'array',
      items: {
        type: 'object',
        required: ['peerId', 'role'],
        properties: { peerId: { type: 'string' }, role: { type: 'string', enum: ['voter', 'learner'] }, match: { type: 'integer' }, state: { type: 'string' } },
      },
    },
    peers: { type: 'integer' },
    pbft: {
      type: 'object',
      description: 'the PBFT group beside the engine (as its client sees it): the view f+1 replicas are in, its primary, and each replica’s status',
      required: ['cluster', 'members', 'f', 'view', 'primary', 'replicas'],
      properties: {
        cluster: { type: 'string' },
        members: { type: 'array', items: { type: 'string' } },
        f: { type: 'integer' },
        view: { type: ['integer', 'null'] },
        primary: { type: ['string', 'null'] },
        replicas: {
          type: 'array',
          items: {
            type: 'object',
            required: ['self', 'view', 'primary', 'active', 'low_watermark', 'high_watermark', 'last_executed', 'stable_checkpoint', 'dropped_total'],
            properties: {
              self: { type: 'string' },
              view: { type: 'integer' },
              primary: { type: 'string' },
              active: { type: 'boolean' },
              low_watermark: { type: 'integer' },
              high_watermark: { type: 'integer' },
              last_executed: { type: 'integer' },
              stable_checkpoint: { type: 'object', required: ['seq', 'digest'], properties: { seq: { type: 'integer' }, digest: { type: 'string' } } },
              dropped_total: { type: 'integer' },
              requests_executed: { type: 'integer' },
              signatures_made: { type: 'integer' },
              signatures_verified: { type: 'integer', description: 'replica and client signatures this replica checked' },
              batches_executed: { type: 'integer' },
              retransmissions: { type: 'integer' },
              wire: {
                type: ['object', 'null'],
                description: 'this peer’s direct-wire counters (all its traffic): frames, envelopes and bytes sent, frame signatures made and verified',
                properties: { frames_out: { type: 'integer' }, envelopes_out: { type: 'integer' }, bytes_out: { type: 'integer' }, signatures: { type: 'integer' }, verifications: { type: 'integer' } },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** /healthz: liveness, nothing else (no credentials are asked for it). */
export const healthReplySchema = {
  type: 'object',
  required: ['status'],
  additionalProperties: false,
  properties: { status: { type: 'string', enum: ['ok'] } },
} as const;

/** /api/v1/status (read scope): the relay adds its own fields (peerId, multiaddrs, peers, limits…). */
export const statusReplySchema = {
  type: 'object',
  required: ['status'],
  additionalProperties: true,
  properties: { status: { type: 'string', enum: ['ok'] } },
} as const;
