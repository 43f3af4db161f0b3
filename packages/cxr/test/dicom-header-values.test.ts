// DICOM pixel-format values outside the standard are refused as damaged files (CORRUPT, 422), saying which
// tags disagree and what to do; values the standard allows but cxr does not read are UNSUPPORTED_PIXEL_FORMAT
// (415). HighBit 99 used to be read as if valid (the film assessed from the wrong bits, no word), BitsAllocated
// 0 answered 415 like a legal format, and "MONOCHROME1 with 0 samples per pixel" said neither what was wrong
// nor what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDicom, DicomError, type DicomErrorCode } from '../src/data/dicom';
import { InputError } from '../src/predict/errors';
import { type Element, imageElements, writeDicom } from './dicom-writer';

const pixels = Uint16Array.from({ length: 64 }, (_, i) => i * 50);
const REEXPORT = /; the file was written wrongly or damaged: export it again from the PACS or the modality$/;

/** An 8×8 MONOCHROME2 16-bit film (BitsStored 16, HighBit 15) with `extra` elements replacing its own. */
const film = (extra: Element[], spec: { photometric?: string; bitsAllocated?: number } = {}) =>
  writeDicom(imageElements({ rows: 8, columns: 8, pixels, extra, ...spec }));
const us = (tag: number, value: number): Element => ({ tag, vr: 'US', value: [value] });

async function refused(bytes: Uint8Array): Promise<{ code: DicomErrorCode; detail: string; status: number }> {
  try {
    await decodeDicom(bytes, { name: 'film.dcm' });
  } catch (e) {
    assert.ok(e instanceof DicomError, `expected a DicomError, got ${String(e)}`);
    const status = (InputError.from(e) as InputError).status;
    return { code: e.code, detail: e.detail, status };
  }
  return assert.fail('decoded');
}

test('HighBit other than BitsStored − 1 is CORRUPT (422), naming both values; the standard one reads', async () => {
  for (const [highBit, bitsStored] of [
    [99, 16],
    [15, 12],
    [10, 12],
  ]) {
    const r = await refused(film([us(0x00280101, bitsStored), us(0x00280102, highBit)]));
    assert.equal(r.code, 'CORRUPT', r.detail);
    assert.equal(r.status, 422);
    assert.match(
      r.detail,
      new RegExp(
        `^HighBit \\(0028,0102\\) is ${highBit}, but BitsStored \\(0028,0101\\) is ${bitsStored}: DICOM requires ` +
          `HighBit to be BitsStored − 1 \\(${bitsStored - 1}\\)`,
      ),
    );
    assert.match(r.detail, REEXPORT);
  }
  assert.equal((await decodeDicom(film([us(0x00280101, 12), us(0x00280102, 11)]))).bitsStored, 12);
  // A header without HighBit is read (the value is then not checked).
  const els = imageElements({ rows: 8, columns: 8, pixels }).filter((e) => e.tag !== 0x00280102);
  assert.equal((await decodeDicom(writeDicom(els))).width, 8);
});

