// `cxr` registers every sub-command from its static imports (no command is skipped because its
// module is missing at run time: that is now a build error).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { buildProgram } from '../src/cli/main';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

test('cxr registers all its commands, in help order', () => {
  const names = buildProgram().commands.map((c) => c.name());
  assert.deepEqual(names, [
    'data',
    'train',
    'calibrate',
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
