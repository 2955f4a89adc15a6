// Every request message of an RPC checked against its proto type before Connect parses it.
// Connect 2.1 answers INTERNAL to a binary message it cannot parse (and to a message flagged
// compressed without an encoding): the client's fault reported as the server's. Here each
// message is framed (gRPC, gRPC-Web and Connect streaming share the 5-byte envelope; Connect
// unary is the bare body), inflated with the negotiated encoding and parsed; a failure is
// INVALID_ARGUMENT (RESOURCE_EXHAUSTED past the size limit), the bytes are otherwise passed to
// Connect unchanged. At most one message (≤ readMaxBytes + 5 bytes) is held at a time.
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Compression, UniversalServerRequest } from '@connectrpc/connect/protocol';
import { ERROR_CODE_TRAILER } from './errors.ts';
import { rpcProtocolOf } from './rpc-reject.ts';

const ENVELOPE_HEADER_BYTES = 5;
const FLAG_COMPRESSED = 0b01;
const FLAG_END_STREAM = 0b10;

export interface MessageCheckOptions {
  /** The RPC's request type. */
  input: DescMessage;
  /** Largest message, as read and after inflating. */
  readMaxBytes: number;
  /** The encodings the server accepts (the same list Connect gets). */
  compressions: readonly Compression[];
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument, { [ERROR_CODE_TRAILER]: 'INVALID_REQUEST' });
}

type Check = (flags: number, data: Uint8Array) => Promise<void>;

/** Content types Connect serves (charset parameters aside); anything else it refuses with 415 unread. */
const SERVED = /^application\/(grpc(-web)?(\+(proto|json))?|connect\+(proto|json)|proto|json)(;.*)?$/;

interface Plan {
  check: Check;
  /** Connect unary: the body is the message, compressed as a whole when an encoding is named. */
  unary: boolean;
  unaryFlags: number;
}

/** How to check this request's messages, or null to leave it all to Connect. */
function planFor(req: UniversalServerRequest, opts: MessageCheckOptions): Plan | null {
  const contentType = (req.header.get('content-type') ?? '').toLowerCase().trim();
  if (!SERVED.test(contentType)) return null;
  const protocol = rpcProtocolOf(contentType);
  const binary = !contentType.includes('json');
  const encodingHeader = protocol === 'connect-unary' ? 'content-encoding' : protocol === 'connect-stream' ? 'connect-content-encoding' : 'grpc-encoding';
  const encoding = req.header.get(encodingHeader);
  const compression = encoding === null || encoding === 'identity' ? null : opts.compressions.find((c) => c.name === encoding);
  // An encoding the server does not accept: Connect refuses it itself (UNIMPLEMENTED).
  if (compression === undefined) return null;
  const check: Check = async (flags, data) => {
    let bytes = data;
    if ((flags & FLAG_COMPRESSED) !== 0) {
      if (compression === null) throw invalid(`a message is flagged compressed, but ${encodingHeader} names no encoding`);
      bytes = await compression.decompress(data, opts.readMaxBytes);
    }
    // A Connect end-stream frame is no message: Connect refuses it in a request itself.
    if (!binary || (protocol === 'connect-stream' && (flags & FLAG_END_STREAM) !== 0)) return;
    try {
      fromBinary(opts.input, bytes);
    } catch (e) {
      throw invalid(`request message is not a valid ${opts.input.typeName}: ${e instanceof Error ? e.message.slice(0, 200) : 'unparseable'}`);
    }
  };
  return { check, unary: protocol === 'connect-unary', unaryFlags: compression === null ? 0 : FLAG_COMPRESSED };
}

/** Collects chunks until `n` bytes are held; takes them out as one array. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /** The first `n` bytes (n ≤ size), without removing them. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      if (at >= n) break;
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  take(n: number): Uint8Array {
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= left) {
        this.#chunks.shift();
        left -= c.length;
      } else {
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#size -= n;
    return out;
  }

  takeAll(): Uint8Array {
    return this.take(this.#size);
  }
}

async function* checkEnveloped(body: AsyncIterable<Uint8Array>, check: Check, readMaxBytes: number): AsyncGenerator<Uint8Array> {
  const queue = new ByteQueue();
  let unchecked = false;
  for await (const chunk of body) {
    if (unchecked) {
      yield chunk;
      continue;
    }
    queue.push(chunk);
    while (queue.size >= ENVELOPE_HEADER_BYTES) {
      const head = queue.peek(ENVELOPE_HEADER_BYTES);
      const length = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(1);
      if (length > readMaxBytes) {
        // Connect refuses it (RESOURCE_EXHAUSTED) as soon as it reads this header.
        unchecked = true;
        yield queue.takeAll();
        break;
      }
      if (queue.size < ENVELOPE_HEADER_BYTES + length) break;
      const envelope = queue.take(ENVELOPE_HEADER_BYTES + length);
      await check(head[0]!, envelope.subarray(ENVELOPE_HEADER_BYTES));
      yield envelope;
    }
  }
  // An incomplete envelope: Connect reports it (INVALID_ARGUMENT).
  if (queue.size > 0) yield queue.takeAll();
}

async function* checkUnary(body: AsyncIterable<Uint8Array>, plan: Plan, readMaxBytes: number): AsyncGenerator<Uint8Array> {
  const queue = new ByteQueue();
  for await (const chunk of body) {
    queue.push(chunk);
    // Connect refuses a body over the limit (RESOURCE_EXHAUSTED): hand it on unchecked.
    if (queue.size > readMaxBytes) {
      yield queue.takeAll();
      for await (const rest of body) yield rest;
      return;
    }
  }
  const whole = queue.takeAll();
  if (whole.length > 0) await plan.check(plan.unaryFlags, whole);
  yield whole;
}

/** The request with its body checked message by message on the way to Connect. */
export function withCheckedMessages(req: UniversalServerRequest, opts: MessageCheckOptions): UniversalServerRequest {
  const body = req.body;
  if (body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) return req;
  const plan = planFor(req, opts);
  if (plan === null) return req;
  const stream = body as AsyncIterable<Uint8Array>;
  return { ...req, body: plan.unary ? checkUnary(stream, plan, opts.readMaxBytes) : checkEnveloped(stream, plan.check, opts.readMaxBytes) };
}
