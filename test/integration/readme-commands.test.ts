// The README's commands name things that exist: every `npx hypersync …` it shows (in code
// blocks and inline) is a real subcommand that accepts every flag written there (the CLI's
// parser is strict, so an unknown flag is a usage error even with --help), and every
// `npm run X` is a script of package.json. The fresh-clone test runs the devnet blocks for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { ROOT } from '../harness/processes.ts';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Shell words of a command line, up to a redirection, pipe or comment; quotes removed. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: '"' | "'" | null = null;
  let inWord = false;
  for (const ch of line) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      else word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if ((ch === '>' || ch === '|' || ch === '#' || ch === '`') && !inWord) {
      break;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Every `npx hypersync …` of the README: block lines (continuations joined) and inline code. */
function hypersyncCommands(): string[][] {
  const text = README.replace(/\\\n\s*/g, '');
  const found: string[][] = [];
  for (const m of text.matchAll(/npx hypersync ([^`\n]*)/g)) {
    // `…` stands for "the options shown above", [ ] for optional parts: keep what is inside.
    const words = shellWords(m[1]!).map((w) => w.replace(/^\[|\]$/g, '')).filter((w) => w !== '…' && w !== '');
    found.push(words);
  }
  return found;
}

test('every `npx hypersync …` in the README is a command that accepts the flags it shows', async () => {
  const commands = hypersyncCommands();
  assert.ok(commands.length >= 20, `found only ${commands.length} commands: is the pattern still right?`);
  const failures: string[] = [];
  for (const words of commands) {
    // The CLI's own entry point, in process: `--help` after the flags parses them all first.
    let out = '';
    let err = '';
    const code = await main([...words, '--help'], { out: (s) => (out += s), err: (s) => (err += s) });
    if (code !== 0 || !out.startsWith('usage:')) failures.push(`npx hypersync ${words.join(' ')} → exit ${code}: ${err.trim().split('\n')[0] ?? ''}`);
  }
  assert.deepEqual(failures, []);
});

test('every `npm run X` in the README is a package.json script', () => {
  const scripts = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
  const named = [...README.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
  assert.ok(named.length >= 4);
  assert.deepEqual(named.filter((n) => !scripts.includes(n)), []);
  // The two commands of the README, and `npm start` itself, go through scripts that exist.
  for (const s of ['start', 'test']) assert.ok(scripts.includes(s), s);
});
