// The relay's HTTP side. Today: GET /healthz. This is the seam where the REST and gRPC API
// (Fastify + Connect, issue 6) mounts: `addRoute` registers a handler before or after
// listening, and the server answers JSON errors for everything it does not know.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpHandle {
  readonly url: string;
  readonly server: Server;
  addRoute(method: string, path: string, handler: RouteHandler): void;
  close(): Promise<void>;
}

/** Slow or stuck clients are cut off: headers must arrive within this time. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function errorBody(code: string, message: string): unknown {
  return { status: 'error', error: { code, message } };
}

export async function startHttp(opts: { host: string; port: number }): Promise<HttpHandle> {
  const routes = new Map<string, Map<string, RouteHandler>>();
  const server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const byMethod = routes.get(path);
    if (byMethod === undefined) {
      sendJson(res, 404, errorBody('NOT_FOUND', `no route ${path}`));
      return;
    }
    const handler = byMethod.get(req.method ?? 'GET');
    if (handler === undefined) {
      res.setHeader('allow', [...byMethod.keys()].join(', '));
      sendJson(res, 405, errorBody('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`));
      return;
    }
    Promise.resolve(handler(req, res)).catch(() => {
      if (!res.headersSent) sendJson(res, 500, errorBody('INTERNAL', 'internal error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host}:${port}`,
    server,
    addRoute(method, path, handler) {
      let byMethod = routes.get(path);
      if (byMethod === undefined) routes.set(path, (byMethod = new Map()));
      byMethod.set(method.toUpperCase(), handler);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
