// One remote peer's ICO channel: the long-lived duplex stream we write on, the readers of
// every ICO stream with that peer, and a coalescing writer. Everything queued for the peer
// leaves in one stream write (as few frames as the limits allow: consecutive binary-eligible
// messages share one signed binary frame), flushed once the current burst of work is done
// (the host's schedule: the event loop's check phase on Node, a microtask in browsers) and
// again each time the previous write drained; no timer on this path.
//
// Stream rules (PROTOCOL.md "streams"): both sides read and write one `/hypersync/ico/1.1.0`
// stream per connection, the one the connection's dialer opened; the listener waits for it
// (up to STREAM_WAIT_MS, then opens its own). We write on the stream of the best connection
// and move when a better connection gets its stream (relayed → WebRTC/TCP); frames still in
// flight on the old stream are read to its end. A legacy peer (`/hypersync/ico/1.0.0`) reads
// only streams it accepted, so to it we write on a stream we opened.
import type { Connection, Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import type { EnvelopeSealer } from '../ico/envelope.ts';
import {
  BINARY_FRAME_OVERHEAD, binaryMessageBytes, bytesPayload, encodeJsonPayload, MAX_MESSAGES_PER_FRAME, PAYLOAD_BYTES, PAYLOAD_JSON, renderBinaryMessages,
  sealBinaryFrame, type BinaryMessage, type WireEncoding,
} from '../ico/frame.ts';
import type { Envelope, IcoType, JsonObject } from '../ico/types.ts';
import { FrameReader, lengthPrefix } from './frame-reader.ts';
import { ICO_PROTOCOL_LEGACY } from './protocol.ts';

export class NotConnectedError extends Error {
  readonly code = 'NET_NOT_CONNECTED';
  override name = 'NotConnectedError';
}
export class SendQueueFullError extends Error {
  readonly code = 'NET_SEND_QUEUE_FULL';
  override name = 'SendQueueFullError';
}
export class MessageTooLargeError extends Error {
  readonly code = 'NET_MESSAGE_TOO_LARGE';
  override name = 'MessageTooLargeError';
}

/** Messages one peer may have waiting for its stream; past this, send() fails fast. */
export const MAX_PENDING_SENDS = 256;
/** Bytes (encoded) one peer may have waiting; past this, send() fails fast. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** How long the listener side of a connection waits for the dialer's ICO stream before opening one itself. */
export const STREAM_WAIT_MS = 2_000;
/** Opening the ICO stream on a connection must complete within this time. */
export const STREAM_OPEN_TIMEOUT_MS = 5_000;

/** Counters of one peer process's ICO wire (all channels), for benches and metrics. */
export interface WireStats {
  /** Length-prefixed frames written / read on direct streams (JSON or binary). */
  framesOut: number;
  framesIn: number;
  binaryFramesOut: number;
  binaryFramesIn: number;
  /** Messages (envelopes) in those frames. */
  envelopesOut: number;
  envelopesIn: number;
  bytesOut: number;
  bytesIn: number;
  /** stream.send calls (each carries every frame of one flush). */
  streamWrites: number;
  /** ed25519 signatures made for direct-stream frames, and frames whose signature verified. */
  signatures: number;
  verifications: number;
  /** Frames dropped by the codec (every rejection, by code, is also an `ico:dropped` event). */
  dropped: number;
}

export function emptyWireStats(): WireStats {
  return { framesOut: 0, framesIn: 0, binaryFramesOut: 0, binaryFramesIn: 0, envelopesOut: 0, envelopesIn: 0, bytesOut: 0, bytesIn: 0, streamWrites: 0, signatures: 0, verifications: 0, dropped: 0 };
}

/** What the channel needs from its peer. */
export interface ChannelHost {
  readonly sealer: EnvelopeSealer;
  readonly stats: WireStats;
  readonly maxFrameBytes: number;
  /** The connection we should write on (deterministic: both sides pick the same one). */
  bestConnection(): Connection | undefined;
  /** > 0 when connection a is the better one to write on (the order bestConnection uses). */
  compare(a: Connection, b: Connection): number;
  openStream(connection: Connection): Promise<Stream>;
  /** One complete frame read from this peer on `connection`. */
  onFrame(frame: Uint8Array, connection: Connection): void;
  /** A frame announced over the limit (null: an over-long length prefix); the stream is aborted. */
  onOversize(announced: number | null, connection: Connection): void;
  /** A message left (its JSON form, for `ico:out`). */
  onSent(envelope: Envelope, encoding: WireEncoding): void;
  debug(fields: Record<string, unknown>, message: string): void;
  /** Runs the flush once the current burst of work is done (a microtask, or the event loop's check phase). */
  schedule(flush: () => void): void;
}

interface Pending {
  /** A sealed JSON frame, or a message for a binary frame. */
  json?: { bytes: Uint8Array; envelope: Envelope };
  binary?: BinaryMessage & { payload: JsonObject | Uint8Array };
  size: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** One write's bytes, and the messages in it (JSON form) for `ico:out`. */
interface Encoded {
  parts: Uint8ArrayList;
  sent: Array<[Envelope, WireEncoding]>;
}

interface Attached {
  stream: Stream;
  connection: Connection;
  /** Opened by the connection's dialer: the stream both sides settle on. */
  canonical: boolean;
  /** We may write on it (not a stream a legacy peer opened to write to us). */
  writable: boolean;
  openedAt: number;
}

export class IcoChannel {
  readonly peerId: string;
  readonly #host: ChannelHost;
  readonly #queue: Pending[] = [];
  readonly #streams = new Set<Attached>();
  #queuedBytes = 0;
  #writer: Attached | undefined;
  #scheduled = false;
  #flushing = false;
  #closed: Error | undefined;
  /** The remote spoke the legacy protocol: write only on streams we opened. */
  #legacy = false;
  #opening: Promise<void> | undefined;
  #streamArrived: (() => void) | undefined;

  constructor(peerId: string, host: ChannelHost) {
    this.peerId = peerId;
    this.#host = host;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get legacy(): boolean {
    return this.#legacy;
  }

  /** The stream we write on now, if any (tests and `connections()` diagnostics). */
  get writerStream(): Stream | undefined {
    return this.#writer?.stream;
  }

  // ---- sending ------------------------------------------------------------------------------

  /**
   * Queues one message and resolves once the stream accepted the bytes carrying it. JSON
   * messages are sealed now (one JCS signature each); binary ones are serialized now and
   * signed with the frame they end up in. Fails fast with a typed error when the queue is
   * full, the message can never fit a frame, or the channel is closed.
   */
  send(type: IcoType, payload: JsonObject | Uint8Array, binary: boolean): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    if (this.#queue.length >= MAX_PENDING_SENDS) return Promise.reject(new SendQueueFullError(`${this.#queue.length} messages already waiting to be written to ${this.peerId}`));
    let item: Omit<Pending, 'resolve' | 'reject'>;
    try {
      item = binary ? this.#binaryItem(type, payload) : this.#jsonItem(type, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#queuedBytes + item.size > MAX_PENDING_BYTES && this.#queue.length > 0) {
      return Promise.reject(new SendQueueFullError(`${this.#queuedBytes} bytes already waiting to be written to ${this.peerId}`));
    }
    if (item.json !== undefined) this.#host.stats.signatures++;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ...item, resolve, reject });
      this.#queuedBytes += item.size;
      this.#schedule();
    });
  }

  #jsonItem(type: IcoType, payload: JsonObject | Uint8Array): Omit<Pending, 'resolve' | 'reject'> {
    const { envelope, bytes } = this.#host.sealer.seal(type, payload instanceof Uint8Array ? bytesPayload(payload) : payload, Date.now());
    if (bytes.length > this.#host.maxFrameBytes) throw new MessageTooLargeError(`a ${bytes.length}-byte envelope exceeds the ${this.#host.maxFrameBytes}-byte frame limit`);
    return { json: { bytes, envelope }, size: bytes.length };
  }

  #binaryItem(type: IcoType, payload: JsonObject | Uint8Array): Omit<Pending, 'resolve' | 'reject'> {
    const raw = payload instanceof Uint8Array;
    const body = raw ? payload : encodeJsonPayload(payload);
    const size = binaryMessageBytes(body.length);
    if (size + BINARY_FRAME_OVERHEAD > this.#host.maxFrameBytes) throw new MessageTooLargeError(`a ${body.length}-byte payload does not fit the ${this.#host.maxFrameBytes}-byte frame limit`);
    return { binary: { type, encoding: raw ? PAYLOAD_BYTES : PAYLOAD_JSON, body, payload }, size };
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    this.#host.schedule(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#queue.length > 0 && this.#closed === undefined) {
        let stream: Stream;
        try {
          stream = await this.#writableStream();
        } catch (e) {
          this.#failAll(e);
          return;
        }
        const batch = this.#queue.splice(0, this.#queue.length);
        this.#queuedBytes = 0;
        let encoded: Encoded;
        try {
          encoded = this.#encode(batch);
        } catch (e) {
          // Sizes were checked at send(): only a broken invariant lands here. Fail this batch, go on.
          this.#host.debug({ remote: this.peerId, err: (e as Error).message }, 'ICO frame encoding failed');
          for (const p of batch) p.reject(e);
          continue;
        }
        const { parts, sent } = encoded;
        const ok = this.#write(stream, parts) ?? (await this.#retryWrite(parts));
        if (ok === undefined) {
          for (const p of batch) p.reject(new NotConnectedError(`the ICO stream to ${this.peerId} closed`));
          continue;
        }
        for (const [envelope, encoding] of sent) this.#host.onSent(envelope, encoding);
        for (const p of batch) p.resolve();
        if (!ok) {
          try {
            await stream.onDrain();
          } catch {
            // The stream closed while full: the next round picks another one.
          }
        }
      }
    } finally {
      this.#flushing = false;
      if (this.#queue.length > 0 && this.#closed === undefined) this.#schedule();
    }
  }

  /** Frames for one write: JSON frames as sealed, runs of binary messages as binary frames. */
  #encode(batch: Pending[]): Encoded {
    const parts = new Uint8ArrayList();
    const sent: Array<[Envelope, WireEncoding]> = [];
    const stats = this.#host.stats;
    const add = (frame: Uint8Array): void => {
      parts.append(lengthPrefix(frame.length), frame);
      stats.framesOut++;
      stats.bytesOut += frame.length;
    };
    let run: Array<NonNullable<Pending['binary']>> = [];
    let runBytes = BINARY_FRAME_OVERHEAD;
    const closeRun = (): void => {
      if (run.length === 0) return;
      const sealed = sealBinaryFrame(this.#host.sealer, run, Date.now());
      add(sealed.frame);
      stats.binaryFramesOut++;
      stats.signatures++;
      stats.envelopesOut += run.length;
      const render = renderBinaryMessages(this.#host.sealer, sealed);
      for (let i = 0; i < run.length; i++) {
        const m = run[i]!;
        sent.push([render(i, m.type, m.payload instanceof Uint8Array ? bytesPayload(m.payload) : m.payload), 'binary']);
      }
      run = [];
      runBytes = BINARY_FRAME_OVERHEAD;
    };
    for (const p of batch) {
      if (p.binary !== undefined) {
        if (run.length >= MAX_MESSAGES_PER_FRAME || runBytes + p.size > this.#host.maxFrameBytes) closeRun();
        run.push(p.binary);
        runBytes += p.size;
        continue;
      }
      closeRun();
      add(p.json!.bytes);
      stats.envelopesOut++;
      sent.push([p.json!.envelope, 'json']);
    }
    closeRun();
    return { parts, sent };
  }

  /** stream.send: true/false (needs a drain first), or undefined when the stream is gone. */
  #write(stream: Stream, parts: Uint8ArrayList): boolean | undefined {
    try {
      const ok = stream.send(parts);
      this.#host.stats.streamWrites++;
      return ok;
    } catch (e) {
      this.#host.debug({ remote: this.peerId, err: (e as Error).message }, 'ICO stream write failed');
      this.#drop(stream);
      return undefined;
    }
  }

  /** One more try on another stream (the frames are already sealed and stay valid). */
  async #retryWrite(parts: Uint8ArrayList): Promise<boolean | undefined> {
    try {
      return this.#write(await this.#writableStream(), parts);
    } catch {
      return undefined;
    }
  }

  #failAll(e: unknown): void {
    const batch = this.#queue.splice(0, this.#queue.length);
    this.#queuedBytes = 0;
    for (const p of batch) p.reject(e);
  }

  // ---- streams ------------------------------------------------------------------------------

  /** Every ICO stream with this peer (accepted or opened) comes here: read it, maybe write on it. */
  attach(stream: Stream, connection: Connection): void {
    const legacy = stream.protocol === ICO_PROTOCOL_LEGACY;
    if (legacy) this.#legacy = true;
    const inbound = stream.direction === 'inbound';
    const a: Attached = {
      stream,
      connection,
      canonical: stream.direction === connection.direction,
      // A legacy peer never reads the stream it opened; it reads the one we open.
      writable: !(legacy && inbound),
      openedAt: Date.now(),
    };
    this.#streams.add(a);
    const reader = new FrameReader(this.#host.maxFrameBytes, (frame) => this.#host.onFrame(frame, connection));
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      let outcome: ReturnType<FrameReader['push']>;
      try {
        outcome = reader.push(evt.data);
      } catch (e) {
        // Only a bug gets here; it must not unwind into the muxer, which would drop the connection.
        this.#host.debug({ remote: this.peerId, err: (e as Error).message, stack: (e as Error).stack }, 'ICO frame handler threw');
        return;
      }
      if (!outcome.ok) {
        this.#host.onOversize(outcome.announced, connection);
        stream.abort(new Error('ICO frame over the size limit'));
      }
    };
    const onClose = (): void => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      this.#drop(stream);
    };
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
    const arrived = this.#streamArrived;
    this.#streamArrived = undefined;
    arrived?.();
    if (this.#queue.length > 0) this.#schedule();
  }

  #drop(stream: Stream): void {
    for (const a of this.#streams) if (a.stream === stream) this.#streams.delete(a);
    if (this.#writer?.stream === stream) this.#writer = undefined;
  }

  /** A connection came or went: move the writer if a better stream exists, or open one. */
  connectionChanged(): void {
    if (this.#closed !== undefined) return;
    const best = this.#host.bestConnection();
    if (best === undefined) return;
    if (this.#candidates().some((a) => a.connection.id === best.id)) return;
    // The dialer of the best connection opens its stream; the other side gets it by attach()
    // (a legacy peer reads only what we open, so to it we always open).
    if (this.#legacy || best.direction === 'outbound') void this.#open(best).catch((e: unknown) => this.#host.debug({ remote: this.peerId, err: (e as Error).message }, 'could not open the ICO stream on a better connection'));
  }

  #candidates(): Attached[] {
    const out: Attached[] = [];
    for (const a of this.#streams) {
      if (!a.writable || a.stream.status !== 'open' || a.stream.writeStatus !== 'writable' || a.connection.status !== 'open') continue;
      if (this.#legacy && a.stream.direction === 'inbound') continue;
      out.push(a);
    }
    return out;
  }

  /** The best writable stream now: better connection, then the canonical stream, then the one in use, then the newest. */
  #pick(): Attached | undefined {
    let best: Attached | undefined;
    for (const a of this.#candidates()) {
      if (best === undefined || this.#better(a, best)) best = a;
    }
    return best;
  }

  #better(a: Attached, b: Attached): boolean {
    if (a.connection !== b.connection) return this.#host.compare(a.connection, b.connection) > 0;
    if (a.canonical !== b.canonical) return a.canonical;
    if ((a === this.#writer) !== (b === this.#writer)) return a === this.#writer;
    return a.openedAt > b.openedAt;
  }

  /**
   * The stream to write on now. With none writable: the dialer of the best connection (or
   * anyone talking to a legacy peer) opens one; the listener first waits for the dialer's.
   * A writable stream on a worse connection is used until the better one has its stream.
   */
  async #writableStream(): Promise<Stream> {
    const best = this.#host.bestConnection();
    if (best === undefined) throw new NotConnectedError(`no open connection to ${this.peerId}`);
    let chosen = this.#pick();
    if (chosen === undefined) {
      if (!this.#legacy && best.direction !== 'outbound') await this.#waitForStream();
      if (this.#closed !== undefined) throw this.#closed;
      if (this.#pick() === undefined) {
        try {
          await this.#open(best);
        } catch (e) {
          throw new NotConnectedError(`cannot open an ICO stream to ${this.peerId}: ${(e as Error).message}`);
        }
      }
      chosen = this.#pick();
      if (chosen === undefined) throw new NotConnectedError(`no writable ICO stream to ${this.peerId}`);
    }
    this.#switchTo(chosen);
    return chosen.stream;
  }

  #switchTo(next: Attached): void {
    const previous = this.#writer;
    if (previous === next) return;
    this.#writer = next;
    if (previous === undefined) return;
    this.#host.debug({ remote: this.peerId, from: previous.connection.remoteAddr.toString(), to: next.connection.remoteAddr.toString() }, 'ICO writer moved to a better stream');
    // We are between writes: close our side of the old stream; the peer reads it to its end.
    void previous.stream.close().catch(() => undefined);
  }

  #waitForStream(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, STREAM_WAIT_MS);
      const previous = this.#streamArrived;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#streamArrived = () => {
        previous?.();
        done();
      };
    });
  }

  #open(connection: Connection): Promise<void> {
    if (this.#opening !== undefined) return this.#opening;
    this.#opening = (async () => {
      const stream = await this.#host.openStream(connection);
      this.attach(stream, connection);
    })().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  /** Fails everything queued and refuses further sends (the peer is gone or we stop). */
  close(reason: Error): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    this.#failAll(reason);
    const arrived = this.#streamArrived;
    this.#streamArrived = undefined;
    arrived?.();
  }
}
