// The receipts explorer: the relay's receipt log, newest first, searchable by receipt id,
// index or operator; the page's chain is verified in this tab (the seed's five steps on every
// receipt, and each links to the one before), and one receipt's inclusion proof is checked
// against the signed tree head the relay serves with it. Every verdict shows pass or fail
// with the verifier's code and reason; nothing here trusts the relay's word.
import * as verifier from '../../src/verify/index.ts';
import type { ReceiptView, RelayApi } from '../relay-api.ts';
import { byId, h, shortId } from '../view.ts';
import { retryButton } from './operators.ts';
import { showError, showOk, verdictNode } from './panel-state.ts';

/** Receipts one page of the explorer lists (and one chain check covers). */
export const RECEIPTS_PAGE = 50;

export interface ReceiptsExplorer {
  /** Reloads the newest page (keeps the search). */
  refresh(): Promise<void>;
  /** Searches for `query` and checks that receipt's proof (after an operator run). */
  show(query: string): Promise<void>;
}

function matches(r: ReceiptView, q: string): boolean {
  if (q === '') return true;
  if (/^\d+$/.test(q)) return r.index === Number(q);
  return r.receipt_id.includes(q) || r.operation.operator_id.includes(q);
}

export function receiptsExplorer(api: RelayApi): ReceiptsExplorer {
  let page: ReceiptView[] = [];
  const search = byId<HTMLInputElement>('receipt-search');

  async function checkProof(id: string): Promise<void> {
    const out = byId('receipt-proof');
    out.replaceChildren(h('span', { class: 'muted' }, `checking ${shortId(id)}…`));
    try {
      const bundle = await api.receiptBundle(id);
      const v = await verifier.verifyProofBundle(bundle);
      const head = (bundle as { tree_head?: { size?: number; root?: string } }).tree_head;
      const where = `receipt ${shortId(id)} against the signed tree head of size ${head?.size ?? '?'} (root ${String(head?.root ?? '?').slice(0, 20)}…)`;
      out.replaceChildren(v.ok ? verdictNode(true, `inclusion proof: ${where}`) : verdictNode(false, `${v.code}: ${v.reason} (${where})`, v.code));
    } catch (e) {
      out.replaceChildren(verdictNode(false, e instanceof Error ? e.message : String(e), 'FETCH'));
    }
  }

  async function checkChain(): Promise<void> {
    const out = byId('receipt-chain');
    if (page.length === 0) {
      out.replaceChildren(h('span', { class: 'muted' }, 'no receipts to check'));
      return;
    }
    const ordered = [...page].sort((a, b) => a.index - b.index);
    const v = await verifier.verifyChain(ordered);
    const range = `receipts #${ordered[0]!.index}–#${ordered.at(-1)!.index}`;
    out.replaceChildren(v.ok ? verdictNode(true, `chain of ${v.count} ${range}: every signature, hash and link checked in this tab (${verifier.cryptoBackend})`) : verdictNode(false, `${v.code} at receipt #${v.index}, step ${v.step} (${v.stepName}): ${v.reason}`, v.code));
  }

  function render(): void {
    const q = search.value.trim();
    const shown = page.filter((r) => matches(r, q));
    byId<HTMLTableSectionElement>('receipts-body').replaceChildren(
      ...shown.map((r) => {
        const b = h('button', { class: 'secondary' }, 'Check proof');
        b.type = 'button';
        b.onclick = () => void checkProof(r.receipt_id);
        b.setAttribute('aria-label', `Check proof of receipt ${r.index}`);
        return h('tr', { data: { receiptId: r.receipt_id, index: String(r.index) } },
          h('td', { class: 'num', data: { label: 'Index' } }, String(r.index)),
          h('td', { data: { label: 'Operator' } }, h('code', {}, r.operation.operator_id)),
          h('td', { class: 'mono', title: r.receipt_id, data: { label: 'Receipt' } }, shortId(r.receipt_id)),
          h('td', { class: 'num', data: { label: 'Time' } }, r.timestamp.slice(11, 23)),
          h('td', { data: { label: 'Proof' } }, b),
        );
      }),
    );
    const empty = byId('receipts-empty');
    empty.hidden = shown.length > 0;
    empty.textContent = page.length === 0 ? 'No receipts yet: run an operator above and its receipt appears here.' : `No receipt on this page matches '${q}'.`;
  }

  async function refresh(): Promise<void> {
    try {
      const head = await api.treeHead();
      const from = Math.max(0, head.size - RECEIPTS_PAGE);
      page = head.size === 0 ? [] : (await api.receipts(from, RECEIPTS_PAGE)).receipts.reverse();
      showOk('receipts-status', `${head.size} receipts in the log; showing the newest ${page.length}`);
      render();
      await checkChain();
    } catch (e) {
      showError('receipts-status', e);
      byId('receipts-status').append(' ', retryButton(() => void refresh()));
    }
  }

  search.addEventListener('input', render);
  byId<HTMLFormElement>('receipt-search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = search.value.trim();
    const hit = page.find((r) => matches(r, q));
    if (hit !== undefined) void checkProof(hit.receipt_id);
  });
  byId<HTMLButtonElement>('receipts-refresh').onclick = () => void refresh();

  return {
    refresh,
    async show(query) {
      search.value = query;
      await refresh();
      const hit = page.find((r) => matches(r, query));
      if (hit !== undefined) await checkProof(hit.receipt_id);
    },
  };
}
