// Load generator of the API bench, run as its own process so client CPU never shares the
// server's event loop. One JSON argument says what to drive; one JSON line of results comes
// back on stdout. REST: autocannon (HTTP/1.1 keep-alive, closed loop, one connection per
// client, a unique key per request). gRPC: Connect's gRPC transport over HTTP/2 TLS.
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { createRequire } from 'node:module';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { HyperSync } from '../relay/api/gen/hypersync/v1/hypersync_pb.ts';
import { percentile } from './table.ts';

export type LoadSpec =
  | { kind: 'rest'; target: 'hypersync' | 'etcd'; url: string; credentials: string[]; connections: number; warmupS: number; durationS: number }
  | { kind: 'grpc-unary'; url: string; ca: string; credentials: string[]; connections: number; warmupS: number; durationS: number }
  | { kind: 'grpc-stream'; url: string; ca: string; credentials: string[]; count: number };

export interface LoadResult {
  /** Successful (2xx / OK) requests per second, or results per second for a stream. */
  rate: number;
  p50: number;
  p99: number;
  ok: number;
  failed: number;
  seconds: number;
}

// autocannon ships no types; the slice of its API used here.
interface AcRequest { method: string; path: string; headers?: Record<string, string>; body?: string }
interface AcClientContext { auth?: string }
interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  timeout?: number;
  requests: Array<{ method: string; path: string; setupRequest: (req: AcRequest, ctx: AcClientContext) => AcRequest }>;
}
interface AcResult { '2xx': number; non2xx: number; errors: number; timeouts: number; duration: number; latency: { p50: number; p99: number } }
const autocannon = createRequire(import.meta.url)('autocannon') as (o: AcOptions) => Promise<AcResult>;

let seq = 0;
const tag = `${process.pid.toString(36)}-${Date.now().toString(36)}`;

async function rest(spec: Extract<LoadSpec, { kind: 'rest' }>, durationS: number): Promise<LoadResult> {
  let nextCredential = 0;
  const path = spec.target === 'etcd' ? '/v3/kv/put' : '/api/v1/operators/execute';
  const setupRequest = (req: AcRequest, ctx: AcClientContext): AcRequest => {
    // One credential per client (connection): the relay rate-limits per principal.
    ctx.auth ??= spec.credentials[nextCredential++ % Math.max(1, spec.credentials.length)];
    const key = `bench-${tag}-${seq++}`;
    const body =
      spec.target === 'etcd'
        ? JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from('{"n":1}').toString('base64') })
        : JSON.stringify({ operator_id: 'kv.put', inputs: { key, value: { n: 1 } } });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (ctx.auth !== undefined) headers['authorization'] = `Bearer ${ctx.auth}`;
    return { ...req, headers, body };
  };
  const r = await autocannon({ url: spec.url, connections: spec.connections, duration: durationS, timeout: 10, requests: [{ method: 'POST', path, setupRequest }] });
  return { rate: r['2xx'] / r.duration, p50: r.latency.p50, p99: r.latency.p99, ok: r['2xx'], failed: r.non2xx + r.errors + r.timeouts, seconds: r.duration };
}

function grpcClient(url: string, ca: string): Client<typeof HyperSync> {
  return createClient(HyperSync, createGrpcTransport({ baseUrl: url, nodeOptions: { ca: readFileSync(ca) } }));
}

async function grpcUnary(spec: Extract<LoadSpec, { kind: 'grpc-unary' }>, durationS: number, clients: Array<Client<typeof HyperSync>>): Promise<LoadResult> {
  const samples: number[] = [];
  let failed = 0;
  const start = performance.now();
  const end = start + durationS * 1000;
  await Promise.all(
    clients.map(async (client, i) => {
      const headers = { authorization: `Bearer ${spec.credentials[i % spec.credentials.length] ?? ''}` };
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await client.executeOperator({ operatorId: 'kv.put', inputs: { key: `bench-${tag}-${seq++}`, value: { n: 1 } } }, { headers, timeoutMs: 10_000 });
          samples.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { rate: samples.length / seconds, p50: percentile(samples, 50), p99: percentile(samples, 99), ok: samples.length, failed, seconds };
}

/** The receipt log's size, so a replay stops at what is stored instead of waiting for live results. */
function treeSize(url: string, ca: string, credential: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/api/v1/tree-head`, { ca: readFileSync(ca), headers: { authorization: `Bearer ${credential}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve((JSON.parse(text) as { size: number }).size));
    }).on('error', reject);
  });
}

async function grpcStream(spec: Extract<LoadSpec, { kind: 'grpc-stream' }>): Promise<LoadResult> {
  const client = grpcClient(spec.url, spec.ca);
  const headers = { authorization: `Bearer ${spec.credentials[0] ?? ''}` };
  const count = Math.min(spec.count, await treeSize(spec.url, spec.ca, spec.credentials[0] ?? ''));
  const abort = new AbortController();
  // Timed from the first result to the last, so connection setup is not counted.
  let start = 0;
  let ok = 0;
  for await (const _ of client.streamResults({ fromIndex: 0n }, { headers, signal: abort.signal })) {
    if (ok === 0) start = performance.now();
    if (++ok >= count) break;
  }
  abort.abort();
  const seconds = (performance.now() - start) / 1000;
  return { rate: (ok - 1) / seconds, p50: Number.NaN, p99: Number.NaN, ok, failed: 0, seconds };
}

async function main(spec: LoadSpec): Promise<LoadResult> {
  if (spec.kind === 'rest') {
    if (spec.warmupS > 0) await rest(spec, spec.warmupS);
    return rest(spec, spec.durationS);
  }
  if (spec.kind === 'grpc-unary') {
    // One transport (one HTTP/2 session) per client, like independent callers.
    const clients = Array.from({ length: spec.connections }, () => grpcClient(spec.url, spec.ca));
    if (spec.warmupS > 0) await grpcUnary(spec, spec.warmupS, clients);
    return grpcUnary(spec, spec.durationS, clients);
  }
  return grpcStream(spec);
}

const result = await main(JSON.parse(process.argv[2] ?? '{}') as LoadSpec);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
