// API edge bench: the CPU the request edge (issue 12) adds to each call, against costs every
// call already pays, measured in the same run in interleaved rounds (the machine is shared):
//   authenticate (bearer token, API key, mapped client certificate; rate buckets included)
//     against one ed25519 sign (the receipt signature of every execute)
//   reading and parsing a gRPC request body with the message check (frame, parse as
//     OperatorRequest, hand the bytes on) against the same read and parse without it
// Values are CPU microseconds per operation (process.cpuUsage), not wall time.
import { create, fromBinary, toBinary, type JsonObject } from '@bufbuild/protobuf';
import { createContextValues } from '@connectrpc/connect';
import type { UniversalServerRequest } from '@connectrpc/connect/protocol';
import { compressionGzip } from '@connectrpc/connect-node';
import { rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../src/crypto/index.ts';
import { KeyStoreAuthenticator } from '../relay/api/auth.ts';
import { OperatorRequestSchema } from '../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { withCheckedMessages } from '../relay/api/grpc-messages.ts';
import { addCertificateMapping, createApiKey } from '../relay/api/keys-file.ts';
import type { BenchRow } from './table.ts';

/** Interleaved rounds per comparison, and operations per measurement. */
const ROUNDS = 7;
const OPS = 20_000;
const TOKEN = 'bench-token-0123456789abcdef';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** CPU µs per call of `fn`, over `ops` calls. */
async function cpuMicros(fn: () => unknown, ops = OPS): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < ops; i++) await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / ops;
}

/** Alternates the two in rounds; medians of each cost and of the per-round cost ratio. */
async function compare(fn: () => unknown, base: () => unknown): Promise<{ value: number; baseline: number; ratio: number }> {
  await cpuMicros(fn, OPS / 10);
  await cpuMicros(base, OPS / 10);
  const values: number[] = [];
  const baselines: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const b = await cpuMicros(base);
    const v = await cpuMicros(fn);
    values.push(v);
    baselines.push(b);
    ratios.push(v / b);
  }
  return { value: median(values), baseline: median(baselines), ratio: median(ratios) };
}

function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hypersync-bench-edge-'));
  const keysFile = join(dir, 'keys.json');
  const { secret } = await createApiKey(keysFile, 'bench', ['execute', 'read']);
  await addCertificateMapping(keysFile, { name: 'svc', match: 'dns:svc.example', scopes: ['execute'] });
  // Budgets far above the run: every call is a success, as in steady state.
  const auth = await KeyStoreAuthenticator.open({ keysFile, tokens: [{ name: 'bench', token: TOKEN, scopes: ['execute', 'read'] }], ratePerSecond: 1e12, rateBurst: 1e12 });
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const receiptLike = crypto.randomBytes(300);
  const sign = (): unknown => signer.sign(receiptLike);
  const rows: BenchRow[] = [];
  try {
    const bySign = (name: string, r: { value: number; baseline: number; ratio: number }, note: string): BenchRow => ({
      suite: 'api-edge',
      name,
      value: r.value,
      unit: 'CPU µs/op',
      baseline: { name: 'ed25519 sign (µs)', value: r.baseline },
      ratio: r.ratio,
      note,
    });
    const source = '203.0.113.7';
    rows.push(bySign('authenticate: bearer token', await compare(() => auth.authenticate({ authorization: `Bearer ${TOKEN}`, source }), sign), 'sha256 + constant-time compare + two token buckets'));
    rows.push(bySign('authenticate: API key (X-API-Key)', await compare(() => auth.authenticate({ apiKey: secret, source }), sign), 'pattern, sha256, table lookup, buckets'));
    const certificate = { subjectCN: ['svc'], san: [{ kind: 'dns' as const, value: 'svc.example' }], serial: '4F2A9C' };
    rows.push(bySign('authenticate: mapped client certificate', await compare(() => auth.authenticate({ certificate, source }), sign), 'revocation set + first matching mapping'));

    // ExecuteOperator messages: a small kv.put, and one with ~1 KiB of inputs. Both sides read
    // the body from the same kind of stream and parse it as Connect does; one also checks it.
    const items = Array.from({ length: 10 }, (_, i) => ({ key: `user/${i}/profile`, value: 'x'.repeat(40), n: i * 1.5, ok: i % 2 === 0 }));
    const inputsList: JsonObject[] = [{ key: 'a', value: 1 }, { items }];
    const header = new Headers({ 'content-type': 'application/grpc+proto' });
    const signal = new AbortController().signal;
    const contextValues = createContextValues();
    for (const inputs of inputsList) {
      const message = toBinary(OperatorRequestSchema, create(OperatorRequestSchema, { operatorId: 'kv.put', inputs }));
      const body = frame(message);
      const request = (): UniversalServerRequest => ({
        httpVersion: '2.0',
        url: '/hypersync.v1.HyperSync/ExecuteOperator',
        method: 'POST',
        header,
        body: (async function* () {
          yield body;
        })(),
        signal,
        contextValues,
      });
      const readAndParse = async (req: UniversalServerRequest): Promise<void> => {
        for await (const _ of req.body as AsyncIterable<Uint8Array>);
        fromBinary(OperatorRequestSchema, message);
      };
      const checked = (): Promise<void> => readAndParse(withCheckedMessages(request(), { input: OperatorRequestSchema, readMaxBytes: 1024 * 1024, compressions: [compressionGzip] }));
      const r = await compare(checked, () => readAndParse(request()));
      rows.push({
        suite: 'api-edge',
        name: `gRPC body read + parse, with the message check: kv.put (${message.length} B)`,
        value: r.value,
        unit: 'CPU µs/op',
        baseline: { name: 'without the check (µs)', value: r.baseline },
        ratio: r.ratio,
        note: "the check frames, parses and hands the bytes on; the call also pays Connect's handler, a receipt sign and the response",
      });
    }
  } finally {
    auth.close();
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
