// `hypersync cluster status`: the Raft group as the relay API sees it (GET /api/v1/cluster):
// leader, term, commit and applied index, and every member with its role; with a PBFT group,
// its view, primary, and each replica's watermarks and last stable checkpoint.
import type { ClusterStatus } from '../../relay/api/backend.ts';
import type { PbftClusterView } from '../consensus/pbft/runtime/gateway.ts';
import { callApi, resolveTarget } from './api-client.ts';
import { parse, str, UsageError } from './args.ts';

export const CLUSTER_HELP = `usage: hypersync cluster status [options]

Shows the cluster's consensus state: leader, term, commit index, applied index, members;
with a PBFT group also its view, primary, and each replica's watermarks and stable checkpoint.
Reads the relay API's GET /api/v1/cluster.

options:
  --api URL        relay API base URL (default: "rest" of <devnet>/endpoints.json)
  --ca FILE        CA certificate for https (default: the devnet's ca.pem)
  --token TOKEN    bearer token (default: the devnet's token)
  --devnet DIR     devnet folder to read endpoints.json from (default .devnet)
  --json           print the raw JSON
`;

/** The PBFT group: the view f+1 replicas are in, its primary, and each replica's watermarks and stable checkpoint. */
function pbftLines(v: PbftClusterView): string[] {
  const byId = new Map(v.replicas.map((r) => [r.self, r]));
  return [
    `pbft:          n=${v.members.length} f=${v.f}, cluster ${v.cluster}`,
    `  view:        ${v.view ?? '(not known yet: fewer than f+1 replicas answered)'}`,
    `  primary:     ${v.primary ?? '(unknown)'}`,
    `  replicas:`,
    ...v.members.map((id) => {
      const r = byId.get(id);
      if (r === undefined) return `    ${id}  (no status)`;
      return `    ${id}  view ${r.view}${r.active ? '' : ' (changing view)'}${id === v.primary ? ' (primary)' : ''}  executed ${r.last_executed}  watermarks (${r.low_watermark}, ${r.high_watermark}]  stable checkpoint ${r.stable_checkpoint.seq}  dropped ${r.dropped_total}`;
    }),
  ];
}

export async function clusterCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(CLUSTER_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'status') throw new UsageError(`unknown cluster command '${sub}' (try: status)`);
  const p = parse(rest, { api: { type: 'string' }, ca: { type: 'string' }, token: { type: 'string' }, devnet: { type: 'string' }, json: { type: 'boolean' } });
  if (p.values['help'] === true) {
    out(CLUSTER_HELP);
    return 0;
  }
  const target = await resolveTarget({ api: str(p, 'api'), ca: str(p, 'ca'), token: str(p, 'token'), devnet: str(p, 'devnet') });
  const { status, json } = await callApi(target, 'GET', '/api/v1/cluster');
  if (status !== 200) {
    const err = (json as { error?: { code?: string; message?: string } }).error;
    process.stderr.write(`hypersync: ${err?.code ?? `HTTP ${status}`}: ${err?.message ?? 'cluster status unavailable'}\n`);
    return 1;
  }
  if (p.values['json'] === true) {
    out(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  const s = json as ClusterStatus;
  const lines = [
    `consensus:     ${s.consensus}`,
    `leader:        ${s.leader ?? '(none: election in progress)'}`,
    `term:          ${s.term}`,
    `commit index:  ${s.commit_index}`,
    `applied index: ${s.applied_index} (on ${s.self})`,
    `members:`,
    ...s.members.map((m) => `  ${m.peerId}  ${m.role}${m.peerId === s.leader ? ' (leader)' : ''}${m.peerId === s.self ? ' (this relay)' : ''}${m.match !== undefined ? `  match ${m.match}` : ''}`),
    ...(s.pbft === undefined ? [] : pbftLines(s.pbft)),
  ];
  out(`${lines.join('\n')}\n`);
  return 0;
}
