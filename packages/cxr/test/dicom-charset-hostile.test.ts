// Hostile headers against the ISO 2022 code-extension reader (dicom_out/part10.ts): headers come from anyone who
// uploads a film or sends one to the PACS. Long values read in linear time; a backslash or '=' byte inside a
// two-byte JIS character is no delimiter; bad escape sequences and unknown character sets are refused with a
// message that names the attribute and shows no raw header bytes; a cut file is refused as with one character
// set; undecodable bytes become U+FFFD, and the report written from such a header is well-formed UTF-8.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildResults, readSource } from '../src/dicom_out';
import { readHeader, splitIso2022 } from '../src/dicom_out/part10';
import { type Prediction, Predictor } from '../src/predict/predictor';
import { type Element, TS, writeDicom } from './dicom-writer';
import { DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';

const JAPANESE = '\\ISO 2022 IR 87';
const KOREAN = '\\ISO 2022 IR 149';
const CHINESE = '\\ISO 2022 IR 58';

/** A film header (no pixels) with these Specific Character Set and Patient's Name values, as Latin-1 bytes. */
function film(charset: string, name: string, opts: { implicit?: boolean; extra?: Element[] } = {}): Buffer {
  const elements: Element[] = [
    { tag: 0x00080005, vr: 'CS', value: charset },
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' },
    { tag: 0x00080018, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.1' },
    { tag: 0x00100010, vr: 'PN', value: name },
    { tag: 0x00100020, vr: 'LO', value: 'ID-1' },
    { tag: 0x0020000d, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.2' },
    { tag: 0x0020000e, vr: 'UI', value: '1.2.826.0.1.3680043.8.498.3' },
    { tag: 0x00282110, vr: 'CS', value: '01' },
    ...(opts.extra ?? []),
  ];
  // Implicit VR: 32-bit lengths, so that a value can be megabytes long.
  return writeDicom(elements, { transferSyntax: opts.implicit ? TS.implicitLE : TS.explicitLE });
}

/** What the reader makes of a header, or the message it refuses it with. */
function outcome(bytes: Uint8Array): { name?: unknown; error?: string } {
  try {
    return { name: readHeader(bytes).PatientName };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** JIS X 0208 text as a reference decoder (WHATWG ISO-2022-JP) reads it. */
const jis = (bytes: string) => new TextDecoder('iso-2022-jp').decode(Buffer.from(bytes, 'latin1'));

/** Throws when `s` holds a C0 or C1 control character (an ESC, a newline: raw header bytes in a log line). */
function assertNoControls(s: string, what = s.slice(0, 200)): void {
  const at = [...s].findIndex((c) => c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f));
  assert.equal(at, -1, `control character at ${at}: ${JSON.stringify(what)}`);
}

test('megabyte values with a million escape sequences read in linear time', () => {
  const cases = {
    ascii: 'A'.repeat(400_000), // quadratic before: a minute for this one, minutes for a megabyte
    kanji: `\x1b$B${';3'.repeat(1_000_000)}\x1b(B`,
    toggles: '\x1b$B;3\x1b(BA'.repeat(400_000),
    hangul: `\x1b$)C${'a\xb0\xa1'.repeat(1_000_000)}`,
    delimiters: '\\=A'.repeat(1_000_000),
  };
  for (const [what, name] of Object.entries(cases)) {
    const bytes = film(what === 'hangul' ? KOREAN : JAPANESE, name, { implicit: true });
    const t = performance.now();
    const read = outcome(bytes);
    const ms = performance.now() - t;
    assert.equal(read.error, undefined, what);
    assert.ok(ms < 8000, `${what}: ${name.length} bytes read in ${ms.toFixed(0)} ms`);
  }
  const kanji = outcome(film(JAPANESE, `\x1b$B${';3'.repeat(200_000)}\x1b(B`, { implicit: true }));
  assert.deepEqual(kanji.name, [{ Alphabetic: '山'.repeat(200_000) }]);
});

test('a backslash or = byte inside a JIS character is part of it; the delimiters outside still count', () => {
  // 0x5C21 and 0x3D21 are kanji of JIS X 0208: dcmjs cut the value there, splitting the character.
  const name = 'Ab\\Cd=\x1b$B\x5c\x21\x3d\x21\x1b(B^E=\x1b$B\x5e\x21\x1b(B';
  assert.deepEqual(outcome(film(JAPANESE, name)).name, [
    { Alphabetic: 'Ab' },
    { Alphabetic: 'Cd', Ideographic: `${jis('\x1b$B\x5c\x21\x3d\x21')}^E`, Phonetic: jis('\x1b$B\x5e\x21') },
  ]);
  const lo = film(JAPANESE, 'X', { extra: [{ tag: 0x00081030, vr: 'LO', value: '\x1b$B\x5c\x21\x1b(B\\b' }] });
  assert.deepEqual(readHeader(lo).StudyDescription, [jis('\x1b$B\x5c\x21'), 'b']);
  // Each value and component group starts again in ASCII with no G1 set (PS3.5 6.1.2.5.3).
  assert.deepEqual(
    splitIso2022(Buffer.from('\x1b$B;3\x1b(B\\\x1b$)C\xb0\xa1=\xb0\xa1', 'latin1'), [0x5c, 0x3d]).map((p) => p.text),
    ['山', '가', '\xb0\xa1'],
  );
});

test('unknown, cut and hostile escape sequences are refused, naming the attribute, in hex', () => {
  for (const name of ['A\x1b', 'A\x1b$', 'A\x1b$)', 'A\x1b[2J\x1b]0;pwned\x07\n', 'A\x1b$(Z\x21\x21', '\x1b%G']) {
    const read = outcome(film(JAPANESE, name));
    assert.match(read.error ?? '', /^\(0010,0010\) uses a character set cxr does not know \(escape sequence 1B/);
    assertNoControls(read.error!);
  }
  assert.match(outcome(film(JAPANESE, 'A\x1b[2J')).error!, /escape sequence 1B 5B 32 4A at byte 1/);
  assert.throws(
    () => readSource(film(KOREAN, 'Kim', { extra: [{ tag: 0x00081030, vr: 'LO', value: 'x\x1b$)Z' }] })),
    /^Error: source DICOM file cannot be read: \(0008,1030\) uses a character set cxr does not know/,
  );
});

test('unknown or huge character sets are refused in a short message without raw bytes', () => {
  const values = [
    `\x1b[31m\n${'X'.repeat(100_000)}\\ISO 2022 IR 87`, // first value dcmjs does not know
    `ISO_IR 192\\${'\x1b\n'.repeat(50_000)}`, // known first value, which takes no code extensions
    `ISO 2022 IR 87\\\x07${'Y'.repeat(100_000)}`, // a multi-byte set, which cannot be the first
  ];
  for (const charset of values) {
    const read = outcome(film(charset, 'A', { implicit: true }));
    assert.ok(read.error, JSON.stringify(read.name));
    assertNoControls(read.error);
    assert.ok(read.error.length < 400, `${read.error.length} characters: ${read.error.slice(0, 200)}`);
  }
  // Empty terms, padding and unknown extensions after an ASCII first value are read (text without escapes).
  for (const charset of ['\\\\\\', `${'\\'.repeat(100)}ISO 2022 IR 87`, '  ISO 2022 IR 6 \\FOO', '\\\\ ']) {
    assert.deepEqual(outcome(film(charset, 'Doe^J')).name, [{ Alphabetic: 'Doe^J' }], JSON.stringify(charset));
  }
});

test('a character set cut short in the message is cut between escapes, never inside one', () => {
  const escaped = (s: string) =>
    s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  // The message shows 80 characters of the value: each filler length puts the cut at another place in the escapes.
  for (let filler = 60; filler <= 72; filler++) {
    const charset = `ISO_IR 192\\${'X'.repeat(filler)}${'\x1b'.repeat(6)}`;
    const error = outcome(film(charset, 'A')).error ?? '';
    const shown = /^Specific Character Set (.*)… \((\d+) characters\) is not supported/.exec(error);
    assert.ok(shown, error);
    assert.equal(Number(shown[2]), charset.length);
    assert.ok(shown[1].length <= 80, shown[1]);
    // What is shown is the escaped text of a whole prefix of the value: "\x1" is no byte of it.
    const whole = [...Array(charset.length + 1).keys()].some((n) => escaped(charset.slice(0, n)) === shown[1]);
    assert.ok(whole, `filler ${filler}: ${shown[1].slice(-12)}`);
  }
});

test('a cut file with code extensions is refused as one with a single character set is', () => {
  // Cut inside the header of Lossy Image Compression (0028,2110): dcmjs with ignoreErrors stopped there quietly.
  const cut = (bytes: Buffer) => bytes.subarray(0, bytes.indexOf(Buffer.from([0x28, 0, 0x10, 0x21])) + 3);
  assert.match(outcome(cut(film('ISO_IR 100', 'Doe'))).error ?? '', /./);
  const read = outcome(cut(film(JAPANESE, 'Doe')));
  assert.ok(read.error, `read as ${JSON.stringify(read.name)}`);
  assertNoControls(read.error);
  // Whole, it reads, and keeps what comes after the names (the lossy flag the heat map must repeat).
  assert.equal(readHeader(film(JAPANESE, 'Doe')).LossyImageCompression, '01');
});

test('bad EUC-KR, GB 2312 and JIS bytes become U+FFFD, never an exception or broken text', () => {
  const names = {
    [KOREAN]: ['\x1b$)C\xff\xfe\x80\x81\xa1', '\x1b$)C\xb0', '\x1b$)C\xb0\x1b$B;3'],
    [CHINESE]: ['\x1b$)A\xff\xfe\xa1', '\x1b$)A\xb0\xa1\xb0'],
    [JAPANESE]: ['\x1b$B;', '\x1b$B;\x1b(B3ED', '\x1b$B;3\r\n E', '\x1b$B\x7f\x21\x1b(B', '\xe9\x1b)I\xb1\xe0'],
  };
  for (const [charset, list] of Object.entries(names)) {
    for (const name of list) {
      const read = outcome(film(charset, name));
      assert.equal(read.error, undefined, JSON.stringify(name));
      const text = (read.name as Record<string, string>[]).flatMap((n) => Object.values(n)).join('');
      assert.equal(Buffer.from(text, 'utf8').toString('utf8'), text, 'no lone surrogates');
      assert.ok(!text.includes('\x1b'), `${JSON.stringify(name)}: ${JSON.stringify(text)}`);
    }
  }
  assert.deepEqual(outcome(film(KOREAN, '\x1b$)C\xb0')).name, [{ Alphabetic: '\ufffd' }]);
});

const DCMTK = spawnSync('which', ['dcmdump']).status === 0;
const skip = !DCMTK ? 'DCMTK is not installed: apt-get install dcmtk' : !fs.existsSync(DICOM_FILE) && 'no sample film';
let dir = '';
let predictor: Predictor | undefined;
let prediction: Prediction;

before(async () => {
  if (skip) return;
  dir = tempDir('dicom-charset-hostile');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  prediction = await predictor.predict(fs.readFileSync(DICOM_FILE), { heatmap: false });
});
after(() => {
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a report written from a hostile header is valid UTF-8 to dcmdump +E', { skip }, async () => {
  const name = 'Ab\\Cd=\x1b$B\x5c\x21;3\x1b(B^\x1b$)C\xb0\xa1\xff=\x1b$B;3ED';
  const source = readSource(film(`${JAPANESE}\\ISO 2022 IR 149`, name));
  const model = { name: 'tiny-test', version: '0.0.1', sha256: predictor!.model.sha256 };
  const { sr } = await buildResults({ source, prediction, model });
  const file = path.join(dir, 'hostile.sr.dcm');
  fs.writeFileSync(file, sr.bytes);
  const r = spawnSync('dcmdump', ['+E', '+U8', '+P', '0010,0010', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    r.stderr.split('\n').filter((l) => /^[EF]:/.test(l)),
    [],
  );
  const want = `Ab\\Cd=${jis('\x1b$B\x5c\x21;3')}^가\ufffd=${jis('\x1b$B;3ED')}`;
  assert.ok(r.stdout.includes(`[${want}]`), r.stdout);
});
