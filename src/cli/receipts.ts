// `hypersync receipts …`: export a node's receipts as JSON Lines, verify a receipts file
// (the seed's five steps, streaming, constant memory), produce and check inclusion proofs.
// A node's data dir holds peer.key (the signer) and store/ (LevelDB).
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { crypto, seedFromLibp2pPrivateKey } from '../crypto/index.ts';
import type { Json } from '../ico/types.ts';
import { loadOrCreateKey } from '../net/platform-node.ts';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ReceiptLog } from '../receipts/log.ts';
import { proofBundleProblem } from '../receipts/proof.ts';
import { ChainVerifier, DEFAULT_MAX_FUTURE_SKEW_MS, type Evidence, type Receipt } from '../receipts/receipt.ts';
import { LevelStore } from '../store/level.ts';
import { carriedCertificateFromJson, membershipFromJson, verifyCarriedCertificate } from '../consensus/pbft/receipt-certificate.ts';
import type { Membership } from '../consensus/pbft/types.ts';
import { StoreError } from '../store/types.ts';
import { MAX_LIST_LIMIT } from '../../relay/api/schemas.ts';
import { ApiCallError, callApi, resolveTarget, type ApiTarget } from './api-client.ts';
import { duration, int, parse, required, str, UsageError, type Parsed } from './args.ts';

export const RECEIPTS_HELP = `usage: hypersync receipts <command> [options]

commands:
  export [--from N] [--devnet DIR | --api URL --ca FILE --token T | --data-dir DIR]
                                            print receipts from index N as JSON Lines: the relay's,
                                            through its API (default: the running devnet), or a
                                            stopped node's, from its data dir
  verify FILE [--inputs F] [--outputs F] [--max-skew 30s] [--certificates F --membership M]
                                            verify a JSON Lines receipts file: signature, chain link,
                                            inputs/outputs hashes (F: JSON Lines, line i = receipt i's
                                            inputs or outputs), timestamps, and PBFT quorum certificates
                                            against the cluster's membership. Exit 0, or 1 with the
                                            index, step and reason of the first failure
  prove (--id RECEIPT_ID | --index N) [--devnet DIR | --api URL --ca FILE --token T | --data-dir DIR]
                                            print {receipt, proof, tree_head}: an RFC 9162 inclusion
                                            proof against a freshly signed tree head
  verify-proof FILE                         check such a proof bundle offline (exit 0 or 1)
  append --data-dir DIR --operator ID --inputs JSON --outputs JSON
                                            append a receipt by hand (demos and tests)
`;