test('BitsAllocated: 0, 12 or none is CORRUPT (422); 64 and 32 are legal but not read here (415)', async () => {
  const zero = await refused(film([us(0x00280100, 0), us(0x00280101, 0)]));
  assert.deepEqual([zero.code, zero.status], ['CORRUPT', 422]);
  assert.match(zero.detail, /^BitsAllocated \(0028,0100\) is 0: a pixel sample has at least one bit/);
  assert.match(zero.detail, REEXPORT);
  // The sample file of the QA report: BitsAllocated 0 with BitsStored left at 16.
  assert.equal((await refused(film([us(0x00280100, 0)]))).code, 'CORRUPT');
  const twelve = await refused(film([us(0x00280100, 12), us(0x00280101, 12), us(0x00280102, 11)]));
  assert.deepEqual([twelve.code, twelve.status], ['CORRUPT', 422]);
  assert.match(twelve.detail, /^BitsAllocated \(0028,0100\) is 12: DICOM allows 1 or a multiple of 8/);
  const none = await refused(
    writeDicom(imageElements({ rows: 8, columns: 8, pixels }).filter((e) => e.tag !== 0x00280100)),
  );
  assert.deepEqual([none.code, none.status], ['CORRUPT', 422]);
  assert.match(none.detail, /^BitsAllocated \(0028,0100\) is missing, which every image has/);

  const double = await refused(film([us(0x00280100, 64)]));
  assert.deepEqual([double.code, double.status], ['UNSUPPORTED_PIXEL_FORMAT', 415]);
  assert.equal(
    double.detail,
    'BitsAllocated (0028,0100) is 64, which DICOM uses only for floating-point pixel data (7FE0,0009): cxr reads ' +
      '8- or 16-bit integer pixel data; export the film as such',
  );
  const wide = await refused(film([us(0x00280100, 32)]));
  assert.deepEqual([wide.code, wide.status], ['UNSUPPORTED_PIXEL_FORMAT', 415]);
  assert.match(wide.detail, /^BitsAllocated \(0028,0100\) is 32: cxr reads 8- or 16-bit integer pixel data/);
});

test('SamplesPerPixel 0, or a count its photometric interpretation rules out, is CORRUPT saying so', async () => {
  for (const photometric of ['MONOCHROME1', 'MONOCHROME2', 'RGB']) {
    const r = await refused(film([us(0x00280002, 0)], { photometric, bitsAllocated: 8 }));
    assert.deepEqual([r.code, r.status], ['CORRUPT', 422], r.detail);
    assert.match(r.detail, /^SamplesPerPixel \(0028,0002\) is 0: an image has at least one sample per pixel/);
    assert.match(r.detail, REEXPORT);
  }
  const three = await refused(film([us(0x00280002, 3)], { photometric: 'MONOCHROME1' }));
  assert.deepEqual([three.code, three.status], ['CORRUPT', 422]);
  assert.match(
    three.detail,
    /^PhotometricInterpretation \(0028,0004\) MONOCHROME1 has one sample per pixel, but SamplesPerPixel \(0028,0002\) /,
  );
  assert.match(three.detail, /\(0028,0002\) is 3; /);
  const one = await refused(film([us(0x00280002, 1)], { photometric: 'RGB', bitsAllocated: 8 }));
  assert.match(one.detail, /^PhotometricInterpretation \(0028,0004\) RGB has three samples per pixel, but .* is 1/);
});

test('header text in the wrong field is not quoted back, only defined terms and UIDs', async () => {
  // A patient's name typed into PhotometricInterpretation, and into TransferSyntaxUID.
  const name = await refused(film([], { photometric: 'DOE^JANE^MRN42' }));
  assert.equal(name.code, 'UNSUPPORTED_PIXEL_FORMAT');
  assert.doesNotMatch(name.detail, /DOE|JANE|MRN42/);
  assert.match(name.detail, /^photometric interpretation \(a value that is not a defined term\) is not supported/);
  // A defined term cxr does not read is still named.
  assert.match((await refused(film([], { photometric: 'CMYK' }))).detail, /^photometric interpretation CMYK is not/);
  const syntax = await refused(
    writeDicom(imageElements({ rows: 8, columns: 8, pixels }), { transferSyntax: 'DOE^JANE' }),
  );
  assert.equal(syntax.code, 'UNSUPPORTED_TRANSFER_SYNTAX');
  assert.doesNotMatch(syntax.detail, /DOE|JANE/);
  // Digits alone are no UID (a record number, say): not quoted either.
  const digits = await refused(
    writeDicom(imageElements({ rows: 8, columns: 8, pixels }), { transferSyntax: '12345678' }),
  );
  assert.doesNotMatch(digits.detail, /12345678/);
  const uid = await refused(writeDicom(imageElements({ rows: 8, columns: 8, pixels }), { transferSyntax: '1.2.3.4' }));
  assert.match(uid.detail, /^transfer syntax 1\.2\.3\.4 is not supported/);
});
