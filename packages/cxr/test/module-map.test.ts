// docs/modules.md is made from the comment that opens each module (scripts/module-map.js): it lists every
// module under src/, floor by floor, and this test fails when the file no longer says what the code does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'module-map.js');
const DOC = path.join(ROOT, '..', '..', 'docs', 'modules.md');

test('docs/modules.md is current: run node packages/cxr/scripts/module-map.js after changing a module', () => {
  const r = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('it names every module under src/ once, each with what it holds', () => {
  const doc = fs.readFileSync(DOC, 'utf8');
  const src = path.join(ROOT, 'src');
  const modules = (fs.readdirSync(src, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f));
  assert.ok(modules.length > 200, `${modules.length} modules`);
  for (const m of modules) {
    const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${m}\` |`));
    assert.equal(rows.length, 1, m);
    assert.doesNotMatch(rows[0], /no opening comment/, m);
  }
});
