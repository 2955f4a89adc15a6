// Prometheus text exposition (format 0.0.4), written by hand: request counters by route, method
// and status, a latency histogram by route, and gauges read from the backend at scrape time.
// Labels come from route patterns (never raw URLs), so the series count stays bounded.
import type { ClusterStatus } from './backend.ts';

/** Latency histogram buckets, in seconds. */
export const LATENCY_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Distinct label sets kept at most; later ones fold into route="other". */
export const MAX_SERIES = 2000;

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export class HttpMetrics {
  readonly #counts = new Map<string, { labels: Record<string, string>; value: number }>();
  readonly #latency = new Map<string, Histogram>();
  readonly #started = Date.now();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let c = this.#counts.get(key);
    if (c === undefined) {
      if (this.#counts.size >= MAX_SERIES) return this.observe(method, 'other', status, seconds);
      c = { labels: { method, route, status: String(status) }, value: 0 };
      this.#counts.set(key, c);
    }
    c.value += 1;
    let h = this.#latency.get(route);
    if (h === undefined) {
      h = { buckets: LATENCY_BUCKETS_S.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(route, h);
    }
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) if (seconds <= LATENCY_BUCKETS_S[i]!) h.buckets[i]! += 1;
    h.sum += seconds;
    h.count += 1;
  }

  render(cluster: ClusterStatus, treeSize: number): string {
    const out: string[] = [];
    const gauge = (name: string, help: string, value: number, l: Record<string, string> = {}): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels(l)} ${value}`);
    };
    out.push('# HELP hypersync_http_requests_total HTTP requests answered, by route pattern, method and status.', '# TYPE hypersync_http_requests_total counter');
    for (const c of this.#counts.values()) out.push(`hypersync_http_requests_total${labels(c.labels)} ${c.value}`);
    out.push('# HELP hypersync_http_request_duration_seconds Time from request to response, by route pattern.', '# TYPE hypersync_http_request_duration_seconds histogram');
    for (const [route, h] of this.#latency) {
      LATENCY_BUCKETS_S.forEach((le, i) => out.push(`hypersync_http_request_duration_seconds_bucket${labels({ route, le: String(le) })} ${h.buckets[i]}`));
      out.push(`hypersync_http_request_duration_seconds_bucket${labels({ route, le: '+Inf' })} ${h.count}`);
      out.push(`hypersync_http_request_duration_seconds_sum${labels({ route })} ${h.sum}`);
      out.push(`hypersync_http_request_duration_seconds_count${labels({ route })} ${h.count}`);
    }
    gauge('hypersync_consensus_term', 'Current consensus term (0 without consensus).', cluster.term, { consensus: cluster.consensus });
    gauge('hypersync_consensus_commit_index', 'Highest log index known committed.', cluster.commit_index);
    gauge('hypersync_consensus_applied_index', 'Highest log index applied to the state machine.', cluster.applied_index);
    gauge('hypersync_consensus_has_leader', '1 when a leader is known.', cluster.leader === null ? 0 : 1);
    gauge('hypersync_cluster_members', 'Cluster members (voters and learners).', cluster.members.length);
    gauge('hypersync_peers', 'Connected peers.', cluster.peers);
    gauge('hypersync_receipts_tree_size', 'Receipts in the Merkle tree.', treeSize);
    gauge('hypersync_uptime_seconds', 'Seconds since the API started.', Math.round((Date.now() - this.#started) / 1000));
    return `${out.join('\n')}\n`;
  }
}
