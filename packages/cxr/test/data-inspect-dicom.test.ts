// `cxr data inspect` on a folder holding DICOM films: they are read (as evaluate and predict read them)
// and counted apart, not listed as unreadable; a broken DICOM and a file that is no image are unreadable,
// in words that name every format a reader here takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatInspectReport, inspectDataset } from '../src/data/inspect';
import { CHEST_XRAY, DICOM_SAMPLES, needsData } from './shared-data';

const FILM = path.join(CHEST_XRAY, 'val', 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg');
const PART10 = path.join(DICOM_SAMPLES, 'gdcm-CR-MONO1-10-chest.dcm');
const BARE = path.join(DICOM_SAMPLES, 'CR-MONO1-10-chest_nometa.dcm');

test('DICOM films are counted as read by evaluate and predict, not by train; not as unreadable', {
  skip: needsData(FILM, PART10, BARE),
}, async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-inspect-dicom-'));
  try {
    await fs.mkdir(path.join(tmp, 'NORMAL'));
    await fs.mkdir(path.join(tmp, 'PNEUMONIA'));
    await fs.symlink(FILM, path.join(tmp, 'NORMAL', 'a.jpeg'));
    await fs.symlink(PART10, path.join(tmp, 'NORMAL', 'cr.dcm'));
    // Without the preamble and DICM, and without the .dcm name: found by its bytes.
    await fs.symlink(BARE, path.join(tmp, 'PNEUMONIA', 'film0001'));
    const whole = await fs.readFile(PART10);
    await fs.writeFile(path.join(tmp, 'PNEUMONIA', 'cut.dcm'), whole.subarray(0, whole.length >> 1));
    await fs.writeFile(path.join(tmp, 'PNEUMONIA', 'notes.jpg'), 'not an image\n');

    const r = await inspectDataset(tmp);
    assert.deepEqual(
      r.dicom.map((d) => d.path),
      ['NORMAL/cr.dcm', 'PNEUMONIA/film0001'],
    );
    for (const d of r.dicom) assert.ok(d.width > 64 && d.height > 64, JSON.stringify(d));
    assert.deepEqual(
      r.unreadable.map((u) => u.path),
      ['PNEUMONIA/cut.dcm', 'PNEUMONIA/notes.jpg'],
    );
    assert.equal(r.sizes.measured, 3);

    const text = formatInspectReport(r);
    assert.match(
      text,
      /^DICOM films \(read by evaluate and predict, not by train\): 2 \(NORMAL\/cr\.dcm, PNEUMONIA\/film0001\)$/m,
    );
    assert.match(text, /^Unreadable files: 2$/m);
    assert.match(text, /PNEUMONIA\/notes\.jpg: not a JPEG, PNG or DICOM image \[UNSUPPORTED_FORMAT\]/);
    assert.doesNotMatch(text, /DICOM is not supported/);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});
