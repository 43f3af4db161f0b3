// TEMPORARY stand-in for predict/predictor.ts until it lands; deleted then.
import * as crypto from 'node:crypto';
import sharp from 'sharp';
import { loadModel, LoadedModel } from '../src/models/io';
import { preprocessPixels } from '../src/data/preprocess';
import { sniffFormat } from '../src/data/decode';
import { predictLogits, sigmoid, toInput } from '../src/predict/infer';
import type { ServePredictOptions, ServePrediction, ServePredictor } from '../src/serve/predictor_port';

class InputError extends Error {
  constructor(readonly code: string, readonly status: number, message: string) { super(message); }
}

export class StandInPredictor implements ServePredictor {
  constructor(private readonly m: LoadedModel) {}
  static async load(dir: string): Promise<StandInPredictor> { return new StandInPredictor(await loadModel(dir)); }
  get model() { return { name: this.m.meta.name, version: this.m.meta.version, sha256: this.m.sha256, dir: this.m.dir, meta: this.m.meta }; }
  async predict(bytes: Buffer, opts: ServePredictOptions = {}): Promise<ServePrediction> {
    const t0 = performance.now();
    const kind = sniffFormat(bytes);
    if (kind !== 'jpeg' && kind !== 'png') throw new InputError('UNSUPPORTED_FORMAT', 415, `${kind} not supported`);
    let raw;
    try {
      const meta = await sharp(bytes, { limitInputPixels: 50e6 }).metadata();
      if ((meta.width ?? 0) * (meta.height ?? 0) > 50e6) throw new InputError('TOO_MANY_PIXELS', 413, 'too many pixels');
      raw = await sharp(bytes, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError('CORRUPT', 422, `corrupt: ${(e as Error).message}`);
    }
    const size = this.m.meta.inputSize;
    const px = preprocessPixels(raw.data, raw.info.width, raw.info.height, raw.info.channels, size);
    const t1 = performance.now();
    const x = toInput(px, 1, size);
    const z = predictLogits(this.m.members, x, this.m.meta.tta)[0];
    x.dispose();
    const op = opts.operatingPoint ?? this.m.meta.defaultOperatingPoint;
    const threshold = this.m.meta.operatingPoints[op].threshold;
    const probability = sigmoid(z / this.m.meta.temperature);
    const t2 = performance.now();
    const png = () => sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    return {
      probability, logit: z, label: probability >= threshold ? 'PNEUMONIA' : 'NORMAL', operatingPoint: op, threshold,
      warnings: raw.info.width < 100 ? ['small image'] : [], ood: null,
      input: { kind, width: raw.info.width, height: raw.info.height, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length },
      heatmapPng: opts.heatmap === false ? undefined : await png(),
      thumbnailPng: opts.thumbnail ? await png() : undefined,
      timings: { decodeMs: t1 - t0, inferMs: t2 - t1, totalMs: performance.now() - t0 },
    };
  }
  dispose(): void { for (const m of this.m.members) m.dispose(); }
}
