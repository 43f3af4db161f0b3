// The line-width guard-rail (scripts/check-line-width.js at the repo root): passes the tree today,
// and on a small fixture tree flags exactly the lines over the limit, in src/ and test/ only.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

// dist/test -> repo root is four levels up.
const SCRIPT = path.resolve(__dirname, '../../../..', 'scripts', 'check-line-width.js');

const run = (...args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });

test("the tree passes the line-width check at its default limit, the formatter's 120", () => {
  const r = run();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /0 line\(s\) over 120 characters/);
});

test('lines over --max in packages/*/src and test are reported with file, line and width', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-width-'));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  try {
    write('packages/a/src/x.ts', `ok\n${'x'.repeat(21)}\n${'×'.repeat(20)}\n`);
    write('packages/a/test/y.test.ts', `${'y'.repeat(30)}\r\n`);
    write('packages/a/scripts/z.ts', 'z'.repeat(50)); // outside src/ and test/: not checked
    const r = run('--max', '20', root);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /packages\/a\/src\/x\.ts:2: 21 > 20/);
    assert.match(r.stdout, /packages\/a\/test\/y\.test\.ts:1: 30 > 20/);
    assert.doesNotMatch(r.stdout, /x\.ts:3|z\.ts/, 'multi-byte characters count once; scripts/ is not checked');
    assert.match(r.stdout, /2 files, 2 line\(s\) over 20 characters/);
    assert.equal(run('--max', '30', root).status, 0);
    assert.equal(run('--max', 'wide', root).status, 2);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
