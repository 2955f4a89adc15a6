// `hypersync docs get|put|delete|list`, `hypersync conflicts list|resolve` and `hypersync sync`
// against a running relay (endpoints from <devnet>/endpoints.json, like `cluster status`):
// the relay's REST routes /api/v1/docs, /api/v1/conflicts and /api/v1/sync.
import { callApi, resolveTarget, type ApiTarget } from './api-client.ts';
import { int, parse, str, UsageError, type Parsed } from './args.ts';

type Out = (s: string) => void;

const TARGET_OPTIONS = `  --api URL        relay API base URL (default: "rest" of <devnet>/endpoints.json)
  --ca FILE        CA certificate for https (default: the devnet's ca.pem)
  --token TOKEN    bearer token (default: the devnet's token)
  --devnet DIR     devnet folder to read endpoints.json from (default .devnet)
  --json           print the raw JSON`;

export const DOCS_HELP = `usage: hypersync docs get KEY | put KEY JSON | delete KEY | list [--prefix P] [--limit N] [options]

Reads and writes the synced document store through the relay (writes are signed by the relay
and reach every peer by gossip and sync). KEY may contain '/'; JSON is any JSON value.

options:
${TARGET_OPTIONS}
`;

export const CONFLICTS_HELP = `usage: hypersync conflicts list | resolve KEY (--value JSON | --version ID) [options]

Documents under a manual policy (keys starting with manual/, or cluster.json sync.policies)
keep concurrent versions until someone resolves them; a resolution is a signed record that
syncs like any other write.

options:
${TARGET_OPTIONS}
`;

export const SYNC_HELP = `usage: hypersync sync [--peer PEERID] [--mode auto|vector|range] [--timeout-ms N] [options]

Asks the relay to sync its documents and receipt logs with one peer (or every established
peer) now, and shows a progress bar until every session finished.

options:
${TARGET_OPTIONS}
`;

const TARGET_FLAGS = { api: { type: 'string' }, ca: { type: 'string' }, token: { type: 'string' }, devnet: { type: 'string' }, json: { type: 'boolean' } } as const;

async function target(p: Parsed): Promise<ApiTarget> {
  return resolveTarget({ api: str(p, 'api'), ca: str(p, 'ca'), token: str(p, 'token'), devnet: str(p, 'devnet') });
}

function apiFailed(status: number, json: unknown, what: string): number {
  const err = (json as { error?: { code?: string; message?: string } }).error;
  process.stderr.write(`hypersync: ${err?.code ?? `HTTP ${status}`}: ${err?.message ?? what}\n`);
  return 1;
}

function parseJsonArg(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${name} must be JSON (quote strings: '"text"')`);
  }
}

function docPath(key: string): string {
  return `/api/v1/docs/${key.split('/').map(encodeURIComponent).join('/')}`;
}

interface DocView {
  key: string;
  value: unknown;
  deleted: boolean;
  conflict: boolean;
  versions: Array<{ id: string; origin: string; seq: number; op: string; value: unknown; t: [number, number] }>;
}

export async function docsCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(DOCS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, { ...TARGET_FLAGS, prefix: { type: 'string' }, limit: { type: 'string' } }, true);
  if (p.values['help'] === true) {
    out(DOCS_HELP);
    return 0;
  }
  const t = await target(p);
  const [key, value] = p.positionals;
  let reply: { status: number; json: unknown };
  switch (sub) {
    case 'get':
      if (key === undefined) throw new UsageError('docs get needs a KEY');
      reply = await callApi(t, 'GET', docPath(key));
      break;
    case 'put':
      if (key === undefined || value === undefined) throw new UsageError('docs put needs KEY and JSON');
      reply = await callApi(t, 'PUT', docPath(key), { value: parseJsonArg(value, 'the value') });
      break;
    case 'delete':
      if (key === undefined) throw new UsageError('docs delete needs a KEY');
      reply = await callApi(t, 'DELETE', docPath(key));
      break;
    case 'list': {
      const q = new URLSearchParams();
      const prefix = str(p, 'prefix');
      if (prefix !== undefined) q.set('prefix', prefix);
      q.set('limit', String(int(p, 'limit', 100, 1, 1000)));
      reply = await callApi(t, 'GET', `/api/v1/docs?${q}`);
      break;
    }
    default:
      throw new UsageError(`unknown docs command '${sub}' (try: get, put, delete, list)`);
  }
  if (reply.status !== 200) return apiFailed(reply.status, reply.json, `docs ${sub} failed`);
  if (p.values['json'] === true || sub === 'put' || sub === 'delete') {
    out(`${JSON.stringify(reply.json, null, p.values['json'] === true ? 2 : undefined)}\n`);
    return 0;
  }
  const docs = sub === 'list' ? (reply.json as { docs: DocView[] }).docs : [reply.json as DocView];
  for (const d of docs) out(`${d.key}\t${d.deleted ? '(deleted)' : JSON.stringify(d.value)}${d.conflict ? `\t(conflict: ${d.versions.length} versions)` : ''}\n`);
  return 0;
}

export async function conflictsCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(CONFLICTS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, { ...TARGET_FLAGS, value: { type: 'string' }, version: { type: 'string' } }, true);
  if (p.values['help'] === true) {
    out(CONFLICTS_HELP);
    return 0;
  }
  if (sub === 'list') {
    const reply = await callApi(await target(p), 'GET', '/api/v1/conflicts');
    if (reply.status !== 200) return apiFailed(reply.status, reply.json, 'cannot list conflicts');
    if (p.values['json'] === true) {
      out(`${JSON.stringify(reply.json, null, 2)}\n`);
      return 0;
    }
    const conflicts = (reply.json as { conflicts: DocView[] }).conflicts;
    if (conflicts.length === 0) out('no open conflicts\n');
    for (const c of conflicts) {
      out(`${c.key}  (${c.versions.length} concurrent versions)\n`);
      for (const v of c.versions) out(`  ${v.id}  ${v.op} ${JSON.stringify(v.value)}  by ${v.origin} #${v.seq} at ${new Date(v.t[0]).toISOString()}\n`);
    }
    return 0;
  }
  if (sub !== 'resolve') throw new UsageError(`unknown conflicts command '${sub}' (try: list, resolve)`);
  const key = p.positionals[0];
  if (key === undefined) throw new UsageError('conflicts resolve needs a KEY');
  const value = str(p, 'value');
  const version = str(p, 'version');
  if ((value === undefined) === (version === undefined)) throw new UsageError('give exactly one of --value JSON or --version ID');
  const body = value !== undefined ? { key, value: parseJsonArg(value, '--value') } : { key, version };
  const reply = await callApi(await target(p), 'POST', '/api/v1/conflicts/resolve', body);
  if (reply.status !== 200) return apiFailed(reply.status, reply.json, 'cannot resolve');
  const r = reply.json as { key: string; value: unknown; origin: string; seq: number };
  out(p.values['json'] === true ? `${JSON.stringify(r, null, 2)}\n` : `resolved ${r.key} = ${JSON.stringify(r.value)} (signed resolution ${r.origin} #${r.seq}; it syncs to every peer)\n`);
  return 0;
}

