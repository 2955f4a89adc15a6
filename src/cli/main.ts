// The `hypersync` command: dispatches to subcommands, maps typed errors to exit codes
// (2 = usage, 1 = failure), and keeps stdout for command output (logs go to stderr).
import { UsageError } from './args.ts';

export const MAIN_HELP = `usage: hypersync <command> [options]

commands:
  devnet      start a local cluster: relay + three Node peers + web app (npm start)
  relay       run a relay (libp2p WebSocket + circuit relay v2 + discovery + /healthz)
  node        run a peer that joins a cluster through a relay
  keys        peer keys, cluster key, join tokens
  receipts    export, verify and prove signed receipts
  cluster     consensus status of a running cluster (leader, term, commit index, members)
  docs        get, put, delete, list synced documents through the relay
  conflicts   list and resolve documents with concurrent versions (manual policy)
  sync        sync the relay with its peers now, with a progress bar

Run 'hypersync <command> --help' for the options of each.
`;

function out(s: string): void {
  process.stdout.write(s);
}

export async function main(argv: string[]): Promise<number> {
  const levelAt = argv.indexOf('--log-level');
  if (levelAt >= 0 && argv[levelAt + 1] !== undefined) process.env['HYPERSYNC_LOG'] = argv[levelAt + 1];
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        process.stderr.write(MAIN_HELP);
        return 2;
      case '--help':
      case '-h':
      case 'help':
        out(MAIN_HELP);
        return 0;
      case '--version':
        out('hypersync 0.1.0\n');
        return 0;
      case 'devnet':
        return await (await import('./devnet.ts')).devnetCommand(rest, out);
      case 'relay':
        return await (await import('./peer-commands.ts')).relayCommand(rest, out);
      case 'node':
        return await (await import('./peer-commands.ts')).nodeCommand(rest, out);
      case 'keys':
        return await (await import('./keys.ts')).keysCommand(rest, out);
      case 'cluster':
        return await (await import('./cluster.ts')).clusterCommand(rest, out);
      case 'receipts':
        return await (await import('./receipts.ts')).receiptsCommand(rest, out);
      case 'docs':
        return await (await import('./sync.ts')).docsCommand(rest, out);
      case 'conflicts':
        return await (await import('./sync.ts')).conflictsCommand(rest, out);
      case 'sync':
        return await (await import('./sync.ts')).syncCommand(rest, out);
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`hypersync: ${e.message}\n${e.message.includes('usage:') ? '' : `Run 'hypersync ${command ?? ''} --help' for usage.\n`}`);
      return 2;
    }
    const err = e as Error & { code?: string };
    process.stderr.write(`hypersync: ${err.code !== undefined ? `${err.code}: ` : ''}${err.message}\n`);
    return 1;
  }
}
