// The live graph of this tab's peers: the tab in the middle, every peer it has a session with
// on a circle around it, one edge per peer drawn by how the tab reaches it (a direct WebRTC
// link solid green, a link relayed through the relay dashed amber, WebSocket/TCP blue). SVG
// built with DOM calls only (peer-supplied strings never become markup).
import type { PeerInfo, PeerTransport } from '../../src/net/types.ts';
import { byId, shortId } from '../view.ts';

/** Peers drawn; the table below lists any beyond it. */
export const MAX_GRAPH_PEERS = 48;
const SIZE = 320;
const RADIUS = 120;
const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function edgeKind(t: PeerTransport): 'direct' | 'relayed' | 'server' {
  return t === 'webrtc' ? 'direct' : t === 'relayed' ? 'relayed' : 'server';
}

export function renderGraph(peers: PeerInfo[], relayIds: ReadonlySet<string>): void {
  const shown = peers.filter((p) => p.state === 'established' || p.state === 'down').slice(0, MAX_GRAPH_PEERS);
  const counts = { direct: 0, relayed: 0, server: 0 };
  const svg = el('svg', { viewBox: `0 0 ${SIZE} ${SIZE}`, class: 'graph', role: 'img' });
  const c = SIZE / 2;
  const nodes: SVGElement[] = [];
  shown.forEach((p, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, shown.length) - Math.PI / 2;
    const x = c + RADIUS * Math.cos(a);
    const y = c + RADIUS * Math.sin(a);
    const kind = edgeKind(p.transport);
    if (p.state === 'established') counts[kind]++;
    const line = el('line', { x1: c, y1: c, x2: x, y2: y, class: `edge ${kind} ${p.state}` });
    line.dataset['peerId'] = p.peerId;
    line.dataset['kind'] = kind;
    line.append(el('title', {}, `${shortId(p.peerId)}: ${p.transport} (${p.state})`));
    svg.append(line);
    const g = el('g', { class: `node ${relayIds.has(p.peerId) ? 'relay' : p.roles.includes('browser') ? 'tab' : 'node'}` });
    g.append(el('circle', { cx: x, cy: y, r: 13 }), el('text', { x, y: y + 27, 'text-anchor': 'middle' }, relayIds.has(p.peerId) ? 'relay' : `…${p.peerId.slice(-6)}`));
    nodes.push(g);
  });
  const me = el('g', { class: 'node self' });
  me.append(el('circle', { cx: c, cy: c, r: 16 }), el('text', { x: c, y: c + 32, 'text-anchor': 'middle' }, 'this tab'));
  svg.append(...nodes, me);
  const summary = shown.length === 0 ? 'No peers yet.' : `This tab and ${shown.length} peer(s): ${counts.direct} direct WebRTC, ${counts.relayed} relayed, ${counts.server} over WebSocket or TCP.`;
  svg.setAttribute('aria-label', summary);
  svg.dataset['direct'] = String(counts.direct);
  svg.dataset['relayed'] = String(counts.relayed);
  byId('graph').replaceChildren(svg);
  byId('graph-summary').textContent = summary;
}
