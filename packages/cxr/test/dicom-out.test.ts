// dicom_out: a prediction on a real DICOM film written as a Comprehensive SR and a Secondary
// Capture heat map, parsed back with dicom-parser (an independent reader).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import {
  buildResults,
  buildSr,
  CAVEAT,
  CODES,
  derivedUid,
  isUid,
  readSource,
  SOP_CLASS,
  type ResultInput,
} from '../src/dicom_out';
import { seriesDescription } from '../src/dicom_out/identity';
import { burnedInLines } from '../src/dicom_out/secondary_capture';
import { wrap } from '../src/dicom_out/overlay';
import { type Prediction, Predictor } from '../src/predict/predictor';
import { imageElements, writeDicom } from './dicom-writer';
import { DICOM_DIR, DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';

let dir = '';
let predictor: Predictor;
let prediction: Prediction;
let sourceBytes: Buffer;

before(async () => {
  dir = tempDir('dicom-out');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  sourceBytes = fs.readFileSync(DICOM_FILE);
  prediction = await predictor.predict(sourceBytes, { heatmap: true });
});
after(() => {
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function input(
  over: Partial<ResultInput> & { prediction?: Prediction } = {},
): ResultInput & { prediction: Prediction } {
  const { name, version, sha256 } = predictor.model;
  return {
    source: readSource(sourceBytes),
    prediction,
    model: { name, version, sha256 },
    now: new Date('2024-05-01T12:34:56Z'),
    ...over,
  };
}

const parse = (b: Buffer) => dicomParser.parseDicom(new Uint8Array(b));
const str = (ds: dicomParser.DataSet, tag: string) => ds.string(tag)?.replace(/\0/g, '').trim();
const items = (ds: dicomParser.DataSet, tag: string) => (ds.elements[tag]?.items ?? []).map((i) => i.dataSet!);
const conceptMeaning = (ds: dicomParser.DataSet, tag = 'x0040a043') => str(items(ds, tag)[0], 'x00080104');

test('UIDs: 2.25 form, valid, a function of their inputs', () => {
  const a = derivedUid('cxr-sr', '1.2.3', 'abc');
  assert.match(a, /^2\.25\.[1-9][0-9]*$/);
  assert.ok(isUid(a) && a.length <= 64);
  assert.equal(derivedUid('cxr-sr', '1.2.3', 'abc'), a);
  assert.notEqual(derivedUid('cxr-sr', '1.2.3', 'abd'), a);
  // Parts are delimited: moving a character between parts changes the UID.
  assert.notEqual(derivedUid('cxr-sr', '1.2.3a', 'bc'), a);
  assert.ok(!isUid('1.02.3') && !isUid('1.2.') && !isUid('1.2.x'));
});

test('source header: a bare data set without preamble reads like its Part-10 copy; missing UIDs are refused', () => {
  const bare = readSource(fs.readFileSync(path.join(DICOM_DIR, 'CR-MONO1-10-chest_nometa.dcm')));
  const part10 = readSource(fs.readFileSync(path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm')));
  assert.equal(bare.sopInstanceUid, part10.sopInstanceUid);
  assert.equal(bare.studyInstanceUid, part10.studyInstanceUid);
  assert.equal(bare.modality, 'CR');
  assert.equal(bare.bodyPart, 'CHEST');
  const noUids = writeDicom(imageElements({ rows: 2, columns: 2, bitsAllocated: 8, pixels: new Uint8Array(4) }));
  assert.throws(() => readSource(noUids), /StudyInstanceUID \(0020,000D\) is missing/);
  assert.throws(() => readSource(Buffer.from('hello, not DICOM at all')), /cannot be read: not a DICOM file/);
});

test('SR: same patient and study, own series, deterministic instance, references, values, caveat', async () => {
  const src = readSource(sourceBytes);
  const { sr, sc } = await buildResults(input());
  assert.ok(sc, 'a heat map was produced');
  const ds = parse(sr.bytes);
  assert.equal(str(ds, 'x00080016'), SOP_CLASS.comprehensiveSr);
  assert.equal(str(ds, 'x00020002'), SOP_CLASS.comprehensiveSr, 'file meta agrees');
  assert.equal(str(ds, 'x00080060'), 'SR');
  assert.equal(str(ds, 'x0020000d'), src.studyInstanceUid);
  assert.equal(str(ds, 'x00100020'), '16d7f894-55d7-4d95-8957-d18987f0e981', 'patient id copied');
  assert.equal(str(ds, 'x00100010'), '16d7f894-55d7-4d95-8957-d18987f0e981', 'patient name copied');
  assert.equal(str(ds, 'x00100040'), 'M');
  assert.equal(str(ds, 'x00080020'), '19010101', 'study date copied');
  assert.notEqual(str(ds, 'x0020000e'), src.seriesInstanceUid);
  assert.equal(str(ds, 'x0020000e'), sr.seriesInstanceUid);
  assert.equal(str(ds, 'x00080018'), sr.sopInstanceUid);
  assert.ok(isUid(sr.sopInstanceUid) && sr.sopInstanceUid.startsWith('2.25.'));
  assert.equal(str(ds, 'x00080070'), 'cxr');
  assert.equal(str(ds, 'x0040a491'), 'COMPLETE');
  assert.equal(str(ds, 'x0040a493'), 'UNVERIFIED');

  // Current Requested Procedure Evidence: study → series → the source instance.
  const [ev] = items(ds, 'x0040a375');
  assert.equal(str(ev, 'x0020000d'), src.studyInstanceUid);
  const [evSeries] = items(ev, 'x00081115');
  assert.equal(str(evSeries, 'x0020000e'), src.seriesInstanceUid);
  const [evSop] = items(evSeries, 'x00081199');
  assert.equal(str(evSop, 'x00081155'), src.sopInstanceUid);
  assert.equal(str(evSop, 'x00081150'), src.sopClassUid);

  assert.equal(str(ds, 'x0040a040'), 'CONTAINER');
  const content = items(ds, 'x0040a730');
  const byMeaning = (m: string) => content.filter((c) => conceptMeaning(c) === m);
  // The sample film is an adult's (PatientAge): a number for reference, and no finding (next test).
  assert.equal(prediction.verdict.status, 'outside-population');
  const status = byMeaning(CODES.assessment.CodeMeaning)[0];
  assert.equal(str(status, 'x0040a040'), 'CODE');
  assert.equal(conceptMeaning(status, 'x0040a168'), 'Outside the intended population');
  assert.deepEqual(byMeaning(CODES.pneumonia.CodeMeaning), []);
  const numValue = (m: string) => Number(str(items(byMeaning(m)[0], 'x0040a300')[0], 'x0040a30a'));
  assert.ok(Math.abs(numValue(CODES.probability.CodeMeaning) - prediction.probability) < 1e-6);
  assert.equal(numValue(CODES.threshold.CodeMeaning), prediction.threshold);
  const textOf = (m: string) => byMeaning(m).map((c) => str(c, 'x0040a160'));
  assert.deepEqual(textOf('Operating point'), ['balanced']);
  assert.deepEqual(textOf('Algorithm Name'), ['tiny-test']);
  assert.deepEqual(textOf('Algorithm Version'), ['0.0.1']);
  assert.deepEqual(textOf('Model SHA-256'), [predictor.model.sha256]);
  assert.deepEqual(textOf('Comment'), [CAVEAT]);
  assert.match(CAVEAT, /AI-generated, not a diagnosis; a decision aid for trained readers/);
  const refOf = (m: string) => str(items(byMeaning(m)[0], 'x00081199')[0], 'x00081155');
  assert.equal(refOf('Source of Measurement'), src.sopInstanceUid);
  assert.equal(refOf('Grad-CAM heat map'), sc.sopInstanceUid);

  // Re-running gives the same instance; another model or operating point gives another one.
  const again = buildSr(input({ now: new Date('2025-01-01T00:00:00Z') }), sc);
  assert.equal(again.sopInstanceUid, sr.sopInstanceUid);
  assert.equal(again.seriesInstanceUid, sr.seriesInstanceUid);
  const otherModel = buildSr(input({ model: { ...predictor.model, sha256: 'f'.repeat(64) } }));
  assert.notEqual(otherModel.sopInstanceUid, sr.sopInstanceUid);
  assert.notEqual(otherModel.seriesInstanceUid, sr.seriesInstanceUid, 'one series per model version');
  const otherOp = buildSr(input({ prediction: { ...prediction, operatingPoint: 'screening', threshold: 0.3 } }));
  assert.notEqual(otherOp.sopInstanceUid, sr.sopInstanceUid);
  assert.equal(otherOp.seriesInstanceUid, sr.seriesInstanceUid);
});

test('SR and burned-in text follow the verdict: a finding only when assessed, no number if cannot-assess', async () => {
  const reasons = [{ code: 'BLANK' as const, message: 'image is blank or nearly uniform' }];
  const cases = [
    { status: 'assessed', finding: true, number: true, headline: /(Above|Below) the pneumonia threshold/ },
    { status: 'outside-population', finding: false, number: true, headline: /Outside the intended population/ },
    { status: 'cannot-assess', finding: false, number: false, headline: /Cannot assess this image/ },
  ] as const;
  for (const c of cases) {
    const p: Prediction = {
      ...prediction,
      label: 'PNEUMONIA',
      verdict: { status: c.status, reasons: c.status === 'assessed' ? [] : reasons },
    };
    const content = items(parse(buildSr(input({ prediction: p })).bytes), 'x0040a730');
    const byMeaning = (m: string) => content.filter((x) => conceptMeaning(x) === m);
    const status = byMeaning(CODES.assessment.CodeMeaning);
    assert.equal(status.length, 1, c.status);
    const statusMeaning = { assessed: 'Assessed', 'cannot-assess': 'Cannot be assessed' }[c.status as string];
    assert.equal(conceptMeaning(status[0], 'x0040a168'), statusMeaning ?? 'Outside the intended population');
    const finding = byMeaning(CODES.pneumonia.CodeMeaning);
    assert.equal(finding.length, c.finding ? 1 : 0, `${c.status}: finding`);
    if (c.finding) assert.equal(conceptMeaning(finding[0], 'x0040a168'), 'Yes');
    assert.equal(byMeaning(CODES.probability.CodeMeaning).length, c.number ? 1 : 0, `${c.status}: probability`);
    // The burned-in line never ends in a bare label, and says when the number is for reference only.
    const line = burnedInLines(input({ prediction: p }))[1];
    assert.match(line, c.headline, line);
    assert.doesNotMatch(line, /: PNEUMONIA$/, line);
    assert.equal(line.includes('for reference only'), c.status === 'outside-population', line);
  }
});

test('series descriptions keep the model version within 64 characters, however long the name', () => {
  const model = { name: 'cxr-shift-ema-period-mobilenet-short-lpft-with-a-long-name', version: '20261202T145446' };
  for (const d of [seriesDescription('sr', model), seriesDescription('sc', model)]) {
    assert.ok(d.length <= 64, d);
    assert.ok(d.includes(model.version), d);
    assert.ok(d.startsWith('cxr AI '), 'the PACS filter (pacs/filter.ts) knows our series by this prefix');
  }
});

test('SC: RGB heat map with legend and burned-in caveat, same study, own series, right pixel size', async () => {
  const src = readSource(sourceBytes);
  const { sc } = await buildResults(input());
  assert.ok(sc);
  const ds = parse(sc.bytes);
  assert.equal(str(ds, 'x00080016'), SOP_CLASS.secondaryCapture);
  assert.equal(str(ds, 'x00080060'), 'OT');
  assert.equal(str(ds, 'x0020000d'), src.studyInstanceUid);
  assert.equal(str(ds, 'x00100020'), '16d7f894-55d7-4d95-8957-d18987f0e981');
  assert.equal(str(ds, 'x0020000e'), sc.seriesInstanceUid);
  assert.notEqual(sc.seriesInstanceUid, src.seriesInstanceUid);
  assert.equal(str(ds, 'x00080018'), sc.sopInstanceUid);
  assert.equal(str(ds, 'x00280301'), 'YES', 'burned-in annotation declared');
  assert.equal(str(ds, 'x00280004'), 'RGB');
  assert.equal(ds.uint16('x00280002'), 3);
  assert.equal(ds.uint16('x00280100'), 8);
  assert.equal(str(items(ds, 'x00082112')[0], 'x00081155'), src.sopInstanceUid, 'source image referenced');
  const rows = ds.uint16('x00280010')!;
  const cols = ds.uint16('x00280011')!;
  const px = ds.elements.x7fe00010;
  assert.equal(px.length, rows * cols * 3);

  const heat = await sharp(prediction.heatmapPng!).metadata();
  assert.ok(cols >= heat.width! + 80, 'a legend column beside the heat map');
  assert.ok(rows > heat.height! + 30, 'a text band below the heat map');
  const rgb = new Uint8Array(sc.bytes.buffer, sc.bytes.byteOffset + px.dataOffset, px.length);
  const at = (x: number, y: number) => Array.from(rgb.subarray((y * cols + x) * 3, (y * cols + x) * 3 + 3));
  // The heat map itself is copied in unchanged at the top left.
  const heatRaw = await sharp(prediction.heatmapPng!).removeAlpha().raw().toBuffer();
  assert.deepEqual(
    at(10, 10),
    Array.from(heatRaw.subarray((10 * heat.width! + 10) * 3, (10 * heat.width! + 10) * 3 + 3)),
  );
  // Text was rendered: the band below the image holds light (glyph) pixels on the black ground.
  let lit = 0;
  for (let y = heat.height! + 1; y < rows; y++) for (let x = 0; x < cols; x++) if (at(x, y)[0] > 128) lit++;
  assert.ok(lit > 300, `caveat glyphs burned in (${lit} light pixels)`);
  // The legend bar runs from light yellow (high, top) to near black (low, bottom).
  const barX = heat.width! + 8 + 9;
  let top = -1,
    bottom = -1;
  for (let y = 0; y < heat.height!; y++) {
    const [r, g] = at(barX, y);
    if (top < 0 && r > 200 && g > 200) top = y;
    if (r < 40 && g < 40 && y > top && top >= 0) bottom = y;
  }
  assert.ok(top >= 0 && bottom > top, `legend gradient present (top ${top}, bottom ${bottom})`);

  assert.equal((await buildResults(input({ now: new Date() }))).sc!.sopInstanceUid, sc.sopInstanceUid, 'deterministic');
});

test('wrap: lines no longer than asked, words kept whole', () => {
  const lines = wrap(CAVEAT, 30);
  assert.ok(lines.length >= 2 && lines.every((l) => l.length <= 30));
  assert.equal(lines.join(' '), CAVEAT);
});
