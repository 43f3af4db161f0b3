// What a clinician reads when an image cannot be assessed (the answer's reasons, on the page's card and in
// History): plain words first, the measure after them in brackets for a technician, and no jargon such as the
// gate's acronym or a bare "score > threshold". The reason codes stay as clients match on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageChecks } from '../src/explain/image_checks';
import { deriveVerdict, type VerdictEvidence } from '../src/predict/verdict';

const S = 64;
const img = (f: (x: number, y: number) => number) =>
  Uint8Array.from({ length: S * S }, (_, i) => Math.round(f(i % S, Math.floor(i / S))));
/** Bright body and mediastinum, two darker lung fields: what the inverted check reads as a chest's layout. */
const chest = img((x, y) => {
  const u = x / S;
  const v = y / S;
  const lung = (Math.abs(u - 0.28) < 0.13 || Math.abs(u - 0.72) < 0.13) && v > 0.2 && v < 0.7;
  return lung ? 60 + 20 * v : 180 - 30 * Math.abs(u - 0.5);
});

/** A message a clinician can read: no acronym, no bare comparison, words first and the numbers in a last bracket. */
function assertPlain(message: string): void {
  assert.doesNotMatch(message, /\bOOD\b/, message);
  assert.doesNotMatch(message, /[<>]/, message);
  assert.match(message, /^[a-z][^0-9]* \([^()]*\d[^()]*\)$/, message);
}

test('image checks: each message says what is wrong in plain words, then its measure and limit', () => {
  const one = (pixels: Uint8Array, colourFraction = 0) => {
    const checks = imageChecks({ pixels, size: S, colourFraction });
    assert.equal(checks.length, 1, JSON.stringify(checks));
    return checks[0];
  };
  const cases: [Uint8Array, number, string, string | RegExp][] = [
    [
      new Uint8Array(S * S).fill(200),
      0,
      'BLANK',
      "image is blank or nearly uniform: there is no film to read (gray-level spread 0.0 of 255, a film's at least 6)",
    ],
    [
      img((x) => 100 + (40 * x) / S),
      0,
      'LOW_CONTRAST',
      'too little contrast to read: the film is washed out, too dark, or shown in a narrow window (gray levels ' +
        "span 39 of 255 from the 1st to the 99th percentile, every training film's at least 85)",
    ],
    [
      Uint8Array.from({ length: S * S }, (_, i) => (i * 7919 + (i >> 3) * 104729) % 251),
      0,
      'NOISE',
      "image is mostly noise or fine texture, unlike a radiograph (roughness 1.28, a radiograph's at most 0.50)",
    ],
    [
      chest.map((v) => 255 - v),
      0,
      'INVERTED',
      'looks inverted (a negative), turned on its side, or has no chest layout: the sides of the image, where an ' +
        'upright film has its lungs, are not darker than its middle (lung-to-mediastinum contrast -2.36, a ' +
        "chest film's at least 0)",
    ],
    [
      img((x, y) => (((x >> 3) + (y >> 3)) % 2 ? 230 : 20)),
      0,
      'LAYOUT',
      // The score and limit come from the fitted layout statistic (explain/film_layout_fitted.ts), refitted at times.
      new RegExp(
        "^its layout is unlike a chest film's: its brightness, contrast, texture and arrangement of light and dark " +
          'areas are far from those of the films the model was trained on \\(layout score \\d+\\.\\d, limit ' +
          '\\d+\\.\\d\\)$',
      ),
    ],
  ];
  for (const [pixels, colour, code, message] of cases) {
    const check = one(pixels, colour);
    assert.equal(check.code, code);
    if (typeof message === 'string') assert.equal(check.message, message);
    else assert.match(check.message, message);
    assertPlain(check.message);
  }
  const colour = imageChecks({ pixels: chest, size: S, colourFraction: 0.4 }).find((c) => c.code === 'COLOUR');
  // Percentages as the page writes them: a no-break space before the sign.
  assert.equal(
    colour?.message,
    'colour image: X-rays are grayscale (40\u00a0% of pixels strongly coloured, limit 5\u00a0%)',
  );
  assertPlain(colour.message);
});

