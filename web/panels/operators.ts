// The operator form: the relay's operator registry, one form per operator built from its
// input JSON Schema (web/schema-form.ts), run through the relay API. The relay orders it with
// its consensus engine and answers with the outputs and the receipt id; where the devnet runs
// a PBFT group beside it, the form can send it through PBFT instead, and the tab checks the
// quorum certificate of the answer against the group's membership with its verifier.
import * as verifier from '../../src/verify/index.ts';
import type { ClusterInfo, ExecuteEngine, ExecuteReply, OperatorInfo, RelayApi } from '../relay-api.ts';
import { formFields, parseInputs, type FormField, type FormValue } from '../schema-form.ts';
import { byId, h } from '../view.ts';
import { errorText, showError, showOk, verdictNode } from './panel-state.ts';

/** The engines the form offers: the relay's own, and PBFT when the relay reaches a PBFT group. */
function engineControl(cluster: ClusterInfo | null): HTMLElement | null {
  if (cluster?.pbft === undefined) return null;
  const own = h('option', {}, `${cluster.consensus === 'raft' ? 'Raft' : cluster.consensus} (the relay's engine)`);
  own.value = 'default';
  const pbft = h('option', {}, `PBFT (${cluster.pbft.members.length} replicas, f = ${cluster.pbft.f}): a quorum certificate comes back`);
  pbft.value = 'pbft';
  const select = h('select', {}, own, pbft);
  select.id = 'op-engine';
  const label = h('label', { class: 'wide' }, 'Ordered by', select);
  label.htmlFor = 'op-engine';
  return label;
}

/**
 * Checks a PBFT answer in this tab: the receipt's five steps, then its quorum certificate
 * against the PBFT membership (cluster id and PeerIds, as GET /api/v1/cluster reports them).
 */
async function certificateVerdict(reply: ExecuteReply, cluster: ClusterInfo): Promise<HTMLElement> {
  const pbft = cluster.pbft;
  if (pbft === undefined) return verdictNode(false, 'the relay reports no PBFT group', 'NO_MEMBERSHIP');
  const membership = verifier.membershipFromJson({ cluster: pbft.cluster, replicas: pbft.members });
  if (typeof membership === 'string') return verdictNode(false, `membership: ${membership}`, 'NO_MEMBERSHIP');
  const certificate = verifier.carriedCertificateFromJson(reply.certificate);
  if (typeof certificate === 'string') return verdictNode(false, certificate, 'CERTIFICATE_INVALID');
  const v = await verifier.verifyCertifiedReceipt(reply.receipt, certificate, membership, verifier.pbftCertificateScheme);
  if (!v.ok) return verdictNode(false, `${v.code}: ${v.reason}`, v.code);
  return verdictNode(true, `quorum certificate: f + 1 = ${pbft.f + 1} of ${pbft.members.length} PBFT replicas vouch for this receipt and its outputs (checked in this tab, ${verifier.cryptoBackend}; membership as the relay reports it)`);
}

function fieldControl(op: string, f: FormField): HTMLElement {
  const id = `op-${op}-${f.name === '' ? 'input' : f.name}`.replace(/[^A-Za-z0-9_-]/g, '_');
  let control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  if (f.kind === 'boolean') {
    control = h('input');
    control.type = 'checkbox';
  } else if (f.kind === 'enum') {
    control = h('select', {}, ...f.options.map((o) => h('option', {}, o)));
  } else if (f.kind === 'json') {
    // One line, so Enter submits the form from any field.
    control = h('input', { class: 'mono' });
    control.placeholder = 'JSON, e.g. {"a": 1} or "text"';
  } else {
    control = h('input', { class: f.kind === 'string' ? '' : 'num' });
    control.inputMode = f.kind === 'string' ? 'text' : 'decimal';
  }
  control.id = id;
  control.name = f.name;
  control.dataset['kind'] = f.kind;
  if (f.required) control.setAttribute('aria-required', 'true');
  const label = h('label', { class: f.kind === 'json' ? 'wide' : '' }, `${f.name === '' ? 'input' : f.name}${f.required ? ' *' : ''}`, control);
  label.htmlFor = id;
  if (f.hint !== '') label.append(h('span', { class: 'hint' }, f.hint));
  return label;
}

