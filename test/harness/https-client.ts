// A plain HTTP(S) client for tests, on node:https/node:http (fetch cannot take a custom CA):
// trusts a given CA, optionally presents a client certificate, and returns status, headers
// and body. One connection per request (agent: false), so tests see exactly what they send.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ClientOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  timeoutMs?: number;
}

export interface ClientResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json<T = unknown>(): T;
}

export function call(url: string, opts: ClientOptions = {}): Promise<ClientResponse> {
  const u = new URL(url);
  const requestFn = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = requestFn(
      u,
      {
        method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
        headers,
        agent: false,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
        ...(opts.key !== undefined ? { key: opts.key } : {}),
        timeout: opts.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
