// A test backend over the real EngineBackend (single engine): every call goes to it unless a
// subclass overrides the call to observe it or to inject what the deterministic operators cannot (faults, ends).
import type { OperatorInfo } from '../../src/statemachine/types.ts';
import type { Receipt } from '../../src/receipts/receipt.ts';
import type { ApiBackend, ClusterStatus, ExecuteRequest, ExecuteResult, OutputViewer, ResultRecord } from '../../relay/api/backend.ts';
import type { EngineBackend } from '../../relay/api/engine-backend.ts';

export class BackendWrapper implements ApiBackend {
  readonly consensus = 'none' as const;
  readonly inner: EngineBackend;

  constructor(inner: EngineBackend) {
    this.inner = inner;
  }

  /** Receipts in the log so far (= the next execution's index). */
  get size(): number {
    return this.inner.treeHead().size;
  }

  operators(): OperatorInfo[] {
    return this.inner.operators();
  }
  execute(req: ExecuteRequest): Promise<ExecuteResult> {
    return this.inner.execute(req);
  }
  receipt(id: string): ReturnType<ApiBackend['receipt']> {
    return this.inner.receipt(id);
  }
  receipts(from: number, limit: number): Promise<Receipt[]> {
    return this.inner.receipts(from, limit);
  }
  treeHead(): ReturnType<ApiBackend['treeHead']> {
    return this.inner.treeHead();
  }
  cluster(): ClusterStatus {
    return this.inner.cluster();
  }
  stream(from: number, filter: readonly string[], viewer: OutputViewer, signal: AbortSignal, maxBuffered?: number): AsyncIterable<ResultRecord> {
    return this.inner.stream(from, filter, viewer, signal, maxBuffered);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
