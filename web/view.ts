// DOM rendering of the tab's peer: its identity, the relays and peers with their transport,
// session state and heartbeat, and the ICO log. Only reads the data it is given; all text
// goes through textContent, never innerHTML, because peer-supplied strings end up here.
import type { PeerInfo, PeerTransport } from '../src/net/types.ts';
import type { LogEntry, TypeCount } from './message-log.ts';
import type { IcoType } from '../src/ico/types.ts';

type Child = Node | string;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: { class?: string; title?: string; data?: Record<string, string> } = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class !== undefined) node.className = props.class;
  if (props.title !== undefined) node.title = props.title;
  for (const [k, v] of Object.entries(props.data ?? {})) node.dataset[k] = v;
  node.append(...children);
  return node;
}

export function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`missing element #${id}`);
  return found as T;
}

export function shortId(peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-6)}` : peerId;
}

const TRANSPORT_LABEL: Record<PeerTransport, string> = { webrtc: 'WebRTC direct', relayed: 'relayed', websocket: 'WebSocket', tcp: 'TCP', unknown: 'unknown' };

function pill(text: string, kind: string, title?: string): HTMLSpanElement {
  return h('span', { class: `pill ${kind}`, ...(title !== undefined ? { title } : {}) }, text);
}

function ago(ms: number, now: number): string {
  if (ms <= 0) return '—';
  const s = Math.max(0, (now - ms) / 1000);
  return s < 60 ? `${s.toFixed(1)} s ago` : `${Math.floor(s / 60)} min ago`;
}

export type BannerKind = 'error' | 'warning';

/** Shows (or, with null, hides) the message above the cards. */
export function setBanner(kind: BannerKind, message: string | null): void {
  const box = byId<HTMLElement>('banner');
  if (message === null) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.className = `banner ${kind}`;
  // Back-ticked words (commands) render as code.
  box.replaceChildren(...message.split(/(`[^`]+`)/).map((part) => (part.startsWith('`') && part.endsWith('`') && part.length > 1 ? h('code', {}, part.slice(1, -1)) : part)));
  box.hidden = false;
}

/** Says whether this tab can reach peers over WebRTC, and what it does instead when not. */
export function renderWebrtc(available: boolean | null): void {
  const node = byId('webrtc');
  node.dataset['available'] = available === null ? 'unknown' : String(available);
  if (available === null) node.textContent = 'checking…';
  else if (available) node.textContent = 'available: peers upgrade to direct connections';
  else
    node.replaceChildren(
      pill('unavailable', 'down'),
      ' this browser offers no network address for WebRTC (Firefox on loopback needs ',
      h('code', {}, 'media.peerconnection.ice.loopback'),
      ' and ',
      h('code', {}, 'permissions.default.microphone = 1'),
      '): Node peers are reached over WebSocket, other tabs through the relay',
    );
}

export type Status = 'starting' | 'online' | 'connecting' | 'error';

export function setStatus(status: Status, text: string): void {
  const badge = byId<HTMLElement>('status');
  badge.textContent = text;
  badge.className = `badge ${status}`;
  badge.dataset['status'] = status;
}

export interface SelfView {
  peerId: string;
  cluster: string;
  /** What this tab is, in words (its HELLO roles and what they mean). */
  role: string;
  relays: Array<{ addr: string; peerId: string; state: 'connected' | 'connecting' | 'unreachable' | 'rejected'; detail: string }>;
}

export function renderSelf(view: SelfView): void {
  byId('peer-id').textContent = view.peerId === '' ? '—' : view.peerId;
  byId('cluster').textContent = view.cluster;
  byId('roles').textContent = view.role;
  byId('relays').replaceChildren(
    ...view.relays.map((r) =>
      h('div', { class: 'relay-row', data: { state: r.state } }, pill(r.state, r.state, r.detail), ' ', h('span', { class: 'mono', title: r.addr }, r.addr)),
    ),
  );
}

