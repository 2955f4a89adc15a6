// The consensus panel: what the relay's replica knows of the Raft group (role of each
// member, term, leader, commit and applied index) and the most recent committed operations
// (one receipt per applied entry); the PBFT group beside it (view, primary, each replica's
// watermarks, last executed sequence number and stable checkpoint), or "not running".
import type { ClusterInfo, PbftInfo, ReceiptView, RelayApi } from '../relay-api.ts';
import type { RaftRuntimeStatus } from '../../src/consensus/raft/runtime/index.ts';
import { byId, h, shortId } from '../view.ts';
import { showError, showOk } from './panel-state.ts';

/** Recent committed operations shown. */
export const RECENT_LOG_ENTRIES = 8;

function memberState(info: ClusterInfo, peerId: string, state: string | undefined): string {
  if (info.leader === peerId) return 'leader';
  return state ?? 'follower';
}

export function renderConsensus(info: ClusterInfo, recent: ReceiptView[]): void {
  const status = byId('consensus-status');
  status.dataset['consensus'] = info.consensus;
  const self = info.members.find((m) => m.peerId === info.self);
  byId('raft-summary').replaceChildren(
    h('dt', {}, 'Engine'), h('dd', {}, info.consensus),
    h('dt', {}, 'Term'), h('dd', { data: { field: 'term' } }, String(info.term)),
    h('dt', {}, 'Leader'), h('dd', { class: 'mono', title: info.leader ?? '', data: { field: 'leader' } }, info.leader === null ? 'none (election in progress)' : shortId(info.leader)),
    h('dt', {}, 'Commit'), h('dd', { data: { field: 'commit' } }, `${info.commit_index} committed · ${info.applied_index} applied`),
    h('dt', {}, 'Relay'), h('dd', {}, self === undefined ? 'not a member (single engine)' : `${self.role} (its replica answers this panel)`),
  );
  byId<HTMLTableSectionElement>('raft-members').replaceChildren(
    ...info.members.map((m) =>
      h('tr', { data: { peerId: m.peerId, role: m.role } },
        h('td', { class: 'mono', title: m.peerId, data: { label: 'Member' } }, shortId(m.peerId)),
        h('td', { data: { label: 'Role' } }, m.role),
        h('td', { data: { label: 'State' } }, memberState(info, m.peerId, m.state)),
        h('td', { class: 'num', data: { label: 'Match' } }, m.match === undefined ? '—' : String(m.match)),
      ),
    ),
  );
  byId('raft-members-empty').hidden = info.members.length > 0;
  byId<HTMLOListElement>('raft-log').replaceChildren(
    ...recent.map((r) => h('li', { data: { index: String(r.index) } }, h('span', { class: 'num' }, `#${r.index}`), ' ', h('code', {}, r.operation.operator_id), ' ', h('span', { class: 'muted' }, r.timestamp))),
  );
  byId('raft-log-empty').hidden = recent.length > 0;
  renderPbft(info.pbft);
  showOk('consensus-status', `${info.consensus} · term ${info.term} · read ${new Date().toISOString().slice(11, 19)} UTC`);
}

/** The PBFT group: its view and primary as f+1 replicas report them, then each replica's own view. */
function renderPbft(p: PbftInfo | undefined): void {
  const status = byId('pbft-status');
  const table = byId('pbft-table');
  if (p === undefined) {
    status.textContent = 'not running: this cluster has no PBFT group (the devnet runs one on four peers)';
    table.hidden = true;
    byId<HTMLTableSectionElement>('pbft-replicas').replaceChildren();
    return;
  }
  status.dataset['view'] = p.view === null ? '' : String(p.view);
  status.textContent = p.view === null || p.primary === null
    ? `${p.members.length} replicas (f = ${p.f}): changing views, no f+1 agree on one yet`
    : `view ${p.view} · primary ${shortId(p.primary)} · ${p.members.length} replicas, f = ${p.f} · requests with options.consensus "pbft"`;
  table.hidden = false;
  byId<HTMLTableSectionElement>('pbft-replicas').replaceChildren(
    ...p.replicas.map((r) =>
      h('tr', { data: { peerId: r.self } },
        h('td', { class: 'mono', title: r.self, data: { label: 'Replica' } }, r.self === r.primary ? `${shortId(r.self)} (primary)` : shortId(r.self)),
        h('td', { class: 'num', data: { label: 'View' } }, String(r.view)),
        h('td', { data: { label: 'State' } }, r.active ? 'active' : 'changing view'),
        h('td', { class: 'num', data: { label: 'Watermarks' } }, `${r.low_watermark}–${r.high_watermark}`),
        h('td', { class: 'num', data: { label: 'Executed' } }, String(r.last_executed)),
        h('td', { class: 'num', title: r.stable_checkpoint.digest, data: { label: 'Stable checkpoint' } }, String(r.stable_checkpoint.seq)),
      ),
    ),
  );
}

/** Reads the cluster and the newest receipts; shows the failure in the panel on error. */
export async function refreshConsensus(api: RelayApi): Promise<void> {
  try {
    const info = await api.cluster();
    const head = await api.treeHead();
    const from = Math.max(0, head.size - RECENT_LOG_ENTRIES);
    const recent = head.size === 0 ? [] : (await api.receipts(from, RECENT_LOG_ENTRIES)).receipts.reverse();
    renderConsensus(info, recent);
  } catch (e) {
    showError('consensus-status', e);
  }
}

/** What the tab-group part of the panel shows (window.hypersync.raft.status()). */
export type TabGroupView = Pick<RaftRuntimeStatus, 'id' | 'role' | 'leader' | 'term' | 'commit' | 'applied' | 'voters'> & { group: string };

/** This tab's own Raft group of tabs: its role, term, leader, commit and applied index, the members. */
export function renderTabGroup(s: TabGroupView | null): void {
  const list = byId('tab-group');
  byId('tab-group-empty').hidden = s !== null;
  list.hidden = s === null;
  if (s === null) {
    list.replaceChildren();
    return;
  }
  const name = (id: string): string => (id === s.id ? `${shortId(id)} (this tab)` : shortId(id));
  list.replaceChildren(
    h('dt', {}, 'Group'), h('dd', { data: { field: 'group' } }, s.group),
    h('dt', {}, 'Role'), h('dd', { data: { field: 'role' } }, s.role),
    h('dt', {}, 'Term'), h('dd', { data: { field: 'term' } }, String(s.term)),
    h('dt', {}, 'Leader'), h('dd', { class: 'mono', title: s.leader, data: { field: 'leader' } }, s.leader === '' ? 'none (election in progress)' : name(s.leader)),
    h('dt', {}, 'Commit'), h('dd', { data: { field: 'commit' } }, `${s.commit} committed · ${s.applied} applied`),
    h('dt', {}, 'Members'), h('dd', { class: 'mono', data: { field: 'members' } }, s.voters.map(name).join(' · ')),
  );
}