/** `hypersync receipts <command> --help`: that command's lines of the overview. */
const COMMAND_HELP: Record<string, string> = {
  export: `usage: hypersync receipts export [--from N] [--devnet DIR | --api URL --ca FILE --token T | --data-dir DIR]

Prints receipts from index N (default 0) as JSON Lines, one receipt per line, in index order.

From a running cluster (the default): the relay's receipts, paged through its API
(GET /api/v1/receipts, read scope), up to the log's size when the export starts.
  --devnet DIR     devnet folder whose endpoints.json names the API (default .devnet)
  --api URL        relay API base URL instead; with --ca FILE (https) and --token T

From a stopped node: --data-dir DIR reads <DIR>/store (LevelDB) directly and creates
nothing. LevelDB admits one process at a time, so this fails while that node runs.
`,
  verify: `usage: hypersync receipts verify FILE [--inputs F] [--outputs F] [--max-skew 30s] [--certificates F --membership M]

Verifies a JSON Lines receipts file in one streaming pass (constant memory), by the seed's
five steps: 1 signature (and receipt_id), 2 prev_receipt_hash link, 3 inputs_hash and
4 outputs_hash (only with --inputs / --outputs: JSON Lines, line i holds the inputs or
outputs of the receipt on line i), 5 timestamp (not before the previous receipt, at most
--max-skew in the future). Exit 0, or 1 printing the index, step and reason of the first
failure. A truncated or garbage line is an error naming the file and line, and a file
with no receipts at all is an error too (exit 1): it proves nothing.

PBFT receipts: --certificates F (JSON Lines, line i = the "certificate" the API answered
with receipt i, or null) checks each quorum certificate offline against --membership M
(the cluster's cluster.json, or {"cluster": ID, "replicas": [PeerId, ...]}): f+1 replicas
signed the same result, and that result names exactly the receipt's operator, inputs hash
and outputs hash. A certificate that fails is reported like a receipt that fails.
`,
  prove: `usage: hypersync receipts prove (--id RECEIPT_ID | --index N) [--devnet DIR | --api URL --ca FILE --token T | --data-dir DIR]

Prints {receipt, proof, tree_head} as JSON for the receipt with that id, or at that index of
the log: an RFC 9162 inclusion proof of the receipt
against a freshly signed tree head over the whole log. By default from the running relay
(GET /api/v1/receipts/:id; --devnet / --api as for export); with --data-dir from a stopped
node's log, the tree head signed with its key (<DIR>/peer.key).
`,
  'verify-proof': `usage: hypersync receipts verify-proof FILE

Checks a proof bundle written by 'prove' offline: the receipt's signature, the tree head's
signature, and that the inclusion proof leads to the signed root. Exit 0 or 1.
`,
  append: `usage: hypersync receipts append --data-dir DIR --operator ID --inputs JSON --outputs JSON

Appends one receipt to the node's log by hand (demos and tests), signed with <DIR>/peer.key,
and prints it. Creates the key and the store when missing.
`,
};

/** Longest line accepted in a receipts / evidence file. */
export const MAX_LINE_CHARS = 1024 * 1024;

type Out = (s: string) => void;

/**
 * Opens a data dir's receipt log, signed by the node's key. Reading commands (`create`
 * false) never create anything: a dir without peer.key is an error, and a node's dir
 * without a store holds no receipts (null).
 */
async function openLog(dataDir: string, create: true): Promise<ReceiptLog>;
async function openLog(dataDir: string, create: false): Promise<ReceiptLog | null>;
async function openLog(dataDir: string, create: boolean): Promise<ReceiptLog | null> {
  if (!existsSync(dataDir)) throw new UsageError(`data dir ${dataDir} does not exist`);
  if (!create && !existsSync(join(dataDir, 'peer.key'))) throw new UsageError(`${dataDir} holds no peer.key: not a node's data dir`);
  if (!create && !existsSync(join(dataDir, 'store'))) return null;
  const key = await loadOrCreateKey(dataDir);
  let store: LevelStore;
  try {
    store = await LevelStore.open(join(dataDir, 'store'), { createIfMissing: create });
  } catch (e) {
    if (e instanceof StoreError && e.code === 'STORE_LOCKED') throw new DataDirInUseError(dataDir);
    throw e;
  }
  return ReceiptLog.open(store, { signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), peerId: peerIdFromPrivateKey(key).toString() });
}

/** A running node holds its data dir's LevelDB lock; say how to read it instead. */
export class DataDirInUseError extends Error {
  readonly code = 'DATA_DIR_IN_USE';
  override name = 'DataDirInUseError';
  constructor(dataDir: string) {
    super(
      `${dataDir} belongs to a running node (its LevelDB store is locked; one process at a time). ` +
        `Read a running cluster through the relay API instead: 'npx hypersync receipts export' ` +
        `(or 'prove --id ID') uses .devnet/endpoints.json, or pass --api URL --ca FILE --token T. ` +
        `--data-dir is for a stopped node.`,
    );
  }
}

/** Verifying a file without a single receipt would prove nothing: it is an error. */
export class NoReceiptsError extends Error {
  readonly code = 'RECEIPTS_EMPTY';
  override name = 'NoReceiptsError';
}

class LineError extends Error {
  readonly code = 'RECEIPTS_FILE_INVALID';
  override name = 'LineError';
}

