import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { decodeBuffer } from '../src/data/decode';
import { cxrnet } from '../src/models/cxrnet';
import { loadModel, saveLayersModel } from '../src/models/io';
import { InputError } from '../src/predict/errors';
import { calibrated, predictAllLogits, predictLogits, sigmoid, toInput } from '../src/models/infer';
import { Predictor } from '../src/predict/predictor';
import { imageElements, TS, writeDicom } from './dicom-writer';
import { pngClaiming } from './image-bytes';
import { makeSeededModel, seedWeights, SHARED, tempDir } from './ood-fixtures';
import { needsData, SAMPLES_FULLRES } from './shared-data';

const SIZE = 48;
let root = '';
let modelDir = '';
let predictor: Predictor;

/** A chest-like grayscale image (bright body, two dark lung fields), width × height. */
function chestLike(width: number, height: number): Uint8Array {
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width,
        v = y / height;
      const lung =
        ((u - 0.3) / 0.15) ** 2 + ((v - 0.45) / 0.3) ** 2 < 1 || ((u - 0.7) / 0.15) ** 2 + ((v - 0.45) / 0.3) ** 2 < 1;
      px[y * width + x] = lung ? 50 + ((x * 13 + y * 7) % 30) : 170 + ((x + y) % 20);
    }
  }
  return px;
}

const jpeg = (w: number, h: number) =>
  sharp(chestLike(w, h), { raw: { width: w, height: h, channels: 1 } })
    .jpeg({ quality: 92 })
    .toBuffer();
