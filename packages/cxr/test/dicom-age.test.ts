// The patient's age from a DICOM header's dates (PatientAge is optional in CR and DX files): whole
// years from PatientBirthDate to the study's date, or why the dates give none. The dates themselves
// never leave the decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AgeFromDates, decodeDicom } from '../src/data/dicom';
import { type Element, imageElements, writeDicom } from './dicom-writer';

const BIRTH = 0x00100030;
const STUDY = 0x00080020;
const SERIES = 0x00080021;
const ACQUISITION = 0x00080022;
const CONTENT = 0x00080023;

const date = (tag: number, value: string): Element => ({ tag, vr: 'DA', value });

async function ageOf(...extra: Element[]): Promise<AgeFromDates | undefined> {
  const img = await decodeDicom(writeDicom(imageElements({ rows: 2, columns: 2, pixels: new Uint16Array(4), extra })));
  return img.ageFromDates;
}

test('born 19500101, studied 20200101: 70 years, from the StudyDate', async () => {
  assert.deepEqual(await ageOf(date(BIRTH, '19500101'), date(STUDY, '20200101')), { years: 70, from: 'StudyDate' });
});

test('years with their fraction: a birthday not yet reached that year does not count (29 February too)', async () => {
  const years = async (birth: string, on: string) => (await ageOf(date(BIRTH, birth), date(STUDY, on)))?.years ?? -1;
  const whole = async (birth: string, on: string) => Math.floor(await years(birth, on));
  assert.equal(await whole('20150610', '20200609'), 4);
  assert.equal(await years('20150610', '20200610'), 5);
  assert.equal(await whole('20150610', '20200531'), 4);
  assert.equal(await whole('20150610', '20200701'), 5);
  assert.equal(await whole('20120229', '20130228'), 0);
  assert.equal(await years('20120229', '20130301'), 1);
  assert.equal(await years('20200101', '20200101'), 0);
  // The part of the year since the birthday counts: ten years and eleven months is over 10, as '131M' is.
  const tenEleven = await years('20090201', '20200101');
  assert.ok(tenEleven > 10.9 && tenEleven < 11, String(tenEleven));
  assert.ok(Math.abs((await years('20150101', '20200702')) - 5.5) < 0.01);
});

test('without a StudyDate the image’s own dates count, in order: Acquisition, Content, Series', async () => {
  assert.deepEqual(await ageOf(date(BIRTH, '20100101'), date(ACQUISITION, '20160101'), date(SERIES, '20300101')), {
    years: 6,
    from: 'AcquisitionDate',
  });
  assert.deepEqual(await ageOf(date(BIRTH, '20100101'), date(CONTENT, '20170101'), date(SERIES, '20300101')), {
    years: 7,
    from: 'ContentDate',
  });
  assert.deepEqual(await ageOf(date(BIRTH, '20100101'), date(SERIES, '20180101')), { years: 8, from: 'SeriesDate' });
  // An unreadable StudyDate gives way to a readable date after it.
  assert.deepEqual(await ageOf(date(BIRTH, '20100101'), date(STUDY, 'unknown'), date(SERIES, '20180101')), {
    years: 8,
    from: 'SeriesDate',
    unreadable: ['StudyDate'],
  });
  // ACR-NEMA's YYYY.MM.DD, as in older files (the fo-dicom CR sample's AcquisitionDate).
  const acrNema = await ageOf(date(BIRTH, '1950.06.15'), date(STUDY, '1993.02.24'));
  assert.equal(acrNema?.years === null ? -1 : Math.floor(acrNema?.years ?? -1), 42);
  assert.equal(acrNema && 'from' in acrNema ? acrNema.from : null, 'StudyDate');
});

test('dates that give no age say why, naming tags but no date', async () => {
  const problem = async (...extra: Element[]) => {
    const age = await ageOf(...extra);
    assert.ok(age && age.years === null, JSON.stringify(age));
    // No date in the problem (it goes into warnings, which the audit log keeps): digits only in tags and the bound.
    const digits = age.problem.replace(/\([0-9A-F]{4},[0-9A-F]{4}\)/g, '').replace('130 years', '');
    assert.doesNotMatch(digits, /\d/, age.problem);
    return age.problem;
  };
  assert.match(await problem(date(BIRTH, '20200102'), date(STUDY, '20200101')), /PatientBirthDate.*is after StudyDate/);
  assert.match(
    await problem(date(BIRTH, '1950'), date(STUDY, '20200101')),
    /PatientBirthDate \(0010,0030\) is not a date/,
  );
  assert.match(await problem(date(BIRTH, '19500231'), date(STUDY, '20200101')), /PatientBirthDate .* not a date/);
  assert.match(await problem(date(BIRTH, '00000000'), date(STUDY, '20200101')), /not a date/);
  assert.match(
    await problem(date(BIRTH, '19500101'), date(STUDY, '2020-01-01')),
    /StudyDate \(0008,0020\) is not a date/,
  );
  assert.match(await problem(date(BIRTH, '19500101')), /no StudyDate, AcquisitionDate, ContentDate or SeriesDate/);
  assert.match(await problem(date(BIRTH, '17000101'), date(STUDY, '20200101')), /over 130 years before StudyDate/);
});

test('no birth date, no age from dates: the key is absent, and dates never leave the decoder', async () => {
  assert.equal(await ageOf(date(STUDY, '20200101')), undefined);
  const img = await decodeDicom(
    writeDicom(
      imageElements({
        rows: 2,
        columns: 2,
        pixels: new Uint16Array(4),
        extra: [date(BIRTH, '19500101'), date(STUDY, '20200101')],
      }),
    ),
  );
  const { gray: _gray, ...rest } = img;
  const text = JSON.stringify(rest);
  assert.ok(!text.includes('1950') && !text.includes('2020'), text);
});
