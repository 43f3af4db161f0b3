// A DICOM's own age through Predictor.predict, as the API, `cxr predict` and the PACS get it: the age
// from PatientBirthDate and StudyDate when PatientAge is missing (an adult's film is outside the
// population, saying where the age came from), and a PatientAge that cannot be read is a warning on
// an answer that is otherwise as for a film without an age.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Predictor } from '../src/predict/predictor';
import { type Element, imageElements, writeDicom } from './dicom-writer';
import { makeSeededModel, tempDir } from './ood-fixtures';
import { needsData, SAMPLES_FULLRES } from './shared-data';

const skip = needsData(SAMPLES_FULLRES);
let root = '';
let predictor: Predictor;
let pixels: Uint16Array;
const W = 120;
const H = 100;

before(async () => {
  if (skip) return;
  root = tempDir('predictor-dicom-age');
  predictor = await Predictor.load(
    await makeSeededModel(path.join(root, 'model'), { inputSize: 48, widths: [4, 8, 8, 8] }),
    {
      warmUp: false,
    },
  );
  // A real film, so that the image checks pass it: any verdict other than 'assessed' comes from the age.
  const dir = path.join(SAMPLES_FULLRES, 'NORMAL');
  const first = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpeg'))
    .sort()[0];
  const raw = await sharp(path.join(dir, first)).grayscale().resize(W, H, { fit: 'fill' }).raw().toBuffer();
  pixels = Uint16Array.from(raw, (v) => v * 16);
});
after(() => {
  predictor?.dispose();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const dicom = (...extra: Element[]) =>
  writeDicom(imageElements({ rows: H, columns: W, bitsStored: 12, pixels, extra }));
const patientAge = (value: string): Element => ({ tag: 0x00101010, vr: 'AS', value });
const birth = (value: string): Element => ({ tag: 0x00100030, vr: 'DA', value });
const study = (value: string): Element => ({ tag: 0x00080020, vr: 'DA', value });

test('no PatientAge, born 19500101, studied 20200101: outside the population, by the header dates', {
  skip,
}, async () => {
  const none = await predictor.predict(dicom());
  assert.equal(none.verdict.status, 'assessed', JSON.stringify(none.verdict));
  const r = await predictor.predict(dicom(birth('19500101'), study('20200101')));
  assert.equal(r.verdict.status, 'outside-population', JSON.stringify(r.verdict));
  assert.deepEqual(r.warnings, [
    "outside the intended population (children aged 1–5): the DICOM header's PatientBirthDate and StudyDate give " +
      'a patient age over 10 years',
  ]);
  // Ages that disagree across a bound: outside the population whichever source says so.
  const stated = await predictor.predict(dicom(birth('19500101'), study('20200101')), { patientAge: 4 });
  assert.equal(stated.verdict.status, 'outside-population');
  const child = await predictor.predict(dicom(birth('20160301'), study('20200101')), { patientAge: 40 });
  assert.equal(child.verdict.status, 'outside-population', JSON.stringify(child.verdict));
  const agree = await predictor.predict(dicom(birth('20160301'), study('20200101')), { patientAge: 4 });
  assert.equal(agree.verdict.status, 'assessed', JSON.stringify(agree.verdict));
  const byAge = await predictor.predict(dicom(patientAge('004Y'), birth('19500101'), study('20200101')));
  assert.equal(byAge.verdict.status, 'outside-population', JSON.stringify(byAge.verdict));
  assert.match(byAge.warnings[0], /StudyDate give a patient age over 10 years \(the PatientAge does not;/);
  // Dates that give no age: a warning, and the film assessed as without an age.
  const after = await predictor.predict(dicom(birth('20200102'), study('20200101')));
  assert.equal(after.verdict.status, 'assessed');
  assert.deepEqual(after.warnings, [
    "the patient's age could not be worked out from the DICOM's dates (PatientBirthDate (0010,0030) is after " +
      "StudyDate (0008,0020)): the patient's age is unknown",
  ]);
});

test('a PatientAge that cannot be read: a warning that never repeats it, the film still assessed', {
  skip,
}, async () => {
  for (const [value, chars] of [
    ['abcd', 4],
    ['45 years', 8],
    ['P45Y', 4],
    ['FORTY', 5],
    ['ABOUT 5 YEARS', 13],
  ] as const) {
    const r = await predictor.predict(dicom(patientAge(value)));
    assert.equal(r.verdict.status, 'assessed', `${value}: ${JSON.stringify(r.verdict)}`);
    assert.deepEqual(
      r.warnings,
      [
        "the DICOM's PatientAge (0010,1010) is not in the nnnD, nnnW, nnnM or nnnY form in which DICOM writes an " +
          `age (its value, ${chars} characters, is not shown): the patient's age is unknown`,
      ],
      value,
    );
    assert.doesNotMatch(r.warnings.join('\n'), /FORTY|ABOUT|YEARS|ABCD|45/i, value);
  }
  // With an age stated for the upload, that age is used, and the warning says so.
  const r = await predictor.predict(dicom(patientAge('FORTY')), { patientAge: 45 });
  assert.equal(r.verdict.status, 'outside-population');
  assert.match(
    r.warnings.at(-1)!,
    /is not in the nnnD.*\(its value, 5 characters, is not shown\): the age given with the image is used$/,
  );
  // The valid forms are read as before: a child's film is assessed with no warning, an adult's is not.
  for (const value of ['004Y', '018M']) {
    const ok = await predictor.predict(dicom(patientAge(value)));
    assert.deepEqual([ok.verdict.status, ok.warnings], ['assessed', []], value);
  }
  assert.equal((await predictor.predict(dicom(patientAge('045Y')))).verdict.status, 'outside-population');
  // Nor is an infant's (a 10-week-old, a 3-day-old): under the youngest training age, no margin below it.
  for (const value of ['010W', '003D']) {
    const infant = await predictor.predict(dicom(patientAge(value)));
    assert.equal(infant.verdict.status, 'outside-population', value);
    assert.deepEqual(
      infant.warnings,
      ['outside the intended population (children aged 1–5): the DICOM header gives a patient age under 1 year'],
      value,
    );
  }
  // An infant's age typed with a film whose header gives none: the same.
  const typed = await predictor.predict(dicom(), { patientAge: 0.5 });
  assert.equal(typed.verdict.status, 'outside-population');
  assert.match(typed.warnings[0], /the age given with the image is a patient age under 1 year$/);
});
