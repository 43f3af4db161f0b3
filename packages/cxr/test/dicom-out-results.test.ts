// dicom_out: how the results of several films and operating points sit together in one study. Each report
// points to a heat map that says what it says; dates and times are the clock a viewer shows beside the film;
// Instance Numbers order the results like the films. Parsed back with dicom-parser (an independent reader).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import { buildResults, readSource, scUids, srUids, type ResultInput, type SourceImage } from '../src/dicom_out';
import { burnedInLines } from '../src/dicom_out/secondary_capture';
import { type Prediction, Predictor } from '../src/predict/predictor';
import { DICOM_DIR, DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';

let dir = '';
let predictor: Predictor;
let prediction: Prediction;
let source: SourceImage;

before(async () => {
  dir = tempDir('dicom-out-results');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  const bytes = fs.readFileSync(DICOM_FILE);
  source = readSource(bytes);
  prediction = await predictor.predict(bytes, { heatmap: true });
});
after(() => {
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

const model = () => ({ name: predictor.model.name, version: predictor.model.version, sha256: predictor.model.sha256 });
const atPoint = (operatingPoint: string, threshold: number, label: Prediction['label']): Prediction => ({
  ...prediction,
  probability: 0.149,
  operatingPoint,
  threshold,
  label,
  verdict: { status: 'assessed', reasons: [] },
});
const input = (over: Partial<ResultInput> & { prediction?: Prediction } = {}) => ({
  source,
  prediction,
  model: model(),
  now: new Date('2024-05-01T12:34:56Z'),
  ...over,
});

const parse = (b: Buffer) => dicomParser.parseDicom(new Uint8Array(b));
const str = (ds: dicomParser.DataSet, tag: string) => ds.string(tag)?.replace(/\0/g, '').trim();
const items = (ds: dicomParser.DataSet, tag: string) => (ds.elements[tag]?.items ?? []).map((i) => i.dataSet!);

/** The SOP Instance UIDs of the heat map an SR points to: its IMAGE item and its Pertinent Other Evidence. */
function heatmapRefs(sr: Buffer): string[] {
  const ds = parse(sr);
  const image = items(ds, 'x0040a730').find((c) => str(items(c, 'x0040a043')[0], 'x00080104') === 'Grad-CAM heat map');
  const [other] = items(ds, 'x0040a385');
  const [series] = items(other, 'x00081115');
  return [str(items(image!, 'x00081199')[0], 'x00081155')!, str(items(series, 'x00081199')[0], 'x00081155')!];
}

test('each operating point has its own heat map, and its report points to that one', async () => {
  // The film of the QA report: P 0.149 is No at balanced (0.157) and Yes at screening (0.088).
  const balanced = await buildResults(input({ prediction: atPoint('balanced', 0.157, 'NORMAL') }));
  const screening = await buildResults(input({ prediction: atPoint('screening', 0.088, 'PNEUMONIA') }));
  assert.ok(balanced.sc && screening.sc);
  assert.notEqual(screening.sc.sopInstanceUid, balanced.sc.sopInstanceUid, 'one heat map per operating point');
  assert.equal(screening.sc.seriesInstanceUid, balanced.sc.seriesInstanceUid, 'one heat map series per model');
  assert.deepEqual(heatmapRefs(balanced.sr.bytes), [balanced.sc.sopInstanceUid, balanced.sc.sopInstanceUid]);
  assert.deepEqual(heatmapRefs(screening.sr.bytes), [screening.sc.sopInstanceUid, screening.sc.sopInstanceUid]);
  // What is burned into each heat map agrees with its report.
  const line = (p: Prediction) => burnedInLines(input({ prediction: p }))[1];
  assert.match(
    line(atPoint('screening', 0.088, 'PNEUMONIA')),
    /Above the pneumonia threshold \(p\u00a0≥\u00a08\.8\u00a0%\): .*\(screening operating point\)/,
  );
  assert.match(
    line(atPoint('balanced', 0.157, 'NORMAL')),
    /Below the pneumonia threshold \(p\u00a0<\u00a015\.7\u00a0%\): .*\(balanced operating point\)/,
  );

  // The UIDs the sync looks up before predicting (pacs/stored_results.ts) are the ones written.
  for (const [op, r] of [
    ['balanced', balanced],
    ['screening', screening],
  ] as const) {
    assert.equal(scUids(source, model(), op).sopInstanceUid, r.sc!.sopInstanceUid, op);
    assert.equal(scUids(source, model(), op).seriesInstanceUid, r.sc!.seriesInstanceUid, op);
    assert.equal(srUids(source, model(), op).sopInstanceUid, r.sr.sopInstanceUid, op);
  }
  // Idempotent: the same film, model and operating point give the same instances, byte for byte.
  const again = await buildResults(input({ prediction: atPoint('screening', 0.088, 'PNEUMONIA') }));
  assert.equal(again.sc!.sopInstanceUid, screening.sc.sopInstanceUid);
  assert.ok(again.sc!.bytes.equals(screening.sc.bytes) && again.sr.bytes.equals(screening.sr.bytes));
});

/** Every DA/TM the results write, and the offset, read back. */
async function times(over: Partial<Omit<ResultInput, 'prediction'>>): Promise<Record<string, string | undefined>[]> {
  const { sr, sc } = await buildResults(input(over));
  return [sr.bytes, sc!.bytes].map((b) => {
    const ds = parse(b);
    return {
      date: str(ds, 'x00080023'),
      time: str(ds, 'x00080033'),
      offset: str(ds, 'x00080201'),
      created: `${str(ds, 'x00080012')} ${str(ds, 'x00080013')}`,
      series: `${str(ds, 'x00080021')} ${str(ds, 'x00080031')}`,
    };
  });
}

test('dates and times: the local clock (no offset, as the film), or at the offset the film names', async () => {
  const tz = process.env.TZ;
  try {
    // A film without an offset is in local time, and so are its results, with no offset: one of ours would
    // claim it for the study time copied from the film too (an hour off across a daylight-saving change).
    const cases = [
      // Berlin in summer (+2) and winter (+1, across midnight), Newfoundland at -02:30, UTC.
      { tz: 'Europe/Berlin', now: '2024-05-01T12:34:56Z', date: '20240501', time: '143456', offset: undefined },
      { tz: 'Europe/Berlin', now: '2024-01-15T23:30:00Z', date: '20240116', time: '003000', offset: undefined },
      { tz: 'America/St_Johns', now: '2024-07-01T01:00:00Z', date: '20240630', time: '223000', offset: undefined },
      { tz: 'UTC', now: '2024-05-01T12:34:56Z', date: '20240501', time: '123456', offset: undefined },
    ];
    for (const c of cases) {
      process.env.TZ = c.tz;
      for (const t of await times({ now: new Date(c.now) })) {
        const want = `${c.date} ${c.time}`;
        assert.deepEqual(
          t,
          { date: c.date, time: c.time, offset: c.offset, created: want, series: want },
          `${c.tz} ${c.now}`,
        );
      }
    }
    // The film says its dates are at -0400: the study date and time copied from it stay true, and the
    // results are written at -0400 too, since one offset covers every date and time in an instance.
    process.env.TZ = 'Europe/Berlin';
    const film = readSource(fs.readFileSync(path.join(DICOM_DIR, 'WG04_RG1_J2KI.dcm')));
    assert.equal(film.timezoneOffset, '-0400');
    for (const t of await times({ source: film, now: new Date('2024-05-01T12:34:56Z') })) {
      assert.deepEqual([t.date, t.time, t.offset], ['20240501', '083456', '-0400']);
    }
    // An offset that is not ±HHMM is ignored: the machine's clock is used, and no offset written.
    for (const t of await times({
      source: { ...film, timezoneOffset: 'EST' },
      now: new Date('2024-05-01T12:34:56Z'),
    })) {
      assert.deepEqual([t.time, t.offset], ['143456', undefined]);
    }
  } finally {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  }
});

const numberOf = (b: Buffer) => Number(str(parse(b), 'x00200013'));

test("Instance Numbers: distinct, stable, in film order, a film's operating points side by side", async () => {
  const ops = [atPoint('balanced', 0.157, 'NORMAL'), atPoint('screening', 0.088, 'PNEUMONIA')];
  const film = (seriesNumber: number | undefined, instanceNumber: number | undefined, i: number): SourceImage => ({
    ...source,
    sopInstanceUid: `${source.sopInstanceUid}.${i}`,
    seriesNumber,
    instanceNumber,
  });
  const layouts = {
    // Four films in one series (the QA report: eight reports in series 9801, all numbered 1).
    'one series': [1, 2, 3, 4].map((n, i) => film(1, n, i)),
    // One series per view, each image numbered 1: the common chest layout.
    'a series per view': [1, 2, 3, 4].map((s, i) => film(s, 1, i)),
    // No Instance Numbers at all: stable numbers above the others, still distinct.
    unnumbered: [1, 2, 3, 4].map((_, i) => film(undefined, undefined, i)),
  };
  for (const [layout, films] of Object.entries(layouts)) {
    const srs: number[] = [];
    for (const f of films) {
      for (const p of ops) {
        const { sr, sc } = await buildResults(input({ source: f, prediction: p }));
        assert.equal(numberOf(sc!.bytes), numberOf(sr.bytes), `${layout}: a report and its heat map share a number`);
        srs.push(numberOf(sr.bytes));
      }
    }
    assert.equal(new Set(srs).size, srs.length, `${layout}: distinct (${srs})`);
    assert.ok(
      srs.every((n) => Number.isInteger(n) && n >= 1 && n <= 2_147_483_647),
      `${layout}: IS range (${srs})`,
    );
    if (layout !== 'unnumbered') {
      assert.deepEqual(
        srs,
        [...srs].sort((a, b) => a - b),
        `${layout}: film order, then operating point (${srs})`,
      );
    }
    const again = await buildResults(input({ source: films[2], prediction: ops[1], now: new Date() }));
    assert.equal(numberOf(again.sr.bytes), srs[5], `${layout}: a re-run writes the same number`);
  }
  // Read from the film: WG04_RG1_J2KI.dcm is series 1, image 3; its balanced result is 10031.
  const wg04 = readSource(fs.readFileSync(path.join(DICOM_DIR, 'WG04_RG1_J2KI.dcm')));
  assert.deepEqual([wg04.seriesNumber, wg04.instanceNumber], [1, 3]);
  assert.equal(numberOf((await buildResults(input({ source: wg04, prediction: ops[0] }))).sr.bytes), 10031);
});
