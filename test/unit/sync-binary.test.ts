// The binary session messages (sync-bin/1): they say exactly what the JSON form says, the
// records they carry verify and hash to the same ids, any byte off the grammar is a typed
// SYNC_MALFORMED error, a tampered binary record is rejected, and a binary peer and a JSON
// peer still sync (each speaks binary only where both sides negotiated it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Json, JsonObject } from '../../src/ico/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { decodeBinarySyncMessage, encodeBinarySyncMessage, hasBinaryForm, isBinarySyncMessage, SYNC_BINARY_MAGIC } from '../../src/sync/binary.ts';
import { DocStore } from '../../src/sync/docstore.ts';
import { SyncEngine, type SyncEvent } from '../../src/sync/engine.ts';
import { MalformedSyncMessageError } from '../../src/sync/errors.ts';
import { identityFromSeed } from '../../src/sync/identity.ts';
import { parseRecord, recordBytes, recordId, signRecord, verifyRecord, type DocRecord } from '../../src/sync/record.ts';
import { simPolicies } from '../../src/sync/simulator.ts';
import { decodeSyncMessage, encodeSyncMessage, type SyncMessage } from '../../src/sync/wire.ts';

function seed(n: number): Uint8Array {
  const s = new Uint8Array(32);
  s[0] = n;
  return s;
}

const alice = identityFromSeed(seed(41));
const bob = identityFromSeed(seed(42));

function records(): DocRecord[] {
  return [
    signRecord({ key: 'doc/1', op: 'put', value: { n: 1, title: 'record 1', tags: ['a', 'é', '\u2028'], f: 1.5e-7 }, t: [1_700_000_000_000, 0], origin: alice.peerId, seq: 1 }, alice.signer),
    signRecord({ key: 'doc/ключ', op: 'del', value: null, t: [1_700_000_000_001, 3], origin: bob.peerId, seq: 7 }, bob.signer),
    signRecord({ key: 'm/1', op: 'resolve', value: 'x"\\y', t: [1_700_000_000_002, 0], origin: alice.peerId, seq: 2, ctx: { [alice.peerId]: 1, [bob.peerId]: 7 } }, alice.signer),
  ];
}

const root = { n: 3, h: 'AAECAwQFBgcICQoLDA0ODw' };
const vec = { [alice.peerId]: 2, [bob.peerId]: 7 };
const messages: SyncMessage[] = [
  { k: 'open', sid: 's1', mode: 'auto', vec, root, d: new Uint8Array([0, 1, 2]), lanes: 2 },
  { k: 'open', sid: 's1', mode: 'range', vec: {}, root, d: new Uint8Array(0), lanes: 4 },
  { k: 'vec', sid: 's1', vec },
  { k: 'rng', sid: 's1', d: new Uint8Array([9, 9, 200]), more: true },
  { k: 'rng', sid: 's1', d: new Uint8Array([1]), more: false },
  { k: 'recs', sid: 's1', n: 300, recs: records() as unknown as Json[] },
  { k: 'ack', sid: 's1', n: 4 },
  { k: 'fin', sid: 's1', root, vec },
  { k: 'check', sid: 's1', root, vec: {} },
  { k: 'checked', sid: 's1', root, vec },
  { k: 'err', sid: 's1', code: 'SYNC_LIMIT', message: 'busy' },
];

function binary(m: SyncMessage): Uint8Array {
  assert.ok(hasBinaryForm(m), `${m.k} has a binary form`);
  return encodeBinarySyncMessage(m);
}

/** What the JSON reference form decodes to, with bytes as arrays so deepEqual compares content. */
function normal(m: SyncMessage): unknown {
  return JSON.parse(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));
}

test('every session message kind says the same in binary as in JSON', () => {
  for (const m of messages) {
    const viaJson = decodeSyncMessage(JSON.parse(JSON.stringify(encodeSyncMessage(m))) as JsonObject);
    const bytes = binary(m);
    assert.ok(isBinarySyncMessage(bytes));
    assert.deepEqual(normal(decodeBinarySyncMessage(bytes)), normal(viaJson), m.k);
  }
  for (const k of ['live', 'rheads', 'rlog'] as const) {
    const m = k === 'live' ? { k, recs: [] } : k === 'rheads' ? { k, heads: [], reply: false } : { k, part: {} };
    assert.equal(hasBinaryForm(m), false, `${k} stays JSON`);
  }
});

