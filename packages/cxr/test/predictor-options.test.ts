// Predictor.load's and predict()'s options as a JavaScript program may pass them: a wrong value is refused in
// words (a TypeError at load, an InputError BAD_OPTION from predict) instead of quietly meaning something else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { gradientFilm, makeTinyModel, tempDir } from './serve-fixtures';

let root = '';
let modelDir = '';
let predictor: Predictor;
let film: Buffer;

before(async () => {
  root = tempDir('predictor-options');
  modelDir = await makeTinyModel(path.join(root, 'model'));
  predictor = await Predictor.load(modelDir, { warmUp: false });
  film = await gradientFilm();
});

after(() => {
  predictor?.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Options typed as a JavaScript caller's: anything at all. */
const js = (v: unknown) => v as never;

test("Predictor.load refuses an oodPolicy other than 'warn' or 'refuse', naming the choices", async () => {
  await assert.rejects(Predictor.load(modelDir, js({ oodPolicy: 'maybe', warmUp: false })), (e: Error) => {
    assert.ok(e instanceof TypeError, e.constructor.name);
    assert.match(e.message, /^Predictor\.load: option oodPolicy must be 'warn' or 'refuse', got a string \("maybe"\)/);
    return true;
  });
});

test('Predictor.load refuses options of the wrong type (warmUp, limits, decoder, the options themselves)', async () => {
  for (const [opts, pattern] of [
    [{ warmUp: 'no' }, /option warmUp must be true or false, got a string/],
    [{ warmUp: false, limits: { maxPixels: -1 } }, /option limits\.maxPixels must be a positive number/],
    [{ warmUp: false, limits: 5 }, /option limits must be an object, got a number/],
    [{ warmUp: false, decoder: 'pool' }, /option decoder must be a function/],
    ['refuse', /the options must be an object, got a string/],
  ] as const) {
    await assert.rejects(Predictor.load(modelDir, js(opts)), (e: Error) => {
      assert.ok(e instanceof TypeError, `${JSON.stringify(opts)}: ${e.constructor.name} ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

test('Predictor.load accepts every documented option, and absent (undefined) ones', async () => {
  const p = await Predictor.load(modelDir, {
    oodPolicy: 'refuse',
    warmUp: false,
    limits: { maxPixels: 10_000_000, maxInputBytes: undefined },
    decoder: undefined,
  });
  assert.equal(p.oodPolicy, 'refuse');
  p.dispose();
});

test("predict refuses heatmap: 'no' and other wrong option values with InputError BAD_OPTION (400)", async () => {
  for (const [opts, pattern] of [
    [{ heatmap: 'no' }, /^predict: option heatmap must be true or false, got a string \("no"\)/],
    [{ thumbnail: 1 }, /option thumbnail must be true or false, got a number/],
    [{ operatingPoint: 5 }, /option operatingPoint must be a string/],
    [null, /the options must be an object, got null/],
  ] as const) {
    await assert.rejects(predictor.predict(film, js(opts)), (e: Error) => {
      assert.ok(e instanceof InputError, `${JSON.stringify(opts)}: ${e.constructor.name} ${e.message}`);
      assert.equal(e.code, 'BAD_OPTION');
      assert.equal(e.status, 400);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

test('predict takes valid options, and options left undefined, as before', async () => {
  const p = await predictor.predict(film, { heatmap: false, thumbnail: true, operatingPoint: 'screening' });
  assert.equal(p.operatingPoint, 'screening');
  assert.ok(p.thumbnailPng);
  const q = await predictor.predict(film, { heatmap: undefined, operatingPoint: undefined, patientAge: undefined });
  assert.equal(q.operatingPoint, 'balanced');
  // The age keeps its own code and words.
  await assert.rejects(predictor.predict(film, js({ patientAge: '7' })), { code: 'BAD_PATIENT_AGE' });
});
