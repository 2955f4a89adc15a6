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
import { ChainVerifier, DEFAULT_MAX_FUTURE_SKEW_MS, type Evidence } from '../receipts/receipt.ts';
import { LevelStore } from '../store/level.ts';
import { duration, int, parse, required, str, UsageError } from './args.ts';

export const RECEIPTS_HELP = `usage: hypersync receipts <command> [options]

commands:
  export --data-dir DIR [--from N]          print the node's receipts from index N as JSON Lines
  verify FILE [--inputs F] [--outputs F] [--max-skew 30s]
                                            verify a JSON Lines receipts file: signature, chain link,
                                            inputs/outputs hashes (F: JSON Lines, line i = receipt i's
                                            inputs or outputs), timestamps. Exit 0, or 1 with the index,
                                            step and reason of the first failure
  prove --data-dir DIR --id RECEIPT_ID      print {receipt, proof, tree_head}: an RFC 9162 inclusion
                                            proof against a freshly signed tree head
  verify-proof FILE                         check such a proof bundle offline (exit 0 or 1)
  append --data-dir DIR --operator ID --inputs JSON --outputs JSON
                                            append a receipt by hand (demos and tests)
`;

/** `hypersync receipts <command> --help`: that command's lines of the overview. */
const COMMAND_HELP: Record<string, string> = {
  export: `usage: hypersync receipts export --data-dir DIR [--from N]

Prints the node's receipts from index N (default 0) as JSON Lines, one receipt per line, in
index order. Reads <DIR>/store (LevelDB); creates nothing.
`,
  verify: `usage: hypersync receipts verify FILE [--inputs F] [--outputs F] [--max-skew 30s]

Verifies a JSON Lines receipts file in one streaming pass (constant memory), by the seed's
five steps: 1 signature (and receipt_id), 2 prev_receipt_hash link, 3 inputs_hash and
4 outputs_hash (only with --inputs / --outputs: JSON Lines, line i holds the inputs or
outputs of the receipt on line i), 5 timestamp (not before the previous receipt, at most
--max-skew in the future). Exit 0, or 1 printing the index, step and reason of the first
failure. A truncated or garbage line is an error naming the file and line.
`,
  prove: `usage: hypersync receipts prove --data-dir DIR --id RECEIPT_ID

Prints {receipt, proof, tree_head} as JSON: an RFC 9162 inclusion proof of the receipt
against a tree head over the whole log, freshly signed with the node's key (<DIR>/peer.key).
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
  const store = await LevelStore.open(join(dataDir, 'store'), { createIfMissing: create });
  return ReceiptLog.open(store, { signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), peerId: peerIdFromPrivateKey(key).toString() });
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

async function verifyFile(file: string, inputsFile: string | undefined, outputsFile: string | undefined, maxSkewMs: number, out: Out): Promise<number> {
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
    position++;
  }
  out(`ok: ${verifier.count} receipts verified\n`);
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
      const p = parse(rest, { 'data-dir': { type: 'string' }, from: { type: 'string' } });
      if (p.values['help'] === true) return help(out, sub);
      const from = int(p, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const log = await openLog(required(p, 'data-dir'), false);
      if (log === null) return 0;
      try {
        for await (const r of log.iterate(from)) out(`${JSON.stringify(r)}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    case 'verify': {
      const p = parse(rest, { inputs: { type: 'string' }, outputs: { type: 'string' }, 'max-skew': { type: 'string' } }, true);
      if (p.values['help'] === true) return help(out, sub);
      const file = p.positionals[0];
      if (file === undefined || p.positionals.length > 1) throw new UsageError('verify takes exactly one FILE');
      const skew = str(p, 'max-skew');
      return verifyFile(file, str(p, 'inputs'), str(p, 'outputs'), skew === undefined ? DEFAULT_MAX_FUTURE_SKEW_MS : duration(skew), out);
    }
    case 'prove': {
      const p = parse(rest, { 'data-dir': { type: 'string' }, id: { type: 'string' } });
      if (p.values['help'] === true) return help(out, sub);
      const id = required(p, 'id');
      const log = await openLog(required(p, 'data-dir'), false);
      try {
        const receipt = await log?.getById(id);
        if (log === null || receipt === undefined) {
          process.stderr.write(`hypersync: RECEIPT_NOT_FOUND: no receipt ${id}\n`);
          return 1;
        }
        const proof = await log.inclusionProof(id);
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

function help(out: Out, command: string): number {
  out(COMMAND_HELP[command] ?? RECEIPTS_HELP);
  return 0;
}