test("the gate's reasons: what it found in plain words, its score and limit after them, never its acronym", () => {
  const ood = { score: 38.94, threshold: 23.1, outOfDistribution: true };
  const base: VerdictEvidence = { ood, checks: [], width: 512, height: 512, facts: {} };
  const photo = deriveVerdict(base);
  assert.deepEqual(photo.reasons, [
    {
      code: 'OOD',
      message:
        "does not look like a frontal chest X-ray to the model: the model's own features of the image are far " +
        'from those of the chest films it was trained on (gate score 38.9, limit 23.1)',
    },
  ]);
  // A chest radiograph by its header that the gate finds unlike the training films, with and without an age.
  const header = deriveVerdict({ ...base, facts: { modality: 'CR' } });
  assert.equal(header.status, 'outside-population');
  assert.equal(
    header.reasons[0].message,
    'outside the intended population (children aged 1–5): a chest radiograph by its DICOM header, but the ' +
      "model's own features of the image are far from those of the children's films it was trained on (gate " +
      'score 38.9, limit 23.1)',
  );
  const adult = deriveVerdict({ ...base, facts: { modality: 'CR', patientAge: '040Y' } });
  assert.equal(adult.status, 'outside-population');
  assert.deepEqual(adult.reasons[1], {
    code: 'OOD',
    // A plain conclusion first, as the cannot-assess form has ("does not look like a frontal chest X-ray").
    message:
      "unlike the children's films the model was trained on: the model's own features of the image are far " +
      'from theirs (gate score 38.9, limit 23.1)',
  });
  for (const r of [...photo.reasons, adult.reasons[1]]) assertPlain(r.message);
  assert.doesNotMatch(header.reasons[0].message, /\bOOD\b|[<>]/);
});

test('the layout check and the gate, often found together, say different things from their first words', () => {
  const checkerboard = img((x, y) => (((x >> 3) + (y >> 3)) % 2 ? 230 : 20));
  const checks = imageChecks({ pixels: checkerboard, size: S });
  const v = deriveVerdict({
    ood: { score: 38.94, threshold: 23.1, outOfDistribution: true },
    checks,
    width: 800,
    height: 600,
    facts: {},
  });
  assert.deepEqual(
    v.reasons.map((r) => r.code),
    ['LAYOUT', 'OOD'],
  );
  const [layout, gate] = v.reasons.map((r) => r.message);
  // "does not look like a frontal chest film…" above "does not look like a frontal chest X-ray…" read as one
  // reason said twice: each now leads with what it measured, the picture's layout or the model's features.
  const lead = (m: string) => m.split(' ').slice(0, 4).join(' ');
  assert.notEqual(lead(layout), lead(gate));
  assert.match(layout, /^its layout is unlike a chest film's: /);
  assert.match(gate, /^does not look like a frontal chest X-ray to the model: the model's own features /);
  for (const m of [layout, gate]) assertPlain(m);
});

test('the most concrete reason first: size, colour, then the layout catch-all, then the gate', () => {
  // A colour photo's card led with its layout and the gate; "colour image" says what is wrong in two words.
  const checkerboard = img((x, y) => (((x >> 3) + (y >> 3)) % 2 ? 230 : 20));
  const checks = imageChecks({ pixels: checkerboard, size: S, colourFraction: 0.4 });
  assert.deepEqual(
    checks.map((c) => c.code),
    ['COLOUR', 'LAYOUT'],
  );
  const ood = { score: 38.94, threshold: 23.1, outOfDistribution: true };
  // The verdict orders them itself, whatever order the checks come in.
  const reversed = [...checks].reverse();
  const photo = deriveVerdict({ ood, checks: reversed, width: 800, height: 600, facts: {} });
  assert.deepEqual(
    photo.reasons.map((r) => r.code),
    ['COLOUR', 'LAYOUT', 'OOD'],
  );
  const strip = deriveVerdict({ ood, checks: reversed, width: 7000, height: 1000, facts: {} });
  assert.deepEqual(
    strip.reasons.map((r) => r.code),
    ['ASPECT', 'COLOUR', 'LAYOUT', 'OOD'],
  );
});
