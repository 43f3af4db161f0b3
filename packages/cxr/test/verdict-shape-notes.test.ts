// An image wider than 2 to 1 but within the refusal bound (6 to 1) is answered, with a note: every training
// film of that shape is a pneumonia film, so the answer may follow the shape, and no accuracy was measured
// there. A normal film stretched to 1500×300 read NORMAL 0.9 % and the 445×140 training strip PNEUMONIA 100 %,
// both assessed with no word. The bound is checked against the training films themselves when they are here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { deriveVerdict, MAX_ASPECT } from '../src/predict/verdict';
import { NOTE_WIDE_ASPECT, shapeNotes, verdictNotes, WIDEST_TRAINING_ASPECT } from '../src/predict/verdict_notes';

const TRAIN = '/work/shared/data/chest_xray/train';
const base = { ood: null, checks: [], facts: {} };

test('wider than 2 to 1: answered (assessed) with a note; the widest real shapes and the square get none', () => {
  const [wide] = shapeNotes(1500, 300);
  assert.equal(
    wide,
    'image wider than any training film (5.00 to 1, widest 3.18): every one wider than 2 to 1 showed pneumonia, ' +
      'so this answer may follow the shape; check the film as exported',
  );
  assert.equal(deriveVerdict({ ...base, width: 1500, height: 300 }).status, 'assessed');
  // The training strip itself is no wider than the widest training film, but wider than any normal one.
  const [strip] = shapeNotes(445, 140);
  assert.match(strip, /^unusually wide image \(3\.18 to 1\): every training film wider than 2 to 1 /);
  assert.doesNotMatch(strip, /wider than any/);
  assert.match(strip, /showed pneumonia, so this answer may follow the shape; check the film as exported$/);
  // Short enough to be read under an answer (the QA re-check found the note at 50 to 65 words), numbers aside.
  for (const n of [wide, strip]) {
    const words = n.match(/[a-z]{2,}/gi) ?? [];
    assert.ok(words.length <= 28, `${words.length} words: ${n}`);
  }
  // Just past the bound, the ratio does not read as the bound itself.
  assert.match(shapeNotes(2001, 1000)[0], /^unusually wide image \(2\.01 to 1\)/);
  for (const [w, h] of [
    [2000, 1000],
    [463, 256], // the widest normal training film, 1.81 to 1
    [512, 512],
    [256, 306], // the tallest training film
    [100, 300], // tall: its own refusal bound, no note
  ]) {
    assert.deepEqual(shapeNotes(w, h), [], `${w}×${h}`);
  }
  // Past the refusal bound the image is not answered, so it has the reason (ASPECT), not the note.
  assert.deepEqual(shapeNotes(MAX_ASPECT * 100 + 1, 100), []);
  // Too small to read: the reason says so, no note.
  assert.deepEqual(shapeNotes(130, 60), []);
});

test('verdictNotes: the age notes, then the shape note, never on an image that cannot be assessed', () => {
  const e = { facts: {}, statedAgeYears: 7, width: 1500, height: 300 };
  const notes = verdictNotes(e, { status: 'assessed' });
  assert.equal(notes.length, 2);
  assert.match(notes[0], /^the age given with the image is over 5 years/);
  assert.match(notes[1], /^image wider than any training film \(5\.00 to 1/);
  assert.match(verdictNotes(e, { status: 'outside-population' })[1], /^image wider than any training film/);
  assert.deepEqual(verdictNotes(e, { status: 'cannot-assess' }), [notes[0]]);
  assert.deepEqual(verdictNotes({ facts: {}, width: 512, height: 512 }, { status: 'assessed' }), []);
});

test('the bound agrees with the training films: all wider than 2 to 1 are pneumonia, the widest is 445×140', {
  skip: fs.existsSync(TRAIN) ? false : `no ${TRAIN}`,
}, async () => {
  let widest = 0;
  let widestNormal = 0;
  for (const label of ['NORMAL', 'PNEUMONIA']) {
    const files = fs.readdirSync(path.join(TRAIN, label));
    for (let i = 0; i < files.length; i += 64) {
      const metas = await Promise.all(files.slice(i, i + 64).map((f) => sharp(path.join(TRAIN, label, f)).metadata()));
      for (const m of metas) {
        const aspect = (m.autoOrient?.width ?? m.width!) / (m.autoOrient?.height ?? m.height!);
        widest = Math.max(widest, aspect);
        if (label === 'NORMAL') widestNormal = Math.max(widestNormal, aspect);
      }
    }
  }
  assert.equal(widest, WIDEST_TRAINING_ASPECT);
  assert.ok(widestNormal < NOTE_WIDE_ASPECT, `a normal training film is ${widestNormal.toFixed(2)} to 1`);
  // "Just above" the widest normal film: within a quarter of it.
  assert.ok(NOTE_WIDE_ASPECT - widestNormal < 0.25, `widest normal ${widestNormal.toFixed(2)}`);
});
