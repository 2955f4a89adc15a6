// The replicated duplicate-suppression table: per client, the timestamp of its last executed
// request, where it executed (seq, leaf index) and its result, so a retransmission gets the
// same answer and never a second execution. It is part of every checkpoint, so its order (least
// recently executed first, the eviction order at `maxClients`) is encoded too and every replica
// evicts the same client. Checkpoint state = this table ‖ the application snapshot.
import { ByteReader, ByteWriter } from './codec.ts';
import { PbftDecodeError } from './errors.ts';

export interface ClientEntry {
  readonly timestamp: number;
  readonly seq: number;
  /** Leaf index of the request among the executed requests of its batch. */
  readonly index: number;
  /** Undefined between execution (ready) and the driver's result (advance). */
  result: Uint8Array | undefined;
}

export interface CheckpointState {
  readonly clients: ClientTable;
  readonly appSnapshot: Uint8Array;
}

export class ClientTable {
  private readonly entries = new Map<string, ClientEntry>();
  readonly maxClients: number;

  constructor(maxClients: number) {
    this.maxClients = maxClients;
  }

  get size(): number {
    return this.entries.size;
  }

  get(client: string): ClientEntry | undefined {
    return this.entries.get(client);
  }

  /** Already executed (or older than what executed): a duplicate. */
  executed(client: string, timestamp: number): boolean {
    const e = this.entries.get(client);
    return e !== undefined && timestamp <= e.timestamp;
  }

  /** Records an execution; the client becomes the most recently executed. */
  record(client: string, timestamp: number, seq: number, index: number): void {
    this.entries.delete(client);
    this.entries.set(client, { timestamp, seq, index, result: undefined });
    if (this.entries.size > this.maxClients) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  setResult(client: string, timestamp: number, result: Uint8Array): void {
    const e = this.entries.get(client);
    if (e !== undefined && e.timestamp === timestamp) e.result = result;
  }

  /** The checkpoint state bytes: `u32 count ‖ entries (LRU order) ‖ bytes(appSnapshot)`. */
  encodeState(appSnapshot: Uint8Array): Uint8Array {
    const w = new ByteWriter();
    w.u32(this.entries.size);
    for (const [client, e] of this.entries) {
      w.str(client);
      w.u64(e.timestamp);
      w.u64(e.seq);
      w.u16(e.index);
      w.bytes(e.result ?? new Uint8Array(0));
    }
    w.bytes(appSnapshot);
    return w.finish();
  }

  static decodeState(bytes: Uint8Array, maxClients: number, maxClientIdBytes: number): CheckpointState {
    const r = new ByteReader(bytes);
    const n = r.u32();
    if (n > maxClients) throw new PbftDecodeError(`checkpoint state lists ${n} clients, over ${maxClients}`);
    const clients = new ClientTable(maxClients);
    for (let i = 0; i < n; i++) {
      const client = r.str(maxClientIdBytes, 'client id');
      const timestamp = r.u64();
      const seq = r.u64();
      const index = r.u16();
      const result = r.bytes(bytes.byteLength, 'result');
      clients.entries.set(client, { timestamp, seq, index, result });
    }
    const appSnapshot = r.bytes(bytes.byteLength, 'application snapshot');
    r.end();
    return { clients, appSnapshot };
  }
}
