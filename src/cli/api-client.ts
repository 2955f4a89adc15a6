// A small client for the relay API used by CLI commands: http or https (with the cluster CA),
// bearer token, bounded time and body size. Endpoints default to the devnet's endpoints.json.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { UsageError } from './args.ts';

export const API_TIMEOUT_MS = 10_000;
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

export interface ApiTarget {
  url: string;
  ca?: string | Buffer;
  token?: string;
}

export class ApiCallError extends Error {
  readonly code: string;
  override name = 'ApiCallError';
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** --api/--ca/--token, else <devnet dir>/endpoints.json (rest, ca, token). */
export async function resolveTarget(opts: { api?: string | undefined; ca?: string | undefined; token?: string | undefined; devnet?: string | undefined }): Promise<ApiTarget> {
  let url = opts.api;
  let caPath = opts.ca;
  let token = opts.token;
  if (url === undefined) {
    const dir = opts.devnet ?? '.devnet';
    let text: string;
    try {
      text = await readFile(join(dir, 'endpoints.json'), 'utf8');
    } catch {
      throw new UsageError(`no --api given and ${join(dir, 'endpoints.json')} not found (is the devnet running? npm start)`);
    }
    const ep = JSON.parse(text) as { rest?: string; ca?: string | null; token?: string };
    if (typeof ep.rest !== 'string') throw new UsageError(`${join(dir, 'endpoints.json')} has no 'rest' endpoint`);
    url = ep.rest;
    caPath ??= ep.ca ?? undefined;
    token ??= ep.token;
  }
  const target: ApiTarget = { url: url.replace(/\/+$/, '') };
  if (caPath !== undefined) target.ca = await readFile(caPath);
  if (token !== undefined) target.token = token;
  return target;
}

export function callApi(t: ApiTarget, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const u = new URL(path, `${t.url}/`);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (t.token !== undefined) headers['authorization'] = `Bearer ${t.token}`;
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, { method, headers, timeout: API_TIMEOUT_MS, ...(t.ca !== undefined ? { ca: t.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_REPLY_BYTES) req.destroy(new ApiCallError('API_REPLY_TOO_LARGE', `reply over ${MAX_REPLY_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown });
        } catch {
          reject(new ApiCallError('API_BAD_REPLY', `${method} ${u.pathname}: HTTP ${res.statusCode}, not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new ApiCallError('API_TIMEOUT', `${method} ${u} took over ${API_TIMEOUT_MS} ms`)));
    req.on('error', (e) => reject(e instanceof ApiCallError ? e : new ApiCallError('API_UNREACHABLE', `cannot reach ${u.origin}: ${e.message}`)));
    req.end(payload);
  });
}
