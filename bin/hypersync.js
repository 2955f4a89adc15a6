#!/usr/bin/env node
// Entry shim for the `hypersync` command. The CLI is TypeScript run by Node's type
// stripping, which needs Node >= 22.18 / 24; npm scripts and `npx` put the project's
// Node 24 (the `node` devDependency) first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `hypersync needs Node >= 22.18 (found ${process.versions.node}).\n` +
      'Run it through npm so the project\'s Node 24 is used: `npx hypersync ...` or `npm start`.\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
