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

// Runs the check on a fixture tree and removes the tree afterwards.
function checkTree(files: Record<string, string>) {
  const root = tree(files);
  try {
    return check(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const CLI_X = 'export const x = 4;\n';

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

test('a `/*` in a line comment or a string does not hide the imports after it', () => {
  // A regex comment-stripper took these for the start of a block comment running to the next `*/`.
  const r = checkTree({
    'data/a.ts': "// reads ROOT/{a,b}/*.png\nimport { x } from '../cli/x';\n/** doc */\nexport const a = x;\n",
    'data/b.ts': "const G = 'files/*';\nimport { x } from '../cli/x';\n/** doc */\nexport const b = [G, x];\n",
    'cli/x.ts': CLI_X,
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /upward imports: 2\n {2}data\/a\.ts -> cli\/x\.ts\n {2}data\/b\.ts -> cli\/x\.ts\n/);
});

test('a dynamic import written with backticks counts', () => {
  const r = checkTree({
    'data/a.ts': 'export async function f() {\n  return import(`../cli/x.js`);\n}\n',
    'cli/x.ts': CLI_X,
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /upward imports: 1\n {2}data\/a\.ts -> cli\/x\.ts\n/);
});

test('a dynamic import with a computed path fails the check and names file and line', () => {
  const r = checkTree({
    'data/a.ts': [
      'export async function f(name: string) {',
      "  const a = await import('./b.js');",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the fixture's source holds a template literal
      '  const c = await import(`../cli/${name}.js`);',
      "  return [a, c, await import('../cli/' + name)];",
      '}',
      '',
    ].join('\n'),
    'data/b.ts': 'export const b = 1;\n',
    'cli/x.ts': CLI_X,
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /upward imports: 0\n/);
  assert.match(r.stdout, /dynamic imports with a computed path: 2\n/);
  assert.match(r.stdout, /\n {2}data\/a\.ts:3: import\(`\.\.\/cli\/\$\{name\}\.js`\)\n/);
  assert.match(r.stdout, /\n {2}data\/a\.ts:4: import\('\.\.\/cli\/' \+ name\)\n/);
});

test('importing src/index.ts from inside src/ is a violation, from any floor', () => {
  // index.ts re-exports every floor, so an import of it reaches them all whatever the importer's floor.
  const r = checkTree({
    'index.ts': "export * from './cli/x';\nexport * from './data/a';\n",
    'data/a.ts': "import { x } from '../index';\nexport const a = x;\n",
    'cli/y.ts': "export { x } from '../index.js';\n",
    'cli/x.ts': CLI_X,
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /upward imports: 2\n/);
  assert.match(r.stdout, /\n {2}data\/a\.ts -> index\.ts \(it re-exports every floor; import the module that defines/);
  assert.match(r.stdout, /\n {2}cli\/y\.ts -> index\.ts \(it re-exports every floor/);
  // index.ts itself may import every floor.
  assert.doesNotMatch(r.stdout, /\n {2}index\.ts -> /);
});

test('.mts, .cts and .tsx files are checked, with the extension they are imported by', () => {
  const r = checkTree({
    'data/a.mts': "import { x } from '../cli/x.mjs';\nexport const a = x;\n",
    'data/b.cts': "import { y } from '../cli/y.cjs';\nexport const b = y;\n",
    'data/c.tsx': "import { z } from '../cli/z.js';\nexport const c = z;\n",
    'cli/x.mts': CLI_X,
    'cli/y.cts': 'export const y = 5;\n',
    'cli/z.tsx': 'export const z = 6;\n',
    'cli/types.d.ts': 'export type T = number;\n',
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /check-layers: 6 files under src\//);
  assert.match(r.stdout, /upward imports: 3\n/);
  assert.match(r.stdout, /\n {2}data\/a\.mts -> cli\/x\.mts\n/);
  assert.match(r.stdout, /\n {2}data\/b\.cts -> cli\/y\.cts\n/);
  assert.match(r.stdout, /\n {2}data\/c\.tsx -> cli\/z\.tsx\n/);
});

test('every import form counts', () => {
  const r = checkTree({
    'data/a.ts': [
      "export * as ns from '../cli/a';",
      "import b = require('../cli/b');",
      "export type C = import('../cli/c').C;",
      "const d = require('../cli/d');",
      "import type { E } from '../cli/e';",
      "import '../cli/f';",
      'export const a = [b, d] as unknown as E;',
      '',
    ].join('\n'),
    ...Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [`cli/${n}.ts`, `export type ${n} = 1;\n`])),
  });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /upward imports: 6\n/);
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) assert.match(r.stdout, new RegExp(`data/a\\.ts -> cli/${n}\\.ts\\n`));
});

test('imports in comments and strings do not count', () => {
  const r = checkTree({
    'data/a.ts': [
      "// import { x } from '../cli/x';",
      "/* const y = await import('../cli/x'); */",
      `export const s = "import { x } from '../cli/x'";`,
      "export const t = `require('../cli/x')`;",
      '',
    ].join('\n'),
    'cli/x.ts': CLI_X,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /upward imports: 0\n/);
});
