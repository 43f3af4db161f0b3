// Test-time views, architectures and augmentation presets are closed lists: a misspelt name is
// refused where it enters (cxr.json, a recipe, the command line) and by the forward pass itself,
// instead of quietly becoming the identity view. cxr.json's recipe, data and validation records
// are typed but loose, so older model folders still load.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { buildProgram } from '../src/cli/main';
import { AUGMENT_PRESET_NAMES } from '../src/data/augment';
import { initEngine } from '../src/engine';
import { ARCH_NAMES } from '../src/models';
import { ttaView } from '../src/models/infer';
import { parseMeta } from '../src/models/metadata';
import { TTA_VIEWS, type TtaView } from '../src/models/tta_views';
import { resolveRecipe } from '../src/train/run';

// A single trained run's cxr.json (the shipped model is an ensemble; its recipe is in its members' files).
const DEFAULT_META = path.join(__dirname, '..', '..', '..', '..', 'models', 'default', 'm1', 'cxr.json');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const readDefault = () => JSON.parse(fs.readFileSync(DEFAULT_META, 'utf8'));

test('ttaView refuses an unknown view instead of returning the identity', async () => {
  await initEngine();
  const x = tf.randomUniform([1, 16, 16, 1]) as tf.Tensor4D;
  assert.throws(() => ttaView(x, 'zoom_in' as TtaView), /unknown test-time view 'zoom_in' \(known: identity, zoom-in/);
  for (const v of TTA_VIEWS) ttaView(x, v).dispose();
  x.dispose();
});

test('the gamma views keep black and white and move the mid-tones the way their names say', async () => {
  await initEngine();
  const x = tf.tensor4d([0, 0.25, 0.5, 1], [1, 2, 2, 1]);
  const up = Array.from(ttaView(x, 'gamma-up').dataSync());
  const down = Array.from(ttaView(x, 'gamma-down').dataSync());
  x.dispose();
  assert.deepEqual([up[0], up[3], down[0], down[3]], [0, 1, 0, 1]);
  assert.ok(Math.abs(up[2] - 0.5 ** 1.25) < 1e-6 && up[1] < 0.25, `gamma-up darkens: ${up}`);
  assert.ok(Math.abs(down[2] - 0.5 ** 0.8) < 1e-6 && down[1] > 0.25, `gamma-down brightens: ${down}`);
});

test('cxr.json: a misspelt test-time view is an error naming the field', () => {
  assert.throws(
    () => parseMeta({ ...readDefault(), tta: ['identity', 'zoom_in'] }, 'm/cxr.json'),
    /m\/cxr.json: not a valid cxr.json[\s\S]*tta\[1\]/,
  );
  assert.throws(() => parseMeta({ ...readDefault(), recipe: { tta: ['flip'] } }, 'm'), /recipe\.tta\[0\]/);
  assert.throws(() => parseMeta({ ...readDefault(), recipe: { augment: 'heavy' } }, 'm'), /recipe\.augment/);
});

test('cxr.json: recipe, data and validation are typed, keep unknown keys, and old files load', () => {
  const meta = parseMeta({ ...readDefault(), data: { ...readDefault().data, site: 'x' } }, 'default');
  assert.equal(meta.recipe.augment, 'strong');
  assert.equal(meta.data.train?.pneumonia, 3294);
  assert.equal(meta.data.site, 'x');
  assert.equal(meta.validation?.trainingSeconds, readDefault().validation.trainingSeconds);
  assert.equal(typeof meta.validation?.trainingSeconds, 'number');
  // A field that is there must have its type: a split fraction as text is refused.
  assert.throws(() => parseMeta({ ...readDefault(), data: { valFraction: '0.15' } }, 'm'), /data\.valFraction/);
  // The oldest shape: no recipe, data or validation at all.
  const { recipe: _r, data: _d, validation: _v, ...old } = readDefault();
  const bare = parseMeta(old, 'old');
  assert.deepEqual([bare.recipe, bare.data, bare.validation], [{}, {}, undefined]);
});

test('a recipe refuses an unknown view, architecture or augmentation preset', () => {
  assert.throws(() => resolveRecipe('cxr', { tta: ['zoom_out' as TtaView] }), /tta/);
  assert.throws(() => resolveRecipe('cxr', { arch: 'resnet' as 'cxrnet' }), /arch/);
  assert.throws(() => resolveRecipe('cxr', { augment: 'heavy' as 'light' }), /augment/);
  assert.deepEqual(resolveRecipe('cxr', { tta: ['identity', 'shift-left'] }).tta, ['identity', 'shift-left']);
});

test('cxr train takes its choices from the same lists, and refuses others before any work', () => {
  const train = buildProgram().commands.find((c) => c.name() === 'train')!;
  const choices = (flag: string) => train.options.find((o) => o.long === flag)?.argChoices;
  assert.deepEqual(choices('--model'), [...ARCH_NAMES]);
  assert.deepEqual(choices('--augment'), [...AUGMENT_PRESET_NAMES]);
  assert.deepEqual(choices('--tta'), [...TTA_VIEWS]);
  const r = spawnSync(
    process.execPath,
    [CLI, 'train', '--data', 'nowhere', '--out', 'nowhere', '--tta', 'identity', 'zoom_in'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /argument 'zoom_in' is invalid\. Allowed choices are identity, zoom-in/);
});
