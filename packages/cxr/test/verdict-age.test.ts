// The patient's age in the verdict when the DICOM header gives no readable PatientAge: the age from
// its PatientBirthDate and the study's date counts as a stated PatientAge does (after PatientAge,
// before an age given with the image), and an age that cannot be read is a warning, not a refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDicom } from '../src/data/dicom';
import { ageInYears, deriveVerdict, type VerdictEvidence } from '../src/predict/verdict';
import { ageWarnings } from '../src/predict/verdict_notes';
import { type Element, imageElements, writeDicom } from './dicom-writer';

const base: VerdictEvidence = { ood: null, checks: [], width: 512, height: 512, facts: {} };
const ood = { score: 90, threshold: 50, outOfDistribution: true };

/** The header facts of a DICOM as the decoder reads them (what decode_input hands the verdict). */
async function headerFacts(...extra: Element[]): Promise<VerdictEvidence['facts']> {
  const img = await decodeDicom(writeDicom(imageElements({ rows: 2, columns: 2, pixels: new Uint16Array(4), extra })));
  return {
    modality: img.modality,
    bodyPart: img.bodyPart,
    viewPosition: img.viewPosition,
    patientAge: img.patientAge,
    ageFromDates: img.ageFromDates,
  };
}
const age = (value: string): Element => ({ tag: 0x00101010, vr: 'AS', value });
const birth = (value: string): Element => ({ tag: 0x00100030, vr: 'DA', value });
const study = (value: string): Element => ({ tag: 0x00080020, vr: 'DA', value });
const acquisition = (value: string): Element => ({ tag: 0x00080022, vr: 'DA', value });

test('born 19500101, studied 20200101, no PatientAge: outside the population, saying why', async () => {
  const facts = await headerFacts(birth('19500101'), study('20200101'));
  const v = deriveVerdict({ ...base, facts });
  assert.equal(v.status, 'outside-population', JSON.stringify(v));
  assert.deepEqual(
    v.reasons.map((r) => r.code),
    ['AGE'],
  );
  assert.equal(
    v.reasons[0].message,
    "outside the intended population (children aged 1–5): the DICOM header's PatientBirthDate and StudyDate give " +
      'a patient age over 10 years',
  );
  assert.deepEqual(ageWarnings({ facts }), []);
  // The fallback date is named when it is the one counted to.
  const acq = deriveVerdict({ ...base, facts: await headerFacts(birth('19500101'), acquisition('20200101')) });
  assert.match(acq.reasons[0].message, /PatientBirthDate and AcquisitionDate give a patient age over 10 years/);
});

test('an age from the dates counts as PatientAge does: bounds, and a gate-rejected chest film', async () => {
  const child = await headerFacts(birth('20160301'), study('20200101'));
  assert.deepEqual(deriveVerdict({ ...base, facts: child }), { status: 'assessed', reasons: [] });
  // Ten years and eleven months is over the bound, as '131M' is; ten years to the day is not, as '010Y' is not.
  const tenEleven = await headerFacts(birth('20090201'), study('20200101'));
  assert.equal(deriveVerdict({ ...base, facts: tenEleven }).status, 'outside-population');
  assert.equal(deriveVerdict({ ...base, facts: { patientAge: '131M' } }).status, 'outside-population');
  const ten = await headerFacts(birth('20100101'), study('20200101'));
  assert.equal(deriveVerdict({ ...base, facts: ten }).status, 'assessed');
  // An age in the header says the file is a patient's film even where the gate rejects it: outside the
  // population, as with PatientAge, where an age typed with the file leaves it "not a chest X-ray".
  const adult = await headerFacts(birth('19500101'), study('20200101'));
  const rejected = deriveVerdict({ ...base, ood, facts: { ...adult, modality: undefined, bodyPart: undefined } });
  assert.equal(rejected.status, 'outside-population', JSON.stringify(rejected));
  const byPatientAge = deriveVerdict({ ...base, ood, facts: { patientAge: '070Y' } });
  assert.equal(byPatientAge.status, 'outside-population');
  assert.deepEqual(
    rejected.reasons.map((r) => r.code),
    byPatientAge.reasons.map((r) => r.code),
  );
  assert.equal(deriveVerdict({ ...base, ood, statedAgeYears: 70 }).status, 'cannot-assess');
});

