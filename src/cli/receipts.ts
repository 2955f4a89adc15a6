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

/** Longest line accepted in a receipts / evidence file. */
export const MAX_LINE_CHARS = 1024 * 1024;

type Out = (s: string) => void;

async function openLog(dataDir: string): Promise<ReceiptLog> {
  if (!existsSync(dataDir)) throw new UsageError(`data dir ${dataDir} does not exist`);
  const key = await loadOrCreateKey(dataDir);
  const store = await LevelStore.open(join(dataDir, 'store'));
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
      if (p.values['help'] === true) return help(out);
      const from = int(p, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const log = await openLog(required(p, 'data-dir'));
      try {
        for await (const r of log.iterate(from)) out(`${JSON.stringify(r)}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    case 'verify': {
      const p = parse(rest, { inputs: { type: 'string' }, outputs: { type: 'string' }, 'max-skew': { type: 'string' } }, true);
      if (p.values['help'] === true) return help(out);
      const file = p.positionals[0];
      if (file === undefined || p.positionals.length > 1) throw new UsageError('verify takes exactly one FILE');
      const skew = str(p, 'max-skew');
      return verifyFile(file, str(p, 'inputs'), str(p, 'outputs'), skew === undefined ? DEFAULT_MAX_FUTURE_SKEW_MS : duration(skew), out);
    }
    case 'prove': {
      const p = parse(rest, { 'data-dir': { type: 'string' }, id: { type: 'string' } });
      if (p.values['help'] === true) return help(out);
      const id = required(p, 'id');
      const log = await openLog(required(p, 'data-dir'));
      try {
        const receipt = await log.getById(id);
        if (receipt === undefined) {
          process.stderr.write(`hypersync: RECEIPT_NOT_FOUND: no receipt ${id}\n`);
          return 1;
        }
        const proof = await log.inclusionProof(id);
        out(`${JSON.stringify({ receipt, proof, tree_head: log.signedTreeHead() }, null, 2)}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    case 'verify-proof': {
      const p = parse(rest, {}, true);
      if (p.values['help'] === true) return help(out);
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
      if (p.values['help'] === true) return help(out);
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
      const log = await openLog(required(p, 'data-dir'));
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

function help(out: Out): number {
  out(RECEIPTS_HELP);
  return 0;
}
