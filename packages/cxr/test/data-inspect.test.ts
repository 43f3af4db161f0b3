import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatInspectReport, inspectDataset } from '../src/data/inspect';

import { DATA, needsData } from './shared-data';
const VAL = path.join(DATA, 'chest_xray', 'val');

test('inspect counts, finds duplicates across splits, shared patients and unreadable files', {
  skip: needsData(),
}, async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-inspect-'));
  try {
    const put = async (rel: string, from: string | Buffer) => {
      const dest = path.join(tmp, rel);
      await fs.mkdir(path.dirname(dest), { recursive: true });
      if (typeof from === 'string') await fs.copyFile(from, dest);
      else await fs.writeFile(dest, from);
    };
    const normal = path.join(VAL, 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg');
    await put('train/NORMAL/NORMAL2-IM-1427-0001.jpeg', normal);
    await put('val/NORMAL/NORMAL2-IM-1427-0002.jpeg', normal); // same bytes, same child, other split
    await put('train/NORMAL/NORMAL2-IM-1430-0001.jpeg', path.join(VAL, 'NORMAL', 'NORMAL2-IM-1430-0001.jpeg'));
    await put(
      'train/PNEUMONIA/person1946_bacteria_4874.jpeg',
      path.join(VAL, 'PNEUMONIA', 'person1946_bacteria_4874.jpeg'),
    );
    await put(
      'train/PNEUMONIA/person1946_bacteria_4875.jpeg',
      path.join(VAL, 'PNEUMONIA', 'person1946_bacteria_4875.jpeg'),
    );
    await put('train/PNEUMONIA/broken.jpeg', Buffer.from('nope'));

    const r = await inspectDataset(tmp);
    assert.deepEqual(
      r.splits.map((s) => [s.split, s.normal, s.pneumonia, s.patients]),
      [
        ['train', 2, 3, 4],
        ['val', 1, 0, 1],
      ],
    );
    assert.equal(r.total.images, 6);
    assert.equal(r.total.unrecognisedNames, 1);
    assert.deepEqual(r.patientsInSeveralSplits, ['NORMAL2-IM-1427']);
    assert.equal(r.duplicates.groups.length, 1);
    assert.deepEqual(r.duplicates.groups[0].files, [
      'train/NORMAL/NORMAL2-IM-1427-0001.jpeg',
      'val/NORMAL/NORMAL2-IM-1427-0002.jpeg',
    ]);
    assert.equal(r.duplicates.groups[0].acrossSplits, true);
    assert.equal(r.duplicates.extraCopiesAcrossSplits, 1);
    assert.deepEqual(
      r.unreadable.map((u) => [u.path, u.code]),
      [['train/PNEUMONIA/broken.jpeg', 'UNSUPPORTED_FORMAT']],
    );
    assert.equal(r.sizes.measured, 5);
    assert.ok(r.sizes.width && r.sizes.width.min >= 224);

    const text = formatInspectReport(r);
    assert.match(text, /^train\s+2\s+3\s+5\s+4$/m);
    assert.match(text, /ACROSS SPLITS/);
    assert.match(text, /train\/PNEUMONIA\/broken\.jpeg: not a JPEG, PNG or DICOM image/);
    // The report survives JSON (what --json prints): no Map, Set or undefined lost on the way.
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

test('inspect lists a broken link as unreadable and says of an empty file what the readers say', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-inspect-'));
  try {
    await fs.mkdir(path.join(tmp, 'NORMAL'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'PNEUMONIA'));
    await fs.writeFile(path.join(tmp, 'NORMAL', 'empty.jpeg'), '');
    await fs.symlink(path.join(tmp, 'gone.jpeg'), path.join(tmp, 'NORMAL', 'dangling.jpeg'));
    await fs.writeFile(path.join(tmp, 'PNEUMONIA', 'notes.jpeg'), 'nope');
    const r = await inspectDataset(tmp);
    assert.equal(r.total.images, 3, 'the broken link is counted as the file it stands for');
    assert.deepEqual(
      r.unreadable.map((u) => [u.path, u.code, u.message]),
      [
        [
          path.join('NORMAL', 'dangling.jpeg'),
          'READ_FAILED',
          `broken link: its target ${path.join(tmp, 'gone.jpeg')} does not exist`,
        ],
        [path.join('NORMAL', 'empty.jpeg'), 'EMPTY', 'empty file (0 bytes)'],
        [path.join('PNEUMONIA', 'notes.jpeg'), 'UNSUPPORTED_FORMAT', 'not a JPEG, PNG or DICOM image'],
      ],
    );
    assert.match(formatInspectReport(r), /^Unreadable files: 3$/m);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});
