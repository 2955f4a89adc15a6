// HTTP/2 as a hand-written client sends it: any headers, any body (or none yet: 'hold' keeps
// the request open, as a client that sent its headers and holds its body back), and the
// reply as the wire carried it (whether the first HEADERS frame ended the stream, trailers).
// Also the gRPC length-prefixed message framing, to send messages Connect would never build.
import type { ClientHttp2Session, IncomingHttpHeaders, IncomingHttpStatusHeader, OutgoingHttpHeaders } from 'node:http2';
import { constants } from 'node:http2';

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  trailers: IncomingHttpHeaders | null;
  body: Buffer;
  /** The response's first HEADERS frame carried END_STREAM (gRPC's trailers-only form). */
  headersEndedStream: boolean;
  /** How many request body bytes had been written when the response headers arrived. */
  bodyBytesSentBeforeResponse: number;
}

/** Longest reply body a test reads (a larger one is cut off and the stream reset). */
export const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export interface H2Open {
  /** Settles when the server has answered (its side of the stream ended). */
  reply: Promise<H2Reply>;
  /** True once the response headers arrived. */
  readonly answered: boolean;
  /** Sends the (held) body and ends the request. */
  send(body: Buffer): void;
}

/** Opens a request: headers only, the body held until `send`. */
export function h2Open(session: ClientHttp2Session, headers: OutgoingHttpHeaders): H2Open {
  const req = session.request({ ':method': 'POST', ...headers }, { endStream: false });
  let sent = 0;
  let head: Omit<H2Reply, 'body'> | null = null;
  const chunks: Buffer[] = [];
  let size = 0;
  const reply = new Promise<H2Reply>((resolve, reject) => {
    req.on('response', (h, flags) => {
      head = { status: Number(h[':status']), headers: h, trailers: null, headersEndedStream: (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, bodyBytesSentBeforeResponse: sent };
    });
    req.on('trailers', (t) => {
      if (head !== null) head.trailers = t;
    });
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY_BYTES) req.close(constants.NGHTTP2_CANCEL);
      else chunks.push(c);
    });
    req.on('end', () => {
      if (head === null) return reject(new Error('the stream ended without response headers'));
      resolve({ ...head, body: Buffer.concat(chunks) });
      // A held request is still open on our side: cancel it now that the server has answered.
      if (!req.closed) req.close(constants.NGHTTP2_CANCEL);
    });
    req.on('error', reject);
  });
  return {
    reply,
    get answered() {
      return head !== null;
    },
    send(body) {
      sent += body.length;
      req.end(body);
    },
  };
}

/** One request; `'hold'` sends the headers only and never a body. */
export function h2Call(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Buffer | 'hold'): Promise<H2Reply> {
  const open = h2Open(session, headers);
  if (body !== 'hold') open.send(body);
  return open.reply;
}

/** One gRPC / gRPC-Web length-prefixed message: flags (bit 0: compressed), u32 length, bytes. */
export function grpcFrame(message: Uint8Array, flags = 0, declaredLength = message.length): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(declaredLength >>> 0, 1);
  out.set(message, 5);
  return out;
}

/** The gRPC-Web trailer frame (flag 0x80) in a response body, as lower-cased header fields. */
export function grpcWebTrailers(body: Buffer): Record<string, string> | null {
  let at = 0;
  while (at + 5 <= body.length) {
    const length = body.readUInt32BE(at + 1);
    if ((body[at]! & 0x80) !== 0) {
      const text = body.subarray(at + 5, at + 5 + length).toString('latin1');
      const fields = text.split('\r\n').filter((l) => l.includes(':'));
      return Object.fromEntries(fields.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    }
    at += 5 + length;
  }
  return null;
}

/** Where a reply carries its gRPC status: trailers-only headers, HTTP/2 trailers, or gRPC-Web's trailer frame. */
export function grpcStatusFields(r: H2Reply): Record<string, unknown> | null {
  for (const fields of [r.headers, r.trailers, grpcWebTrailers(r.body)] as Array<Record<string, unknown> | null>) {
    if (fields !== null && fields['grpc-status'] !== undefined) return fields;
  }
  return null;
}
