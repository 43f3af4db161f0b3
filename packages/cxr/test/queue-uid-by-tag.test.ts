// A film's job key is its SOP Instance UID, read by dicom-parser up to that tag (queue/job.ts uidByTag: dcmjs read
// and split every header value first, seconds for a hostile name on the request thread of POST /jobs). The quick
// read must key every film as the full read does: the sample films, bare data sets, implicit and big-endian
// encodings, deflated ones, and headers whose UID is missing or not a UID. A deflated data set that inflates past
// the decoder's cap is keyed by the UID in its head, unread past the cap by either read (a compression bomb on the
// request thread): the quick read inflates the head alone (films-s31-deflate-head.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { inflateCap } from '../src/data/dicom_data_set';
import { readHeader } from '../src/dicom_out/part10';
import { resultKeyOf, sopInstanceUid } from '../src/queue/job';
import { type Element, TS, writeDicom } from './dicom-writer';
import { DICOM_SAMPLES, needsData } from './shared-data';

/** The UID as the full header read gives it, or null: what sopInstanceUid gave before the quick read. */
function fullRead(bytes: Uint8Array): string | null {
  try {
    const uid = String(readHeader(bytes).SOPInstanceUID ?? '').trim();
    return /^[0-9]+(\.[0-9]+)*$/.test(uid) && uid.length <= 64 ? uid : null;
  } catch {
    return null;
  }
}

test('the sample films are keyed by the UID the full read gives', { skip: needsData(DICOM_SAMPLES) }, () => {
  const files = fs.readdirSync(DICOM_SAMPLES).filter((f) => f.endsWith('.dcm'));
  assert.ok(files.length >= 5, files.join(', '));
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(DICOM_SAMPLES, f));
    const expected = fullRead(bytes);
    assert.ok(expected, `${f}: no UID by the full read`);
    assert.equal(sopInstanceUid(bytes), expected, f);
  }
});

test('every encoding keys a film by the same UID; a missing or malformed one keys none', () => {
  const elements = (uid: string | null): Element[] => [
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
    ...(uid === null ? [] : [{ tag: 0x00080018, vr: 'UI' as const, value: uid }]),
    { tag: 0x00100010, vr: 'PN', value: 'Doe^Jane' },
  ];
  const uid = '1.2.826.0.1.3680043.8.498.12345';
  for (const transferSyntax of [TS.explicitLE, TS.implicitLE, TS.explicitBE, TS.deflatedLE]) {
    for (const partTen of [true, false]) {
      if (transferSyntax === TS.deflatedLE && !partTen) continue; // a bare data set is never deflated
      const bytes = writeDicom(elements(uid), { transferSyntax, partTen });
      const what = `${transferSyntax}${partTen ? '' : ' (bare)'}`;
      assert.equal(sopInstanceUid(bytes), fullRead(bytes), what);
      if (fullRead(bytes) !== null) assert.equal(sopInstanceUid(bytes), uid, what);
    }
  }
  for (const bad of [null, 'not-a-uid', '1..2', `1.${'2'.repeat(70)}`]) {
    const bytes = writeDicom(elements(bad));
    assert.equal(sopInstanceUid(bytes), null, String(bad));
  }
});

test('a header without a valid UID is keyed by none without the full read (a hostile name is no slower)', () => {
  // Megabytes of value delimiters in the name, which dcmjs splits (seconds: bench/serve/job-key.js): without a UID
  // to key by, the full read was the fallback, and so the whole cost the quick read saves, on the request thread
  // of POST /jobs. The full read is counted where job.ts calls it (its module's export, read at each call).
  const part10 = require('../src/dicom_out/part10') as { readHeader: typeof readHeader };
  const real = part10.readHeader;
  let fullReads = 0;
  part10.readHeader = (...args) => {
    fullReads++;
    return real(...args);
  };
  try {
    for (const uid of [null, 'not-a-uid']) {
      const bytes = writeDicom(
        [
          { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
          ...(uid === null ? [] : [{ tag: 0x00080018, vr: 'UI' as const, value: uid }]),
          { tag: 0x00100010, vr: 'PN', value: '\\=A'.repeat(100_000) },
        ],
        { transferSyntax: TS.implicitLE },
      );
      assert.equal(sopInstanceUid(bytes), null, String(uid));
      assert.equal(fullReads, 0, `${uid}: the full read ran`);
    }
    // A header the quick read cannot read (cut inside the UID's value) still goes to the full read: counted.
    const whole = writeDicom([
      { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
      { tag: 0x00080018, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.7' },
    ]);
    const cut = whole.subarray(0, whole.length - 10);
    const keyed = sopInstanceUid(cut);
    assert.equal(fullReads, 1, 'the cut header was not read in full');
    assert.equal(keyed, fullRead(cut));
  } finally {
    part10.readHeader = real;
  }
});

/**
 * A Part-10 file, deflated, whose data set (a UID, then a private OB element of `mib` MiB of zeros) inflates to
 * over `mib` MiB from some kilobytes: each MiB is deflated alone, sync-flushed (no final block), so the zeros are
 * never all in memory here.
 */
function deflateBomb(uid: string, mib: number): Buffer {
  const elements: Element[] = [{ tag: 0x00080018, vr: 'UI', value: uid }];
  const plain = writeDicom(elements, { partTen: false });
  const whole = writeDicom(elements, { transferSyntax: TS.deflatedLE });
  const meta = whole.subarray(0, whole.length - zlib.deflateRawSync(plain).length);
  const obHeader = Buffer.from([0x09, 0x00, 0x10, 0x10, 0x4f, 0x42, 0, 0, 0, 0, 0, 0]);
  obHeader.writeUInt32LE(mib * 1024 * 1024, 8);
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const mebibyte = zlib.deflateRawSync(Buffer.alloc(1024 * 1024), flush);
  return Buffer.concat([
    meta,
    zlib.deflateRawSync(Buffer.concat([plain, obHeader]), flush),
    ...Array.from({ length: mib }, () => mebibyte),
    zlib.deflateRawSync(Buffer.alloc(0)),
  ]);
}

test('a deflated data set that inflates past the cap is keyed by its head; the full read refuses it', () => {
  const cap = inflateCap(DEFAULT_LIMITS);
  const uid = '1.2.826.0.1.3680043.8.498.99';
  const bomb = deflateBomb(uid, Math.ceil(cap / 1024 / 1024) + 16);
  assert.ok(bomb.length < 1024 * 1024, `${bomb.length} bytes`);
  // dicom-parser's and dcmjs's own inflaters (pako, no limit) read it whole, and found the UID.
  const part10 = require('../src/dicom_out/part10') as { readHeader: typeof readHeader };
  const real = part10.readHeader;
  let fullReads = 0;
  part10.readHeader = (...args) => {
    fullReads++;
    return real(...args);
  };
  try {
    assert.equal(sopInstanceUid(bomb), uid);
    assert.equal(fullReads, 0, 'the full read ran');
    assert.equal(resultKeyOf(bomb), uid);
  } finally {
    part10.readHeader = real;
  }
  assert.throws(() => readHeader(bomb, { text: false }), new RegExp(`inflates to more than ${cap} bytes`));
  // Under the cap the same file is read, by both.
  const small = deflateBomb(uid, 2);
  assert.equal(sopInstanceUid(small), uid);
  assert.equal(String(readHeader(small).SOPInstanceUID), uid);
});
