// The receipts verifier (src/receipts: the seed's five steps, and the proof bundles of
// `receipts verify-proof`) fed mutated chains and bundles: receipts with fields dropped, added,
// retyped or edited, half of them re-sealed with the signer's real key so the later steps
// (link, evidence, timestamp) are reached; receipts dropped, duplicated, swapped, taken from
// another signer's chain; evidence that does not match; proofs with edited indexes, sizes,
// paths, roots and tree heads. The verifier never throws, every failure names a step (1-5)
// and a reason, and it accepts only chains an independent check of the rules accepts.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { base64urlEncode, crypto, digestJson, hexEncode, peerIdFromPublicKeyBytes, type Ed25519Signer } from '../../src/crypto/index.ts';
import type { Json } from '../../src/ico/types.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { proofBundleProblem, type ProofBundle } from '../../src/receipts/proof.ts';
import {
  ChainVerifier, DEFAULT_MAX_FUTURE_SKEW_MS, GENESIS_HASH, STEPS, checkSignature, receiptCanonicalBytes, receiptHash, receiptShapeProblem, type Evidence, type Receipt,
} from '../../src/receipts/receipt.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { fuzzParameters, Tally } from './fuzz-params.ts';

const T0 = Date.parse('2026-11-24T10:00:00.000Z');
const NOW = T0 + 3_600_000;
/** Long enough for every step and for swaps and slices to matter; each case verifies it whole. */
const CHAIN = 5;

interface Signer {
  signer: Ed25519Signer;
  peerId: string;
}

function newSigner(): Signer {
  const signer = crypto.createSigner(crypto.randomBytes(32));
  return { signer, peerId: peerIdFromPublicKeyBytes(signer.publicKey) };
}

async function chainOf(s: Signer, n: number): Promise<{ receipts: Receipt[]; inputs: Json[]; outputs: Json[]; log: ReceiptLog }> {
  const log = await ReceiptLog.open(new MemoryStore(), { signer: s.signer, peerId: s.peerId });
  const inputs: Json[] = [];
  const outputs: Json[] = [];
  const receipts: Receipt[] = [];
  for (let i = 0; i < n; i++) {
    inputs.push({ key: `k${i}`, value: i % 3 === 0 ? { nested: [i, 'é', null] } : i });
    outputs.push(i % 2 === 0 ? { ok: true } : { value: i * 1.5 });
    receipts.push(await log.append({ operator_id: i % 2 === 0 ? 'kv.put' : 'counter.add', inputs: inputs[i]!, outputs: outputs[i]! }, T0 + i * 1000));
  }
  return { receipts, inputs, outputs, log };
}

const main = newSigner();
const other = newSigner();
const good = await chainOf(main, CHAIN);
const foreign = await chainOf(other, 4);
const bundles: ProofBundle[] = [];
for (const i of [0, 2, CHAIN - 1]) {
  const r = good.receipts[i]!;
  bundles.push({ receipt: r, proof: await good.log.inclusionProof(r.receipt_id), tree_head: good.log.signedTreeHead(NOW) });
}

/** Recomputes receipt_id and signature for an edited receipt, as its signer would (shape permitting). */
function reseal(value: Record<string, unknown>, s: Signer): void {
  const { receipt_id: _id, signature: _sig, ...body } = value;
  let bytes: Uint8Array;
  try {
    bytes = receiptCanonicalBytes(body as Omit<Receipt, 'receipt_id' | 'signature'>);
  } catch {
    return;
  }
  value['receipt_id'] = `receipt_${hexEncode(crypto.sha256(bytes))}`;
  value['signature'] = base64urlEncode(s.signer.sign(receiptCanonicalBytes({ ...(body as Omit<Receipt, 'receipt_id' | 'signature'>), receipt_id: value['receipt_id'] as string })));
}

const RECEIPT_FIELDS = ['receipt_id', 'timestamp', 'operation', 'prev_receipt_hash', 'signer', 'index', 'signature'];
const OPERATION_FIELDS = ['type', 'operator_id', 'inputs_hash', 'outputs_hash'];

const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 2 ** 53, 1e308, -0, '', null, true, [], {}, 'operator_execution', 'kv.put', GENESIS_HASH, `sha256:${'f'.repeat(64)}`, `sha256:${'F'.repeat(64)}`),
  fc.constantFrom('2026-11-24T10:00:00Z', '2026-11-24T09:59:59.999Z', '2099-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-11-24T10:00:00+02:00', 'now'),
  fc.constantFrom(main.peerId, other.peerId, '12D3KooW', `receipt_${'0'.repeat(64)}`, 'A'.repeat(86)),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 24 }),
);

