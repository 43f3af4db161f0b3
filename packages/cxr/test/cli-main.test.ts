// `cxr` registers every sub-command from its static imports (no command is skipped because its
// module is missing at run time: that is now a build error).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { buildProgram } from '../src/cli/main';

test('cxr registers all its commands, in help order', () => {
  const names = buildProgram().commands.map((c) => c.name());
  assert.deepEqual(names, [
    'data',
    'train',
    'calibrate',
    'evaluate',
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
