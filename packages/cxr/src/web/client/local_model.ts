// "Process on this computer": the same model, preprocessing and arithmetic as the server
// (preprocess.ts and models/infer.ts are bundled as they are), on TF.js's WebAssembly backend.
// Only the model files come from the server; the image stays in the browser.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { normalizeImages, preprocessPixels } from '../../data/preprocess';
import { predictLogits, sigmoid, toInput } from '../../models/infer';
import { authHeaders, ModelInfo } from './api';

/** Same bound as the server's decoder: refuse before allocating a huge canvas. */
const MAX_PIXELS = 50_000_000;

export interface LocalResult {
  probability: number;
  logit: number;
  width: number;
  height: number;
  ms: number;
}

let loading: Promise<tfl.LayersModel[]> | null = null;
let loadedFor = '';

async function members(info: ModelInfo): Promise<tfl.LayersModel[]> {
  if (!loading || loadedFor !== info.sha256) {
    loadedFor = info.sha256;
    loading = (async () => {
      // The .wasm files are served next to the page (no CDN); threads need cross-origin
      // isolation, which this page does not have, so the SIMD single-thread build is used.
      setWasmPaths(new URL('wasm/', document.baseURI).href);
      if (!(await tf.setBackend('wasm'))) throw new Error('WebAssembly backend failed to start');
      await tf.ready();
      return Promise.all(info.files.members.map((url) =>
        tfl.loadLayersModel(tf.io.http(url, { requestInit: { headers: authHeaders() } }))));
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}

/** Loads the model now (e.g. when the switch is turned on) so the first image is not slow. */
export function preloadLocalModel(info: ModelInfo): Promise<unknown> {
  return members(info);
}

/** Decodes with the browser (EXIF orientation applied, no colour management) to RGBA at full size. */
async function decode(file: Blob): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> {
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error('this browser cannot decode the file (is it a JPEG or PNG image?)');
  }
  try {
    const { width, height } = bmp;
    if (width * height > MAX_PIXELS) throw new Error(`${width}×${height} exceeds the ${MAX_PIXELS}-pixel limit`);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    if (!ctx) throw new Error('no 2D canvas');
    ctx.drawImage(bmp, 0, 0);
    return { rgba: ctx.getImageData(0, 0, width, height).data, width, height };
  } finally {
    bmp.close();
  }
}

export async function predictLocally(file: Blob, info: ModelInfo): Promise<LocalResult> {
  const models = await members(info);
  const t0 = performance.now();
  const { rgba, width, height } = await decode(file);
  const size = info.inputSize;
  const pixels = normalizeImages(preprocessPixels(rgba, width, height, 4, size), 1, size, info.normalize);
  const x = toInput(pixels, 1, size);
  try {
    const logit = predictLogits(models, x, info.tta)[0];
    return { logit, probability: sigmoid(logit / info.temperature), width, height, ms: performance.now() - t0 };
  } finally {
    x.dispose();
  }
}
