// dicom_out (s36): the report and heat map cxr writes into the PACS say the result as the page's card does (the
// number against the threshold, rounded as the page rounds it), and the PACS filter counts only cxr's own objects
// as cxr results, not any vendor's Structured Report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { buildResults, buildSr, type ResultInput, SOP_CLASS } from '../src/dicom_out';
import { wrap } from '../src/dicom_out/overlay';
import { burnedInLines } from '../src/dicom_out/secondary_capture';
import { classifyInstance } from '../src/pacs/filter';
import type { Prediction } from '../src/predict/predictor';
import { percentPair } from '../src/predict/result_words';
import type { VerdictStatus } from '../src/predict/verdict';
import { cardHeadline, findingView } from '../src/web/client/finding';
import { type ResultPrediction, samplePrediction, sampleResult } from './result-input';

type P = ResultPrediction;

const parse = (b: Buffer) => dicomParser.parseDicom(new Uint8Array(b));
const str = (ds: dicomParser.DataSet, tag: string) => ds.string(tag)?.replace(/\0/g, '').trim() ?? '';
const items = (ds: dicomParser.DataSet, tag: string) => (ds.elements[tag]?.items ?? []).map((i) => i.dataSet!);
const meaning = (ds: dicomParser.DataSet) => str(items(ds, 'x0040a043')[0], 'x00080104');

/** The SR's TEXT items, as [concept meaning, text]; the text read as UTF-8 (the SR's character set). */
function srTexts(p: P): [string, string][] {
  const ds = parse(buildSr(sampleResult(p)).bytes);
  return items(ds, 'x0040a730')
    .filter((c) => str(c, 'x0040a040') === 'TEXT')
    .map((c) => {
      const el = c.elements.x0040a160;
      const text = Buffer.from(c.byteArray.buffer, c.byteArray.byteOffset + el.dataOffset, el.length).toString('utf8');
      return [meaning(c), text.replace(/[\0 ]+$/, '')];
    });
}

/** The card's headline for an answer, as the page shows it. */
const card = (p: P) =>
  cardHeadline(findingView(p.verdict.status, p.label as 'NORMAL' | 'PNEUMONIA' | null), {
    probability: p.probability,
    threshold: p.threshold,
  });

test('the heat map and the report say an assessed result as the card does, not "Signs of pneumonia detected"', () => {
  for (const p of [samplePrediction(), samplePrediction({ probability: 0.149, label: 'NORMAL' })]) {
    const headline = card(p);
    assert.match(headline, /^(Above|Below) the pneumonia threshold \(p\u00a0[≥<]\u00a015\.7\u00a0%\)$/, headline);
    const line = burnedInLines(sampleResult(p))[1];
    assert.ok(line.includes(headline), `burned-in line says the card's headline: ${line}`);
    assert.ok(line.includes(`${percentPair(p.probability, p.threshold).probability} probability`), line);
    assert.doesNotMatch(line, /signs of pneumonia/i, line);
    const result = srTexts(p).filter(([m]) => m === 'Result');
    assert.equal(result.length, 1, 'one Result text in the report');
    assert.ok(result[0][1].includes(headline), `report's Result says the card's headline: ${result[0][1]}`);
    assert.doesNotMatch(result[0][1], /signs of pneumonia/i, result[0][1]);
  }
});

test('outside the population and cannot-assess keep their words; no number for an image that cannot be read', () => {
  const reasons = [{ code: 'AGE' as const, message: 'outside the intended population' }];
  const cases: [VerdictStatus, RegExp, boolean][] = [
    ['outside-population', /^Outside the intended population \(children aged 1–5\): 18\.0\u00a0% probability/, true],
    ['cannot-assess', /^Cannot assess this image$/, false],
  ];
  for (const [status, words, number] of cases) {
    const p = samplePrediction({ verdict: { status, reasons } });
    const [[, result]] = srTexts(p).filter(([m]) => m === 'Result');
    assert.match(result, words, result);
    assert.equal(result.includes('for reference only'), number, result);
    assert.equal(/%/.test(result), number, `${status}: a number only when there is one to show: ${result}`);
    // No threshold side for an answer that has no finding.
    assert.doesNotMatch(result, /(Above|Below) the pneumonia threshold/, result);
    const line = burnedInLines(sampleResult(p))[1];
    assert.ok(line.endsWith(result), `the heat map says what the report says: ${line}`);
  }
});

