// The simulator's replicated state machine: a string KV with put/cas and a client-session
// table for exactly-once retries (a command whose (client, seq) was applied returns the cached
// result instead of applying twice). Deterministic; snapshots are its JSON encoding.

export type KvCommand =
  | { readonly kind: 'put'; readonly client: string; readonly seq: number; readonly key: string; readonly value: string }
  | { readonly kind: 'cas'; readonly client: string; readonly seq: number; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvResult = 'ok' | boolean;

interface Session {
  seq: number;
  result: KvResult;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

export class KvStateMachine {
  private data = new Map<string, string>();
  private sessions = new Map<string, Session>();

  /** Returns the result, or undefined for a stale duplicate of an older request. */
  apply(cmd: KvCommand): KvResult | undefined {
    const s = this.sessions.get(cmd.client);
    if (s !== undefined && cmd.seq <= s.seq) return cmd.seq === s.seq ? s.result : undefined;
    let result: KvResult;
    if (cmd.kind === 'put') {
      this.data.set(cmd.key, cmd.value);
      result = 'ok';
    } else {
      const cur = this.data.get(cmd.key) ?? null;
      result = cur === cmd.expected;
      if (result) this.data.set(cmd.key, cmd.value);
    }
    this.sessions.set(cmd.client, { seq: cmd.seq, result });
    return result;
  }

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  serialize(): Uint8Array {
    const kv = [...this.data.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    const sessions = [...this.sessions.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    return encoder.encode(JSON.stringify({ kv, sessions }));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const sm = new KvStateMachine();
    if (bytes.byteLength === 0) return sm;
    const o = JSON.parse(decoder.decode(bytes)) as { kv: [string, string][]; sessions: [string, Session][] };
    sm.data = new Map(o.kv);
    sm.sessions = new Map(o.sessions);
    return sm;
  }
}
