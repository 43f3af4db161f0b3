// Specific Character Set values the standard allows and archives send (dicom_out/iso2022.ts, part10.ts): Japanese
// with katakana first (ISO 2022 IR 13) and supplementary kanji (IR 159), terms in lower case or padded, a
// single-byte first value switched by escapes; the rest refused. Control bytes in text (C0 and C1) become U+FFFD,
// in the header read and in the report written back. A header of too many elements, or of sequences nested too
// deep or around megabytes, is refused before dcmjs has spent seconds on it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dcmjs from 'dcmjs';
import { buildResults, readSource } from '../src/dicom_out';
import { MAX_HEADER_ELEMENTS, MAX_HEADER_WORDS, readHeader } from '../src/dicom_out/part10';
import { type Prediction, Predictor } from '../src/predict/predictor';
import { sopInstanceUid } from '../src/queue/job';
import { type Element, TS, writeDicom } from './dicom-writer';
import { DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';

const SOP_UID = '1.2.826.0.1.3680043.8.498.1';

/** A film header (no pixels) with these Specific Character Set and Patient's Name values, as Latin-1 bytes. */
function film(charset: string, name: string, extra: Element[] = []): Buffer {
  const elements: Element[] = [
    { tag: 0x00080005, vr: 'CS', value: charset },
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' },
    { tag: 0x00080018, vr: 'UI', value: SOP_UID },
    { tag: 0x00100010, vr: 'PN', value: name },
    { tag: 0x00100020, vr: 'LO', value: 'ID-1' },
    { tag: 0x0020000d, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.2' },
    { tag: 0x0020000e, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.3' },
    ...extra,
  ];
  return writeDicom(elements, { transferSyntax: TS.explicitLE });
}

function outcome(bytes: Uint8Array): { name?: unknown; error?: string } {
  try {
    return { name: readHeader(bytes).PatientName };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// PS3.5 H.3.2: "Yamada^Tarou" in half-width katakana (G1, IR 13 as the first value), kanji and hiragana (IR 87).
const KATAKANA_FIRST = 'ISO 2022 IR 13\\ISO 2022 IR 87';
const YAMADA = '\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J';
const YAMADA_TEXT = { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' };

test('Japanese with katakana as the first set, and JIS X 0212 kanji, read as the standard writes them', () => {
  assert.deepEqual(outcome(film(KATAKANA_FIRST, YAMADA)).name, [YAMADA_TEXT]);
  // A delimiter returns G1 to katakana, the first value's set, as it was at the start (PS3.5 6.1.2.5.3).
  assert.deepEqual(outcome(film(KATAKANA_FIRST, '\x1b-A\xb1\\\xb2')).name, [{ Alphabetic: '±' }, { Alphabetic: 'ｲ' }]);
  // JIS X 0212 0x3021 and 0x6D63 are 丂 and 龥 (U+4E02, U+9FA5; as Python's iso2022_jp_2 reads them), after 山.
  const supplementary = film('\\ISO 2022 IR 87\\ISO 2022 IR 159', '\x1b$B;3\x1b$(D0!mc\x1b(B^A');
  assert.deepEqual(outcome(supplementary).name, [{ Alphabetic: '山丂龥^A' }]);
});

test('defined terms in lower case, padded or spelled without 2022, and an empty first value, are read', () => {
  const kanji = '\x1b$B;3\x1b(B';
  for (const charset of [' iso 2022 ir 6 \\iso 2022 ir 87 ', '\\ISO 2022 IR 87', 'ISO_IR 6\\ISO 2022 IR 87']) {
    assert.deepEqual(outcome(film(charset, kanji)).name, [{ Alphabetic: '山' }], JSON.stringify(charset));
  }
  assert.deepEqual(outcome(film('iso_ir 13\\iso 2022 ir 87', YAMADA)).name, [YAMADA_TEXT]);
  // Latin-1 first, switched to Greek (ESC - F) within the value.
  const greek = outcome(film('ISO_IR 100\\ISO 2022 IR 126', 'M\xfcller^\x1b-F\xc1\xeb\xdd\xea\xef\xf2'));
  assert.deepEqual(greek.name, [{ Alphabetic: 'Müller^Αλέκος' }]);
  assert.deepEqual(outcome(film('ISO 2022 IR 144\\ISO 2022 IR 100', '\xb8\xd2\xd0\xdd')).name, [
    { Alphabetic: 'Иван' },
  ]);
});

test('first values that cannot start text with code extensions are refused, saying so', () => {
  for (const charset of ['ISO_IR 192\\ISO 2022 IR 87', 'ISO 2022 IR 87\\ISO 2022 IR 159', 'GBK\\ISO 2022 IR 58']) {
    const read = outcome(film(charset, 'A'));
    assert.match(read.error ?? '', /^Specific Character Set .* is not supported: with code extensions, cxr reads/);
  }
});

const controls = (s: string) => [...s].filter((c) => /[\p{Cc}]/u.test(c));

test('C0 and C1 control bytes in names become U+FFFD; ST, LT and UT keep their line breaks', () => {
  const comments: Element = { tag: 0x00204000, vr: 'LT', value: 'line 1\r\n\tline\x852\x07' };
  const bodyPart: Element = { tag: 0x00180015, vr: 'CS', value: 'CHEST\x1b[2J' };
  const latin1 = readHeader(film('ISO_IR 100', 'M\x85ller^\x9fJo\x01\x1b[2J', [bodyPart, comments]));
  assert.equal(latin1.BodyPartExamined, 'CHEST\ufffd[2J');
  assert.deepEqual(latin1.PatientName, [{ Alphabetic: 'M\ufffdller^\ufffdJo\ufffd\ufffd[2J' }]);
  assert.equal(latin1.ImageComments, 'line 1\r\n\tline\ufffd2\ufffd');
  // With code extensions: the same, and a C1 byte is no lead byte of a Korean (UHC) character.
  const korean = readHeader(film('\\ISO 2022 IR 149', 'A\x85B=\x1b$)C\x81\xb0\xa1\nB'));
  assert.deepEqual(korean.PatientName, [{ Alphabetic: 'A\ufffdB', Ideographic: '\ufffd가\ufffdB' }]);
});

test(`a header of more than ${MAX_HEADER_ELEMENTS} elements is refused, damaged or whole`, () => {
  // A million tiny private elements (10 MB) before the SOP Instance UID: dcmjs took 10-20 s to read them all.
  const tiny = Buffer.from([0x09, 0x00, 0x10, 0x00, 0x4c, 0x4f, 0x02, 0x00, 0x41, 0x42]);
  const many = Buffer.alloc(tiny.length * 1_000_000).map((_, i) => tiny[i % tiny.length]);
  const head = writeDicom([{ tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' }], { transferSyntax: TS.explicitLE });
  const uid = (length: number) => Buffer.from([0x08, 0, 0x18, 0, 0x55, 0x49, length & 0xff, length >> 8]);
  const whole = Buffer.concat([head, many, uid(SOP_UID.length + 1), Buffer.from(`${SOP_UID}\0`)]);
  // Its UID's length runs past the end of the file: dicom-parser gives up, and job.ts asks dcmjs.
  const damaged = Buffer.concat([head, many, uid(0x7fff), Buffer.from('1')]);
  const refused = /^Error: the header holds more than 20000 elements, more than any radiograph's: the file is damaged/;
  for (const bytes of [whole, damaged]) {
    assert.throws(() => readHeader(bytes, { text: false }), refused);
    assert.throws(() => readSource(bytes), /^Error: source DICOM file cannot be read: the header holds more than/);
  }
  assert.equal(sopInstanceUid(damaged), null);
  // A header just within the limit is read.
  const within = Buffer.concat([head, many.subarray(0, tiny.length * (MAX_HEADER_ELEMENTS - 10))]);
  assert.equal(readHeader(within, { text: false }).SpecificCharacterSet, 'ISO_IR 192');
});

/** A header with `depth` nested sequences of undefined length around an OB value of `bytes` bytes. */
function nested(depth: number, bytes: number): Buffer {
  const head = writeDicom([{ tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' }], { transferSyntax: TS.explicitLE });
  const undefinedLength = [0xff, 0xff, 0xff, 0xff];
  // Referenced Image Sequence (0008,1140) and an item, both of undefined length; then their delimiters.
  const open = Buffer.from([
    8,
    0,
    0x40,
    0x11,
    0x53,
    0x51,
    0,
    0,
    ...undefinedLength,
    0xfe,
    0xff,
    0,
    0xe0,
    ...undefinedLength,
  ]);
  const close = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes);
  const ob = Buffer.concat([Buffer.from([9, 0, 0x10, 0x10, 0x4f, 0x42, 0, 0]), length, Buffer.alloc(bytes, 0x41)]);
  return Buffer.concat([head, ...Array(depth).fill(open), ob, ...Array(depth).fill(close)]);
}

test('sequences of undefined length nested deep, or around megabytes, are refused before dcmjs spends seconds', () => {
  // dcmjs searches each item for its end, then reads it and searches its nested items again: 2,000 levels in
  // 72 KB took 5 s (10,000 levels, 35 s), and 10 MB under 8 levels 4 s.
  assert.throws(
    () => readHeader(nested(2000, 0), { text: false }),
    /^Error: the header nests sequences \(SQ\) more than 64 levels deep, more than any image object needs/,
  );
  assert.throws(
    () => readSource(nested(8, 10 << 20)),
    new RegExp(`cannot be read: reading the header takes more than ${MAX_HEADER_WORDS} steps \\(items of undefined`),
  );
  // An icon's worth of data in a few levels reads.
  assert.equal(readHeader(nested(8, 64 << 10), { text: false }).SpecificCharacterSet, 'ISO_IR 192');
});

const DCMTK = spawnSync('which', ['dcmdump']).status === 0 && spawnSync('which', ['dsrdump']).status === 0;
const skip = !DCMTK ? 'DCMTK is not installed: apt-get install dcmtk' : !fs.existsSync(DICOM_FILE) && 'no sample film';
let dir = '';
let predictor: Predictor | undefined;
let prediction: Prediction;

before(async () => {
  if (skip) return;
  dir = tempDir('dicom-charset-terms');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  prediction = await predictor.predict(fs.readFileSync(DICOM_FILE), { heatmap: false });
});
after(() => {
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The report written for a film of these bytes, as a file. */
async function report(bytes: Buffer, name: string): Promise<string> {
  const model = { name: 'tiny-test', version: '0.0.1', sha256: predictor!.model.sha256 };
  const { sr } = await buildResults({ source: readSource(bytes), prediction, model });
  const file = path.join(dir, `${name}.sr.dcm`);
  fs.writeFileSync(file, sr.bytes);
  return file;
}

const problems = (err: string) =>
  err.split('\n').filter((l) => /^[WEF]:/.test(l) && !/VR checker does not support .*ISO_IR 192/.test(l));

test('a report for a katakana-first Japanese name reads back in UTF-8 to dcmdump and dsrdump', { skip }, async () => {
  const file = await report(film(KATAKANA_FIRST, YAMADA), 'yamada');
  const want = `${YAMADA_TEXT.Alphabetic}=${YAMADA_TEXT.Ideographic}=${YAMADA_TEXT.Phonetic}`;
  const dump = spawnSync('dcmdump', ['+E', '+U8', '+P', '0008,0005', '+P', '0010,0010', file], { encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  assert.deepEqual(problems(dump.stderr), []);
  assert.ok(dump.stdout.includes('[ISO_IR 192]'), dump.stdout);
  assert.ok(dump.stdout.includes(`[${want}]`), dump.stdout);
  const sr = spawnSync('dsrdump', ['+U8', '+Pl', file], { encoding: 'utf8' });
  assert.equal(sr.status, 0, sr.stderr);
  assert.deepEqual(problems(sr.stderr), []);
  assert.ok(sr.stdout.includes(want), sr.stdout.slice(0, 600));
});

test('a report for a name with control bytes holds U+FFFD, not the controls', { skip }, async () => {
  const file = await report(film('ISO_IR 100', 'M\x85ller^\x01Jo'), 'controls');
  const bytes = fs.readFileSync(file);
  const { dict } = dcmjs.data.DicomMessage.readFile(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
  );
  const name = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict).PatientName as { Alphabetic: string }[];
  assert.deepEqual(name, [{ Alphabetic: 'M\ufffdller^\ufffdJo' }]);
  assert.deepEqual(controls(name[0].Alphabetic), []);
});
