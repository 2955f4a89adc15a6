// Sync bench: 100,000 records with 1% differing and 1,000,000 with 0.1%, between two peers
// over libp2p on loopback TCP (the far peer is its own process), each on LevelDB. Measured in
// one run: our sync with version vectors (auto mode) and with range reconciliation (forced,
// the arbitrary-set case): time, round trips, ICO bytes on the wire (STATE_SYNC envelopes
// both ways), CPU per differing record; and the baselines: the differing records' own size, a
// naive full id-list exchange, Negentropy (@nostr-dev-kit/sync's port of the reference
// implementation, run in-process on the same id sets) and Yjs state vectors (a Y.Map with the same entries).
// Sizes: BENCH_SYNC_SIZES=100000,1000000 (default both).
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import * as Y from 'yjs';
import { crypto, hexEncode, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { startPeer } from '../src/net/peer.ts';
import { LevelStore } from '../src/store/level.ts';
import { DocStore } from '../src/sync/docstore.ts';
import { identityFromSeed } from '../src/sync/identity.ts';
import { policiesWith } from '../src/sync/policy.ts';
import { recordBytes, recordId, signRecord, type DocRecord } from '../src/sync/record.ts';
import { startSyncService, type SyncService } from '../src/sync/service.ts';
import { payloadBytes } from '../src/ico/frame.ts';
import type { JsonObject } from '../src/ico/types.ts';
import { decodeBinarySyncMessage, isBinarySyncMessage } from '../src/sync/binary.ts';
import type { SyncMode } from '../src/sync/wire.ts';
import type { BenchRow } from './table.ts';

const WRITERS = 8;
/** The far peer opens a store of up to 1M versions (its id index is rebuilt by a scan) before it answers. */
const FAR_PEER_TIMEOUT_MS = 600_000;
const ROOT = join(import.meta.dirname, '..');
const CLUSTER = 'syncbench';

// Negentropy: @nostr-dev-kit/sync, a full two-role port of the reference implementation
// (nostr-tools' nip77 speaks only the client side).
import { Negentropy, NegentropyStorage } from '@nostr-dev-kit/sync';

interface Fixture {
  base: DocRecord[];
  diff: DocRecord[];
  baseTimes: number[];
}

function value(i: number, version: number): { n: number; title: string; version: number } {
  return { n: i, title: `record ${i}`, version };
}

function buildFixture(n: number, d: number): Fixture {
  const writers = Array.from({ length: WRITERS + 1 }, (_, w) => {
    const s = new Uint8Array(32);
    s[0] = 200 + w;
    return identityFromSeed(s);
  });
  const t0 = 1_700_000_000_000;
  const base: DocRecord[] = [];
  const baseTimes: number[] = [];
  const seqs = new Array<number>(WRITERS).fill(0);
  for (let i = 0; i < n; i++) {
    const w = i % WRITERS;
    const id = writers[w]!;
    const t: [number, number] = [t0 + i, 0];
    base.push(signRecord({ key: `doc/${i.toString(36).padStart(5, '0')}`, op: 'put', value: value(i, 1), t, origin: id.peerId, seq: ++seqs[w]! }, id.signer));
    baseTimes.push(t[0]);
  }
  // The far side has d versions we lack: half are updates of existing keys, half new keys.
  const late = writers[WRITERS]!;
  const diff: DocRecord[] = [];
  for (let j = 0; j < d; j++) {
    const update = j % 2 === 0;
    const i = update ? (j * 7919) % n : n + j;
    diff.push(signRecord({ key: `doc/${i.toString(36).padStart(5, '0')}`, op: 'put', value: value(i, 2), t: [t0 + n + j, 0], origin: late.peerId, seq: j + 1 }, late.signer));
  }
  return { base, diff, baseTimes };
}

async function buildStore(dir: string, self: string, f: Fixture, withDiff: boolean): Promise<Uint8Array[]> {
  const store = await LevelStore.open(dir);
  const signer = crypto.createSigner(crypto.randomBytes(32));
  const docs = await DocStore.open({ store, self, signer, policies: policiesWith() });
  await docs.importFresh(f.base);
  if (withDiff) for (let i = 0; i < f.diff.length; i += 500) await docs.apply(f.diff.slice(i, i + 500));
  const ids = [...docs.items.all()];
  await store.close();
  return ids;
}

interface Far {
  child: ChildProcess;
  lines: Interface;
  peerId: string;
  multiaddrs: string[];
  next(): Promise<string>;
}

async function startFar(dbDir: string, keyHex: string, allowed: string, clusterKeyHex: string): Promise<Far> {
  // The parent's flags (e.g. --cpu-prof) apply to the far peer too, so one run profiles both sides.
  const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'sync-peer.ts'), dbDir, keyHex, allowed, CLUSTER, clusterKeyHex], { stdio: ['pipe', 'pipe', 'inherit'] });
  // A bench that fails before it owns the child must not leave it reading a folder being removed.
  process.once('exit', () => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  lines.on('line', (l) => {
    const w = waiters.shift();
    if (w !== undefined) w(l);
    else queue.push(l);
  });
  const next = (): Promise<string> => {
    const l = queue.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('far peer did not answer')), FAR_PEER_TIMEOUT_MS);
      waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  };
  const ready = JSON.parse(await next()) as { peerId: string; multiaddrs: string[] };
  return { child, lines, peerId: ready.peerId, multiaddrs: ready.multiaddrs, next };
}

