// Bare DICOM data sets (no preamble, no 'DICM') against other binary files. The guess used to look at
// the first 8 bytes only, so any file starting 08 00 xx 0x with a small length, or with two capital
// letters, was taken for DICOM: the API then answered with a DICOM decode error instead of 415. Real
// bare data sets, implicit and explicit VR, whole or only their head, must still be found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bareDataSetSyntax, decodeDicom, filmFormat, filmFormatOfFile } from '../src/data/dicom';
import { imageElements, TS, writeDicom } from './dicom-writer';
import { DICOM_DIR } from './serve-fixtures';

/** Deterministic pseudo-random bytes (mulberry32), so a failure can be replayed. */
function randomBytes(n: number, seed: number): Buffer {
  let s = seed >>> 0;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** `head` followed by random bytes, 4096 in all (what filmFormatOfFile reads). */
const startingWith = (head: number[], seed: number) => {
  const b = randomBytes(4096, seed);
  b.set(head);
  return b;
};

test('binary files whose first bytes pass for a DICOM element are not DICOM', () => {
  for (let seed = 1; seed <= 200; seed++) {
    // Group 0008, element 0000, and a 4-byte length that fits: read as implicit VR before.
    assert.equal(filmFormat(startingWith([0x08, 0, 0, 0, 4, 0, 0, 0], seed)), null, `implicit, seed ${seed}`);
    assert.equal(filmFormat(startingWith([0x02, 0, 0x10, 0, 0x20, 0, 0, 0], seed)), null, `group 2, seed ${seed}`);
    // Two capital letters that are no VR: read as explicit VR before.
    assert.equal(filmFormat(startingWith([0x08, 0, 0x05, 0, 0x5a, 0x5a], seed)), null, `'ZZ', seed ${seed}`);
    // A real VR, then random bytes where the next element should be.
    const cs = [0x08, 0, 0x05, 0, 0x43, 0x53, 2, 0, 0x43, 0x52];
    assert.equal(filmFormat(startingWith(cs, seed)), null, `'CS', seed ${seed}`);
  }
});

test('a first element that parses is not enough: the next must too', () => {
  const el = (element: number, value: string, vr = 'CS') =>
    Buffer.concat([
      Buffer.from([0x08, 0, element, 0]),
      Buffer.from(vr),
      Buffer.from([value.length, 0]),
      Buffer.from(value),
    ]);
  const good = Buffer.concat([el(0x05, 'ISO_IR 100'), el(0x08, 'ORIGINAL'), el(0x60, 'CR'), el(0x70, 'ACME')]);
  assert.equal(bareDataSetSyntax(good), TS.explicitLE);
  assert.equal(bareDataSetSyntax(Buffer.concat([el(0x60, 'CR'), el(0x05, 'ISO_IR 100')])), null, 'tags descending');
  assert.equal(bareDataSetSyntax(Buffer.concat([el(0x05, 'ISO_IR 100'), el(0x60, 'CR', 'QQ')])), null, 'no VR');
  // An odd length breaks the standard, but old writers made them: the element still parses.
  const odd = Buffer.concat([el(0x05, 'ISO_IR 100'), el(0x60, 'CRT'), el(0x70, 'ACME')]);
  assert.equal(bareDataSetSyntax(odd), TS.explicitLE, 'odd length');
});

test('real bare data sets are DICOM: implicit and explicit VR, whole or their first 4096 bytes', async () => {
  const sample = fs.readFileSync(`${DICOM_DIR}/CR-MONO1-10-chest_nometa.dcm`);
  assert.equal(bareDataSetSyntax(sample), TS.implicitLE);
  assert.equal(bareDataSetSyntax(sample.subarray(0, 4096)), TS.implicitLE);
  assert.equal(await filmFormatOfFile(`${DICOM_DIR}/CR-MONO1-10-chest_nometa.dcm`), 'dicom');

  // 64 × 64 16-bit pixels: 8 KB, so the first 4096 bytes are only the head of the file.
  const pixels = Uint16Array.from({ length: 64 * 64 }, (_, i) => i % 1024);
  const sq = { tag: 0x00081140, vr: 'SQ', value: [[{ tag: 0x00081150, vr: 'UI', value: '1.2.3' }]] };
  for (const [ts, extra] of [
    [TS.implicitLE, []],
    [TS.explicitLE, []],
    [TS.implicitLE, [sq]],
    [TS.explicitLE, [sq]],
  ] as const) {
    const bare = writeDicom(imageElements({ rows: 64, columns: 64, pixels, extra: [...extra] }), {
      transferSyntax: ts,
      partTen: false,
    });
    const what = `${ts}${extra.length ? ' with a sequence' : ''}`;
    assert.equal(bareDataSetSyntax(bare), ts, what);
    assert.equal(bareDataSetSyntax(bare.subarray(0, 4096)), ts, `${what}, first 4096 bytes`);
    assert.equal((await decodeDicom(bare)).width, 64, what);
  }

  const cr = { tag: 0x00080060, vr: 'CS', value: 'CR' };
  const acme = { tag: 0x00080070, vr: 'LO', value: 'ACME' };
  for (const ts of [TS.implicitLE, TS.explicitLE]) {
    // A tiny data set: two elements, 20 or 24 bytes.
    assert.equal(filmFormat(writeDicom([cr, acme], { transferSyntax: ts, partTen: false })), 'dicom', ts);
    // Two elements, then a value the first 4096 bytes end inside.
    const early = writeDicom([cr, acme, { tag: 0x7fe00010, vr: 'OW', value: pixels }], {
      transferSyntax: ts,
      partTen: false,
    });
    assert.equal(bareDataSetSyntax(early.subarray(0, 4096)), ts, `${ts}, pixel data third`);
  }

  // A file meta group without the preamble: explicit VR, then the data set in its own (here implicit) VR.
  const syntax = Buffer.from(`${TS.implicitLE}\0`);
  const tsElement = Buffer.concat([
    Buffer.from([2, 0, 0x10, 0]),
    Buffer.from('UI'),
    Buffer.from([syntax.length, 0]),
    syntax,
  ]);
  const groupLength = Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    Buffer.from('UL'),
    Buffer.from([4, 0, tsElement.length, 0, 0, 0]),
  ]);
  const body = writeDicom(imageElements({ rows: 64, columns: 64, pixels }), {
    transferSyntax: TS.implicitLE,
    partTen: false,
  });
  assert.equal(filmFormat(Buffer.concat([groupLength, tsElement, body])), 'dicom');
  // The same with a whole meta group, as a file.
  const part10 = writeDicom(imageElements({ rows: 64, columns: 64, pixels }), { transferSyntax: TS.implicitLE });
  const metaOnly = part10.subarray(132);
  assert.equal(filmFormat(metaOnly), 'dicom');
  // And it decodes, as the Part-10 file it came from: the meta group says the data set is implicit VR.
  const fromMeta = await decodeDicom(metaOnly);
  assert.deepEqual(fromMeta.gray, (await decodeDicom(part10)).gray);
  assert.deepEqual(
    (await decodeDicom(Buffer.concat([groupLength, tsElement, body]))).gray,
    fromMeta.gray,
    'a meta group of its transfer syntax alone',
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-bare-'));
  try {
    fs.writeFileSync(path.join(dir, 'meta.dcm'), metaOnly);
    assert.equal(await filmFormatOfFile(path.join(dir, 'meta.dcm')), 'dicom');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