/** The peers table: one row per ICO session (the relay included), ordered relay first. */
export function renderPeers(peers: PeerInfo[], relayIds: ReadonlySet<string>, now: number): void {
  const sorted = [...peers].sort((a, b) => Number(relayIds.has(b.peerId)) - Number(relayIds.has(a.peerId)) || a.peerId.localeCompare(b.peerId));
  const body = byId<HTMLTableSectionElement>('peers-body');
  body.replaceChildren(
    ...sorted.map((p) => {
      const heartbeat = p.state === 'established' ? pill('up', 'up') : p.state === 'down' ? pill('down', 'down', 'missed heartbeats') : h('span', { class: 'muted' }, '—');
      return h(
        'tr',
        { data: { peerId: p.peerId, transport: p.transport, state: p.state } },
        // data-label names the column where rows stack (phone width).
        h('td', { class: 'mono', title: p.peerId, data: { label: 'PeerId' } }, shortId(p.peerId)),
        h('td', { data: { label: 'Roles' } }, p.roles.length > 0 ? p.roles.join(', ') : '—'),
        h('td', { data: { label: 'Transport' } }, pill(TRANSPORT_LABEL[p.transport], p.transport, p.remoteAddr)),
        h('td', { data: { label: 'ICO session' } }, pill(p.state, p.state)),
        h('td', { data: { label: 'Heartbeat' } }, heartbeat),
        h('td', { class: 'num', data: { label: 'Last seen' } }, ago(p.lastSeen, now)),
      );
    }),
  );
  byId('peers-empty').hidden = peers.length > 0;
  const established = peers.filter((p) => p.state === 'established');
  const direct = established.filter((p) => p.transport === 'webrtc').length;
  const relayed = established.filter((p) => p.transport === 'relayed').length;
  byId('peer-count').textContent = `${established.length} established · ${direct} WebRTC direct · ${relayed} relayed`;
}

/** Names a PeerId for the log: this tab, the relay, or a shortened id. */
export type PeerNamer = (peerId: string) => string;

export function renderLog(entries: LogEntry[], totals: Array<[IcoType, TypeCount]>, name: PeerNamer): void {
  byId<HTMLTableSectionElement>('log-body').replaceChildren(
    ...entries.map((e) =>
      h(
        'tr',
        { class: e.direction, data: { type: e.type } },
        h('td', { class: 'num', title: `signed at ${e.timestamp} (sender's clock)` }, new Date(e.at).toISOString().slice(11, 23)),
        h('td', {}, pill(e.type, `type-${e.type.toLowerCase()}`)),
        h('td', { class: 'mono', title: e.from }, name(e.from)),
        h('td', { class: 'mono', title: e.to }, e.to === '*' ? 'all (gossipsub)' : name(e.to)),
        h('td', { class: 'num' }, String(e.seq)),
      ),
    ),
  );
  byId('log-empty').hidden = entries.length > 0;
  byId('log-totals').replaceChildren(
    ...totals.map(([type, c]) => h('span', { class: 'total', title: `${type}: ${c.in} received, ${c.out} sent` }, h('b', {}, type), ` ↓${c.in} ↑${c.out}`)),
  );
}

/** Fills the recipient picker of the send form with the established peers, keeping the choice. */
export function renderRecipients(peers: PeerInfo[], name: PeerNamer): void {
  const select = byId<HTMLSelectElement>('send-to');
  const established = peers.filter((x) => x.state === 'established');
  // Rebuilding the options closes an open dropdown: only do it when the choices change.
  const key = established.map((p) => p.peerId).join(',');
  if (select.dataset['peers'] === key) return;
  select.dataset['peers'] = key;
  const chosen = select.value;
  const options = [h('option', {}, 'all peers (gossipsub)')];
  options[0]!.value = '*';
  for (const p of established) {
    const o = h('option', {}, `${name(p.peerId)} (${p.roles.join(', ') || '?'})`);
    o.value = p.peerId;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === chosen) ? chosen : '*';
}
