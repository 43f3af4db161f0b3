// `cxr` registers every sub-command from its static imports (no command is skipped because its
// module is missing at run time: that is now a build error).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

test('cxr registers all its commands, in help order', () => {
  const names = buildProgram().commands.map((c) => c.name());
  assert.deepEqual(names, [
    'data',
    'train',
    'calibrate',
    'card',
    'evaluate',
    'compare',
    'predict',
    'report',
    'experiments',
    'backbone',
    'gan',
    'ood',
    'robustness',
    'adapt',
    'adapt-reference',
    'ensemble',
    'serve',
    'history',
    'orthanc',
    'enqueue',
    'worker',
  ]);
});

/** Every command under `program`, sub-commands included, with its full name ("orthanc sync"). */
function allCommands(program: Command, prefix = ''): Array<{ name: string; command: Command }> {
  return program.commands.flatMap((c) => {
    const name = `${prefix}${c.name()}`;
    return [{ name, command: c }, ...allCommands(c, `${name} `)];
  });
}

test('each command is listed in a line or two: its summary, the whole description in its own --help', () => {
  // `cxr --help` listed predict, enqueue and worker with their whole descriptions (up to 23 lines each).
  const long: string[] = [];
  for (const { name, command } of allCommands(buildProgram())) {
    const listed = command.summary() || command.description();
    assert.ok(listed.length > 0, `${name} has a description`);
    if (listed.length > 120) long.push(`${name}: ${listed.length} characters`);
  }
  assert.deepEqual(long, [], "commands whose listing in their parent's --help is over 120 characters");
  const help = spawnSync(process.execPath, [CLI, 'predict', '--help'], { encoding: 'utf8' }).stdout;
  assert.match(help.replace(/\s+/g, ' '), /gets a row with its error and code/, 'the whole description stays');
});

test('number options are parsed strictly, and a bad one points to --help instead of printing all of it', () => {
  const cxr = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  for (const [args, error] of [
    [
      ['train', '--data', 'x', '--out', 'y', '--epochs', '1.5'],
      /'--epochs <n>' argument '1\.5' is invalid\. a positive/,
    ],
    [['train', '--data', 'x', '--out', 'y', '--limit-per-class', '-1'], /'--limit-per-class <n>' argument '-1'/],
    [['train', '--data', 'x', '--out', 'y', '--threads', '0'], /'--threads <n>' argument '0' is invalid/],
    [['predict', 'x', '--concurrency', 'two'], /'--concurrency <n>' argument 'two' is invalid/],
  ] as const) {
    const r = cxr(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, error);
    assert.match(r.stderr, /\(add --help for the command's options\)/);
    assert.doesNotMatch(r.stderr, /Usage:/, 'the whole help is not printed');
  }
});
