// The layering guard-rail (scripts/check-layers.js): src/ has no import cycle and no import from a
// lower floor to a higher one, and the check itself does catch both on a small fixture tree.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'check-layers.js');

function check(src?: string) {
  const env = { ...process.env };
  if (src) env.CHECK_LAYERS_SRC = src;
  else delete env.CHECK_LAYERS_SRC;
  return spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', env });
}

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-layers-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

test('src/ has no import cycle and no upward import', () => {
  const r = check();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /file-level cycles: 0/);
  assert.match(r.stdout, /folder-level cycles: 0/);
  assert.match(r.stdout, /upward imports: 0\n/);
});

test('the check reports a file cycle, a folder cycle and upward imports', () => {
  const root = tree({
    'data/a.ts': "import { b } from './b';\nexport const a = 1;\n",
    'data/b.ts': "import { a } from './a';\nimport { m } from '../models/m';\nexport const b = 2;\n",
    'models/m.ts': "import { a } from '../data/a';\nexport const m = 3;\n",
    'data/c.ts': "import type { x } from '../cli/x';\n",
    'cli/x.ts': 'export const x = 4;\n',
  });
  try {
    const r = check(root);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /file-level cycles: 1\n {2}data\/a\.ts <-> data\/b\.ts <-> models\/m\.ts/);
    assert.match(r.stdout, /folder-level cycles: 1\n {2}data <-> models/);
    assert.match(r.stdout, /upward imports: 2\n/);
    assert.match(r.stdout, /data\/c\.ts -> cli\/x\.ts/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('one upward import alone fails the check', () => {
  const root = tree({
    'data/a.ts': "import { x } from '../cli/x';\nexport const a = x;\n",
    'cli/x.ts': 'export const x = 4;\n',
  });
  try {
    const r = check(root);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /upward imports: 1\n/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
