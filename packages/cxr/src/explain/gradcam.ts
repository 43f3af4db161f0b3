// Grad-CAM (Selvaraju et al., 2017) for the pneumonia logit: which regions of a feature map (the
// last one, or a finer one: model_parts.ts camParts) push the logit up. Channel weights are the
// spatial means of d(logit)/d(A); the map is the ReLU of the weighted channel sum. The positive
// class is always explained, whatever the label, so a NORMAL call shows where the (weaker)
// pneumonia evidence is.
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { HEATMAP_FLOOR, INFERNO } from './colormap';
import { resizeMap } from './resize';
import { type CamMap, denseLogit } from './model_parts';

export interface CamResult {
  /** height × width, row-major, scaled to [0, 1] (all zeros when nothing supports the class). */
  map: Float32Array;
  height: number;
  width: number;
  /** Largest raw map value before scaling, averaged over members; 0 = no positive evidence. */
  peak: number;
}

/**
 * Grad-CAM of image `index` of the batch x [n, S, S, 1], averaged over ensemble members at the
 * first member's map size. (Images do not interact in inference mode, so the gradient of the
 * batch's summed logits holds each image's own gradient.)
 */
export function gradCam(members: readonly CamMap[], x: tf.Tensor4D, index = 0): CamResult {
  if (members.length === 0) throw new Error('gradCam: no model');
  if (!(index >= 0 && index < x.shape[0])) throw new Error(`gradCam: no image ${index} in a batch of ${x.shape[0]}`);
  const [height, width] = members[0].mapShape;
  let peak = 0;
  const acc = new Float32Array(height * width);
  for (const parts of members) {
    const cam = tf.tidy(() => {
      const n = x.shape[0];
      const all = parts.body.predict(x) as tf.Tensor4D;
      const logitOf = (fm: tf.Tensor) =>
        tf.sum(
          denseLogit(parts, tf.reshape(parts.neck.apply(fm, { training: false }) as tf.Tensor, [n, -1]) as tf.Tensor2D),
        );
      const pick = (t: tf.Tensor4D) => (n === 1 ? t : tf.slice(t, [index, 0, 0, 0], [1, -1, -1, -1]));
      const grads = pick(tf.grad(logitOf)(all) as tf.Tensor4D);
      const a = pick(all);
      const weights = tf.mean(grads, [1, 2], true); // [1, 1, 1, C]
      let m = tf.relu(tf.sum(tf.mul(a, weights), -1, true)) as tf.Tensor4D; // [1, h, w, 1]
      // Pixel centres aligned (halfPixelCenters), as resizeMap draws the overlay: TF.js's default samples from the
      // top-left corners, which shifted a coarser member's map by a fraction of a cell against the others'.
      if (m.shape[1] !== height || m.shape[2] !== width) m = tf.image.resizeBilinear(m, [height, width], false, true);
      return tf.reshape(m, [-1]);
    });
    const values = cam.dataSync() as Float32Array;
    cam.dispose();
    let max = 0;
    for (const v of values) if (v > max) max = v;
    peak += max / members.length;
    if (max > 0) for (let i = 0; i < acc.length; i++) acc[i] += values[i] / max / members.length;
  }
  let max = 0;
  for (const v of acc) if (v > max) max = v;
  if (max > 0) for (let i = 0; i < acc.length; i++) acc[i] /= max;
  return { map: acc, height, width, peak };
}

export interface OverlayOptions {
  /** Opacity of the colour where the map is 1; it fades with the map value. Default 0.6. */
  maxAlpha?: number;
  /**
   * How strong the explained evidence is, 0..1 (the predictor passes the calibrated probability
   * of pneumonia); the map is scaled by it before colouring. The map itself is scaled to its own
   * maximum, so without this a film with almost no pneumonia evidence (peak 0.04 against 0.3-0.45
   * on pneumonia films) showed its noise at full colour: hot spots on side markers and border
   * cells of normal films. Default 1.
   */
  strength?: number;
  /** Map values below this are not coloured at all, so the X-ray shows through. Default HEATMAP_FLOOR (0.2). */
  floor?: number;
}

/**
 * The heat map over the grayscale image as an RGB PNG, at the image's own size. The map was
 * computed on the squashed model input, and squashing back to the image's aspect is a plain
 * resize, so each map cell lands on the region it saw.
 */
export async function renderOverlay(
  gray: Uint8Array,
  width: number,
  height: number,
  cam: CamResult,
  opts: OverlayOptions = {},
): Promise<Buffer> {
  if (gray.length !== width * height) throw new Error(`renderOverlay: ${gray.length} pixels for ${width}×${height}`);
  const maxAlpha = opts.maxAlpha ?? 0.6;
  const floor = opts.floor ?? HEATMAP_FLOOR;
  const strength = Math.min(1, Math.max(0, opts.strength ?? 1));
  const m = resizeMap(cam.map, cam.height, cam.width, height, width);
  const rgb = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0; i < m.length; i++) {
    const v = Math.min(1, Math.max(0, m[i] * strength));
    const a = v <= floor ? 0 : (maxAlpha * (v - floor)) / (1 - floor);
    const k = Math.round(v * 255) * 3;
    const g = gray[i];
    rgb[3 * i] = Math.round(g * (1 - a) + INFERNO[k] * a);
    rgb[3 * i + 1] = Math.round(g * (1 - a) + INFERNO[k + 1] * a);
    rgb[3 * i + 2] = Math.round(g * (1 - a) + INFERNO[k + 2] * a);
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
}

export { resizeMap };
