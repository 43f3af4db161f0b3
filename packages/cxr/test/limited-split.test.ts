// One split definition (limitPerClass, valFraction, seed) picks the same films wherever it is made again: in
// training (loadTrainVal), its data check (train/data_check.ts), robustness's validation films
// (robustness/images.ts) and evaluate's training-overlap check (eval/training_overlap.ts). All four go through
// data/dataset_images.ts's limitedSplit; were one to limit or split on its own, a model's "validation" films
// would be films it trained on. A tiny training root of real PNGs, more films per class than the limit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { scanDataset } from '../src/data/dataset';
import { limitedSplit, loadTrainVal } from '../src/data/dataset_images';
import { trainingOverlap } from '../src/eval/training_overlap';
import type { ModelMeta } from '../src/models/metadata';
import { validationRecords } from '../src/robustness/images';
import { checkData } from '../src/train/data_check';
import type { Recipe } from '../src/train/recipe';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-limited-split-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A 16×16 grey PNG of its own level `k` (each film its own bytes). */
const png = (k: number) =>
  sharp(Buffer.alloc(256, k), { raw: { width: 16, height: 16, channels: 1 } })
    .png()
    .toBuffer();

const films: string[] = [];
const definition = { valFraction: 0.4, splitSeed: 3, limitPerClass: 4 };

test('one (folder, limit, seed): the same films in training, its check, robustness and the overlap check', async () => {
  // Eight films a class, some patients with two, so the limit (4) and the patient split both matter.
  let k = 10;
  for (const c of ['NORMAL', 'PNEUMONIA']) {
    const dir = path.join(root, 'train', c);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 8; i++) {
      const p = Math.floor(i / 2) + (i % 3);
      const name = c === 'NORMAL' ? `IM-${1000 + p}-000${i}.png` : `person${100 + p}_bacteria_${i}.png`;
      const f = path.join(dir, name);
      fs.writeFileSync(f, await png(k++ * 7));
      films.push(f);
    }
  }
  const records = (await scanDataset(root)).filter((r) => r.split === 'train');
  const expected = limitedSplit(records, { ...definition, seed: definition.splitSeed });
  const paths = (rs: { path: string }[]) => rs.map((r) => r.path).sort();
  assert.equal(expected.train.length + expected.val.length, 8, 'four films a class are taken');
  assert.ok(expected.val.length > 0 && expected.train.length > 0);

  const recipe = { ...definition, seed: 99, valSplit: 'random' } as unknown as Recipe;
  const checked = await checkData(root, recipe, () => {});
  assert.deepEqual([...checked.valPatients].sort(), [...new Set(expected.val.map((r) => r.patient))].sort());

  const loaded = await loadTrainVal(root, { ...definition, seed: definition.splitSeed, size: 16 });
  assert.deepEqual([...loaded.val.files].sort(), paths(expected.val));
  assert.deepEqual([...loaded.train.files].sort(), paths(expected.train));
  assert.equal(checked.record.fingerprint, loaded.info.fingerprint);

  const meta = {
    name: 'm',
    data: { root, ...definition, fingerprint: checked.record.fingerprint },
    recipe: {},
    inputSize: 16,
  };
  const robust = await validationRecords(root, meta as unknown as ModelMeta);
  assert.deepEqual(paths(robust.records), paths(expected.val));

  const overlap = await trainingOverlap(meta, films, root);
  assert.equal(overlap?.matchedBy, 'fingerprint');
  assert.deepEqual([...(overlap?.validation ?? [])].sort(), paths(expected.val));
  assert.deepEqual([...(overlap?.training ?? [])].sort(), paths(expected.train));
});
