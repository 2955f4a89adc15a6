// Runs the storage compliance suite against the IndexedDB adapter inside a real browser,
// and measures receipt appends on IndexedDB. Results land on window for the test driver.
import { runCompliance } from '../../src/store/compliance.ts';
import { IdbStore } from '../../src/store/idb.ts';
import { measureIdbAppends } from './append-rate.ts';

interface PageResults {
  compliance: Array<{ name: string; ok: boolean; error?: string }>;
}

declare global {
  interface Window {
    storeResults?: PageResults;
    storeError?: string;
    measureIdbAppends: typeof measureIdbAppends;
  }
}

let n = 0;
window.measureIdbAppends = measureIdbAppends;
runCompliance(async () => {
  const name = `compliance-${Date.now()}-${n++}`;
  return () => IdbStore.open(name);
})
  .then((compliance) => {
    window.storeResults = { compliance };
    document.getElementById('out')!.textContent = compliance.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.error ? `: ${r.error}` : ''}`).join('\n');
  })
  .catch((e: unknown) => {
    window.storeError = String(e);
  });
