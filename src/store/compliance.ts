// The storage compliance suite: one list of cases every adapter must pass, with its own
// tiny assertions so it runs unchanged under node:test and inside a browser page.
import { MAX_BATCH_OPS, MAX_KEY_BYTES, MAX_VALUE_BYTES, StoreError, type Store } from './types.ts';

export interface ComplianceCase {
  name: string;
  /** `open` returns a handle on the same underlying data each time (a reopen). */
  run(open: () => Promise<Store>): Promise<void>;
}

class ComplianceFailure extends Error {
  override name = 'ComplianceFailure';
}

function ok(cond: boolean, message: string): void {
  if (!cond) throw new ComplianceFailure(message);
}

function b(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

function s(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function hex(x: Uint8Array | undefined): string {
  return x === undefined ? 'undefined' : Array.from(x, (v) => v.toString(16).padStart(2, '0')).join('');
}

function same(a: Uint8Array | undefined, e: Uint8Array | undefined, message: string): void {
  ok(hex(a) === hex(e), `${message}: got ${hex(a)}, expected ${hex(e)}`);
}

async function collect(it: AsyncIterable<[Uint8Array, Uint8Array]>): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of it) out.push(hex(k));
  return out;
}

async function rejects(p: Promise<unknown>, code: string, message: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    ok(e instanceof StoreError && e.code === code, `${message}: expected ${code}, got ${(e as Error).name} ${(e as { code?: string }).code ?? ''}`);
    return;
  }
  throw new ComplianceFailure(`${message}: expected a ${code} rejection`);
}

// Keys chosen to catch signed-byte and prefix ordering bugs.
const ORDER = [b(0x00), b(0x00, 0x00), b(0x01), b(0x01, 0xff), b(0x7f), b(0x80), b(0xfe), b(0xff), b(0xff, 0x00), b(0xff, 0xff)];

