// Documents and sync: this tab's synced documents (IndexedDB, usable offline), a form to
// write or delete one, sync progress, and the open conflicts with a manual resolution UI:
// keep one of the concurrent versions, or write a merged value. Resolutions are signed
// records that sync like any write.
import type { DocEntry } from '../../src/sync/docstore.ts';
import type { SyncService } from '../../src/sync/service.ts';
import type { Json } from '../../src/ico/types.ts';
import { byId, h, shortId } from '../view.ts';
import { showError, showOk } from './panel-state.ts';

/** Documents the panel lists (the newest keys by name); `hypersync.docs.list` pages through all. */
export const DOCS_SHOWN = 100;
/** Conflicts the panel shows at once. */
export const CONFLICTS_SHOWN = 20;

function valueText(v: Json): string {
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

function parseValue(text: string): Json {
  // A person typing a plain word means a string.
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

function conflictCard(service: SyncService, c: DocEntry, after: () => void): HTMLElement {
  const merged = h('input', { class: 'mono' });
  merged.id = `merge-${c.key}`.replace(/[^A-Za-z0-9_-]/g, '_');
  merged.placeholder = 'a merged value (JSON or text)';
  const status = h('span', { class: 'muted' });
  status.setAttribute('role', 'status');
  const resolve = (resolution: { value: Json } | { version: string }, what: string): void => {
    status.textContent = 'resolving…';
    service.resolve(c.key, resolution).then(
      () => {
        status.textContent = `resolved with ${what}`;
        after();
      },
      (e: unknown) => {
        status.textContent = e instanceof Error ? e.message : String(e);
        status.className = 'bad';
      },
    );
  };
  const versions = c.versions.map((v) => {
    const keep = h('button', { class: 'secondary' }, 'Keep this version');
    keep.type = 'button';
    keep.setAttribute('aria-label', `Keep this version of ${c.key}: ${valueText(v.value)} from ${shortId(v.origin)}`);
    keep.onclick = () => resolve({ version: v.id }, `the version from ${shortId(v.origin)}`);
    return h('li', { data: { version: v.id } }, h('code', {}, valueText(v.value)), ' ', h('span', { class: 'muted' }, `from ${shortId(v.origin)} #${v.seq}`), ' ', keep);
  });
  const write = h('button', {}, 'Resolve with this value');
  write.type = 'button';
  write.onclick = () => (merged.value.trim() === '' ? merged.focus() : resolve({ value: parseValue(merged.value) }, 'a merged value'));
  const label = h('label', {}, `Merged value for ${c.key}`, merged);
  label.htmlFor = merged.id;
  return h('div', { class: 'conflict', data: { key: c.key } }, h('h3', {}, h('code', {}, c.key), ` · ${c.versions.length} concurrent versions`), h('ul', {}, ...versions), h('div', { class: 'merge' }, label, write, status));
}

export interface DocsPanel {
  /** Redraws everything (reads the store); bursts are coalesced. */
  render(): Promise<void>;
  /** Redraws the sync line only (for progress events). */
  renderStatus(): void;
}

/** `current` is the running sync service (a new one each time the tab goes online again). */
export function docsPanel(current: () => SyncService): DocsPanel {
  let rendering: Promise<void> | null = null;
  let again = false;
  let cards = new Map<string, HTMLElement>();
  let cardsFor: SyncService | null = null;
  /** The sync line and counts: no store reads, so progress events can redraw it freely. */
  function drawStatus(): void {
    const service = current();
    const status = service.status();
    byId('docs-count').textContent = `(${status.summary.n} versions)`;
    const last = status.reports.at(-1);
    const running = status.sessions;
    byId('docs-sync').textContent = running.length > 0
      ? `syncing with ${running.length} peer(s): ${running.map((s) => `${shortId(s.peer)} ${s.phase}`).join(', ')}`
      : last === undefined ? 'not synced yet' : `last sync with ${shortId(last.peer)}: ${last.mode}, ${last.received} received, ${last.sent} sent, ${last.equal ? 'in sync' : 'not in sync'}`;
  }
  async function draw(): Promise<void> {
    const service = current();
    const status = service.status();
    const docs = await service.docs.list({ limit: DOCS_SHOWN });
    const conflicts = (await service.docs.conflicts()).slice(0, CONFLICTS_SHOWN);
    drawStatus();
    byId<HTMLTableSectionElement>('docs-body').replaceChildren(
      ...docs.map((d) => h('tr', { data: { key: d.key, conflict: String(d.conflict) } },
        h('td', { class: 'mono', data: { label: 'Key' } }, d.key),
        h('td', { class: 'mono', data: { label: 'Value' } }, d.deleted ? '(deleted)' : valueText(d.value)),
        h('td', { data: { label: 'State' } }, d.conflict ? h('span', { class: 'pill down' }, 'conflict') : h('span', { class: 'pill up' }, 'ok')),
      )),
    );
    byId('docs-empty').hidden = docs.length > 0;
    const el = byId('docs-conflicts');
    el.textContent = status.conflicts.length === 0 ? 'no open conflicts' : `${status.conflicts.length} open conflict(s): ${status.conflicts.slice(0, 5).join(', ')}; keep one version or write a merged value below`;
    el.className = status.conflicts.length === 0 ? 'muted' : 'bad';
    // Cards are kept while their conflict is unchanged, so a redraw (sync traffic) never wipes
    // a merged value someone is typing.
    // A card resolves through the service it was drawn for: a new service (back online) draws new cards.
    if (cardsFor !== service) cards = new Map();
    cardsFor = service;
    const next = new Map<string, HTMLElement>();
    for (const c of conflicts) {
      const sig = `${c.key}\u0000${c.versions.map((v) => v.id).join(',')}`;
      next.set(sig, cards.get(sig) ?? conflictCard(service, c, () => void panel.render()));
    }
    cards = next;
    const box = byId('conflicts');
    const wanted = [...next.values()];
    if (wanted.length !== box.children.length || wanted.some((el, i) => box.children[i] !== el)) box.replaceChildren(...wanted);
  }
  const panel: DocsPanel = {
    renderStatus: drawStatus,
    // Renders are coalesced: a burst of sync events draws once more after the current draw.
    async render() {
      if (rendering !== null) {
        again = true;
        return rendering;
      }
      rendering = (async () => {
        do {
          again = false;
          await draw();
        } while (again);
      })().finally(() => {
        rendering = null;
      });
      return rendering;
    },
  };
  const form = byId<HTMLFormElement>('doc-form');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = byId<HTMLInputElement>('doc-key').value.trim();
    const text = byId<HTMLInputElement>('doc-value').value;
    const del = (ev.submitter as HTMLButtonElement | null)?.value === 'delete';
    if (key === '') {
      showError('doc-result', new Error('a key is required'));
      byId('doc-key').focus();
      return;
    }
    const docs = current().docs;
    (del ? docs.delete(key) : docs.put(key, parseValue(text))).then(
      (r) => {
        showOk('doc-result', `${del ? 'deleted' : 'saved'} ${key} (#${r.seq})`, 'ok');
        void panel.render();
      },
      (e: unknown) => showError('doc-result', e),
    );
  });
  return panel;
}
