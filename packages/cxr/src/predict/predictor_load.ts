// What Predictor.load reads before it answers: the model folder (its failures a ModelLoadError with a code a
// program can branch on, raised by models/ itself), and the warm-up image.
import sharp from 'sharp';
import { type LoadedModel, loadModel } from '../models/io';

// The class lives beside loadModel (models/load_error.ts), which throws it; named here too for older imports.
export { ModelLoadError, type ModelLoadErrorCode } from '../models/load_error';

/** loadModel, whose failure is a ModelLoadError already (models/load_error.ts). */
export async function loadPredictorModel(dir: string): Promise<LoadedModel> {
  return loadModel(dir);
}

/** A chest-like synthetic image for the warm-up run: bright borders and mediastinum, dark lungs. */
export async function warmUpImage(): Promise<Buffer> {
  const w = 320;
  const h = 320;
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const lung =
        ((x - 100) / 60) ** 2 + ((y - 150) / 100) ** 2 < 1 || ((x - 220) / 60) ** 2 + ((y - 150) / 100) ** 2 < 1;
      px[y * w + x] = lung ? 60 + ((x * 7 + y * 3) % 20) : 190;
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();
}