/** JSON values of a JSON Lines file, one per line, with line numbers in every error. */
async function* jsonLines(path: string): AsyncGenerator<{ line: number; value: unknown }> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    if (text.length > MAX_LINE_CHARS) throw new LineError(`${path}:${line}: line longer than ${MAX_LINE_CHARS} characters`);
    try {
      yield { line, value: JSON.parse(text) as unknown };
    } catch {
      throw new LineError(`${path}:${line}: not valid JSON (truncated or garbage line)`);
    }
  }
}

/** --membership: a cluster.json with a pbft section, or the membership itself. */
async function readMembership(path: string): Promise<Membership> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--membership ${path}: not a readable JSON file (${(e as Error).message})`);
  }
  const v = value as { cluster?: unknown; pbft?: { replicas?: unknown } };
  const m = membershipFromJson(v.pbft !== undefined ? { cluster: v.cluster, replicas: v.pbft.replicas } : value);
  if (typeof m === 'string') throw new UsageError(`--membership ${path}: ${m}`);
  return m;
}

interface CertificateCheck {
  readonly file: string;
  readonly lines: AsyncIterator<{ line: number; value: unknown }>;
  readonly membership: Membership;
  checked: number;
}

async function verifyFile(file: string, inputsFile: string | undefined, outputsFile: string | undefined, maxSkewMs: number, out: Out, certs?: CertificateCheck): Promise<number> {
  const inputs = inputsFile === undefined ? undefined : jsonLines(inputsFile)[Symbol.asyncIterator]();
  const outputs = outputsFile === undefined ? undefined : jsonLines(outputsFile)[Symbol.asyncIterator]();
  const verifier = new ChainVerifier({ now: Date.now(), maxFutureSkewMs: maxSkewMs });
  let position = 0;
  for await (const { line, value } of jsonLines(file)) {
    const evidence: Evidence = {};
    if (inputs !== undefined) {
      const next = await inputs.next();
      if (next.done === true) throw new LineError(`${inputsFile}: has fewer lines than ${file} (no inputs for line ${line})`);
      evidence.inputs = next.value.value as Json;
    }
    if (outputs !== undefined) {
      const next = await outputs.next();
      if (next.done === true) throw new LineError(`${outputsFile}: has fewer lines than ${file} (no outputs for line ${line})`);
      evidence.outputs = next.value.value as Json;
    }
    const result = verifier.next(value, evidence, position);
    if (!result.ok) {
      out(`FAILED at index ${result.index} (line ${line}), step ${result.step} (${result.stepName}): ${result.reason}\n`);
      return 1;
    }
    if (certs !== undefined) {
      const next = await certs.lines.next();
      if (next.done === true) throw new LineError(`${certs.file}: has fewer lines than ${file} (no certificate for line ${line})`);
      if (next.value.value !== null) {
        const carried = carriedCertificateFromJson(next.value.value);
        const receipt = value as Receipt;
        const verdict = typeof carried === 'string' ? { ok: false as const, reason: carried } : verifyCarriedCertificate(carried, certs.membership, receipt);
        if (!verdict.ok) {
          out(`FAILED at index ${receipt.index} (line ${line}), quorum certificate (${certs.file}:${next.value.line}): ${verdict.reason}\n`);
          return 1;
        }
        certs.checked++;
      }
    }
    position++;
  }
  if (verifier.count === 0) throw new NoReceiptsError(`${file} holds no receipts: nothing was verified (an empty export? check that it found the receipts)`);
  out(`ok: ${verifier.count} receipts verified${certs !== undefined ? `, ${certs.checked} quorum certificates` : ''}\n`);
  return 0;
}

export async function receiptsCommand(argv: string[], out: Out = (s) => process.stdout.write(s)): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(RECEIPTS_HELP);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'export': {
      const p = parse(rest, { 'data-dir': { type: 'string' }, from: { type: 'string' }, ...API_OPTIONS });
      if (p.values['help'] === true) return help(out, sub);
      const from = int(p, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const dataDir = str(p, 'data-dir');
      if (dataDir === undefined) return exportFromApi(await apiTarget(p), from, out);
      const log = await openLog(dataDir, false);
      if (log === null) return 0;
      try {
        for await (const r of log.iterate(from)) out(`${JSON.stringify(r)}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    case 'verify': {
      const p = parse(rest, { inputs: { type: 'string' }, outputs: { type: 'string' }, 'max-skew': { type: 'string' }, certificates: { type: 'string' }, membership: { type: 'string' } }, true);
      if (p.values['help'] === true) return help(out, sub);
      const file = p.positionals[0];
      if (file === undefined || p.positionals.length > 1) throw new UsageError('verify takes exactly one FILE');
      const skew = str(p, 'max-skew');
      const certFile = str(p, 'certificates');
      const membershipFile = str(p, 'membership');
      if ((certFile === undefined) !== (membershipFile === undefined)) throw new UsageError('--certificates and --membership go together');
      const certs = certFile === undefined || membershipFile === undefined ? undefined : { file: certFile, lines: jsonLines(certFile)[Symbol.asyncIterator](), membership: await readMembership(membershipFile), checked: 0 };
      return verifyFile(file, str(p, 'inputs'), str(p, 'outputs'), skew === undefined ? DEFAULT_MAX_FUTURE_SKEW_MS : duration(skew), out, certs);
    }
    case 'prove': {
      const p = parse(rest, { 'data-dir': { type: 'string' }, id: { type: 'string' }, index: { type: 'string' }, ...API_OPTIONS });
      if (p.values['help'] === true) return help(out, sub);
      const which = receiptChoice(p);
      const dataDir = str(p, 'data-dir');
      if (dataDir === undefined) return proveFromApi(await apiTarget(p), which, out);
      const log = await openLog(dataDir, false);
      try {
        const receipt = log === null ? undefined : 'id' in which ? await log.getById(which.id) : await log.get(which.index);
        if (log === null || receipt === undefined) {
          process.stderr.write(`hypersync: RECEIPT_NOT_FOUND: no receipt ${describeChoice(which)}\n`);
          return 1;
        }
        const proof = await log.inclusionProof(receipt.receipt_id);
        out(`${JSON.stringify({ receipt, proof, tree_head: log.signedTreeHead() }, null, 2)}\n`);
      } finally {
        await log?.close();
      }
      return 0;
    }
    case 'verify-proof': {
      const p = parse(rest, {}, true);
      if (p.values['help'] === true) return help(out, sub);
      const file = p.positionals[0];
      if (file === undefined) throw new UsageError('verify-proof takes a FILE');
      let bundle: unknown;
      try {
        bundle = JSON.parse(await readFile(file, 'utf8'));
      } catch {
        throw new LineError(`${file}: not a JSON proof bundle`);
      }
      const problem = proofBundleProblem(bundle);
      if (problem !== null) {
        out(`FAILED: ${problem}\n`);
        return 1;
      }
      const b = bundle as { receipt: { receipt_id: string; index: number }; tree_head: { size: number; root: string } };
      out(`ok: ${b.receipt.receipt_id} (index ${b.receipt.index}) is in the signed tree of size ${b.tree_head.size}, root ${b.tree_head.root}\n`);
      return 0;
    }
    case 'append': {
      const p = parse(rest, { 'data-dir': { type: 'string' }, operator: { type: 'string' }, inputs: { type: 'string' }, outputs: { type: 'string' } });
      if (p.values['help'] === true) return help(out, sub);
      const parseJson = (name: string): Json => {
        try {
          return JSON.parse(required(p, name)) as Json;
        } catch (e) {
          if (e instanceof UsageError) throw e;
          throw new UsageError(`--${name} must be JSON`);
        }
      };
      const operator = required(p, 'operator');
      const inputs = parseJson('inputs');
      const outputs = parseJson('outputs');
      const log = await openLog(required(p, 'data-dir'), true);
      try {
        out(`${JSON.stringify(await log.append({ operator_id: operator, inputs, outputs }))}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown receipts command '${sub}'\n\n${RECEIPTS_HELP}`);
  }
}

