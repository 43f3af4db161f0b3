// The image checks' layout statistic (explain/film_layout.ts): the kinds of generated non-X-rays
// that used to pass the checks (flat textures, screenshots, gray photos, pages) are refused by the
// checks alone, while real chest films (full-resolution samples, Kaggle val) pass at any model size;
// and the split-half estimate of `cxr ood evaluate` counts each film against the other half's threshold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS } from '../src/data/decode';
import {
  FILM_LAYOUT_FIT,
  LAYOUT_SIZE,
  LAYOUT_STAT_NAMES,
  layoutStats,
  resampleSquare,
} from '../src/explain/film_layout';
import { imageChecks } from '../src/explain/image_checks';
import { decodeInput } from '../src/predict/decode_input';
import { drawNonXrays } from '../src/robustness/ood_corpus';
import {
  classBalancedThreshold,
  patientHalf,
  refusedAt,
  type ScoredFilm,
  splitHalfEstimate,
} from '../src/robustness/ood_heldout';
import { CHEST_XRAY, needsData, SAMPLES_FULLRES } from './shared-data';

async function checkCodes(bytes: Buffer, size: number): Promise<string[]> {
  const d = await decodeInput(bytes, { size, limits: DEFAULT_LIMITS, wantDisplay: false });
  return imageChecks({ pixels: d.pixels, size, colourFraction: d.facts.colourFraction }).map((c) => c.code);
}

test('the fitted layout statistic matches the statistics computed (names, sizes, a finite threshold)', () => {
  const d = LAYOUT_STAT_NAMES.length;
  assert.deepEqual([...FILM_LAYOUT_FIT.names], [...LAYOUT_STAT_NAMES]);
  assert.equal(FILM_LAYOUT_FIT.mean.length, d);
  assert.equal(FILM_LAYOUT_FIT.precision.length, d * d);
  assert.ok(Number.isFinite(FILM_LAYOUT_FIT.threshold) && FILM_LAYOUT_FIT.threshold > 0);
  assert.ok(FILM_LAYOUT_FIT.scale.every((s) => s > 0));
});

test('resampleSquare keeps a square of the same size and a constant image constant', () => {
  const px = Uint8Array.from({ length: 64 * 64 }, (_, i) => i % 251);
  assert.equal(resampleSquare(px, 64, 64), px);
  const flat = resampleSquare(new Uint8Array(48 * 48).fill(77), 48, LAYOUT_SIZE);
  assert.equal(flat.length, LAYOUT_SIZE * LAYOUT_SIZE);
  assert.ok(flat.every((v) => v === 77));
  const s = layoutStats(flat, LAYOUT_SIZE);
  assert.equal(s.std, 0);
  assert.equal(s.coarseShare, 0);
});

test('the image checks alone refuse generated textures, screenshots, gray photos and pages', async () => {
  const imgs = await drawNonXrays(6, 'layout-test', ['pattern', 'screenshot', 'photo-gray', 'document']);
  const passed: string[] = [];
  const byLayout: string[] = [];
  for (const img of imgs) {
    const codes = await checkCodes(img.bytes, 160);
    if (!codes.length) passed.push(img.name);
    if (codes.length === 1 && codes[0] === 'LAYOUT') byLayout.push(img.name);
  }
  assert.deepEqual(passed, [], 'accepted by the image checks');
  // The layout statistic is what stops the gray ones that no specific check explains.
  assert.ok(
    byLayout.some((n) => n.startsWith('photo-gray')),
    byLayout.join(', '),
  );
});

test('real chest films pass the image checks at the shipped size and at smaller and larger ones', {
  skip: needsData(SAMPLES_FULLRES, path.join(CHEST_XRAY, 'val')),
}, async () => {
  const films: string[] = [];
  for (const dir of [SAMPLES_FULLRES, path.join(CHEST_XRAY, 'val')]) {
    for (const cls of ['NORMAL', 'PNEUMONIA']) {
      const files = fs.readdirSync(path.join(dir, cls)).filter((f) => /\.jpe?g$/i.test(f));
      films.push(
        ...files
          .sort()
          .slice(0, 5)
          .map((f) => path.join(dir, cls, f)),
      );
    }
  }
  assert.ok(films.length >= 12);
  for (const size of [160, 64, 224]) {
    const flagged: string[] = [];
    for (const f of films) {
      const codes = await checkCodes(fs.readFileSync(f), size);
      if (codes.length) flagged.push(`${path.basename(f)}: ${codes.join(',')}`);
    }
    assert.deepEqual(flagged, [], `at ${size} px`);
  }
});

test('split-half estimate: each film is counted against the threshold of the other half of the patients', () => {
  const films: ScoredFilm[] = [];
  for (let p = 0; p < 200; p++) {
    for (let k = 0; k < 3; k++) {
      const score = (p * 7 + k * 13) % 100;
      films.push({
        outcome: { score, refused: false, reasons: [] },
        group: p % 4 ? 'PNEUMONIA' : 'NORMAL',
        patient: `p${p}`,
      });
    }
  }
  // An image-check refusal counts whatever the threshold.
  films.push({ outcome: { score: 0, refused: true, reasons: ['BLANK'] }, group: 'NORMAL', patient: 'p0' });
  assert.equal(refusedAt(films.at(-1)!.outcome, 1e9), true);
  assert.equal(refusedAt({ score: 5, refused: true, reasons: ['OOD'] }, 4), true);
  assert.equal(refusedAt({ score: 5, refused: true, reasons: ['OOD'] }, 6), false);
  const all = classBalancedThreshold(films, 90);
  const e = splitHalfEstimate(films, 90, all);
  assert.equal(e.rates.overall.n, films.length);
  assert.equal(e.rates.NORMAL.n + e.rates.PNEUMONIA.n, films.length);
  assert.equal(e.inSample.overall.n, films.length);
  assert.equal(e.inSample.overall.stopped, films.filter((f) => refusedAt(f.outcome, all)).length);
  // Recount by hand: the other half's class-balanced threshold for every film.
  const halves = [0, 1].map((h) => films.filter((f) => patientHalf(f.patient) === h));
  assert.ok(
    halves.every((h) => h.length > films.length / 4),
    'both halves hold films',
  );
  const t = halves.map((h) => classBalancedThreshold(h, 90));
  assert.deepEqual(e.thresholds, t);
  const stopped = films.filter((f) => refusedAt(f.outcome, t[1 - patientHalf(f.patient)])).length;
  assert.equal(e.rates.overall.stopped, stopped);
  assert.notEqual(e.thresholds[0], e.thresholds[1]);
  assert.ok(e.rates.overall.stopped > 0 && e.rates.overall.rate < 0.5);
  assert.equal(e.rates.overall.rate, e.rates.overall.stopped / e.rates.overall.n);
});