test('records from a binary batch verify and keep their ids; the batch is well under half its JSON size', () => {
  const recs = records();
  const m = decodeBinarySyncMessage(binary({ k: 'recs', sid: 's', n: 0, recs: recs as unknown as Json[] }));
  assert.equal(m.k, 'recs');
  const back = (m as Extract<SyncMessage, { k: 'recs' }>).recs.map((r) => parseRecord(r));
  assert.equal(back.length, recs.length);
  for (let i = 0; i < recs.length; i++) {
    verifyRecord(back[i] as DocRecord);
    assert.deepEqual(recordId(recordBytes(back[i] as DocRecord)), recordId(recordBytes(recs[i] as DocRecord)));
  }
  // A batch of 100 records like the bench's: one writer, small values.
  const many = Array.from({ length: 100 }, (_, i) => signRecord({ key: `doc/${i.toString(36).padStart(5, '0')}`, op: 'put', value: { n: i, title: `record ${i}`, version: 2 }, t: [1_700_000_100_000 + i, 0], origin: bob.peerId, seq: i + 1 }, bob.signer));
  const json = JSON.stringify(encodeSyncMessage({ k: 'recs', sid: 's', n: 0, recs: many as unknown as Json[] })).length;
  const bin = binary({ k: 'recs', sid: 's', n: 0, recs: many as unknown as Json[] }).length;
  assert.ok(bin < 0.5 * json, `binary ${bin} bytes vs JSON ${json}`);
});

function malformed(bytes: Uint8Array, why: RegExp): void {
  assert.throws(() => decodeBinarySyncMessage(bytes), (e: unknown) => e instanceof MalformedSyncMessageError && e.code === 'SYNC_MALFORMED' && why.test(e.message), `expected ${why}`);
}

test('bytes off the grammar are a typed error: every truncation, trailing bytes, unknown kinds, versions, indexes', () => {
  for (const m of messages) {
    const bytes = binary(m);
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.throws(() => decodeBinarySyncMessage(bytes.subarray(0, cut)), MalformedSyncMessageError, `${m.k} cut at ${cut}`);
    }
    malformed(Uint8Array.of(...bytes, 0), /trailing bytes/);
  }
  const ack = binary({ k: 'ack', sid: 's', n: 1 });
  malformed(Uint8Array.of(ack[0] as number, 2, ...ack.subarray(2)), /unsupported binary sync version 2/);
  malformed(Uint8Array.of(ack[0] as number, ack[1] as number, 99, ...ack.subarray(3)), /unknown binary sync message kind 99/);
  malformed(Uint8Array.of(0x7b, 1, 5), /not a binary sync message/);
  assert.equal(isBinarySyncMessage(Uint8Array.of(0x7b, 1, 5)), false);
  assert.equal(isBinarySyncMessage(Uint8Array.of(SYNC_BINARY_MAGIC)), false);
  // A record that names origin 5 of a one-origin table.
  const one = binary({ k: 'recs', sid: 's', n: 0, recs: [records()[0] as unknown as Json] });
  const originIndexAt = findOriginIndex(one);
  const bad = Uint8Array.from(one);
  bad[originIndexAt] = 5;
  malformed(bad, /origin index 5 outside the table of 1/);
  // An op code past `resolve`.
  const op = Uint8Array.from(one);
  op[opAt(one)] = 3;
  malformed(op, /op must be put, del or resolve/);
});

/** Offsets inside a one-record batch of records()[0]: after magic, version, kind, sid, n, the origin table and the count. */
function recordStart(b: Uint8Array): number {
  let at = 3;
  at += 1 + (b[at] as number); // sid
  at += 2; // n = 0 and the table size 1 (one-byte varints)
  at += 1 + (b[at] as number); // the one origin
  return at + 1; // record count
}
function opAt(b: Uint8Array): number {
  const at = recordStart(b);
  return at + 1 + (b[at] as number);
}
function findOriginIndex(b: Uint8Array): number {
  let at = opAt(b) + 1;
  const valueLength = b[at] as number; // < 128 here
  at += 1 + valueLength;
  // t: wall ms (6 bytes as a varint for 1.7e12), counter (1 byte)
  at += 6 + 1;
  return at;
}

