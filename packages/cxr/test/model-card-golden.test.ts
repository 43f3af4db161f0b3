// The exact bytes of MODEL_CARD.md for a frozen cxr.json (test/golden/card-meta.json) in its three
// shapes: a trained model with its command, a site-adapted one with a re-estimated prior, and an
// ensemble. The card's template is long Markdown split over many source lines; this pins its output
// so that rewrapping the source cannot change a byte. After a deliberate change to the card, rewrite
// the expected files with CXR_UPDATE_GOLDEN=1 and review their diff.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelCard } from '../src/models/card';
import { parseMeta, type ModelMeta } from '../src/models/metadata';

// dist/test -> packages/cxr/test/golden
const GOLDEN = path.resolve(__dirname, '..', '..', 'test', 'golden');
const metaFile = path.join(GOLDEN, 'card-meta.json');
const base = parseMeta(JSON.parse(fs.readFileSync(metaFile, 'utf8')), metaFile);

const adapted: ModelMeta = {
  ...base,
  tta: [],
  preprocessing: { ...base.preprocessing, normalize: 'equalize' },
  recipe: { ...base.recipe, shiftAugment: undefined },
  data: { ...base.data, valSplit: 'block', root: undefined },
  validation: { ...base.validation, auc: undefined, ci95: undefined, trainingSeconds: undefined },
  adaptation: {
    method: ['adabn', 'prior-em'],
    films: { used: 120, rejected: 4, unreadable: 1 },
    fingerprint: 'a'.repeat(64),
    date: '2026-01-01T00:00:00Z',
    source: { name: base.name, version: base.version, sha256: 'b'.repeat(64) },
    bnLayers: 13,
    prior: {
      train: 0.74,
      trainFrom: 'validation split counts',
      site: 0.41,
      logitShift: -1.4,
      iterations: 12,
      thresholdsBefore: { screening: 0.07, balanced: 0.27 },
    },
  },
};

const ensemble: ModelMeta = {
  ...base,
  members: ['m0', 'm1'],
  ensemble: {
    method: 'mean-logit',
    members: [
      {
        dir: 'm0',
        from: 'runs/a',
        name: 'a',
        version: '1',
        arch: 'cxrnet',
        sha256: 'c'.repeat(64),
        validationAuc: 0.99,
      },
      {
        dir: 'm1',
        from: 'runs/b',
        name: 'b',
        version: '2',
        arch: 'cxrnet',
        sha256: 'd'.repeat(64),
        validationAuc: null,
      },
    ],
  },
};

const cases: [string, string][] = [
  ['card-trained.md', modelCard(base, 'cxr train --data ../shared/data/chest_xray --out runs/x --epochs 10')],
  ['card-adapted.md', modelCard(adapted)],
  ['card-ensemble.md', modelCard(ensemble)],
];

for (const [file, card] of cases) {
  test(`the model card is byte for byte ${file}`, () => {
    const expected = path.join(GOLDEN, file);
    if (process.env.CXR_UPDATE_GOLDEN === '1') fs.writeFileSync(expected, card);
    assert.equal(card, fs.readFileSync(expected, 'utf8'));
  });
}