interface Progress {
  peer: string;
  mode: string;
  phase: string;
  sent: number;
  received: number;
  queued: number;
  startedAt: number;
}
interface Report extends Progress {
  equal: boolean;
  ms: number;
  rounds: number;
  passes: number;
}

/** Polls the relay this often while a sync runs. */
export const SYNC_POLL_MS = 100;
const BAR_WIDTH = 30;

function bar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((BAR_WIDTH * done) / total);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

export async function syncCommand(argv: string[], out: Out): Promise<number> {
  const p = parse(argv, { ...TARGET_FLAGS, peer: { type: 'string' }, mode: { type: 'string' }, 'timeout-ms': { type: 'string' } });
  if (p.values['help'] === true) {
    out(SYNC_HELP);
    return 0;
  }
  const mode = str(p, 'mode');
  if (mode !== undefined && mode !== 'auto' && mode !== 'vector' && mode !== 'range') throw new UsageError('--mode must be auto, vector or range');
  const timeoutMs = int(p, 'timeout-ms', 120_000, 100, 3_600_000);
  const t = await target(p);
  const peer = str(p, 'peer');
  const started = await callApi(t, 'POST', '/api/v1/sync', { ...(peer !== undefined ? { peer } : {}), ...(mode !== undefined ? { mode } : {}) });
  if (started.status !== 202) return apiFailed(started.status, started.json, 'cannot start a sync');
  const { started: peers, startedAt } = started.json as { started: string[]; startedAt: number };
  if (peers.length === 0) {
    out('no established peers to sync with\n');
    return 0;
  }
  const tty = process.stderr.isTTY === true;
  const deadline = Date.now() + timeoutMs;
  let lastLine = 0;
  for (;;) {
    const status = await callApi(t, 'GET', '/api/v1/sync');
    if (status.status !== 200) return apiFailed(status.status, status.json, 'cannot read sync status');
    const s = status.json as { sessions: Progress[]; reports: Report[]; summary: { n: number } };
    const finished = peers.map((id) => s.reports.filter((r) => r.peer === id && r.startedAt >= startedAt - 1000).at(-1));
    const running = s.sessions.filter((x) => peers.includes(x.peer) && x.startedAt >= startedAt - 1000);
    const moved = running.reduce((a, x) => a + x.sent + x.received, 0) + finished.reduce((a, r) => a + (r?.sent ?? 0) + (r?.received ?? 0), 0);
    const queued = running.reduce((a, x) => a + x.queued, 0);
    const doneCount = finished.filter((r) => r !== undefined).length;
    const line = `${bar(doneCount * 1000 + Math.min(999, Math.round((1000 * moved) / Math.max(1, moved + queued))) * (doneCount < peers.length ? 1 : 0), peers.length * 1000)} ${doneCount}/${peers.length} peers  ${moved} records moved${queued > 0 ? `, ${queued} queued` : ''}  (${s.summary.n} versions held)`;
    if (tty) process.stderr.write(`\r${line}\u001b[K`);
    else if (Date.now() - lastLine >= 1000 || doneCount === peers.length) {
      process.stderr.write(`${line}\n`);
      lastLine = Date.now();
    }
    if (doneCount === peers.length) {
      if (tty) process.stderr.write('\n');
      if (p.values['json'] === true) out(`${JSON.stringify(finished, null, 2)}\n`);
      else for (const r of finished as Report[]) out(`${r.peer}  ${r.mode}  ${r.equal ? 'in sync' : 'NOT in sync'}  sent ${r.sent}, received ${r.received}, ${r.rounds} messages, ${r.passes} pass(es), ${r.ms} ms\n`);
      return (finished as Report[]).every((r) => r.equal) ? 0 : 1;
    }
    if (Date.now() > deadline) {
      process.stderr.write(`\nhypersync: SYNC_TIMEOUT: ${peers.length - doneCount} session(s) still running after ${timeoutMs} ms\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, SYNC_POLL_MS));
  }
}
