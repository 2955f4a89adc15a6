// The length-prefixed frame reader: frames come out whole and in order however the bytes are
// chunked; a frame at the limit is read, one announced past it (or a prefix longer than any
// limit) stops the reader before a body byte is buffered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Uint8ArrayList } from 'uint8arraylist';
import { FrameReader, lengthPrefix, MAX_LENGTH_PREFIX_BYTES } from '../../src/net/frame-reader.ts';

function wire(frames: Uint8Array[]): Uint8Array {
  const list = new Uint8ArrayList();
  for (const f of frames) list.append(lengthPrefix(f.length), f);
  return list.subarray();
}

test('frames come out whole and in order for any chunking of the bytes (300 random cases)', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (frames, cuts) => {
      const bytes = wire(frames);
      const out: Uint8Array[] = [];
      const reader = new FrameReader(1024, (f) => out.push(f.slice()));
      let at = 0;
      for (let i = 0; at < bytes.length; i++) {
        const n = cuts[i % cuts.length]!;
        assert.deepEqual(reader.push(bytes.subarray(at, at + n)), { ok: true });
        at += n;
      }
      assert.deepEqual(out, frames);
      assert.equal(reader.buffered, 0);
    }),
    { numRuns: 300 },
  );
});

test('a chunk holding several frames and the start of the next yields the complete ones', () => {
  const out: number[] = [];
  const reader = new FrameReader(100, (f) => out.push(f.length));
  const bytes = wire([new Uint8Array(3), new Uint8Array(0), new Uint8Array(70)]);
  reader.push(bytes.subarray(0, bytes.length - 10));
  assert.deepEqual(out, [3, 0]);
  reader.push(bytes.subarray(bytes.length - 10));
  assert.deepEqual(out, [3, 0, 70]);
});

test('a frame exactly at the limit is read; one byte more is refused on its length prefix alone', () => {
  const limit = 1000;
  const got: number[] = [];
  const atLimit = new FrameReader(limit, (f) => got.push(f.length));
  assert.deepEqual(atLimit.push(wire([new Uint8Array(limit)])), { ok: true });
  assert.deepEqual(got, [limit]);
  const over = new FrameReader(limit, () => assert.fail('no frame may come out'));
  // Only the prefix is sent: the reader must not wait for (or keep) a body.
  assert.deepEqual(over.push(lengthPrefix(limit + 1)), { ok: false, announced: limit + 1 });
  assert.equal(over.buffered, 0);
  assert.deepEqual(over.push(new Uint8Array(10)), { ok: false, announced: null }, 'nothing is read after a failure');
});

test(`a length prefix longer than ${MAX_LENGTH_PREFIX_BYTES} bytes is refused as over the limit`, () => {
  const reader = new FrameReader(1 << 20, () => assert.fail('no frame may come out'));
  const endless = new Uint8Array(MAX_LENGTH_PREFIX_BYTES + 2).fill(0x80);
  assert.deepEqual(reader.push(endless), { ok: false, announced: null });
  const huge = new FrameReader(1 << 20, () => assert.fail('no frame may come out'));
  assert.deepEqual(huge.push(lengthPrefix(2 ** 40)), { ok: false, announced: 2 ** 40 });
});
