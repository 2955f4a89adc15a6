// Length-prefixed frames out of a stream's 'message' events, decoded synchronously as bytes
// arrive (no async iterator, no promise per frame). Frame = unsigned LEB128 varint length +
// that many bytes. The length is judged before any body byte is buffered: a frame announced
// over the limit, or a prefix longer than any allowed length, ends the reader.
import { Uint8ArrayList } from 'uint8arraylist';
import { varint } from '../crypto/index.ts';

/** Longest length prefix read: 8 varint bytes (56 bits) is past every frame limit. */
export const MAX_LENGTH_PREFIX_BYTES = 8;

export type ReadOutcome = { ok: true } | { ok: false; announced: number | null };

export class FrameReader {
  readonly maxFrameBytes: number;
  readonly #buffer = new Uint8ArrayList();
  readonly #onFrame: (frame: Uint8Array) => void;
  /** Body length of the frame being read; -1 while its prefix is incomplete. */
  #need = -1;
  #failed = false;

  constructor(maxFrameBytes: number, onFrame: (frame: Uint8Array) => void) {
    this.maxFrameBytes = maxFrameBytes;
    this.#onFrame = onFrame;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#buffer.byteLength;
  }

  /**
   * Feeds received bytes; calls onFrame for each complete frame, in order. Returns a failure
   * (the announced length, or null for an over-long prefix) once a frame is over the limit;
   * nothing more is read after that.
   */
  push(chunk: Uint8Array | Uint8ArrayList): ReadOutcome {
    if (this.#failed) return { ok: false, announced: null };
    this.#buffer.append(chunk);
    for (;;) {
      if (this.#need < 0) {
        const prefix = this.#prefix();
        if (prefix === undefined) return { ok: true };
        if (prefix.length === null || prefix.length > this.maxFrameBytes) {
          this.#failed = true;
          this.#buffer.consume(this.#buffer.byteLength);
          return { ok: false, announced: prefix.length };
        }
        this.#buffer.consume(prefix.bytes);
        this.#need = prefix.length;
      }
      if (this.#buffer.byteLength < this.#need) return { ok: true };
      const frame = this.#buffer.subarray(0, this.#need);
      this.#buffer.consume(this.#need);
      this.#need = -1;
      this.#onFrame(frame);
    }
  }

  /** The varint at the buffer's start: undefined while incomplete, length null when over-long. */
  #prefix(): { length: number | null; bytes: number } | undefined {
    let length = 0;
    let scale = 1;
    const available = this.#buffer.byteLength;
    for (let i = 0; i < MAX_LENGTH_PREFIX_BYTES; i++) {
      if (i >= available) return undefined;
      const b = this.#buffer.get(i);
      length += (b & 0x7f) * scale;
      scale *= 0x80;
      if ((b & 0x80) === 0) return { length, bytes: i + 1 };
    }
    return { length: null, bytes: MAX_LENGTH_PREFIX_BYTES };
  }
}

/** The length prefix written before a frame of `length` bytes. */
export const lengthPrefix: (length: number) => Uint8Array = varint;