/** Where the API-reading commands find the relay: as `cluster status` does. */
const API_OPTIONS = { api: { type: 'string' }, ca: { type: 'string' }, token: { type: 'string' }, devnet: { type: 'string' } } as const;

function apiTarget(p: Parsed): Promise<ApiTarget> {
  return resolveTarget({ api: str(p, 'api'), ca: str(p, 'ca'), token: str(p, 'token'), devnet: str(p, 'devnet') });
}

function apiFailure(status: number, json: unknown, what: string): ApiCallError {
  const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof err?.code === 'string' ? err.code : `HTTP_${status}`;
  return new ApiCallError(code, `${what}: ${typeof err?.message === 'string' ? err.message : `HTTP ${status}`}`);
}

/**
 * Pages GET /api/v1/receipts from `from` up to the tree size seen on the first page (a log
 * that grows meanwhile cannot keep the export going), MAX_LIST_LIMIT receipts per request.
 */
async function exportFromApi(target: ApiTarget, from: number, out: Out): Promise<number> {
  let next = from;
  let end: number | undefined;
  do {
    const { status, json } = await callApi(target, 'GET', `/api/v1/receipts?from=${next}&limit=${MAX_LIST_LIMIT}`);
    if (status !== 200) throw apiFailure(status, json, 'GET /api/v1/receipts');
    const page = json as { receipts: Receipt[]; tree_size: number };
    end ??= page.tree_size;
    if (page.receipts.length === 0) break;
    for (const r of page.receipts) {
      if (r.index >= end) break;
      out(`${JSON.stringify(r)}\n`);
    }
    next += page.receipts.length;
  } while (next < end);
  return 0;
}

