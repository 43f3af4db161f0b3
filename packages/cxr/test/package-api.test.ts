// The package as programs and shells use it: `import { Predictor } from '@cxr/app'` through the
// package's `exports`, its type declarations, and the linked `cxr` command.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const pkgDir = path.resolve(__dirname, '..', '..');
const repo = path.resolve(pkgDir, '..', '..');

test('the package root exports the library API, with types', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.name, '@cxr/app');
  assert.ok(fs.existsSync(path.join(pkgDir, pkg.main)), `main ${pkg.main} exists`);
  assert.ok(fs.existsSync(path.join(pkgDir, pkg.types)), `types ${pkg.types} exist`);
  // Resolved by name, as a program in this workspace (or one that installed the package) would.
  const api = require(require.resolve('@cxr/app', { paths: [repo] }));
  for (const name of [
    'Predictor',
    'loadModel',
    'runBatch',
    'runEvaluation',
    'runTraining',
    'runRobustness',
    'adaptModel',
    'initEngine',
    'buildResults',
    'openQueue',
    'enqueueFile',
    'startWorker',
  ]) {
    assert.equal(typeof api[name], 'function', name);
  }
  assert.equal(typeof api.Predictor.load, 'function');
});

test('the linked cxr command is executable and lists its commands', () => {
  const bin = path.join(repo, 'node_modules', '.bin', 'cxr');
  assert.ok(fs.existsSync(bin), 'node_modules/.bin/cxr after npm ci');
  const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  for (const cmd of ['predict', 'serve', 'train', 'robustness', 'adapt', 'orthanc'])
    assert.match(help, new RegExp(`\\b${cmd}\\b`));
});
