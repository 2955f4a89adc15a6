// Refuses an RPC from its headers alone, before Connect reads a byte of its body, in the
// caller's own protocol (picked by content-type, as Connect picks it):
//   gRPC, gRPC-Web   HTTP 200, a trailers-only response: grpc-status and grpc-message in the
//                    one HEADERS frame, which also ends the stream (HTTP/2); headers only (HTTP/1)
//   Connect stream   HTTP 200 and one end-stream message: {"error": {code, message}, "metadata"}
//   Connect unary    the code's HTTP status and {"code", "message"} as JSON (also the answer
//                    for any other content type)
// Metadata (the HyperSync error code, retry-after) goes in headers everywhere.
import { Code } from '@connectrpc/connect';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Http2ServerRequest } from 'node:http2';

export type RpcProtocol = 'grpc' | 'grpc-web' | 'connect-stream' | 'connect-unary';

/** The protocol a request speaks, from its content-type (Connect's own rules). */
export function rpcProtocolOf(contentType: string | undefined): RpcProtocol {
  const ct = (contentType ?? '').trim().toLowerCase();
  if (/^application\/grpc-web(-text)?([+;]|$)/.test(ct)) return 'grpc-web';
  if (/^application\/grpc([+;]|$)/.test(ct)) return 'grpc';
  if (/^application\/connect\+/.test(ct)) return 'connect-stream';
  return 'connect-unary';
}

/**
 * Connect's HTTP status per code, for the codes an early refusal uses (else 400). One
 * departure: UNIMPLEMENTED is only ever an encoding this server does not accept, which HTTP
 * calls 415 (Connect says 501, a 5xx for the client's choice).
 */
const CONNECT_HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.InvalidArgument]: 400,
  [Code.Unimplemented]: 415,
};

/** `PermissionDenied` → `permission_denied`, Connect's wire name of a code. */
function connectCodeName(code: Code): string {
  return Code[code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? '' : '_') + c.toLowerCase());
}

/** Percent-encodes a grpc-message: the spec allows printable ASCII except '%'. */
function grpcMessage(message: string): string {
  return encodeURIComponent(message);
}

/**
 * Sends the refusal and returns the reply (sent or hijacked), so an onRequest hook returning
 * it ends the request there: no preParsing, no body, no handler.
 */
export function rejectRpc(req: FastifyRequest, reply: FastifyReply, code: Code, message: string, metadata: Readonly<Record<string, string>>): FastifyReply {
  const protocol = rpcProtocolOf(typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : undefined);
  const http1 = req.raw.httpVersionMajor === 1;
  // HTTP/1: close the connection rather than read (and discard) a body nobody will use.
  const connection: Record<string, string> = http1 ? { connection: 'close' } : {};
  switch (protocol) {
    case 'grpc':
    case 'grpc-web': {
      const contentType = protocol === 'grpc' ? 'application/grpc+proto' : 'application/grpc-web+proto';
      const headers = { ...metadata, 'content-type': contentType, 'grpc-status': String(code), 'grpc-message': grpcMessage(message) };
      const raw = req.raw;
      if (raw instanceof Http2ServerRequest && !raw.stream.destroyed) {
        // Through the compat response the status would come in a separate, empty end frame;
        // gRPC's trailers-only form is one HEADERS frame with END_STREAM.
        raw.stream.respond({ ':status': 200, ...headers }, { endStream: true });
        return reply.hijack();
      }
      return reply.code(200).headers({ ...headers, ...connection }).send();
    }
    case 'connect-stream': {
      const json = Buffer.from(JSON.stringify({ error: { code: connectCodeName(code), message }, metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, [v]])) }));
      const envelope = Buffer.alloc(5 + json.length);
      envelope[0] = 0b10; // end-stream flag
      envelope.writeUInt32BE(json.length, 1);
      json.copy(envelope, 5);
      const contentType = String(req.headers['content-type']).toLowerCase().startsWith('application/connect+json') ? 'application/connect+json' : 'application/connect+proto';
      return reply.code(200).headers({ ...metadata, ...connection, 'content-type': contentType }).send(envelope);
    }
    case 'connect-unary':
      return reply
        .code(CONNECT_HTTP_STATUS[code] ?? 400)
        .headers({ ...metadata, ...connection, 'content-type': 'application/json' })
        .send(JSON.stringify({ code: connectCodeName(code), message }));
  }
}