interface SyncRun {
  mode: string;
  ms: number;
  monoUs: [number, number];
  /** 1-min load average when the sync ended (the machine is shared). */
  load: number;
  wireBytes: number;
  roundTrips: number;
  messages: number;
  received: number;
  equal: boolean;
  cpuMs: number;
}

/** The kind of a STATE_SYNC message in either form (binary ones show as {"$bytes": …}). */
function kindOf(payload: JsonObject): string {
  const bytes = payloadBytes(payload);
  if (bytes === undefined) return String(payload['k']);
  return isBinarySyncMessage(bytes) ? decodeBinarySyncMessage(bytes).k : 'bytes';
}

/** One sync from a fresh copy of store A; `wire` is what A offers (the far peer offers binary). */
async function runSync(dirA: string, keyA: Awaited<ReturnType<typeof generateKeyPair>>, far: Far, clusterKey: Uint8Array, mode: SyncMode, wire: 'binary' | 'json'): Promise<SyncRun> {
  const store = await LevelStore.open(dirA);
  let sync: SyncService | undefined;
  const peer = await startPeer({
    cluster: CLUSTER, roles: ['voter'], relays: [], allowlist: [far.peerId], clusterPublicKey: clusterKey, privateKey: keyA, listen: ['/ip4/127.0.0.1/tcp/0'],
    helloState: () => sync?.summary() ?? null,
  });
  sync = await startSyncService({ peer, store, signer: crypto.createSigner(seedFromLibp2pPrivateKey(keyA)), policies: policiesWith(), syncOnConnect: false, antiEntropyMs: 3_600_000, binary: wire === 'binary' });
  try {
    await (peer as unknown as { libp2p: Libp2p }).libp2p.dial(multiaddr(far.multiaddrs.find((a) => a.includes('/tcp/'))!));
    for (let i = 0; i < 400 && !peer.peers().some((p) => p.peerId === far.peerId && p.state === 'established'); i++) await new Promise((r) => setTimeout(r, 25));
    let messages = 0;
    // A round trip: we sent a message that asks for an answer (open, rng, check) and the
    // answer came. Record batches, acks and FINs are pipelined and never waited for.
    let roundTrips = 0;
    let asked = false;
    const off = peer.on('*', (e) => {
      if ((e.type !== 'ico:in' && e.type !== 'ico:out') || e.envelope.type !== 'STATE_SYNC') return;
      messages++;
      const k = kindOf(e.envelope.payload);
      if (e.type === 'ico:out' && (k === 'open' || k === 'rng' || k === 'check')) asked = true;
      if (e.type === 'ico:in' && asked && k !== 'recs' && k !== 'ack') {
        roundTrips++;
        asked = false;
      }
    });
    far.child.stdin!.write('cpu\n');
    const farCpu0 = (JSON.parse(await far.next()) as { cpuUs: number }).cpuUs;
    // Bytes on the wire: every ICO frame byte on the direct stream both ways (frame heads and
    // signatures included, and any heartbeat that falls inside the sync).
    const wire0 = peer.wireStats();
    const cpu0 = process.cpuUsage();
    // Monotonic µs (the clock --cpu-prof samples carry), to cut both profiles to the sync.
    const mono0 = Number(process.hrtime.bigint() / 1000n);
    const t0 = performance.now();
    const [report] = await sync.sync(far.peerId, { mode });
    const ms = performance.now() - t0;
    const monoUs: [number, number] = [mono0, Number(process.hrtime.bigint() / 1000n)];
    const cpu = process.cpuUsage(cpu0);
    far.child.stdin!.write('cpu\n');
    const farCpu1 = (JSON.parse(await far.next()) as { cpuUs: number }).cpuUs;
    // The far side's last messages (its FIN) are counted once they arrive.
    await new Promise((r) => setTimeout(r, 100));
    off();
    const wire1 = peer.wireStats();
    const wireBytes = wire1.bytesIn + wire1.bytesOut - wire0.bytesIn - wire0.bytesOut;
    return { mode: `${report!.mode} ${wire}`, ms, monoUs, load: loadavg()[0] ?? 0, wireBytes, roundTrips, messages, received: report!.received, equal: report!.equal, cpuMs: (cpu.user + cpu.system + farCpu1 - farCpu0) / 1000 };
  } finally {
    await sync.stop();
    await peer.stop();
    await store.close();
  }
}

