// The PBFT simulator's application: a string KV whose every operation returns a result that
// depends on all earlier ones (a running hash of the history), so two replicas that executed
// different sequences return different results and checkpoint digests. Deterministic;
// snapshots are its canonical JSON.

export type KvOp = { readonly k: 'put'; readonly key: string; readonly value: string } | { readonly k: 'get'; readonly key: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvOp(op: KvOp): Uint8Array {
  return encoder.encode(JSON.stringify(op));
}

export class PbftKvApp {
  private data = new Map<string, string>();
  /** FNV-1a over every executed op: a cheap fingerprint of the whole history. */
  private history = 0x811c9dc5;
  executed = 0;

  execute(op: Uint8Array): Uint8Array {
    for (const b of op) this.history = Math.imul(this.history ^ b, 0x01000193) >>> 0;
    this.executed++;
    let parsed: KvOp | undefined;
    try {
      parsed = JSON.parse(decoder.decode(op)) as KvOp;
    } catch {
      parsed = undefined;
    }
    let value: string | null = null;
    if (parsed?.k === 'put') {
      value = this.data.get(parsed.key) ?? null;
      this.data.set(parsed.key, parsed.value);
    } else if (parsed?.k === 'get') {
      value = this.data.get(parsed.key) ?? null;
    }
    return encoder.encode(JSON.stringify({ value, h: this.history, n: this.executed }));
  }

  snapshot(): Uint8Array {
    const entries = [...this.data.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return encoder.encode(JSON.stringify({ entries, h: this.history, n: this.executed }));
  }

  static restore(bytes: Uint8Array): PbftKvApp {
    const s = JSON.parse(decoder.decode(bytes)) as { entries: [string, string][]; h: number; n: number };
    const app = new PbftKvApp();
    app.data = new Map(s.entries);
    app.history = s.h;
    app.executed = s.n;
    return app;
  }
}