test('numbers are rounded as the page rounds them: a probability and threshold that differ never read alike', () => {
  // 0.1565 against 0.157: two decimals (and one decimal of a percent) read both as the same number.
  const p = samplePrediction({ probability: 0.1565, label: 'NORMAL' });
  const shown = percentPair(p.probability, p.threshold);
  assert.notEqual(shown.probability, shown.threshold);
  const line = burnedInLines(sampleResult(p))[1];
  assert.ok(line.includes(`(p\u00a0<\u00a0${shown.threshold})`), line);
  assert.ok(line.includes(`: ${shown.probability} probability of pneumonia`), line);
  assert.doesNotMatch(line, /\b0\.16\b/, `no fraction beside the card's percentages: ${line}`);
  // A map with no colour says why in percent too, as the page's card does: not "0.20" under "15.65 %".
  const empty = burnedInLines(sampleResult(samplePrediction({ probability: 0.05, label: 'NORMAL' })));
  assert.equal(empty.length, 3, 'the caveat, the result and the no-colour line');
  assert.ok(empty[2].includes('20\u00a0% or under'), empty[2]);
  assert.ok(!/\b0\.\d\d\b/.test(empty.join(' ')), `no fraction on the heat map: ${empty.join(' | ')}`);
});

test('a no-break space is not a place to wrap the burned-in line', () => {
  const lines = wrap('Below the pneumonia threshold (p\u00a0<\u00a015.7\u00a0%): 14.9\u00a0% probability', 34);
  assert.ok(
    lines.some((l) => l.includes('(p\u00a0<\u00a015.7\u00a0%):')),
    `"p < 15.7 %" stays on one line: ${lines}`,
  );
  assert.ok(
    lines.every((l) => l.length <= 34),
    `${lines}`,
  );
});

/** An instance's header as Orthanc's simplified tags give it (keyword → string). */
function simplifiedTags(bytes: Buffer): Record<string, string> {
  const ds = parse(bytes);
  const tags: Record<string, string> = {};
  for (const [k, t] of Object.entries({
    Manufacturer: 'x00080070',
    SeriesDescription: 'x0008103e',
    SOPClassUID: 'x00080016',
    Modality: 'x00080060',
    SOPInstanceUID: 'x00080018',
    StudyInstanceUID: 'x0020000d',
  }))
    tags[k] = str(ds, t);
  return tags;
}

test("the PACS filter counts cxr's own report and heat map as its results, a vendor's SR and SC not", async () => {
  const heatmapPng = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 9, b: 9 } } })
    .png()
    .toBuffer();
  const { sr, sc } = await buildResults({
    ...sampleResult(samplePrediction()),
    prediction: { ...samplePrediction(), heatmapPng },
  } as ResultInput & { prediction: Prediction });
  assert.ok(sc);
  for (const own of [sr, sc]) {
    const tags = simplifiedTags(own.bytes);
    assert.deepEqual(classifyInstance(tags), { accept: false, reason: 'a cxr result', ownResult: true });
    // Either mark is enough: a router that rewrites one leaves the other.
    assert.equal(classifyInstance({ ...tags, Manufacturer: 'Router' }).accept, false);
    assert.equal((classifyInstance({ ...tags, Manufacturer: 'Router' }) as { ownResult?: true }).ownResult, true);
    assert.equal((classifyInstance({ ...tags, SeriesDescription: '' }) as { ownResult?: true }).ownResult, true);
  }
  const vendor = { Manufacturer: 'ACME Reporting', SOPInstanceUID: '1.2.3', StudyInstanceUID: '1.2' };
  const radiologistSr = { ...vendor, Modality: 'SR', SOPClassUID: SOP_CLASS.comprehensiveSr, SeriesDescription: 'Rad' };
  const vendorSc = { ...vendor, Modality: 'OT', SOPClassUID: SOP_CLASS.secondaryCapture, SeriesDescription: 'CAD' };
  assert.deepEqual(classifyInstance(radiologistSr), { accept: false, reason: 'modality SR is not CR, DX, DR or RG' });
  assert.deepEqual(classifyInstance(vendorSc), { accept: false, reason: 'modality OT is not CR, DX, DR or RG' });
  // Another tool's series that merely starts with "cxr" is not ours either.
  const lookalike = { ...radiologistSr, SeriesDescription: 'cxr AI review by Dr X' };
  assert.equal((classifyInstance(lookalike) as { ownResult?: true }).ownResult, undefined);
});
