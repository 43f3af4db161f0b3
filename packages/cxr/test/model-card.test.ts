// The model card is regenerated from cxr.json (training, `cxr calibrate`); what a person wrote
// below the marker must survive that.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cardCommand, HAND_WRITTEN_MARKER, writeModelCard } from '../src/models/card';
import { readMeta } from '../src/models/io';

const shipped = path.resolve(__dirname, '..', '..', '..', '..', 'models', 'default');
/** A single trained run: the shipped ensemble's first member (an ensemble's card has no recipe section). */
const singleRun = path.resolve(__dirname, '..', '..', '..', '..', 'models', 'default', 'm1');

test('regenerating a card keeps the hand-written part below the marker, and only that', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-card-'));
  const meta = readMeta(shipped);
  writeModelCard(dir, meta);
  const generated = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.ok(!generated.includes(HAND_WRITTEN_MARKER));

  const notes = `${HAND_WRITTEN_MARKER}\n\n## Why this model\nChosen on validation.\n`;
  fs.writeFileSync(
    path.join(dir, 'MODEL_CARD.md'),
    generated.replace('## Recipe', '## Recipe (edited by hand, not kept)') + '\n' + notes,
  );
  writeModelCard(dir, { ...meta, temperature: 1.234 });
  const card = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.ok(card.endsWith(notes), 'the notes stay at the end, once');
  assert.equal(card.split(HAND_WRITTEN_MARKER).length, 2);
  assert.match(card, /T = 1\.234/, 'the generated part is regenerated');
  assert.doesNotMatch(card, /edited by hand, not kept/, 'edits above the marker are replaced');
});

test('the shipped card has its hand-written sections below the marker', () => {
  const card = fs.readFileSync(path.join(shipped, 'MODEL_CARD.md'), 'utf8');
  const tail = card.slice(card.indexOf(HAND_WRITTEN_MARKER));
  assert.ok(card.includes(HAND_WRITTEN_MARKER));
  assert.match(tail, /## How this folder was made/);
});

test("cardCommand reads back a card's command; only an adapted model's card has the adaptation section", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-card-'));
  const meta = readMeta(shipped);
  assert.equal(cardCommand(dir), undefined, 'no card, no command');
  writeModelCard(dir, meta, 'cxr train --data d --out runs/x --epochs 3');
  assert.equal(cardCommand(dir), 'cxr train --data d --out runs/x --epochs 3');
  assert.doesNotMatch(fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8'), /Adapted to a site/);
  const adaptation = {
    method: ['adabn' as const],
    films: { used: 120, rejected: 4, unreadable: 1 },
    fingerprint: 'a'.repeat(64),
    date: '2026-01-01T00:00:00Z',
    source: { name: meta.name, version: meta.version, sha256: 'b'.repeat(64) },
    bnLayers: 13,
  };
  writeModelCard(dir, { ...meta, adaptation });
  const card = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.match(
    card,
    /## Adapted to a site[\s\S]*13 batch-norm layers were re-estimated on 120 of the site's films\n\(4 flagged/,
  );
  assert.match(card, /validation figures below are the \*\*source model's, measured before adaptation\*\*/);
  // Relative adaptation names the class mix, and says when its estimate did not settle.
  const classMix = { reference: 0.74, site: 0.8, how: 'estimated' as const, estimates: [0.8], adaptedAt: [] };
  for (const search of ['crossing', 'unsettled'] as const) {
    writeModelCard(dir, {
      ...meta,
      adaptation: { ...adaptation, method: ['adabn-relative'], classMix: { ...classMix, search } },
    });
    const text = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
    assert.match(text, /site's mix of classes: 80\.0% pneumonia \(estimated from the films\) against 74\.0%/);
    assert.equal(/The estimate did not settle/.test(text), search === 'unsettled', search);
  }
});

test('the recipe section names site-shift augmentation and normalisation, and keeps the test-time views line', () => {
  const meta = readMeta(singleRun);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-card-recipe-'));
  const shift = { probability: 0.5, maxStrength: 1, changes: ['blur', 'noise'] };
  writeModelCard(dir, {
    ...meta,
    recipe: { ...meta.recipe, shiftAugment: shift },
    preprocessing: { ...meta.preprocessing, normalize: 'equalize' },
  });
  const card = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.match(card, /site-shift augmentation on 50% of training films \(blur, noise; strength up to 1\);/);
  assert.match(card, /per-image normalisation `equalize`;/);
  assert.match(card, /test-time augmentation: .+\. Training took/);
  writeModelCard(dir, {
    ...meta,
    recipe: { ...meta.recipe, shiftAugment: undefined },
    preprocessing: { ...meta.preprocessing, normalize: 'none' },
  });
  const plain = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.doesNotMatch(plain, /site-shift|per-image normalisation/);
  assert.match(plain, /test-time augmentation: .+\. Training took/);
});

test('the card names the calibration that was applied, a Platt fit that fell back included', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-card-'));
  const meta = readMeta(singleRun);
  const card = (m: typeof meta) => {
    writeModelCard(dir, m);
    return fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  };
  const platt = { method: 'validation' as const, scaling: 'platt' as const };
  assert.match(
    card({ ...meta, logitBias: 0.5, calibration: platt }),
    /Platt scaling \(sigmoid\(logit \/ [\d.]+ \+ 0\.500\)\)/,
  );
  assert.match(card({ ...meta, logitBias: 0, calibration: platt }), /the Platt fit asked for fell back to it/);
  const plain = card({ ...meta, logitBias: 0, calibration: { method: 'validation' } });
  assert.match(plain, /temperature scaling \(T = [\d.]+\)/);
  assert.doesNotMatch(plain, /Platt/);
  fs.rmSync(dir, { recursive: true, force: true });
});
