// Where cxr finds its model when a command is given none: the repository's models/default, or CXR_MODEL; and,
// installed as an npm package (no models/default anywhere above it), an error that says what to give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultModelDir, modelDirOrDefault } from '../src/paths';

test('in the repository: the shipped model, unless --model or CXR_MODEL says otherwise', () => {
  const saved = process.env.CXR_MODEL;
  delete process.env.CXR_MODEL;
  try {
    assert.ok(fs.existsSync(path.join(modelDirOrDefault(undefined), 'cxr.json')));
    assert.equal(modelDirOrDefault('runs/m1'), 'runs/m1');
    process.env.CXR_MODEL = '/elsewhere/model';
    assert.equal(modelDirOrDefault(undefined), '/elsewhere/model');
  } finally {
    if (saved === undefined) delete process.env.CXR_MODEL;
    else process.env.CXR_MODEL = saved;
  }
});

test('installed without a shipped model: the error names --model and CXR_MODEL, not a path never typed', () => {
  // paths.js as an installed package holds it: in a folder with no models/default above it.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-paths-'));
  try {
    const copy = path.join(root, 'node_modules', '@cxr', 'app', 'dist', 'src');
    fs.mkdirSync(copy, { recursive: true });
    fs.copyFileSync(require.resolve('../src/paths'), path.join(copy, 'paths.js'));
    const script = `try { require(${JSON.stringify(path.join(copy, 'paths.js'))}).modelDirOrDefault(undefined); }
      catch (e) { console.log(e.message); }`;
    const env = { ...process.env };
    delete env.CXR_MODEL;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
    assert.match(
      out.stdout,
      /^no model given, and there is no shipped model at .* \(an installed cxr package carries none\)/,
    );
    assert.match(out.stdout, /give the model folder with --model DIR, or set CXR_MODEL/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  assert.equal(typeof defaultModelDir(), 'string', 'defaultModelDir itself (library API) still only names the path');
});
