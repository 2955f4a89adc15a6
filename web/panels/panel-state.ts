// How a panel says it failed: the error's message in the panel's status line, marked so the
// page (and its tests) can tell an error state from an empty one.
import { RelayApiError } from '../relay-api.ts';
import { byId, h } from '../view.ts';

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function showError(id: string, e: unknown): void {
  const node = byId(id);
  node.textContent = errorText(e);
  node.className = 'bad';
  node.dataset['error'] = e instanceof RelayApiError ? e.code : 'ERROR';
}

export function showOk(id: string, text: string, kind: 'ok' | 'muted' = 'muted'): void {
  const node = byId(id);
  node.textContent = text;
  node.className = kind;
  delete node.dataset['error'];
}

/** A visible verdict of a check made in this tab: PASS or FAIL with the reason (and the verifier's code). */
export function verdictNode(ok: boolean, text: string, code?: string): HTMLElement {
  const node = h('span', { class: `verdict ${ok ? 'pass' : 'fail'}`, data: { verdict: ok ? 'pass' : 'fail', ...(code !== undefined ? { code } : {}) } }, ok ? 'PASS ' : 'FAIL ', text);
  node.setAttribute('role', 'status');
  return node;
}