const png = (w: number, h: number) =>
  sharp(chestLike(w, h), { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();

/**
 * A real chest film squeezed to width × height (gray): the image checks assess it, where they call
 * the drawn images above unlike a chest film (cannot-assess, so no heat map).
 */
async function film(width: number, height: number, as: 'jpeg' | 'raw' = 'jpeg'): Promise<Buffer> {
  const dir = path.join(SAMPLES_FULLRES, 'NORMAL');
  const first = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpeg'))
    .sort()[0];
  const img = sharp(path.join(dir, first)).grayscale().resize(width, height, { fit: 'fill' });
  return as === 'raw' ? img.raw().toBuffer() : img.jpeg({ quality: 92 }).toBuffer();
}
const noFilm = needsData(SAMPLES_FULLRES);

before(async () => {
  root = tempDir('predictor');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: SIZE, widths: [4, 8, 8, 8] });
  predictor = await Predictor.load(modelDir);
});
after(() => {
  predictor?.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

test('load: model identity, and a note that the OOD gate is off without ood.json', () => {
  const m = predictor.model;
  assert.equal(m.name, 'seeded-test');
  assert.equal(m.version, '0.0.1');
  assert.match(m.sha256, /^[0-9a-f]{64}$/);
  assert.equal(m.dir, path.resolve(modelDir));
  assert.equal(m.meta.inputSize, SIZE);
  assert.ok(predictor.notes.some((n) => /ood\.json/.test(n)));
  assert.equal(predictor.oodGate, null);
});

test('a damaged model folder is an error naming the file: a cut weights.bin, a cxr.json that is not JSON', async () => {
  const cut = path.join(root, 'cut');
  fs.cpSync(modelDir, cut, { recursive: true });
  const weights = fs.readFileSync(path.join(cut, 'weights.bin'));
  fs.writeFileSync(path.join(cut, 'weights.bin'), weights.subarray(0, weights.length - 40));
  await assert.rejects(
    loadModel(cut),
    new RegExp(`cut: the weight files hold ${weights.length - 40} bytes where model.json describes ${weights.length}`),
  );
  const garbled = path.join(root, 'garbled');
  fs.cpSync(modelDir, garbled, { recursive: true });
  fs.writeFileSync(path.join(garbled, 'cxr.json'), '{ name: oops');
  await assert.rejects(loadModel(garbled), /garbled\/cxr\.json: not valid JSON \(/);
});

/** The label an answer gives at `threshold`: none when it cannot be assessed (predict/verdict.ts shownLabel). */
function labelAt(r: { probability: number; verdict: { status: string } }, threshold: number) {
  if (r.verdict.status === 'cannot-assess') return null;
  return r.probability >= threshold ? 'PNEUMONIA' : 'NORMAL';
}

test('a JPEG prediction: calibrated probability, label at the operating point, input facts, timings', async () => {
  const bytes = await jpeg(300, 240);
  const r = await predictor.predict(bytes);
  assert.ok(r.probability > 0 && r.probability < 1);
  assert.ok(Math.abs(r.probability - sigmoid(r.logit)) < 1e-12);
  assert.equal(r.operatingPoint, 'balanced');
  assert.equal(r.threshold, 0.5);
  // A drawn image, which the image checks call unlike a chest film: the score stays, the label is none.
  assert.equal(r.verdict.status, 'cannot-assess');
  assert.equal(r.label, null);
  assert.equal(labelAt(r, 0.5), null);
  assert.equal(r.ood, null);
  assert.deepEqual(r.input, {
    kind: 'jpeg',
    width: 300,
    height: 240,
    bytes: bytes.length,
    sha256: (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex'),
  });
  assert.equal(r.heatmapPng, undefined);
  assert.equal(r.thumbnailPng, undefined);
  for (const k of ['decodeMs', 'inferMs', 'totalMs'] as const) assert.ok(r.timings[k] >= 0);
  assert.equal(r.timings.heatmapMs, undefined);
});

/** Logits the way `cxr evaluate` computes them: images batched together. */
async function evaluatedLogit(dir: string, bytes: Buffer): Promise<{ z: number; temperature: number }> {
  const { members, meta } = await loadModel(dir);
  const others = await Promise.all([jpeg(90, 90), png(300, 100)]);
  const decoded = await Promise.all([bytes, ...others].map((b) => decodeBuffer(b, SIZE)));
  const all = new Uint8Array(3 * SIZE * SIZE);
  decoded.forEach((d, i) => all.set(d.pixels, i * SIZE * SIZE));
  const z = (await predictAllLogits(members, all, 3, SIZE, { tta: meta.tta }))[0];
  members.forEach((m) => m.dispose());
  return { z, temperature: meta.temperature };
}

// Same decode and same inference code; only float rounding may differ (a different batch).
test('the served probability is the evaluated one', async () => {
  const bytes = await png(200, 260);
  const r = await predictor.predict(bytes);
  const { z, temperature } = await evaluatedLogit(modelDir, bytes);
  assert.ok(Math.abs(r.logit - z / temperature) < 1e-5, `${r.logit} vs ${z / temperature}`);
  assert.ok(Math.abs(r.probability - sigmoid(z / temperature)) < 1e-6);
});

test('a Platt-scaled model serves sigmoid(logit / T + bias), and evaluate computes the same', async () => {
  const platt = path.join(root, 'platt');
  fs.cpSync(modelDir, platt, { recursive: true });
  const metaPath = path.join(platt, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
  fs.writeFileSync(metaPath, JSON.stringify({ ...meta, temperature: 2, logitBias: 1.25 }));
  const p = await Predictor.load(platt);
  try {
    const bytes = await png(200, 260);
    const r = await p.predict(bytes);
    const { z } = await evaluatedLogit(platt, bytes);
    assert.ok(Math.abs(r.logit - (z / 2 + 1.25)) < 1e-5, `${r.logit} vs ${z / 2 + 1.25}`);
    assert.ok(Math.abs(r.probability - calibrated(Float32Array.of(z), 2, 1.25)[0]) < 1e-6);
    // The bias moves the probability: the same film scores higher than with temperature alone.
    assert.ok(r.probability > sigmoid(z / 2));
  } finally {
    p.dispose();
  }
});

test('operating points: another one changes the threshold; an unknown one is a 400', async () => {
  // A real film where there is one: assessed, so that its label is read at the other threshold.
  const bytes = noFilm ? await jpeg(100, 100) : await film(100, 100);
  const r = await predictor.predict(bytes, { operatingPoint: 'screening' });
  assert.equal(r.operatingPoint, 'screening');
  assert.equal(r.threshold, 0.3);
  if (!noFilm) assert.equal(r.verdict.status, 'assessed', r.warnings.join('; '));
  assert.equal(r.label, labelAt(r, 0.3));
  await assert.rejects(
    predictor.predict(bytes, { operatingPoint: 'toString' }),
    (e: unknown) =>
      e instanceof InputError && e.status === 400 && e.code === 'UNKNOWN_OPERATING_POINT' && /balanced/.test(e.message),
  );
});

// A JPEG's or PNG's thumbnail is made at the 160 px the audit log keeps (a DICOM's at 512: page2-s37.test.ts).
test('heat map at the original aspect (long side ≤ 512) and a grayscale thumbnail (≤ 160)', {
  skip: noFilm,
}, async () => {
  for (const [w, h, hw, hh, tw, th] of [
    [800, 600, 512, 384, 160, 120],
    [300, 200, 300, 200, 160, 107],
    [150, 400, 150, 400, 60, 160],
  ]) {
    const r = await predictor.predict(await film(w, h), { heatmap: true, thumbnail: true });
    assert.ok(r.heatmapPng && r.thumbnailPng, r.warnings.join('; '));
    const hm = await sharp(r.heatmapPng).metadata();
    assert.equal(hm.format, 'png');
    assert.deepEqual([hm.width, hm.height, hm.channels], [hw, hh, 3], `heat map of ${w}×${h}`);
    const th_ = await sharp(r.thumbnailPng).metadata();
    assert.deepEqual([th_.width, th_.height, th_.channels], [tw, th, 1], `thumbnail of ${w}×${h}`);
    assert.ok((r.timings.heatmapMs ?? -1) >= 0);
  }
});

test('no heat map for an image the model cannot assess, and no warning repeating its headline', {
  skip: noFilm,
}, async () => {
  // One grey level: the image checks call it blank, so the verdict is cannot-assess.
  const blank = await sharp(new Uint8Array(200 * 160).fill(128), { raw: { width: 200, height: 160, channels: 1 } })
    .png()
    .toBuffer();
  const r = await predictor.predict(blank, { heatmap: true, thumbnail: true });
  assert.equal(r.verdict.status, 'cannot-assess');
  assert.equal(r.heatmapPng, undefined);
  assert.ok(r.thumbnailPng, 'the thumbnail still shows what was sent');
  // "Cannot assess this image" is its headline and the API's heatmapUrl is null: a bullet saying so again is noise.
  assert.ok(!r.warnings.some((w) => /heat map/.test(w)), r.warnings.join('; '));
  assert.equal(r.timings.heatmapMs, undefined, 'no heat map, no heat-map time (it skewed /metrics)');
  const real = await predictor.predict(await film(300, 240), { heatmap: true });
  assert.notEqual(real.verdict.status, 'cannot-assess');
  assert.ok(real.heatmapPng);
});

test('DICOM in (content-sniffed, no file name needed), with its header facts as warnings', {
  skip: noFilm,
}, async () => {
  const w = 120,
    h = 100;
  const px16 = Uint16Array.from(await film(w, h, 'raw'), (v) => v * 16);
  const ok = writeDicom(imageElements({ rows: h, columns: w, bitsStored: 12, pixels: px16 }));
  const r = await predictor.predict(ok, { heatmap: true, thumbnail: true });
  assert.equal(r.input.kind, 'dicom');
  assert.deepEqual([r.input.width, r.input.height], [w, h]);
  // No header fact to warn about (frontal, no age, no modality), and a real film passes the image checks.
  assert.deepEqual(r.warnings, []);
  assert.ok(r.heatmapPng);
  const lateral = writeDicom(
    imageElements({
      rows: h,
      columns: w,
      bitsStored: 12,
      pixels: px16,
      extra: [{ tag: 0x00185101, vr: 'CS', value: 'LL' }],
    }),
  );
  const rl = await predictor.predict(lateral);
  assert.ok(
    rl.warnings.some((m) => /view position LL/.test(m)),
    rl.warnings.join('; '),
  );
});

test('the sample DICOM files predict', {
  skip: !fs.existsSync(path.join(SHARED, 'dicom-samples')) && 'no shared/data',
}, async () => {
  const dir = path.join(SHARED, 'dicom-samples');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.dcm'))) {
    const r = await predictor.predict(fs.readFileSync(path.join(dir, f)));
    assert.equal(r.input.kind, 'dicom', f);
    assert.ok(r.probability > 0 && r.probability < 1, f);
  }
});

test('bad input is always an InputError with a status, and no tensor is left behind', async () => {
  const good = await jpeg(200, 200);
  const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
  const cases: Array<[string, Buffer, number, string]> = [
    ['empty', Buffer.alloc(0), 400, 'EMPTY'],
    ['text', Buffer.from('this is not an image'), 415, 'UNSUPPORTED_FORMAT'],
    ['gif', gif, 415, 'UNSUPPORTED_FORMAT'],
    ['truncated jpeg', good.subarray(0, Math.floor(good.length / 2)), 422, 'TRUNCATED'],
    ['truncated png', (await png(200, 200)).subarray(0, 300), 422, 'TRUNCATED'],
    ['png bomb', pngClaiming(60000, 60000, 10), 413, 'TOO_MANY_PIXELS'],
    [
      'dicom mpeg2',
      writeDicom(imageElements({ rows: 4, columns: 4 }), { transferSyntax: TS.mpeg2, frames: [new Uint8Array(8)] }),
      415,
      'UNSUPPORTED_TRANSFER_SYNTAX',
    ],
    ['dicom without pixels', writeDicom(imageElements({ rows: 4, columns: 4 })), 422, 'NO_PIXEL_DATA'],
    [
      'dicom truncated',
      writeDicom(imageElements({ rows: 40, columns: 40, pixels: new Uint16Array(1600) })).subarray(0, 1500),
      422,
      'TRUNCATED',
    ],
  ];
  await predictor.predict(good, { heatmap: true, thumbnail: true }); // kernels compiled, pools filled
  const before = tf.memory().numTensors;
  for (const [what, bytes, status, code] of cases) {
    for (const opts of [{}, { heatmap: true, thumbnail: true }]) {
      await assert.rejects(predictor.predict(bytes, opts), (e: unknown) => {
        assert.ok(e instanceof InputError, `${what}: expected an InputError, got ${String(e)}`);
        assert.equal(e.status, status, `${what}: ${e.message}`);
        assert.equal(e.code, code, `${what}: ${e.message}`);
        assert.ok(e.message.length > 5);
        return true;
      });
    }
  }
  await predictor.predict(good, { heatmap: true, thumbnail: true });
  assert.equal(tf.memory().numTensors, before, 'tensors after errors and successes');
});

test('limits: a file over the byte limit is a 413', async () => {
  const p = await Predictor.load(modelDir, { limits: { maxInputBytes: 1000 }, warmUp: false });
  try {
    await assert.rejects(p.predict(await png(300, 300)), (e: unknown) => e instanceof InputError && e.status === 413);
  } finally {
    p.dispose();
  }
});

test('concurrent predictions give the same answers as one at a time', async () => {
  const inputs = await Promise.all([jpeg(100, 120), png(90, 90), jpeg(400, 300), png(64, 200)]);
  const serial: number[] = [];
  for (const b of inputs) serial.push((await predictor.predict(b)).probability);
  const parallel = await Promise.all(
    inputs.flatMap((b) => [predictor.predict(b, { heatmap: true }), predictor.predict(b)]),
  );
  parallel.forEach((r, i) => assert.equal(r.probability, serial[Math.floor(i / 2)]));
});

test('test-time augmentation and ensembles go through the same averaging as evaluation', { skip: noFilm }, async () => {
  const dir = path.join(root, 'ensemble');
  fs.mkdirSync(dir);
  for (const [i, name] of ['m0', 'm1'].entries()) {
    const m = cxrnet({ inputSize: SIZE, widths: [4, 8, 8, 8], dropout: 0 });
    seedWeights(m, 10 + i);
    await saveLayersModel(m, path.join(dir, name));
    m.dispose();
  }
  const meta = JSON.parse(fs.readFileSync(path.join(modelDir, 'cxr.json'), 'utf8'));
  fs.writeFileSync(
    path.join(dir, 'cxr.json'),
    JSON.stringify({ ...meta, members: ['m0', 'm1'], tta: ['identity', 'zoom-in'] }),
  );
  const p = await Predictor.load(dir);
  try {
    const bytes = await film(150, 150);
    const r = await p.predict(bytes, { heatmap: true });
    const { z, temperature } = await evaluatedLogit(dir, bytes);
    assert.ok(Math.abs(r.logit - z / temperature) < 1e-5, `${r.logit} vs ${z / temperature}`);
    // Really two members and two views: one member alone without TTA gives another number.
    const { members } = await loadModel(dir);
    const x = toInput((await decodeBuffer(bytes, SIZE)).pixels, 1, SIZE);
    const single = predictLogits([members[0]], x, [])[0];
    x.dispose();
    members.forEach((m) => m.dispose());
    assert.ok(Math.abs(single - z) > 1e-4);
    assert.ok(r.heatmapPng);
  } finally {
    p.dispose();
  }
});

test('a disposed predictor refuses to predict', async () => {
  const p = await Predictor.load(modelDir, { warmUp: false });
  p.dispose();
  p.dispose();
  await assert.rejects(p.predict(await jpeg(50, 50)), /dispose/);
});

test('a film squashed wider than 2:1 is answered with a note on its shape; a usual one has none', {
  skip: noFilm,
}, async () => {
  const wide = await predictor.predict(await film(1500, 300), {});
  assert.notEqual(wide.verdict.status, 'cannot-assess', wide.warnings.join('; '));
  const note = wide.warnings.filter((w) => w.startsWith('image wider than any training film (5.00 to 1'));
  assert.equal(note.length, 1, wide.warnings.join('; '));
  assert.match(note[0], /this answer may follow the shape/);
  const usual = await predictor.predict(await film(300, 240), {});
  assert.ok(!usual.warnings.some((w) => /wide/.test(w)), usual.warnings.join('; '));
});
