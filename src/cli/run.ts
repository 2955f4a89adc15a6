// Entry of the JavaScript build of the CLI (src/cli/vite.node.config.ts → dist/node/main.js):
// what bin/hypersync.js does, for processes the devnet starts from the build.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