/** Which receipt `prove` is about: --id or --index, exactly one. */
type ReceiptChoice = { id: string } | { index: number };

function receiptChoice(p: Parsed): ReceiptChoice {
  const id = str(p, 'id');
  const hasIndex = str(p, 'index') !== undefined;
  if ((id === undefined) === !hasIndex) throw new UsageError('prove takes exactly one of --id RECEIPT_ID and --index N');
  return id !== undefined ? { id } : { index: int(p, 'index', 0, 0, Number.MAX_SAFE_INTEGER) };
}

function describeChoice(which: ReceiptChoice): string {
  return 'id' in which ? which.id : `at index ${which.index}`;
}

async function proveFromApi(target: ApiTarget, which: ReceiptChoice, out: Out): Promise<number> {
  let id: string;
  if ('id' in which) id = which.id;
  else {
    const { status, json } = await callApi(target, 'GET', `/api/v1/receipts?from=${which.index}&limit=1`);
    if (status !== 200) throw apiFailure(status, json, 'GET /api/v1/receipts');
    const found = (json as { receipts: Receipt[] }).receipts[0];
    if (found === undefined || found.index !== which.index) {
      process.stderr.write(`hypersync: RECEIPT_NOT_FOUND: no receipt ${describeChoice(which)}\n`);
      return 1;
    }
    id = found.receipt_id;
  }
  const { status, json } = await callApi(target, 'GET', `/api/v1/receipts/${encodeURIComponent(id)}`);
  if (status === 404) {
    process.stderr.write(`hypersync: RECEIPT_NOT_FOUND: no receipt ${id}\n`);
    return 1;
  }
  if (status !== 200) throw apiFailure(status, json, `GET /api/v1/receipts/${id}`);
  out(`${JSON.stringify(json, null, 2)}\n`);
  return 0;
}

function help(out: Out, command: string): number {
  out(COMMAND_HELP[command] ?? RECEIPTS_HELP);
  return 0;
}