test('ages that disagree: any over the bound puts the film outside the population, saying which', async () => {
  // The header's PatientAge says 4, its dates 70: not read as a child's on one source's word.
  const stated4 = await headerFacts(age('004Y'), birth('19500101'), study('20200101'));
  const v4 = deriveVerdict({ ...base, facts: stated4 });
  assert.equal(v4.status, 'outside-population');
  assert.match(
    v4.reasons[0].message,
    /StudyDate give a patient age over 10 years \(the PatientAge does not; of ages that disagree the one outside /,
  );
  const stated62 = await headerFacts(age('062Y'), birth('20160101'), study('20200101'));
  assert.match(deriveVerdict({ ...base, facts: stated62 }).reasons[0].message, /the DICOM header gives a patient age/);
  // The dates say 4, the age typed with the film 40: outside the population (it used to be assessed).
  const child = await headerFacts(birth('20160301'), study('20200101'));
  const typed40 = deriveVerdict({ ...base, facts: child, statedAgeYears: 40 });
  assert.equal(typed40.status, 'outside-population');
  assert.match(typed40.reasons[0].message, /the age given with the image is a patient age over 10 .*PatientBirthDate/);
  assert.deepEqual(deriveVerdict({ ...base, facts: child, statedAgeYears: 4 }), { status: 'assessed', reasons: [] });
  const adult = await headerFacts(birth('19500101'), study('20200101'));
  assert.equal(deriveVerdict({ ...base, facts: adult, statedAgeYears: 4 }).status, 'outside-population');
  // An unreadable PatientAge gives way to the dates.
  const garbled = await headerFacts(age('P70Y'), birth('19500101'), study('20200101'));
  const v = deriveVerdict({ ...base, facts: garbled });
  assert.equal(v.status, 'outside-population');
  assert.match(v.reasons[0].message, /PatientBirthDate and StudyDate give/);
  assert.deepEqual(ageWarnings({ facts: garbled }), [
    "the DICOM's PatientAge (0010,1010) is not in the nnnD, nnnW, nnnM or nnnY form in which DICOM writes an age " +
      '(its value, 4 characters, is not shown): the age from PatientBirthDate and StudyDate is used',
  ]);
});

test("an infant's age from any source puts the film outside the population: under 1, no margin", async () => {
  const under =
    'outside the intended population (children aged 1–5): the DICOM header gives a patient age under 1 year';
  // A 3-day-old, a 10-week-old, an 11-month-old by PatientAge: the reason names the bound, never the age.
  for (const value of ['003D', '010W', '011M', '000Y']) {
    const v = deriveVerdict({ ...base, facts: await headerFacts(age(value)) });
    assert.deepEqual(v, { status: 'outside-population', reasons: [{ code: 'AGE', message: under }] }, value);
  }
  // One year old is the youngest training age: assessed, as '012M' and '053W' are. PatientAge counts completed
  // units: '052W' (364 to 370 days) and '365D' reach a first birthday; '051W', '364D' and '011M' do not.
  for (const value of ['051W', '364D', '011M']) {
    assert.equal(deriveVerdict({ ...base, facts: await headerFacts(age(value)) }).status, 'outside-population', value);
  }
  for (const value of ['001Y', '012M', '053W', '052W', '365D']) {
    assert.deepEqual(deriveVerdict({ ...base, facts: await headerFacts(age(value)) }), {
      status: 'assessed',
      reasons: [],
    });
  }
  // By the dates: born 20190701, studied 20200101 is half a year old.
  const infant = await headerFacts(birth('20190701'), study('20200101'));
  const byDates = deriveVerdict({ ...base, facts: infant });
  assert.equal(byDates.status, 'outside-population');
  assert.equal(
    byDates.reasons[0].message,
    "outside the intended population (children aged 1–5): the DICOM header's PatientBirthDate and StudyDate give " +
      'a patient age under 1 year',
  );
  // '001Y' (one completed year) and dates that give half a year disagree: whole years agree only over the
  // upper bound, and the one outside the population is taken.
  const oneYear = deriveVerdict({
    ...base,
    facts: await headerFacts(age('001Y'), birth('20190701'), study('20200101')),
  });
  assert.equal(oneYear.status, 'outside-population');
  assert.match(
    oneYear.reasons[0].message,
    /give a patient age under 1 year \(the PatientAge does not; of ages that disagree the one outside the intended /,
  );
  // A header that says 4, an age typed as 0.5: outside, naming the source that does not agree.
  const typed = deriveVerdict({ ...base, facts: await headerFacts(age('004Y')), statedAgeYears: 0.5 });
  assert.equal(typed.status, 'outside-population');
  assert.match(typed.reasons[0].message, /the age given with the image is a patient age under 1 year \(the PatientAge/);
  // An infant's header on a film the gate rejects: outside the population, as an adult's is.
  assert.equal(deriveVerdict({ ...base, ood, facts: { patientAge: '003D' } }).status, 'outside-population');
  // An adult's header and an infant's typed age are both outside: the most trusted is named.
  const both = deriveVerdict({ ...base, facts: await headerFacts(age('040Y')), statedAgeYears: 0.5 });
  assert.equal(both.status, 'outside-population');
  assert.match(both.reasons[0].message, /the DICOM header gives a patient age over 10 years$/);
});

test('an unreadable PatientAge is a warning that never repeats it; assessed as without an age', async () => {
  for (const [value, chars] of [
    ['abcd', 4],
    ['45 years', 8],
    ['P45Y', 4],
    ['-05Y', 4],
    ['FORTY', 5],
    ['ABOUT 5 YEARS', 13],
    ['X', 1],
    ['0123456789ABCDEFGHIJ', 20],
  ] as const) {
    const facts = await headerFacts(age(value));
    assert.equal(ageInYears(facts.patientAge), null, value);
    const v = deriveVerdict({ ...base, facts });
    assert.deepEqual(v, { status: 'assessed', reasons: [] }, value);
    const warnings = ageWarnings({ facts });
    assert.deepEqual(
      warnings,
      [
        "the DICOM's PatientAge (0010,1010) is not in the nnnD, nnnW, nnnM or nnnY form in which DICOM writes an " +
          `age (its value, ${chars} character${chars === 1 ? '' : 's'}, is not shown): the patient's age is unknown`,
      ],
      value,
    );
    // Not a word of it, in any case, nor its digits: the warning goes to the audit log.
    for (const word of value.split(/[^A-Za-z0-9]+/).filter((w) => w.length > 1 || /\d/.test(w))) {
      assert.ok(!warnings[0].toUpperCase().includes(word.toUpperCase()), `${value}: "${word}" in ${warnings[0]}`);
    }
    // An age given with the image then counts, and the warning says so.
    assert.equal(deriveVerdict({ ...base, facts, statedAgeYears: 40 }).status, 'outside-population');
    assert.match(ageWarnings({ facts, statedAgeYears: 40 })[0], /: the age given with the image is used$/);
  }
  // The valid forms still read, with no warning.
  for (const [value, years] of [
    ['004Y', 4],
    ['018M', 1.5],
    ['003D', 3 / 365.25],
    ['062', 62],
  ] as const) {
    const facts = await headerFacts(age(value));
    assert.equal(ageInYears(facts.patientAge), years, value);
    assert.deepEqual(ageWarnings({ facts }), [], value);
  }
  assert.ok(Math.abs(ageInYears((await headerFacts(age('010W'))).patientAge)! - 10 / 52.18) < 1e-9);
});

test('dates that give no age are a warning that says why; the verdict is as without an age', async () => {
  const cases: [Element[], RegExp][] = [
    [[birth('20200102'), study('20200101')], /\(PatientBirthDate \(0010,0030\) is after StudyDate \(0008,0020\)\)/],
    [[birth('1950'), study('20200101')], /\(PatientBirthDate \(0010,0030\) is not a date \(YYYYMMDD\)\)/],
    [[birth('19500101'), study('01/01/2020')], /\(StudyDate \(0008,0020\) is not a date \(YYYYMMDD\)\)/],
    [[birth('19500101')], /\(PatientBirthDate \(0010,0030\) is given, but no StudyDate/],
  ];
  for (const [extra, why] of cases) {
    const facts = await headerFacts(...extra);
    assert.deepEqual(deriveVerdict({ ...base, facts }), { status: 'assessed', reasons: [] });
    const warnings = ageWarnings({ facts });
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /^the patient's age could not be worked out from the DICOM's dates /);
    assert.match(warnings[0], why);
    assert.match(warnings[0], /: the patient's age is unknown$/);
  }
  // A readable PatientAge beside dates that cannot be read: the dates' warning still (a header to mend).
  assert.deepEqual(ageWarnings({ facts: await headerFacts(age('004Y'), birth('20200102'), study('20200101')) }), [
    "the patient's age could not be worked out from the DICOM's dates (PatientBirthDate (0010,0030) is after " +
      'StudyDate (0008,0020)): the PatientAge is used',
  ]);
  // A StudyDate that is no date, passed for the next date: said too.
  const skipped = await headerFacts(birth('20150101'), study('20201301'), acquisition('20180101'));
  assert.deepEqual(ageWarnings({ facts: skipped }), [
    "the DICOM's StudyDate could not be read as a date (YYYYMMDD): the age from PatientBirthDate counts to " +
      'AcquisitionDate',
  ]);
  // '010Y' is ten completed years: dates giving 10.4 agree with it, only more precisely (over 10: outside the
  // population), and the reason does not call them at odds.
  const tenish = deriveVerdict({
    ...base,
    facts: await headerFacts(age('010Y'), birth('20140101'), study('20240601')),
  });
  assert.equal(tenish.status, 'outside-population');
  assert.match(tenish.reasons[0].message, /StudyDate give a patient age over 10 years$/);
  // So do the other units' spans: '052W' (364 to 370 days) and dates of 364 days, '120M' and dates of 10.05
  // years; '052W' and dates of 300 days do not agree.
  const reasonOf = async (...tags: Parameters<typeof headerFacts>) =>
    deriveVerdict({ ...base, facts: await headerFacts(...tags) }).reasons[0].message;
  assert.match(await reasonOf(age('052W'), birth('20230101'), study('20231231')), /under 1 year$/);
  assert.match(await reasonOf(age('120M'), birth('20140101'), study('20240120')), /over 10 years$/);
  assert.match(
    await reasonOf(age('052W'), birth('20230101'), study('20231028')),
    /under 1 year \(the PatientAge does not;/,
  );
  // The most trusted age over the bound, another under it: the reason names the one that does not agree.
  const over = deriveVerdict({ ...base, facts: { patientAge: '040Y' }, statedAgeYears: 4 });
  assert.match(
    over.reasons[0].message,
    /the DICOM header gives a patient age over 10 years \(the age given with the image does not;/,
  );
  // No age anywhere (no PatientAge, no birth date) is not worth a warning: most JPEGs and many DICOMs.
  assert.deepEqual(ageWarnings({ facts: await headerFacts() }), []);
  assert.deepEqual(ageWarnings({ facts: {} }), []);
});

test('an age in the margin over 5 (assessed) carries a note saying the model was trained on 1 to 5', () => {
  const note = (e: Parameters<typeof ageWarnings>[0]) =>
    ageWarnings(e).filter((w) => /older than the children the model was trained on/.test(w));
  for (const years of [5.5, 7, 10]) {
    const e = { facts: {}, statedAgeYears: years };
    assert.equal(deriveVerdict({ ...e, ood: null, checks: [], width: 512, height: 512 }).status, 'assessed');
    assert.deepEqual(note(e), [
      'the age given with the image is over 5 years: older than the children the model was trained on ' +
        '(ages 1–5); answered up to 10 years, but not validated at this age',
    ]);
  }
  // Each source named, so a typed age is told from the header's.
  assert.match(note({ facts: { patientAge: '007Y' } })[0], /^the PatientAge is over 5 years: older than/);
  // Within the training ages, and outside the population (its own reason says so): no note.
  for (const years of [1, 3, 5, 10.5, 0.5])
    assert.deepEqual(note({ facts: {}, statedAgeYears: years }), [], `${years}`);
});