export function complianceCases(): ComplianceCase[] {
  return [
    {
      name: 'put, get, overwrite, delete; missing keys read as undefined',
      async run(open) {
        const st = await open();
        same(await st.get(s('a')), undefined, 'missing');
        await st.put(s('a'), s('1'));
        same(await st.get(s('a')), s('1'), 'after put');
        await st.put(s('a'), s('2'));
        same(await st.get(s('a')), s('2'), 'after overwrite');
        await st.put(s('empty'), new Uint8Array());
        same(await st.get(s('empty')), new Uint8Array(), 'empty value');
        await st.delete(s('a'));
        same(await st.get(s('a')), undefined, 'after delete');
        await st.delete(s('never'));
        await st.close();
      },
    },
    {
      name: 'stored bytes are copies: mutating inputs or outputs changes nothing',
      async run(open) {
        const st = await open();
        const key = s('k');
        const value = b(1, 2, 3);
        await st.put(key, value);
        value[0] = 9;
        key[0] = 0x6c;
        const got = await st.get(s('k'));
        same(got, b(1, 2, 3), 'input mutated');
        if (got !== undefined) got[1] = 9;
        same(await st.get(s('k')), b(1, 2, 3), 'output mutated');
        await st.close();
      },
    },
    {
      name: 'range scans in unsigned byte order, forwards and in reverse',
      async run(open) {
        const st = await open();
        for (const k of [...ORDER].reverse()) await st.put(k, k);
        const want = ORDER.map(hex);
        ok((await collect(st.range())).join() === want.join(), `forward order: ${(await collect(st.range())).join()}`);
        ok((await collect(st.range({ reverse: true }))).join() === [...want].reverse().join(), 'reverse order');
        await st.close();
      },
    },
    {
      name: 'range bounds gte/gt/lte/lt and limit, alone and combined',
      async run(open) {
        const st = await open();
        for (const k of ORDER) await st.put(k, k);
        const h = ORDER.map(hex);
        const eq = async (o: Parameters<Store['range']>[0], want: string[], what: string): Promise<void> => {
          const got = await collect(st.range(o));
          ok(got.join() === want.join(), `${what}: got [${got.join()}], want [${want.join()}]`);
        };
        await eq({ gte: b(0x01) }, h.slice(2), 'gte');
        await eq({ gt: b(0x01) }, h.slice(3), 'gt');
        await eq({ lte: b(0x7f) }, h.slice(0, 5), 'lte');
        await eq({ lt: b(0x7f) }, h.slice(0, 4), 'lt');
        await eq({ gte: b(0x01), lt: b(0xff) }, h.slice(2, 7), 'gte+lt');
        await eq({ gt: b(0x00), lte: b(0x80), limit: 3 }, h.slice(1, 4), 'gt+lte+limit');
        await eq({ gte: b(0x01), lt: b(0xff), reverse: true, limit: 2 }, [h[6]!, h[5]!], 'reverse+limit');
        await eq({ gt: b(0xff, 0xff) }, [], 'past the end');
        await eq({ gte: b(0x80), lt: b(0x10) }, [], 'empty interval');
        await eq({ limit: 0 }, [], 'limit 0');
        await st.close();
      },
    },
    {
      name: 'range scans larger than one page stay complete and ordered',
      async run(open) {
        const st = await open();
        const keys: string[] = [];
        const ops = [];
        for (let i = 0; i < 700; i++) {
          const k = b((i >> 8) & 0xff, i & 0xff);
          keys.push(hex(k));
          ops.push({ type: 'put' as const, key: k, value: k });
        }
        await st.batch(ops);
        ok((await collect(st.range())).join() === keys.join(), 'all 700 in order');
        ok((await collect(st.range({ reverse: true, limit: 300 }))).join() === keys.slice(400).reverse().join(), 'reverse 300');
        await st.close();
      },
    },
    {
      name: 'a range scan is not disturbed by writes made while it runs',
      async run(open) {
        const st = await open();
        for (let i = 1; i <= 5; i++) await st.put(b(i), b(i));
        const seen: number[] = [];
        for await (const [k] of st.range()) {
          seen.push(k[0]!);
          if (k[0] === 2) {
            await st.delete(b(4));
            await st.put(b(9), b(9));
          }
        }
        // LevelDB and the memory store iterate a snapshot; IndexedDB pages may see later
        // writes past the current page. Either way the scan ends, in order, without repeats.
        ok(seen.slice(0, 3).join() === '1,2,3', `start of the scan: ${seen.join()}`);
        ok(seen.every((v, i) => i === 0 || v > seen[i - 1]!), `scan order: ${seen.join()}`);
        same(await st.get(b(4)), undefined, 'deleted during the scan');
        same(await st.get(b(9)), b(9), 'written during the scan');
        await st.close();
      },
    },
    {
      name: 'batch applies puts and deletes together',
      async run(open) {
        const st = await open();
        await st.put(s('x'), s('old'));
        await st.batch([
          { type: 'put', key: s('a'), value: s('1') },
          { type: 'put', key: s('b'), value: s('2') },
          { type: 'del', key: s('x') },
        ]);
        same(await st.get(s('a')), s('1'), 'a');
        same(await st.get(s('b')), s('2'), 'b');
        same(await st.get(s('x')), undefined, 'x deleted');
        await st.batch([]);
        await st.batch([{ type: 'put', key: s('y'), value: s('1') }, { type: 'del', key: s('y') }]);
        same(await st.get(s('y')), undefined, 'a put then a delete of one key in one batch: the last op wins');
        await st.close();
      },
    },
    {
      name: 'a batch that breaks a limit is rejected whole: nothing of it is applied',
      async run(open) {
        const st = await open();
        await rejects(st.batch([{ type: 'put', key: s('ok'), value: s('1') }, { type: 'put', key: new Uint8Array(MAX_KEY_BYTES + 1).fill(1), value: s('2') }]), 'STORE_LIMIT', 'oversized key in batch');
        same(await st.get(s('ok')), undefined, 'first op of the rejected batch');
        const many = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ type: 'put' as const, key: s(`k${i}`), value: new Uint8Array() }));
        await rejects(st.batch(many), 'STORE_LIMIT', 'too many ops');
        same(await st.get(s('k0')), undefined, 'nothing of the long batch');
        await st.close();
      },
    },
    {
      name: 'limits and invalid input are typed errors',
      async run(open) {
        const st = await open();
        await rejects(st.put(new Uint8Array(MAX_KEY_BYTES + 1), s('v')), 'STORE_LIMIT', 'key too long');
        await rejects(st.put(s('k'), new Uint8Array(MAX_VALUE_BYTES + 1)), 'STORE_LIMIT', 'value too large');
        await rejects(st.put(new Uint8Array(), s('v')), 'STORE_INVALID', 'empty key');
        await rejects(st.get('text' as unknown as Uint8Array), 'STORE_INVALID', 'non-bytes key');
        await rejects(collect(st.range({ limit: -1 })), 'STORE_INVALID', 'negative limit');
        await rejects(collect(st.range({ limit: 1.5 })), 'STORE_INVALID', 'fractional limit');
        await rejects(collect(st.range({ gte: 'a' as unknown as Uint8Array })), 'STORE_INVALID', 'non-bytes bound');
        await st.put(new Uint8Array(MAX_KEY_BYTES).fill(7), s('at the limit'));
        same(await st.get(new Uint8Array(MAX_KEY_BYTES).fill(7)), s('at the limit'), 'key at the limit');
        await st.close();
      },
    },
    {
      name: 'data survives close and reopen; a closed handle refuses work',
      async run(open) {
        const st = await open();
        await st.batch([{ type: 'put', key: s('p1'), value: s('one') }, { type: 'put', key: s('p2'), value: s('two') }]);
        await st.close();
        await rejects(st.get(s('p1')), 'STORE_CLOSED', 'closed handle');
        const again = await open();
        same(await again.get(s('p1')), s('one'), 'p1 after reopen');
        same(await again.get(s('p2')), s('two'), 'p2 after reopen');
        await again.close();
      },
    },
  ];
}

/** Runs every case, each on fresh data from `fresh()` (which returns a reopen function). */
export async function runCompliance(fresh: () => Promise<() => Promise<Store>>): Promise<Array<{ name: string; ok: boolean; error?: string }>> {
  const results: Array<{ name: string; ok: boolean; error?: string }> = [];
  for (const c of complianceCases()) {
    try {
      await c.run(await fresh());
      results.push({ name: c.name, ok: true });
    } catch (e) {
      results.push({ name: c.name, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}
