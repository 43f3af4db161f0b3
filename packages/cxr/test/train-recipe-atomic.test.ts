// recipe.json, the recipe --resume continues, is written again each time a run is resumed. Written in place, a
// write that failed half way (a kill, a full disk) left it cut, and the run could no longer be resumed: it is now
// written beside and renamed over the old one (atomic_write.ts). The failure here is a real one: the child writes
// under a file-size limit of 0 (`ulimit -f 0`), so the kernel refuses the first byte (EFBIG), after the open
// that truncated a file written in place.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Recipe, writeRecipe } from '../src/train/recipe';
import { resolveRecipe } from '../src/train/run';
import { writeFileAtomic } from '../src/atomic_write';

test('a write of recipe.json that fails half way keeps the old recipe.json whole, and says so', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-recipe-atomic-'));
  try {
    const file = path.join(dir, 'recipe.json');
    writeRecipe(dir, resolveRecipe(undefined, { epochs: 3 }));
    const before = fs.readFileSync(file, 'utf8');
    const script = path.join(dir, 'resume-write.js');
    fs.writeFileSync(
      script,
      `const { writeRecipe } = require(${JSON.stringify(require.resolve('../src/train/recipe'))});
       const dir = ${JSON.stringify(dir)};
       const saved = JSON.parse(require('node:fs').readFileSync(dir + '/recipe.json', 'utf8'));
       writeRecipe(dir, { ...saved, epochs: 7 });`,
    );
    // The limit applies to regular files only: the child's stderr is a pipe, and says why it failed.
    const r = spawnSync('bash', ['-c', 'ulimit -f 0 && exec "$0" "$1"', process.execPath, script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, `the write should have failed: ${r.stderr}`);
    assert.match(r.stderr, /recipe\.json: the run's recipe could not be written \(EFBIG.*\); the one it had is kept/);
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'recipe.json as it was');
    assert.equal(Recipe.parse(JSON.parse(before)).epochs, 3);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['recipe.json', 'resume-write.js'], 'no temporary file left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('recipe.json written again holds the new recipe whole', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-recipe-atomic-'));
  try {
    writeRecipe(dir, resolveRecipe(undefined, { epochs: 3 }));
    writeRecipe(dir, resolveRecipe(undefined, { epochs: 5 }));
    const saved = fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8');
    assert.deepEqual(Recipe.parse(JSON.parse(saved)), resolveRecipe(undefined, { epochs: 5 }));
    assert.deepEqual(fs.readdirSync(dir), ['recipe.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// The other files cxr writes by writeFileAtomic: a model's ood.json and a PACS sync's cursor each wrote their own
// temporary file, and ood.json's stayed behind (named ood.json.tmp-PID, not hidden) when the write failed.
test('a failed write of ood.json or of the sync cursor keeps the old file and leaves no temporary one', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-atomic-users-'));
  try {
    fs.writeFileSync(path.join(dir, 'ood.json'), 'old ood\n');
    fs.writeFileSync(path.join(dir, 'state.json'), 'old state\n');
    const script = path.join(dir, 'write.js');
    fs.writeFileSync(
      script,
      `const { saveOod } = require(${JSON.stringify(require.resolve('../src/explain/ood'))});
       const { writeState } = require(${JSON.stringify(require.resolve('../src/pacs/state'))});
       const dir = ${JSON.stringify(dir)};
       for (const [name, write] of [['ood', () => saveOod(dir, { format: 'cxr-ood/2' })],
                                    ['state', () => writeState(dir + '/state.json', 'http://orthanc', 9)]]) {
         try { write(); console.log(name + ' written'); } catch (e) { console.log(name + ' ' + e.code); }
       }`,
    );
    const r = spawnSync('bash', ['-c', 'ulimit -f 0 && exec "$0" "$1"', process.execPath, script], {
      encoding: 'utf8',
    });
    assert.equal(r.stdout, 'ood EFBIG\nstate EFBIG\n', r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'ood.json'), 'utf8'), 'old ood\n');
    assert.equal(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'), 'old state\n');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ood.json', 'state.json', 'write.js'], 'no temporary file left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// A rename that reaches the disk before the data does leaves, after a power cut, an empty file where the old one
// was (the sync cursor fsynced for this; it now writes through writeFileAtomic, as every such file does).
test('writeFileAtomic has the new contents on the disk before it renames them into place', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-atomic-fsync-'));
  try {
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, 'old\n');
    // The module object itself: what atomic_write.ts calls through its own import of node:fs.
    const nodeFs = require('node:fs') as typeof fs;
    const { fsyncSync, renameSync } = nodeFs;
    const seen: string[] = [];
    t.mock.method(nodeFs, 'fsyncSync', (fd: number) => {
      seen.push(`fsync of ${nodeFs.fstatSync(fd).size} bytes`);
      fsyncSync(fd);
    });
    t.mock.method(nodeFs, 'renameSync', (from: fs.PathLike, to: fs.PathLike) => {
      seen.push(`rename ${path.basename(String(from))}`);
      renameSync(from, to);
    });
    writeFileAtomic(file, 'the new state\n');
    t.mock.restoreAll();
    assert.deepEqual(seen, ['fsync of 14 bytes', `rename .state.json.tmp-${process.pid}`]);
    assert.equal(fs.readFileSync(file, 'utf8'), 'the new state\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
