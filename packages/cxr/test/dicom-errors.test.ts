// A DICOM the parser cannot read is refused in our words, never in dicom-parser's (whose messages
// name its internal functions), and with a code that says what is wrong: a file cut short is
// TRUNCATED, a data set in another transfer syntax than its header names is TRANSFER_SYNTAX_MISMATCH,
// anything else CORRUPT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeDicom, DicomError, type DicomErrorCode } from '../src/data/dicom';
import { imageElements, TS, writeDicom } from './dicom-writer';
import { DICOM_SAMPLES, needsData } from './shared-data';

/** The library's own names, which mean nothing to whoever sent the file. */
const LIBRARY = /dicomParser|parseDicom|ByteStream|ByteArrayParser|readPart10Header|readFixedString|readUint/;

async function refusal(bytes: Uint8Array): Promise<DicomError> {
  try {
    await decodeDicom(bytes, { name: 'film.dcm' });
  } catch (e) {
    assert.ok(e instanceof DicomError, `expected a DicomError, got ${String(e)}`);
    assert.doesNotMatch(e.message, LIBRARY);
    return e;
  }
  assert.fail('decoded');
}

async function refusedAs(bytes: Uint8Array, code: DicomErrorCode, detail: RegExp): Promise<void> {
  const e = await refusal(bytes);
  assert.equal(e.code, code, e.message);
  assert.match(e.detail, detail);
}

const elements = imageElements({ rows: 8, columns: 8, pixels: Uint16Array.from({ length: 64 }, (_, i) => i * 50) });

/** A Part-10 file whose meta group names `declared` over a data set written in `actual`. */
const relabelled = (declared: string, actual: string) =>
  Buffer.concat([
    writeDicom([], { transferSyntax: declared }),
    writeDicom(elements, { transferSyntax: actual, partTen: false }),
  ]);

test('little-endian data under an Explicit VR Big Endian header: a syntax mismatch, not "truncated"', async () => {
  const e = await refusal(relabelled(TS.explicitBE, TS.explicitLE));
  assert.equal(e.code, 'TRANSFER_SYNTAX_MISMATCH', e.message);
  assert.equal(
    e.detail,
    'the header names transfer syntax 1.2.840.10008.1.2.2 (Explicit VR Big Endian), but the data set is written ' +
      'in Explicit VR Little Endian (read as its header says, an element runs past the end of the file). ' +
      'Re-export the image, or correct its TransferSyntaxUID (0002,0010)',
  );
  // Every wrong label over a native data set that overruns or comes up without pixel data says the same.
  for (const [declared, actual, name] of [
    [TS.explicitLE, TS.implicitLE, 'Implicit VR Little Endian'],
    [TS.explicitLE, TS.explicitBE, 'Explicit VR Big Endian'],
    [TS.explicitBE, TS.implicitLE, 'Implicit VR Little Endian'],
    [TS.implicitLE, TS.explicitLE, 'Explicit VR Little Endian'],
    [TS.jpegBaseline, TS.implicitLE, 'Implicit VR Little Endian'],
  ]) {
    await refusedAs(relabelled(declared, actual), 'TRANSFER_SYNTAX_MISMATCH', new RegExp(`written in ${name} \\(`));
  }
});

test('the QA file: the GDCM sample relabelled Explicit VR Big Endian', { skip: needsData(DICOM_SAMPLES) }, async () => {
  const file = Buffer.from(fs.readFileSync(path.join(DICOM_SAMPLES, 'gdcm-CR-MONO1-10-chest.dcm')));
  const at = file.indexOf(`${TS.explicitLE}\0`);
  assert.ok(at > 132 && at < 400, 'the meta group names Explicit VR Little Endian');
  file.write(TS.explicitBE, at, 'latin1');
  await refusedAs(file, 'TRANSFER_SYNTAX_MISMATCH', /Explicit VR Big Endian.*written in Explicit VR Little Endian/);
});

test('a file cut short is TRUNCATED wherever it ends, and says where', async () => {
  const whole = writeDicom(elements);
  const metaEnd = whole.indexOf(Buffer.from([0x08, 0x00, 0x60, 0x00])); // (0008,0060), the data set's first
  assert.ok(metaEnd > 132);
  const cutAt = (n: number) => whole.subarray(0, n);
  // Inside the file meta group, right after it, and inside the first element's header after it.
  for (const n of [132, 140, 145, metaEnd - 3, metaEnd, metaEnd + 3]) {
    await refusedAs(
      cutAt(n),
      'TRUNCATED',
      /^the file ends at byte \d+, within or right after its file meta information/,
    );
  }
  // Inside a value of the data set's header ((0008,0060) takes 10 bytes, (0010,0010)'s value starts 8
  // bytes after it), and inside the header of an element.
  await refusedAs(
    cutAt(metaEnd + 20),
    'TRUNCATED',
    /^the file ends inside element \(0010,0010\): its value needs 8 bytes, 2 are there \(the file is truncated\)$/,
  );
  await refusedAs(
    cutAt(metaEnd + 12),
    'TRUNCATED',
    /^the file ends inside the header of an element \(after \(0008,0060\)\), at byte \d+ \(the file is truncated\)$/,
  );
  // Inside the pixel data, native and encapsulated (of undefined length: it ends with a delimiter).
  await refusedAs(
    cutAt(whole.length - 20),
    'TRUNCATED',
    /^the file ends inside element \(7FE0,0010\): its value needs 128 bytes, 108 are there/,
  );
  const jpeg = writeDicom(imageElements({ rows: 8, columns: 8, bitsAllocated: 8 }), {
    transferSyntax: TS.jpegBaseline,
    frames: [new Uint8Array(200)],
  });
  await refusedAs(
    jpeg.subarray(0, jpeg.length - 50),
    'TRUNCATED',
    new RegExp(
      '^the file ends inside element \\(7FE0,0010\\): its value, of open length ' +
        '\\(FFFFFFFF: it ends at a delimiter\\), has no end in the \\d+ bytes there',
    ),
  );
  // Cut just after the offset table, where the first compressed fragment would begin.
  const pixelTag = Buffer.from(jpeg).indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  await refusedAs(
    jpeg.subarray(0, pixelTag + 12 + 8),
    'TRUNCATED',
    /^the file ends where the compressed pixel data \(7FE0,0010\) begins: it is truncated/,
  );
});

test('a meta group without a transfer syntax, and garbage after the preamble, are CORRUPT in our words', async () => {
  const meta = writeDicom([]);
  const withoutSyntax = Buffer.from(meta);
  const at = withoutSyntax.indexOf(Buffer.from([0x02, 0x00, 0x10, 0x00]));
  withoutSyntax.writeUInt16LE(0x0011, at + 2); // (0002,0010) becomes (0002,0011)
  await refusedAs(
    Buffer.concat([withoutSyntax, writeDicom(elements, { partTen: false })]),
    'CORRUPT',
    /has no TransferSyntaxUID \(0002,0010\)/,
  );
  const junk = Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM'),
    Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256)),
  ]);
  const e = await refusal(junk);
  assert.ok(['CORRUPT', 'TRUNCATED'].includes(e.code), e.message);
});
