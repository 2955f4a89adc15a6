// Unsigned LEB128 varints and a bounds-checked reader for the binary parts of sync messages.
// The reader throws MalformedSyncMessageError on truncated or oversized input, never reads
// past the buffer, and rejects integers above 2^53.
import { MalformedSyncMessageError } from './errors.ts';

export class ByteWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  varint(n: number): void {
    this.#room(8);
    let v = n;
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#buf[this.#len++] = v;
  }

  byte(b: number): void {
    this.#room(1);
    this.#buf[this.#len++] = b;
  }

  u32(w: number): void {
    this.#room(4);
    this.#buf[this.#len++] = w >>> 24;
    this.#buf[this.#len++] = (w >>> 16) & 0xff;
    this.#buf[this.#len++] = (w >>> 8) & 0xff;
    this.#buf[this.#len++] = w & 0xff;
  }

  /** Raw bytes, no length prefix. */
  raw(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** A varint length, then the bytes. */
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.raw(b);
  }

  get length(): number {
    return this.#len;
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

export class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  varint(max = Number.MAX_SAFE_INTEGER): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.#pos >= this.#buf.length) throw new MalformedSyncMessageError('truncated varint');
      const b = this.#buf[this.#pos++] as number;
      n += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (n > max) throw new MalformedSyncMessageError(`integer ${n} above its limit ${max}`);
        return n;
      }
      scale *= 0x80;
    }
    throw new MalformedSyncMessageError('varint longer than 8 bytes');
  }

  byte(): number {
    if (this.#pos >= this.#buf.length) throw new MalformedSyncMessageError('truncated message');
    return this.#buf[this.#pos++] as number;
  }

  /** `n` raw bytes (a view into the buffer). */
  raw(n: number): Uint8Array {
    if (this.#pos + n > this.#buf.length) throw new MalformedSyncMessageError('truncated message');
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** A varint length of at most `max`, then that many bytes. */
  bytes(max: number): Uint8Array {
    return this.raw(this.varint(max));
  }

  u32(): number {
    if (this.#pos + 4 > this.#buf.length) throw new MalformedSyncMessageError('truncated message');
    const b = this.#buf;
    const p = this.#pos;
    this.#pos += 4;
    return (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0;
  }
}