async function negentropyRun(a: { ids: Uint8Array[]; times: Map<string, number> }, b: { ids: Uint8Array[]; times: Map<string, number> }): Promise<{ bytes: number; roundTrips: number; have: number; need: number; ms: number }> {
  const storage = (side: { ids: Uint8Array[]; times: Map<string, number> }): NegentropyStorage => {
    const s = new NegentropyStorage();
    // Negentropy timestamps are seconds (Nostr's unit); this port mishandles ms-sized ones.
    for (const id of side.ids) s.insert(Math.floor((side.times.get(hexEncode(id)) ?? 0) / 1000), id);
    s.seal();
    return s;
  };
  const sa = storage(a);
  const sb = storage(b);
  const t0 = performance.now();
  // No frame size limit: the fewest round trips Negentropy can do.
  const client = new Negentropy(sa, 0);
  const server = new Negentropy(sb, 0);
  let msg: Uint8Array | undefined = await client.initiate();
  let bytes = msg.length;
  let roundTrips = 0;
  let have = 0;
  let need = 0;
  for (let i = 0; i < 1000 && msg !== undefined; i++) {
    const reply = await server.reconcile(msg);
    roundTrips++;
    if (reply.nextMessage === undefined) break;
    bytes += reply.nextMessage.length;
    const next = await client.reconcile(reply.nextMessage);
    have += next.have.length;
    need += next.need.length;
    msg = next.nextMessage;
    if (msg !== undefined) bytes += msg.length;
  }
  return { bytes, roundTrips, have, need, ms: performance.now() - t0 };
}

function yjsRun(f: Fixture): { bytes: number; contentBytes: number; ms: number } {
  const a = new Y.Doc();
  const ma = a.getMap<unknown>('docs');
  a.transact(() => {
    for (const r of f.base) ma.set(r.key, r.value);
  });
  const b = new Y.Doc();
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  const mb = b.getMap<unknown>('docs');
  let contentBytes = 0;
  b.transact(() => {
    for (const r of f.diff) {
      mb.set(r.key, r.value);
      contentBytes += JSON.stringify({ [r.key]: r.value }).length;
    }
  });
  const t0 = performance.now();
  const sv = Y.encodeStateVector(a);
  const update = Y.encodeStateAsUpdate(b, sv);
  Y.applyUpdate(a, update);
  const ms = performance.now() - t0;
  a.destroy();
  b.destroy();
  return { bytes: sv.length + update.length, contentBytes, ms };
}

/**
 * The signed fixture and the two LevelDB stores are deterministic (fixed writer seeds and
 * clocks), so they are built once into .tmp/sync-bench/<n>/ and reused by later runs.
 */
