// `cxr experiments heatmap --images DIR` on a folder with no usable film said "no pneumonia film
// has a positive logit: nothing to explain", as if the model had called every film negative. It
// must say that the folder gave no film, name it, and say what it expects.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { heatmapTable } from '../src/experiments/heatmap';
import { CLI } from './serve-fixtures';
import { REPO, needsData } from './shared-data';

const SHIPPED = path.join(REPO, 'models', 'default');
const skip = needsData(path.join(SHIPPED, 'cxr.json'));
let root: string;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-heatmap-empty-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('heatmap --images on an empty folder says the folder holds no files, naming it', { skip }, async () => {
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  // Hidden files are skipped when a folder is read: this one holds nothing to use either.
  fs.writeFileSync(path.join(empty, '.DS_Store'), 'x');
  await assert.rejects(heatmapTable(SHIPPED, { images: empty }), (e: Error) => {
    assert.equal(
      e.message,
      `--images ${empty} holds no files: it expects a folder of pneumonia films ` +
        '(PNG, JPEG or DICOM files, sub-folders searched too)',
    );
    return true;
  });
  // The same through the command, which ends non-zero with the message.
  const r = spawnSync(process.execPath, [CLI, 'experiments', 'heatmap', '--model', SHIPPED, '--images', empty], {
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /holds no files: it expects a folder of pneumonia films/);
  assert.doesNotMatch(r.stderr, /positive logit/);
});

test('heatmap --images on a folder of files that are not films says none could be used, and why', {
  skip,
}, async () => {
  const notes = path.join(root, 'notes');
  fs.mkdirSync(notes);
  fs.writeFileSync(path.join(notes, 'readme.txt'), 'not a film\n');
  await assert.rejects(heatmapTable(SHIPPED, { images: notes }), (e: Error) => {
    assert.match(e.message, new RegExp(`^--images ${notes}: none of its 1 file\\(s\\) is a film the model can use`));
    assert.match(e.message, /1 not readable as an image, 0 refused by the image checks; e\.g\. .*readme\.txt: /);
    return true;
  });
});
