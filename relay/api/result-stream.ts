// StreamResults over a replica: replay from a receipt index, then follow live executions.
// Records are always read from the replica (its recent-executions window, else storage), and
// live executions only wake the reader, so a slow consumer costs no memory: it just reads
// further behind. Pull-based, so gRPC/HTTP2 flow control is the backpressure.
import type { Replica } from '../../src/replica/replica.ts';
import type { OutputViewer, ResultRecord } from './backend.ts';

/** Outputs go to their owner and to the audit scope; the receipt (hashes only) to every reader. */
async function outputsFor(replica: Replica, ordinal: number, viewer: OutputViewer): Promise<ResultRecord['outputs']> {
  if (!viewer.allOutputs && (await replica.ownerOf(ordinal)) !== viewer.principal) return null;
  return replica.outputsOf(ordinal);
}

export async function* streamReceipts(replica: Replica, from: number, filter: readonly string[], viewer: OutputViewer, signal: AbortSignal): AsyncGenerator<ResultRecord> {
  let next = Math.max(0, from);
  let wake: (() => void) | null = null;
  let pinged = false;
  const ping = (): void => {
    pinged = true;
    wake?.();
  };
  const unsubscribe = replica.onExecution(ping);
  signal.addEventListener('abort', ping);
  try {
    while (!signal.aborted) {
      pinged = false;
      while (next < replica.receiptCount && !signal.aborted) {
        const ordinal = replica.ordinalOf(next);
        const receipt = await replica.receiptFor(ordinal);
        const index = next++;
        if (filter.length > 0 && !filter.includes(receipt.operation.operator_id)) continue;
        yield { index, operator_id: receipt.operation.operator_id, outputs: await outputsFor(replica, ordinal, viewer), receipt };
      }
      if (signal.aborted || pinged) continue;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', ping);
  }
}
