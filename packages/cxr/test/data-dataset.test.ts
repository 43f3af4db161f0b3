import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatasetLayoutError, scanDataset } from '../src/data/dataset';
import { parsePatient } from '../src/data/patients';

const patientId = (fileName: string) => parsePatient(fileName).id;

import { DATA, needsData } from './shared-data';
const CHEST = path.join(DATA, 'chest_xray');
const skip = needsData(CHEST);

test('patient ids follow the Kaggle naming schemes', () => {
  assert.equal(patientId('person1946_bacteria_4874.jpeg'), 'person1946');
  assert.equal(patientId('/x/y/person447_virus_921_1.jpeg'), 'person447');
  assert.equal(patientId('IM-0429-0001-0002.jpeg'), 'IM-0429');
  assert.equal(patientId('IM-0115-0001.jpeg'), 'IM-0115');
  // NORMAL2 is a separate numbering: the same number is a different child.
  assert.equal(patientId('NORMAL2-IM-0429-0001.jpeg'), 'NORMAL2-IM-0429');
  assert.notEqual(patientId('NORMAL2-IM-0429-0001.jpeg'), patientId('IM-0429-0001.jpeg'));
  assert.deepEqual(parsePatient('scan.png'), { id: 'file:scan.png', recognised: false });
});

test('scans the Kaggle layout with splits', { skip }, async () => {
  const records = await scanDataset(CHEST);
  const count = (split: string, label: number) => records.filter((r) => r.split === split && r.label === label).length;
  assert.equal(count('train', 0), 1341);
  assert.equal(count('train', 1), 3875);
  assert.equal(count('val', 0), 8);
  assert.equal(count('val', 1), 8);
  const r = records.find((x) => x.path.endsWith('person1946_bacteria_4874.jpeg'));
  assert.deepEqual(r, {
    path: path.join(CHEST, 'val', 'PNEUMONIA', 'person1946_bacteria_4874.jpeg'),
    split: 'val',
    label: 1,
    patient: 'person1946',
  });
  assert.ok(records.every((x) => path.isAbsolute(x.path)));
});

test('scans a single split folder, names it from the folder, ignores hidden files', { skip }, async () => {
  const val = await scanDataset(path.join(CHEST, 'val'));
  assert.equal(val.length, 16);
  assert.ok(val.every((r) => r.split === 'val'));

  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-scan-'));
  try {
    await fs.mkdir(path.join(tmp, 'NORMAL'));
    await fs.mkdir(path.join(tmp, 'PNEUMONIA', '.thumbs'), { recursive: true });
    await fs.writeFile(path.join(tmp, 'NORMAL', 'IM-0001-0001.jpeg'), 'x');
    await fs.writeFile(path.join(tmp, 'NORMAL', '.DS_Store'), 'x');
    await fs.writeFile(path.join(tmp, 'PNEUMONIA', 'notes.txt'), 'x'); // reported later by decode
    const recs = await scanDataset(tmp);
    assert.deepEqual(
      recs.map((r) => [path.basename(r.path), r.split, r.label]),
      [
        ['IM-0001-0001.jpeg', 'all', 0],
        ['notes.txt', 'all', 1],
      ],
    );
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

test('a folder without the layout is a clear error', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-scan-'));
  try {
    await assert.rejects(
      scanDataset(tmp),
      (e: unknown) => e instanceof DatasetLayoutError && /NORMAL\/ and PNEUMONIA\//.test(e.message),
    );
    await assert.rejects(scanDataset(path.join(tmp, 'missing')), DatasetLayoutError);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

test('files in sub-folders of a class folder are not read, and a warning says how many and where', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-scan-'));
  try {
    for (const dir of ['train/NORMAL/sub/deeper', 'train/NORMAL/other', 'train/PNEUMONIA/.hidden', 'val/NORMAL/x'])
      await fs.mkdir(path.join(tmp, dir), { recursive: true });
    await fs.writeFile(path.join(tmp, 'train', 'NORMAL', 'IM-0001-0001.jpeg'), 'x');
    await fs.writeFile(path.join(tmp, 'train', 'NORMAL', 'sub', 'a.jpeg'), 'x');
    await fs.writeFile(path.join(tmp, 'train', 'NORMAL', 'sub', 'deeper', 'b.jpeg'), 'x');
    await fs.writeFile(path.join(tmp, 'train', 'NORMAL', 'other', 'c.png'), 'x');
    await fs.writeFile(path.join(tmp, 'train', 'PNEUMONIA', '.hidden', 'd.jpeg'), 'x'); // hidden: not a film
    await fs.writeFile(path.join(tmp, 'val', 'NORMAL', 'x', '.DS_Store'), 'x');
    // A link to a file is a file put there; a link to a folder is not one (nor is what it leads to read).
    await fs.symlink(path.join(tmp, 'train', 'NORMAL', 'IM-0001-0001.jpeg'), path.join(tmp, 'train/NORMAL/sub/l.jpeg'));
    await fs.symlink(path.join(tmp, 'val'), path.join(tmp, 'train', 'NORMAL', 'sub', 'linked-folder'));
    const lines: string[] = [];
    const recs = await scanDataset(tmp, { warn: (l) => lines.push(l) });
    assert.deepEqual(
      recs.map((r) => path.basename(r.path)),
      ['IM-0001-0001.jpeg'],
    );
    assert.deepEqual(lines, [
      `warning: ${path.join(tmp, 'train', 'NORMAL')}: skipping 4 file(s) in sub-folder(s) other/, sub/: ` +
        'only files directly in NORMAL/ are read; move them up to use them',
    ]);
    // Said once per command, however often the folder is scanned (train checks its data, then loads it).
    const again: string[] = [];
    await scanDataset(tmp, { warn: (l) => again.push(l) });
    assert.deepEqual(again, []);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

test('broken links in a class folder are skipped with one warning that counts them and names one', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-scan-'));
  try {
    const normal = path.join(tmp, 'NORMAL');
    await fs.mkdir(normal, { recursive: true });
    await fs.mkdir(path.join(tmp, 'PNEUMONIA'));
    await fs.writeFile(path.join(normal, 'IM-0001-0001.jpeg'), 'x');
    await fs.symlink(path.join(tmp, 'gone.jpeg'), path.join(normal, 'dangling.jpeg'));
    await fs.symlink(path.join(tmp, 'gone2.jpeg'), path.join(tmp, 'PNEUMONIA', 'dangling2.jpeg'));
    // A link to a folder is still no file, and no broken link either.
    await fs.mkdir(path.join(tmp, 'empty'));
    await fs.symlink(path.join(tmp, 'empty'), path.join(normal, 'linked-folder'));
    const lines: string[] = [];
    const recs = await scanDataset(tmp, { warn: (l) => lines.push(l) });
    assert.deepEqual(
      recs.map((r) => path.basename(r.path)),
      ['IM-0001-0001.jpeg'],
    );
    assert.deepEqual(lines, [
      `warning: ${tmp}: skipping 2 broken links, e.g. ${path.join(normal, 'dangling.jpeg')} ` +
        `(its target ${path.join(tmp, 'gone.jpeg')} does not exist); 'cxr data inspect' lists them all`,
    ]);
    const again: string[] = [];
    await scanDataset(tmp, { warn: (l) => again.push(l) });
    assert.deepEqual(again, [], 'said once per command');
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});
