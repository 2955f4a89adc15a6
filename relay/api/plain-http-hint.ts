// The relay's API port speaks HTTPS only. Plain HTTP sent there used to meet the TLS layer and
// get an empty reply; now the first byte of each connection is read before TLS starts. A TLS
// connection opens with a handshake record (0x16) and goes on to TLS untouched (the byte is
// handed back); a request line (an HTTP method starts with A–Z) gets one readable HTTP/1.1 400
// naming the https:// URL, and the connection closes. Anything else goes to TLS, which refuses it.
import type { Server, Socket } from 'node:net';
import { errorBody } from './errors.ts';

/** First byte of a TLS record carrying a handshake (ClientHello). */
const TLS_HANDSHAKE = 0x16;
/** Bytes of the request line read to name the path in the hint. */
const MAX_REQUEST_LINE = 2048;
const SAFE_HOST = /^[A-Za-z0-9.:[\]-]{1,255}$/;
const SAFE_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,255}$/;

export interface PlainHttpHintOptions {
  /** A connection must send its first byte within this time, or it is closed. */
  firstByteTimeoutMs: number;
}

export interface PlainHttpHint {
  /** Closes connections still waiting for their first byte (the server is shutting down). */
  closePending(): void;
}

/** The https:// URL the client meant: its Host header (else our address) and its path. */
function httpsUrl(head: string, socket: Socket): string {
  const [requestLine = '', ...headers] = head.split('\r\n');
  const target = requestLine.split(' ')[1] ?? '/';
  const hostHeader = headers.find((h) => h.toLowerCase().startsWith('host:'))?.slice(5).trim();
  const host = hostHeader !== undefined && SAFE_HOST.test(hostHeader) ? hostHeader : `${socket.localAddress ?? '127.0.0.1'}:${socket.localPort ?? ''}`;
  return `https://${host}${SAFE_PATH.test(target) ? target : '/'}`;
}

function hintReply(url: string): string {
  const body = JSON.stringify(
    errorBody('HTTPS_REQUIRED', `this port speaks HTTPS only: use ${url} (with curl: --cacert <the server's CA>, for the devnet .devnet/ca.pem, or -k)`),
  );
  return `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * Puts the first-byte check in front of the TLS server's own connection handling. Call it
 * right after the server is created: the connection listeners present then (TLS) run only
 * once the first byte has been seen.
 */
export function answerPlainHttp(server: Server, options: PlainHttpHintOptions): PlainHttpHint {
  const tlsListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const pending = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    pending.add(socket);
    socket.setTimeout(options.firstByteTimeoutMs, () => {
      socket.destroy();
    });
    const onError = (): void => {
      socket.destroy();
    };
    socket.on('error', onError);
    socket.once('close', () => pending.delete(socket));
    socket.once('readable', () => {
      pending.delete(socket);
      socket.setTimeout(0);
      socket.off('error', onError);
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) {
        socket.destroy();
        return;
      }
      const first = chunk[0] ?? TLS_HANDSHAKE;
      if (first >= 0x41 && first <= 0x5a) {
        socket.end(hintReply(httpsUrl(chunk.subarray(0, MAX_REQUEST_LINE).toString('latin1'), socket)));
        return;
      }
      // Hand the bytes back: the TLS socket wrapping this one reads what is buffered first.
      socket.unshift(chunk);
      for (const listener of tlsListeners) listener.call(server, socket);
    });
  });
  return {
    closePending() {
      for (const socket of pending) socket.destroy();
      pending.clear();
    },
  };
}