type ReceiptEdit =
  | { kind: 'drop'; field: number }
  | { kind: 'add'; key: string; value: unknown }
  | { kind: 'set'; field: number; value: unknown }
  | { kind: 'set-operation'; field: number; value: unknown }
  | { kind: 'shift-time'; ms: number }
  | { kind: 'not-an-object'; value: unknown };

const receiptEdit: fc.Arbitrary<ReceiptEdit> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), field: fc.nat({ max: RECEIPT_FIELDS.length - 1 }) }),
  fc.record({ kind: fc.constant('add' as const), key: fc.oneof(fc.string({ maxLength: 10 }), fc.constant('__proto__')), value: edgeValue }),
  fc.record({ kind: fc.constant('set' as const), field: fc.nat({ max: RECEIPT_FIELDS.length - 1 }), value: edgeValue }),
  fc.record({ kind: fc.constant('set-operation' as const), field: fc.nat({ max: OPERATION_FIELDS.length - 1 }), value: edgeValue }),
  fc.record({ kind: fc.constant('shift-time' as const), ms: fc.integer({ min: -5000, max: 100_000_000 }) }),
  fc.record({ kind: fc.constant('not-an-object' as const), value: fc.jsonValue({ maxDepth: 1 }) }),
);

type ChainEdit =
  | { kind: 'receipt'; at: number; edits: ReceiptEdit[]; reseal: boolean }
  | { kind: 'drop'; at: number }
  | { kind: 'duplicate'; at: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'foreign'; at: number; which: number }
  | { kind: 'slice'; from: number; to: number };

const chainEdit: fc.Arbitrary<ChainEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('receipt' as const), at: fc.nat(), edits: fc.array(receiptEdit, { minLength: 0, maxLength: 3 }), reseal: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('foreign' as const), at: fc.nat(), which: fc.nat({ max: foreign.receipts.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('slice' as const), from: fc.nat({ max: CHAIN }), to: fc.nat({ max: CHAIN }) }) },
);

type EvidenceMode = { kind: 'none' } | { kind: 'genuine' } | { kind: 'edited'; at: number; inputs: Json | undefined; outputs: Json | undefined } | { kind: 'deep'; at: number; depth: number };

const evidenceMode: fc.Arbitrary<EvidenceMode> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.constant({ kind: 'genuine' as const }),
  fc.record({ kind: fc.constant('edited' as const), at: fc.nat(), inputs: fc.option(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, { nil: undefined }), outputs: fc.option(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, { nil: undefined }) }),
  fc.record({ kind: fc.constant('deep' as const), at: fc.nat(), depth: fc.integer({ min: 129, max: 2000 }) }),
);

interface Case {
  values: unknown[];
  /** Position i's genuine evidence, by original index (undefined when the value is not an original). */
  evidence: Evidence[];
  pinSigner: boolean;
  untouched: boolean;
}

function applyReceiptEdit(v: Record<string, unknown>, e: ReceiptEdit): unknown {
  switch (e.kind) {
    case 'drop':
      delete v[RECEIPT_FIELDS[e.field]!];
      return v;
    case 'add':
      v[e.key] = e.value;
      return v;
    case 'set':
      v[RECEIPT_FIELDS[e.field]!] = e.value;
      return v;
    case 'set-operation':
      if (typeof v['operation'] === 'object' && v['operation'] !== null) (v['operation'] as Record<string, unknown>)[OPERATION_FIELDS[e.field]!] = e.value;
      return v;
    case 'shift-time':
      if (typeof v['timestamp'] === 'string' && !Number.isNaN(Date.parse(v['timestamp']))) v['timestamp'] = new Date(Date.parse(v['timestamp']) + e.ms).toISOString();
      return v;
    case 'not-an-object':
      return e.value;
  }
}