async function prepared(n: number, d: number, label: string): Promise<{ f: Fixture; dir: string; idsA: Uint8Array[]; idsB: Uint8Array[] }> {
  const dir = join(ROOT, '.tmp', 'sync-bench', String(n));
  const fixturePath = join(dir, 'fixture.json');
  if (existsSync(join(dir, 'complete'))) {
    const t = performance.now();
    const f = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;
    const idsOf = async (side: string): Promise<Uint8Array[]> => {
      const store = await LevelStore.open(join(dir, side));
      const docs = await DocStore.open({ store, self: side, signer: crypto.createSigner(crypto.randomBytes(32)) });
      const ids = [...docs.items.all()];
      await store.close();
      return ids;
    };
    const out = { f, dir, idsA: await idsOf('a'), idsB: await idsOf('b') };
    process.stderr.write(`bench sync ${label}: fixture and stores reused from ${dir} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
    return out;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let t = performance.now();
  const f = buildFixture(n, d);
  process.stderr.write(`bench sync ${label}: ${n} base + ${d} differing records signed in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  t = performance.now();
  const idsA = await buildStore(join(dir, 'a'), 'a', f, false);
  const idsB = await buildStore(join(dir, 'b'), 'b', f, true);
  process.stderr.write(`bench sync ${label}: two LevelDB stores loaded in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  writeFileSync(fixturePath, JSON.stringify(f));
  writeFileSync(join(dir, 'complete'), '');
  return { f, dir, idsA, idsB };
}

async function scenario(n: number, fraction: number): Promise<BenchRow[]> {
  const d = Math.round(n * fraction);
  const label = `${n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`}/${fraction * 100}%`;
  const work = mkdtempSync(join(tmpdir(), 'hypersync-syncbench-'));
  const rows: BenchRow[] = [];
  const suite = 'sync';
  try {
    const { f, dir: cache, idsA, idsB } = await prepared(n, d, label);
    cpSync(join(cache, 'a'), join(work, 'a'), { recursive: true });
    cpSync(join(cache, 'b'), join(work, 'b'), { recursive: true });
    const keyA = await generateKeyPair('Ed25519');
    const keyB = await generateKeyPair('Ed25519');
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
    const idA = peerIdFromPrivateKey(keyA).toString();
    const diffBytes = f.diff.reduce((a, r) => a + recordBytes(r).length, 0);
    const clusterKey = crypto.createSigner(crypto.randomBytes(32)).publicKey;
    const far = await startFar(join(work, 'b'), hexEncode(privateKeyToProtobuf(keyB)), idA, hexEncode(clusterKey));
    const runs: SyncRun[] = [];
    try {
      // Binary session messages (both peers offer them), then ranges in the JSON reference form as the same run's baseline.
      // A first, unmeasured sync warms both processes: at 1M the first session after the far
      // peer started took 2.6 s and the next ones under 0.8 s (bench/results/sync-1m-binary-nowarmup.json).
      for (const [mode, wire, warmUp] of [['auto', 'binary', true], ['auto', 'binary', false], ['range', 'binary', false], ['range', 'json', false]] as const) {
        const dir = join(work, `a-${mode}-${wire}`);
        cpSync(join(work, 'a'), dir, { recursive: true });
        const r = await runSync(dir, keyA, far, clusterKey, mode, wire);
        process.stderr.write(`bench sync ${label} ${mode} ${wire}${warmUp ? ' (warm-up)' : ''}: ${JSON.stringify(r)}\n`);
        rmSync(dir, { recursive: true, force: true });
        if (!warmUp) runs.push(r);
      }
    } finally {
      if (far.child.exitCode === null) {
        far.child.stdin!.write('stop\n');
        await new Promise((r) => far.child.once('close', r));
      }
    }
    const times = new Map<string, number>();
    const all = [...f.base, ...f.diff];
    for (const r of all) times.set(hexEncode(recordId(recordBytes(r))), r.t[0]);
    const ng = await negentropyRun({ ids: idsA, times }, { ids: idsB, times });
    const naive = idsA.length * 32 + diffBytes;
    const yjs = n <= 200_000 || process.env['BENCH_SYNC_YJS_1M'] === '1' ? yjsRun(f) : undefined;
    const [vec, rng, rngJson] = runs as [SyncRun, SyncRun, SyncRun];
    rows.push(
      { suite, name: `${label} differing records' own size`, value: diffBytes, unit: 'bytes', note: `${d} signed versions (canonical JSON)` },
      { suite, name: `${label} vectors: bytes on the wire`, value: vec.wireBytes, unit: 'bytes', baseline: { name: 'differing records', value: diffBytes }, ratio: vec.wireBytes / diffBytes, target: '<= 1.5x the differing records', met: vec.wireBytes <= 1.5 * diffBytes, note: `mode ${vec.mode}, ${vec.messages} envelopes, equal ${vec.equal}` },
      { suite, name: `${label} vectors: round trips`, value: vec.roundTrips, unit: 'round trips', target: '1', met: vec.roundTrips === 1 },
      { suite, name: `${label} vectors: time end to end`, value: vec.ms, unit: 'ms', ...(n === 100_000 ? { target: '< 1000 ms', met: vec.ms < 1000 } : {}), note: `1-min load average ${vec.load.toFixed(1)} on ${cpus().length} cores` },
      { suite, name: `${label} vectors: CPU per differing record`, value: (vec.cpuMs * 1000) / d, unit: 'µs/record', note: 'both processes, user+system' },
      { suite, name: `${label} ranges: bytes on the wire incl. records`, value: rng.wireBytes, unit: 'bytes', baseline: { name: 'Negentropy ids alone', value: ng.bytes }, ratio: rng.wireBytes / ng.bytes, target: "<= 0.5x Negentropy's bytes for ids alone", met: rng.wireBytes <= 0.5 * ng.bytes, note: `mode ${rng.mode}, ${rng.messages} envelopes, ${rng.received} records received, equal ${rng.equal}` },
      { suite, name: `${label} ranges: round trips`, value: rng.roundTrips, unit: 'round trips', baseline: { name: 'Negentropy round trips', value: ng.roundTrips }, ratio: rng.roundTrips / ng.roundTrips },
      { suite, name: `${label} ranges: time end to end`, value: rng.ms, unit: 'ms', ...(n === 100_000 ? { target: '< 1000 ms', met: rng.ms < 1000 } : {}), note: `1-min load average ${rng.load.toFixed(1)} on ${cpus().length} cores` },
      { suite, name: `${label} ranges: CPU per differing record`, value: (rng.cpuMs * 1000) / d, unit: 'µs/record', note: 'both processes, user+system' },
      { suite, name: `${label} ranges, JSON form: bytes on the wire incl. records`, value: rngJson.wireBytes, unit: 'bytes', baseline: { name: 'binary ranges', value: rng.wireBytes }, ratio: rngJson.wireBytes / rng.wireBytes, note: `mode ${rngJson.mode}, ${rngJson.roundTrips} round trips, ${rngJson.ms.toFixed(0)} ms, ${((rngJson.cpuMs * 1000) / d).toFixed(0)} µs CPU/record, equal ${rngJson.equal}; ${(rngJson.wireBytes / ng.bytes).toFixed(2)}x Negentropy` },
      { suite, name: `${label} Negentropy (@nostr-dev-kit/sync): id bytes`, value: ng.bytes, unit: 'bytes', note: `${ng.roundTrips} round trips, have ${ng.have} need ${ng.need}, ${ng.ms.toFixed(0)} ms in-process, no frame limit` },
      { suite, name: `${label} naive full id-list exchange`, value: naive, unit: 'bytes', baseline: { name: 'our ranges', value: rng.wireBytes }, ratio: naive / rng.wireBytes, note: `${idsA.length} ids x 32 B + the differing records` },
    );
    if (yjs !== undefined) {
      rows.push({ suite, name: `${label} Yjs state vector + update`, value: yjs.bytes, unit: 'bytes', baseline: { name: 'its differing entries as JSON', value: yjs.contentBytes }, ratio: yjs.bytes / yjs.contentBytes, note: `one round trip, ${yjs.ms.toFixed(0)} ms; our vectors ratio ${(vec.wireBytes / diffBytes).toFixed(2)} includes signatures in the records` });
    } else {
      rows.push({ suite, name: `${label} Yjs state vector + update`, value: 0, unit: 'bytes', note: 'skipped at this size (a 1M-entry Y.Map needs several GB here; BENCH_SYNC_YJS_1M=1 runs it)' });
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  process.env['HYPERSYNC_LOG'] ??= 'warn';
  const sizes = (process.env['BENCH_SYNC_SIZES'] ?? '100000,1000000').split(',').map(Number);
  const rows: BenchRow[] = [];
  for (const n of sizes) rows.push(...(await scenario(n, n >= 1_000_000 ? 0.001 : 0.01)));
  return rows;
}
