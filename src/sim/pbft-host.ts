// One PBFT replica with its application, driven in memory: the Ready loop a real driver runs
// (send, restore, execute in order, snapshot at checkpoints, advance), with the network left to
// the caller. Shared by the in-memory cluster (tests, bench) and the Byzantine simulator.
import { PbftReplica } from '../consensus/pbft/replica.ts';
import type { PbftAuth } from '../consensus/pbft/auth.ts';
import type { BatchExecution, CommittedBatch, NodeId, PbftConfig, PbftReady, ReplicaMessage, ReplyMessage, RequestMessage } from '../consensus/pbft/types.ts';
import { PbftKvApp } from './pbft-app.ts';

/** Readies one drain may take before it is a livelock (a failure, never a hang). */
export const MAX_READIES_PER_DRAIN = 1000;

export interface HostSink {
  /** `to` may be BROADCAST ('*'): every other replica. */
  send(from: NodeId, to: NodeId, message: ReplicaMessage | RequestMessage): void;
  reply(from: NodeId, to: string, message: ReplyMessage): void;
}

export class PbftHost {
  readonly id: NodeId;
  readonly replica: PbftReplica;
  app = new PbftKvApp();
  /** Called for each batch executed, in order, with the results of its executed requests. */
  onExecute: (b: CommittedBatch, results: readonly Uint8Array[]) => void = () => {};
  /** Called when state transfer replaced the application state (the state after `seq`). */
  onRestore: (seq: number) => void = () => {};

  constructor(cfg: PbftConfig, auth?: PbftAuth) {
    this.id = cfg.id;
    this.replica = new PbftReplica(cfg, auth);
  }

  drain(sink: HostSink): void {
    for (let i = 0; i < MAX_READIES_PER_DRAIN; i++) {
      const rd = this.replica.ready();
      if (rd === null) return;
      this.process(rd, sink);
    }
    throw new Error(`pbft host ${this.id}: ${MAX_READIES_PER_DRAIN} Readies in a row`);
  }

  private process(rd: PbftReady, sink: HostSink): void {
    for (const m of rd.messages) sink.send(this.id, m.to, m.message);
    for (const r of rd.replies) sink.reply(this.id, r.to, r.message);
    if (rd.restore !== undefined) {
      this.app = PbftKvApp.restore(rd.restore.appSnapshot);
      this.onRestore(rd.restore.seq);
    }
    const executions: BatchExecution[] = rd.committed.map((b) => {
      const results: Uint8Array[] = [];
      b.requests.forEach((r, i) => {
        if (b.execute[i]) results.push(this.app.execute(r.op));
      });
      this.onExecute(b, results);
      return b.checkpoint ? { seq: b.seq, results, appSnapshot: this.app.snapshot() } : { seq: b.seq, results };
    });
    this.replica.advance(rd, executions);
  }
}
