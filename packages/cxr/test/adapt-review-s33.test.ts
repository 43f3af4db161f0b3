// Review of site adaptation, the OOD gate and Grad-CAM (session 33): each test failed before its fix.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { gradCam, resizeMap } from '../src/explain/gradcam';
import type { CamMap } from '../src/explain/model_parts';
import { adaptModel, AdaptRefused } from '../src/adapt/adapt';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';
import { generatedNonXrays } from './ood-images';

const skipData = !haveData && 'no shared/data';

before(async () => {
  await initEngine();
  tf.setBackend('aten');
});

/** A Grad-CAM view whose map is `body` applied to the image, pooled and weighted by 1 (the logit is the map's mean). */
function camView(size: number, body: (x: tfl.SymbolicTensor) => tfl.SymbolicTensor): CamMap {
  const input = tfl.input({ shape: [size, size, 1] });
  const map = body(input);
  const shape = map.shape.slice(1) as [number, number, number];
  const mapIn = tfl.input({ shape });
  const h = tfl.layers.globalAveragePooling2d({}).apply(mapIn) as tfl.SymbolicTensor;
  return {
    body: tfl.model({ inputs: input, outputs: map }),
    neck: tfl.model({ inputs: mapIn, outputs: h }),
    kernel: tf.tensor2d([[1]]),
    bias: tf.tensor1d([0]),
    mapShape: shape,
  };
}

test("Grad-CAM: a member's coarser map is resized onto the first member's grid centre on centre", () => {
  // Member 1: a 4 × 4 map that is all zeros (it only sets the grid); member 2: the image average-pooled to 2 × 2.
  const zero = camView(
    4,
    (x) =>
      tfl.layers
        .conv2d({ filters: 1, kernelSize: 1, useBias: false, kernelInitializer: 'zeros' })
        .apply(x) as tfl.SymbolicTensor,
  );
  const coarse = camView(4, (x) => tfl.layers.averagePooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor);
  // Bright in the bottom-left quarter: member 2's map is [0, 0, 1, 0].
  const x = tf.tensor4d([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0], [1, 4, 4, 1]);
  const cam = gradCam([zero, coarse], x);
  // The overlay resizes with pixel centres aligned (resizeMap); member 2's map must land the same way, not shifted
  // towards the top-left corner (TF.js's resizeBilinear without half-pixel centres).
  const want = resizeMap(Float32Array.from([0, 0, 1, 0]), 2, 2, 4, 4);
  assert.deepEqual([cam.height, cam.width], [4, 4]);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs(cam.map[i] - want[i]) < 1e-5, `cell ${i}: ${cam.map[i]} vs ${want[i]}`);
  x.dispose();
});

test('the rejected-fraction bound counts copies of a used film as readable images', { skip: skipData }, async () => {
  const work = tempDir('adapt-review');
  try {
    const model = await makeSeededModel(path.join(work, 'model'), { inputSize: 64 });
    const dir = path.join(work, 'films');
    fs.mkdirSync(dir);
    // Four chest films, each exported three times (12 readable chest images, 4 distinct), and the generated
    // non-X-rays: fewer than half of the readable images are flagged, so the folder is not refused as mostly
    // non-chest; it is refused for too few distinct films instead.
    const normal = path.join(CHEST_XRAY, 'train', 'NORMAL');
    const names = fs
      .readdirSync(normal)
      .filter((f) => f.endsWith('.jpeg'))
      .sort()
      .slice(0, 4);
    for (const [k, f] of names.entries())
      for (let c = 0; c < 3; c++) fs.copyFileSync(path.join(normal, f), path.join(dir, `film-${k}-copy-${c}.jpeg`));
    const junk = Object.entries(await generatedNonXrays());
    for (const [name, bytes] of junk) fs.writeFileSync(path.join(dir, `junk-${name}`), bytes);
    let message = '';
    await adaptModel({ modelDir: model, imagesDir: dir, outDir: path.join(work, 'out'), minImages: 5 }).then(
      () => assert.fail('adapted on 4 distinct films with --min-images 5'),
      (e: unknown) => {
        assert.ok(e instanceof AdaptRefused, String(e));
        message = e.message;
      },
    );
    const m = /only 4 usable chest films \((\d+) flagged, 0 unreadable, 8 copies of films counted once\)/.exec(message);
    assert.ok(m, message);
    const flagged = Number(m[1]);
    // The case is only telling when the flagged films are more than half of the distinct films plus them.
    assert.ok(flagged > 4 && flagged <= 12, `flagged ${flagged}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