interface Peer {
  id: string;
  engine: SyncEngine;
  docs: DocStore;
  binary: boolean;
  events: SyncEvent[];
}

/** Peers on one in-process bus; each says whether it speaks binary; payloads are counted by form. */
class Bus {
  peers = new Map<string, Peer>();
  sent = { binary: 0, json: 0 };
  tamper: ((bytes: Uint8Array) => Uint8Array) | undefined;

  async add(n: number, binaryPeer: boolean): Promise<Peer> {
    const id = identityFromSeed(seed(n));
    const docs = await DocStore.open({ store: new MemoryStore(), self: id.peerId, signer: id.signer, policies: simPolicies() });
    const events: SyncEvent[] = [];
    const engine = new SyncEngine({
      docs,
      transport: {
        send: async (to, payload) => this.#deliver(id.peerId, to, payload),
        broadcast: async () => undefined,
        binary: (to) => binaryPeer && this.peers.get(to)?.binary === true,
      },
    });
    engine.on((e) => events.push(e));
    const p = { id: id.peerId, engine, docs, binary: binaryPeer, events };
    this.peers.set(id.peerId, p);
    return p;
  }

  #deliver(from: string, to: string, payload: JsonObject | Uint8Array): void {
    let p = payload;
    if (p instanceof Uint8Array) {
      this.sent.binary++;
      const m = decodeBinarySyncMessage(p);
      if (m.k === 'recs' && this.tamper !== undefined) {
        p = this.tamper(p);
        this.tamper = undefined;
      }
    } else {
      this.sent.json++;
    }
    const bytes = p instanceof Uint8Array ? p : undefined;
    const json = p instanceof Uint8Array ? {} : p;
    setImmediate(() => void this.peers.get(to)?.engine.receive(from, json, bytes));
  }
}

async function state(d: DocStore): Promise<string> {
  return JSON.stringify((await d.list({ limit: 1000, withDeleted: true })).map((e) => [e.key, e.value, e.deleted]));
}

test('a binary peer and a JSON peer sync in JSON; two binary peers sync in binary; all converge', async () => {
  for (const [aBin, bBin] of [[true, false], [false, true], [true, true]] as const) {
    const bus = new Bus();
    const a = await bus.add(1, aBin);
    const b = await bus.add(2, bBin);
    for (let i = 0; i < 300; i++) await a.docs.put(`a${i}`, { i });
    for (let i = 0; i < 40; i++) await b.docs.put(`b${i}`, i);
    for (const mode of ['auto', 'range'] as const) {
      const report = await a.engine.sync(b.id, { mode });
      assert.equal(report.equal, true, `${aBin}/${bBin} ${mode}`);
      assert.equal(await state(a.docs), await state(b.docs));
      await a.docs.put(`late-${mode}`, 1);
    }
    if (aBin && bBin) {
      assert.ok(bus.sent.binary > 0 && bus.sent.json === 0, `both binary: ${JSON.stringify(bus.sent)}`);
    } else {
      assert.ok(bus.sent.json > 0 && bus.sent.binary === 0, `one JSON side: ${JSON.stringify(bus.sent)}`);
    }
  }
});

test('a tampered record in a binary batch is rejected with SYNC_BAD_SIGNATURE and the rest converges', async () => {
  const bus = new Bus();
  const a = await bus.add(1, true);
  const b = await bus.add(2, true);
  for (let i = 0; i < 20; i++) await b.docs.put(`k${i}`, i);
  // Flip the last byte of the last signature in the first batch.
  bus.tamper = (bytes) => {
    const t = Uint8Array.from(bytes);
    t[t.length - 1] = (t[t.length - 1] as number) ^ 1;
    return t;
  };
  const report = await a.engine.sync(b.id);
  const rejected = a.events.filter((e) => e.type === 'rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]?.type === 'rejected' ? rejected[0].code : '', 'SYNC_BAD_SIGNATURE');
  assert.equal(report.equal, true);
  assert.equal(report.passes, 2);
  assert.equal(await state(a.docs), await state(b.docs));
});
