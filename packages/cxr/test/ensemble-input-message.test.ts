// `cxr ensemble` of members that take different inputs printed their preprocessing as raw JSON
// (`takes {"inputSize":32,...}`); it names each field that differs, "input size 32 vs 48", and the option
// that makes them one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkMembers, EnsembleRefused, inputDifferences } from '../src/train/ensemble_members';
import { readMeta } from '../src/models/io';
import { makeSeededModel, tempDir } from './ood-fixtures';

const dir = tempDir('ensemble-input');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('members of other input sizes: the refusal names the field, not JSON', async () => {
  const a = await makeSeededModel(path.join(dir, 'a'), { inputSize: 32, widths: [4, 8, 8, 8] });
  const b = await makeSeededModel(path.join(dir, 'b'), { inputSize: 48, widths: [4, 8, 8, 8], seed: 2 });
  assert.throws(
    () => checkMembers([a, b]),
    (e: unknown) => {
      assert.ok(e instanceof EnsembleRefused);
      assert.equal(
        e.message,
        `members differ in input: ${a} and ${b}: input size 32 vs 48; ` +
          `members must share input size, preprocessing and classes (retrain ${b} with --input-size 32)`,
      );
      return true;
    },
  );
});

test('each differing field is named once; inModel and an absent normalisation are no difference', async () => {
  const base = readMeta(await makeSeededModel(path.join(dir, 'c'), { inputSize: 32, widths: [4, 8, 8, 8] }));
  const same = { ...base, preprocessing: { ...base.preprocessing, normalize: 'none' as const, inModel: 'rgb' } };
  assert.deepEqual(inputDifferences(base, same), []);
  const other = {
    ...base,
    inputSize: 64,
    preprocessing: { ...base.preprocessing, normalize: 'equalize' as const, scale: 1 },
    classNames: ['NORMAL', 'VIRAL'] as [string, string],
  };
  assert.deepEqual(inputDifferences(base, other), [
    'input size 32 vs 64',
    'normalisation none vs equalize',
    `pixel scale ${base.preprocessing.scale} vs 1`,
    'classes NORMAL, PNEUMONIA vs NORMAL, VIRAL',
  ]);
});