function deepJson(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const caseArb: fc.Arbitrary<Case> = fc.tuple(fc.array(chainEdit, { minLength: 0, maxLength: 3 }), evidenceMode, fc.boolean()).map(([edits, ev, pinSigner]) => {
  // Each slot: the (possibly edited) value and the original index it came from.
  let slots: Array<{ value: unknown; origin: number | null }> = good.receipts.map((r, i) => ({ value: structuredClone(r) as unknown, origin: i }));
  for (const e of edits) {
    const n = slots.length;
    if (n === 0) break;
    switch (e.kind) {
      case 'receipt': {
        const slot = slots[e.at % n]!;
        let v = slot.value;
        for (const re of e.edits) v = typeof v === 'object' && v !== null && !Array.isArray(v) ? applyReceiptEdit(v as Record<string, unknown>, re) : v;
        if (e.reseal && typeof v === 'object' && v !== null && !Array.isArray(v)) reseal(v as Record<string, unknown>, main);
        slots[e.at % n] = { value: v, origin: slot.origin };
        break;
      }
      case 'drop':
        slots.splice(e.at % n, 1);
        break;
      case 'duplicate':
        slots.splice(e.at % n, 0, { value: structuredClone(slots[e.at % n]!.value), origin: slots[e.at % n]!.origin });
        break;
      case 'swap': {
        const a = slots[e.a % n]!;
        slots[e.a % n] = slots[e.b % n]!;
        slots[e.b % n] = a;
        break;
      }
      case 'foreign':
        slots.splice(e.at % (n + 1), 0, { value: structuredClone(foreign.receipts[e.which]), origin: null });
        break;
      case 'slice':
        slots = slots.slice(Math.min(e.from, e.to), Math.max(e.from, e.to) + 1);
        break;
    }
  }
  const evidence: Evidence[] = slots.map((s) => (ev.kind !== 'none' && s.origin !== null ? { inputs: good.inputs[s.origin]!, outputs: good.outputs[s.origin]! } : {}));
  if (ev.kind === 'edited' && evidence.length > 0) {
    const at = ev.at % evidence.length;
    evidence[at] = { ...(ev.inputs === undefined ? {} : { inputs: ev.inputs }), ...(ev.outputs === undefined ? {} : { outputs: ev.outputs }) };
  }
  if (ev.kind === 'deep' && evidence.length > 0) evidence[ev.at % evidence.length] = { inputs: deepJson(ev.depth) };
  return { values: slots.map((s) => s.value), evidence, pinSigner, untouched: edits.length === 0 && ev.kind !== 'edited' && ev.kind !== 'deep' };
});

/** The seed's rules, checked independently of ChainVerifier, for a chain it accepted. */
function oracle(c: Case): string | null {
  let prev: Receipt | null = null;
  for (const [i, value] of c.values.entries()) {
    const shape = receiptShapeProblem(value);
    if (shape !== null) return `position ${i}: ${shape}`;
    const r = value as Receipt;
    const sig = checkSignature(r);
    if (sig !== null) return `position ${i}: ${sig}`;
    if (c.pinSigner && r.signer !== main.peerId) return `position ${i}: signer ${r.signer}`;
    if (prev === null && r.index === 0 && r.prev_receipt_hash !== GENESIS_HASH) return 'index 0 does not link to genesis';
    if (prev !== null && (r.index !== prev.index + 1 || r.prev_receipt_hash !== receiptHash(prev))) return `position ${i}: broken link`;
    const ev = c.evidence[i] ?? {};
    if (ev.inputs !== undefined && digestJson(ev.inputs) !== r.operation.inputs_hash) return `position ${i}: inputs`;
    if (ev.outputs !== undefined && digestJson(ev.outputs) !== r.operation.outputs_hash) return `position ${i}: outputs`;
    const t = Date.parse(r.timestamp);
    if (prev !== null && t < Date.parse(prev.timestamp)) return `position ${i}: time went back`;
    if (t > NOW + DEFAULT_MAX_FUTURE_SKEW_MS) return `position ${i}: in the future`;
    prev = r;
  }
  return null;
}

const STEP_NAMES = new Map<number, string>(Object.entries(STEPS).map(([name, n]) => [n, name]));

test('receipts verifier: mutated chains never throw; every failure names a step and a reason; only valid chains pass', (t) => {
  const tally = new Tally();
  fc.assert(
    fc.property(caseArb, (c) => {
      const v = new ChainVerifier({ now: NOW, ...(c.pinSigner ? { signer: main.peerId } : {}) });
      let failed: string | null = null;
      for (const [i, value] of c.values.entries()) {
        let r;
        try {
          r = v.next(value, c.evidence[i] ?? {}, i);
        } catch (e) {
          assert.fail(`ChainVerifier.next threw at position ${i}: ${String(e)}`);
        }
        if (!r.ok) {
          assert.ok(Number.isSafeInteger(r.index) && r.index >= 0, `index ${r.index}`);
          assert.equal(STEP_NAMES.get(r.step), r.stepName);
          assert.ok(typeof r.reason === 'string' && r.reason.length > 0);
          failed = r.stepName;
          break;
        }
      }
      if (failed === null) {
        assert.equal(oracle(c), null, 'the verifier accepted a chain that breaks the rules');
        tally.add('accepted');
      } else {
        tally.add(`step:${failed}`);
        if (c.untouched) assert.fail(`an untouched chain failed at ${failed}`);
      }
    }),
    fuzzParameters(),
  );
  t.diagnostic(`chains: ${tally.toString()}`);
  for (const step of Object.keys(STEPS)) assert.ok(tally.get(`step:${step}`) > 0, `no case reached step ${step}`);
});

type BundleEdit =
  | { kind: 'proof'; field: 'index' | 'tree_size' | 'receipt_id' | 'leaf_hash'; value: unknown }
  | { kind: 'path'; op: 'drop' | 'dup' | 'edit' | 'replace'; at: number; value: unknown }
  | { kind: 'head'; field: 'size' | 'root' | 'signer' | 'signature' | 'timestamp'; value: unknown }
  | { kind: 'receipt'; which: number }
  | { kind: 'top'; field: 'receipt' | 'proof' | 'tree_head'; value: unknown };

const bundleEdit: fc.Arbitrary<BundleEdit> = fc.oneof(
  fc.record({ kind: fc.constant('proof' as const), field: fc.constantFrom('index' as const, 'tree_size' as const, 'receipt_id' as const, 'leaf_hash' as const), value: fc.oneof(edgeValue, fc.integer({ min: -3, max: CHAIN + 3 }), fc.constantFrom(2 ** 53 - 1, 2 ** 60)) }),
  fc.record({ kind: fc.constant('path' as const), op: fc.constantFrom('drop' as const, 'dup' as const, 'edit' as const, 'replace' as const), at: fc.nat(), value: fc.oneof(edgeValue, fc.constantFrom('0'.repeat(64), 'g'.repeat(64), '0'.repeat(63), 'AB'.repeat(32))) }),
  fc.record({ kind: fc.constant('head' as const), field: fc.constantFrom('size' as const, 'root' as const, 'signer' as const, 'signature' as const, 'timestamp' as const), value: fc.oneof(edgeValue, fc.integer({ min: -1, max: CHAIN + 2 })) }),
  fc.record({ kind: fc.constant('receipt' as const), which: fc.nat({ max: CHAIN - 1 }) }),
  fc.record({ kind: fc.constant('top' as const), field: fc.constantFrom('receipt' as const, 'proof' as const, 'tree_head' as const), value: edgeValue }),
);

test('proof bundles: mutated ones never throw, and only the genuine bundles prove', (t) => {
  const tally = new Tally();
  fc.assert(
    fc.property(fc.nat({ max: bundles.length - 1 }), fc.array(bundleEdit, { minLength: 0, maxLength: 3 }), fc.nat({ max: 9 }).map((n) => n === 0), (i, edits, wrapInArray) => {
      const b = structuredClone(bundles[i]!) as unknown as Record<string, unknown>;
      const part = (name: string): Record<string, unknown> | null => {
        const v = b[name];
        return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
      };
      for (const e of edits) {
        switch (e.kind) {
          case 'proof': {
            const proof = part('proof');
            if (proof !== null) proof[e.field] = e.value;
            break;
          }
          case 'path': {
            const path = part('proof')?.['path'];
            if (!Array.isArray(path)) break;
            const at = path.length === 0 ? 0 : e.at % path.length;
            if (e.op === 'drop') path.splice(at, 1);
            else if (e.op === 'dup') path.splice(at, 0, path[at]);
            else if (e.op === 'edit' && typeof path[at] === 'string') path[at] = (path[at] as string).replace(/^./, (c) => (c === '0' ? '1' : '0'));
            else path[at] = e.value;
            break;
          }
          case 'head': {
            const head = part('tree_head');
            if (head !== null) head[e.field] = e.value;
            break;
          }
          case 'receipt':
            b['receipt'] = structuredClone(good.receipts[e.which]);
            break;
          case 'top':
            b[e.field] = e.value;
            break;
        }
      }
      const input: unknown = wrapInArray ? [b] : b;
      let problem: string | null;
      try {
        problem = proofBundleProblem(input);
      } catch (e) {
        assert.fail(`proofBundleProblem threw: ${String(e)}`);
      }
      if (problem === null) {
        assert.ok(bundles.some((g) => JSON.stringify(g) === JSON.stringify(input)), `accepted a bundle that is not a genuine one: ${JSON.stringify(input).slice(0, 400)}`);
        tally.add('proved');
      } else {
        assert.ok(problem.length > 0);
        tally.add(problem.replace(/[0-9]+/g, 'N').slice(0, 40));
      }
    }),
    fuzzParameters(),
  );
  t.diagnostic(`bundles: ${tally.toString()}`);
  assert.ok(tally.get('proved') > 0, 'untouched bundles prove');
});