function readValues(form: HTMLFormElement, fields: FormField[]): Map<string, FormValue> {
  const values = new Map<string, FormValue>();
  for (const f of fields) {
    const control = form.elements.namedItem(f.name);
    if (control instanceof HTMLInputElement && control.type === 'checkbox') values.set(f.name, control.checked);
    else if (control instanceof HTMLInputElement || control instanceof HTMLSelectElement || control instanceof HTMLTextAreaElement) values.set(f.name, control.value);
  }
  return values;
}

function renderForm(api: RelayApi, op: OperatorInfo, cluster: ClusterInfo | null, onReceipt: (id: string) => void): void {
  const fields = formFields(op.input_schema);
  const form = byId<HTMLFormElement>('op-form');
  const result = h('span', { class: 'muted', data: { role: 'result' } });
  result.id = 'op-result';
  result.setAttribute('role', 'status');
  const button = h('button', {}, `Run ${op.id}`);
  button.type = 'submit';
  const outputs = h('pre', { class: 'mono outputs' });
  outputs.id = 'op-outputs';
  outputs.hidden = true;
  const certified = h('p', { class: 'wide' });
  certified.id = 'op-certificate';
  certified.hidden = true;
  const engine = engineControl(cluster);
  form.replaceChildren(
    h('p', { class: 'wide muted' }, op.description, op.readonly ? ' (read only)' : ''),
    ...fields.map((f) => fieldControl(op.id, f)),
    ...(engine !== null ? [engine] : []),
    h('div', { class: 'actions' }, button, result),
    certified,
    outputs,
  );
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const parsed = parseInputs(fields, readValues(form, fields));
    if (!parsed.ok) {
      showError('op-result', new Error(`${parsed.field === '' ? 'input' : parsed.field}: ${parsed.problem}`));
      const bad = form.elements.namedItem(parsed.field);
      if (bad instanceof HTMLElement) bad.focus();
      return;
    }
    const picked = form.elements.namedItem('op-engine');
    const chosen: ExecuteEngine = picked instanceof HTMLSelectElement && picked.value === 'pbft' ? 'pbft' : 'default';
    showOk('op-result', `running ${op.id}${chosen === 'pbft' ? ' through PBFT' : ''}…`);
    certified.hidden = true;
    button.disabled = true;
    api.execute(op.id, parsed.inputs, chosen).then(
      async (reply) => {
        showOk('op-result', `${reply.status} in ${reply.execution_time_ms.toFixed(1)} ms${reply.receipt_id !== null ? `; receipt ${reply.receipt_id.slice(0, 20)}…` : ''}`, 'ok');
        outputs.textContent = JSON.stringify(reply.outputs, null, 2);
        outputs.hidden = false;
        if (chosen === 'pbft' && cluster !== null) {
          // A replica signed this receipt, not the relay: it is checked here, with its certificate.
          certified.replaceChildren('checking the quorum certificate…');
          certified.hidden = false;
          certified.replaceChildren(await certificateVerdict(reply, cluster).catch((e: unknown) => verdictNode(false, errorText(e), 'ERROR')));
        } else if (reply.receipt_id !== null) onReceipt(reply.receipt_id);
      },
      (e: unknown) => showError('op-result', e),
    ).finally(() => {
      button.disabled = false;
    });
  };
}

/** Loads the registry into the picker; a failure shows in the panel and `retry` loads again. */
export async function loadOperators(api: RelayApi, onReceipt: (id: string) => void): Promise<void> {
  const select = byId<HTMLSelectElement>('op-pick');
  try {
    const [ops, cluster] = await Promise.all([api.operators(), api.cluster().catch(() => null)]);
    select.replaceChildren(...ops.map((o) => h('option', {}, o.id)));
    select.disabled = ops.length === 0;
    showOk('op-status', ops.length === 0 ? 'The relay publishes no operators.' : `${ops.length} operators; the relay runs them through its consensus engine and signs a receipt.`);
    const pick = (): void => {
      const op = ops.find((o) => o.id === select.value);
      if (op !== undefined) renderForm(api, op, cluster, onReceipt);
    };
    select.onchange = pick;
    pick();
  } catch (e) {
    showError('op-status', e);
    byId('op-form').replaceChildren();
    select.replaceChildren();
    select.disabled = true;
    byId('op-status').append(' ', retryButton(() => void loadOperators(api, onReceipt)));
  }
}

export function retryButton(again: () => void): HTMLButtonElement {
  const b = h('button', { class: 'secondary' }, 'Retry');
  b.type = 'button';
  b.onclick = again;
  return b;
}

