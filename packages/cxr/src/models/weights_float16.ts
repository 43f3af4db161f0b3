// Half-precision weight files. A float32 weight stored as IEEE float16 takes half the bytes, so a
// three-member ensemble fits where two did (a candidate folder may weigh 10 MB; the page downloads
// the weights). TF.js reads such files itself: a manifest entry with `quantization: { dtype:
// 'float16' }` is widened back to float32 on load (tf.io.decodeWeights), in Node and in the browser.
// The model in memory is rounded the same way before anything is calibrated on it, so the
// temperature and thresholds written beside the file describe the weights in it.
import { f16round, setFloat16 } from '@petamoriken/float16';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** float32 values as float16 bits, little-endian as TF.js reads them (round to nearest, ties to even). */
function toHalf(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((x, i) => {
    // float16 ends at 65504: a larger weight would silently become infinite.
    if (!Number.isFinite(f16round(x)) && Number.isFinite(x)) throw new RangeError(`weight ${x} is beyond float16`);
    setFloat16(view, i * 2, x, true);
  });
  return out;
}

/**
 * Re-encodes a model's float32 weights as float16 for saving: the weight data and the manifest
 * entries that tell the loader how to widen them. Other dtypes pass through unchanged.
 */
export function encodeFloat16(
  specs: readonly tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new Error(`weight ${spec.name} is already quantised`);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = spec.dtype === 'float32' || spec.dtype === 'int32' ? 4 * n : null;
    if (bytes === null) throw new Error(`weight ${spec.name}: dtype ${spec.dtype} cannot be stored as float16`);
    const raw = new Uint8Array(data, offset, bytes);
    offset += bytes;
    if (spec.dtype === 'float32') {
      parts.push(toHalf(new Float32Array(raw.slice().buffer)));
      out.push({ ...spec, quantization: { dtype: 'float16' } });
    } else {
      parts.push(raw.slice());
      out.push({ ...spec });
    }
  }
  if (offset !== data.byteLength) throw new Error(`weight data holds ${data.byteLength} bytes, specs name ${offset}`);
  const joined = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return { specs: out, data: joined.buffer };
}

/** Rounds every float32 weight of the model to the nearest float16 value, in place. */
export function roundWeightsToFloat16(model: tfl.LayersModel): void {
  const rounded = model.getWeights().map((w) => {
    if (w.dtype !== 'float32') return w.clone();
    return tf.tensor((w.dataSync() as Float32Array).map(f16round), w.shape, 'float32');
  });
  model.setWeights(rounded);
  tf.dispose(rounded);
}
