// The prediction service: one loaded model answering single-image requests (the web server,
// `cxr predict`). Bytes in, a Prediction out; any fault of the input is an InputError with an
// HTTP-style status, anything else is a bug. The probability is computed by models/infer.ts,
// the same code as `cxr evaluate`, so a served number equals an evaluated one.
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { DEFAULT_LIMITS, type DecodeLimits } from '../data/decode';
import { normalizeImages } from '../data/preprocess';
import { initEngine } from '../engine';
import { gradCam, renderOverlay } from '../explain/gradcam';
import { type CamParts, features, type ModelParts } from '../explain/model_parts';
import { imageChecks, oodDecision, type OodModel } from '../explain/ood';
import { decodeInput, type DecodedInput, type InputDecoder } from './decode_input';
import { type LoadedModel, stoppedWhileFinishing } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { InputError, PredictorDisposedError } from './errors';
import {
  checkPatientAge,
  checkPredictOptions,
  checkPredictorOptions,
  type OodPolicy,
  type PredictOptions,
  type PredictorOptions,
  operatingPointOf,
} from './options';
import { loadPredictorModel, warmUpImage } from './predictor_load';
import { disposeViews, modelViews } from './model_views';
import { describe, imageBytes } from './image_bytes';
import { type FeatureTap, predictWithFeatures, sigmoid, toInput } from '../models/infer';
import type { InputKind, PredictionResult } from './prediction_schema';
import { answerAge, deriveVerdict, oodReason, shapeReasons, shownLabel, showsHeatmap, type Verdict } from './verdict';
import { verdictNotes } from './verdict_notes';
import { sha256Of } from '../hash';

export type { OodPolicy, PredictOptions, PredictorOptions } from './options';

/**
 * The model's answer about one image: the fields of predict/prediction_schema.ts (probability,
 * label, verdict, OOD gate, input facts, timings), plus the images made for it.
 */
export type Prediction = PredictionResult & {
  /** Grad-CAM overlay (RGB PNG) at the original aspect, long side ≤ 512. */
  heatmapPng?: Buffer;
  /** Grayscale PNG, long side ≤ 256. */
  thumbnailPng?: Buffer;
};

/** What Predictor.screen found: the model input and why the gate would flag it (empty: accepted). */
export interface Screening {
  /** inputSize × inputSize gray, exactly what predict() feeds the network. */
  pixels: Uint8Array;
  kind: InputKind;
  ood: Prediction['ood'];
  /** The OOD gate's and the image checks' findings, as predict() words them in warnings. */
  problems: string[];
}

/** Decoding off the main thread, ended with its owner: serve/decode_pool.ts's DecodePool (createDecodePool()). */
export interface DecoderPool {
  readonly decode: InputDecoder;
  close(): Promise<void>;
}

/**
 * A DICOM's thumbnail's longer side: the film the page shows for a DICOM (a browser cannot show one), on its card
 * (up to 420 px wide) under the heat map and enlarged. As large as the heat map (decode_input.ts' display copy):
 * at 160 px it was stretched to the card's 420 px, soft, and blurry when enlarged.
 */
export const DICOM_THUMBNAIL_SIDE = 512;
/** Any other film's: the page shows the file itself, and the thumbnail only in History's 48 px column. */
const THUMBNAIL_SIDE = 160;

export class Predictor {
  readonly model: { name: string; version: string; sha256: string; dir: string; meta: ModelMeta };
  readonly oodPolicy: OodPolicy;
  /** Things found at load that limit the service (no ood.json, no Grad-CAM layer...). */
  readonly notes: string[];
  private readonly loaded: LoadedModel;
  private readonly parts: ModelParts[] | null;
  /** Why there are no heat maps (the model could not be split at its feature layer); null when there are. */
  private readonly camProblem: string | null;
  /** Grad-CAM's view of each member (a finer map than the gate's where the model allows). */
  private readonly cams: CamParts[] | null;
  private readonly ood: OodModel | null;
  /** The OOD member with its feature layer as a second output: features from the prediction's own pass. */
  private readonly tap: FeatureTap | null;
  private readonly limits: DecodeLimits;
  private decoder: InputDecoder | null;
  /** The pool decodeIn() gave this Predictor: closed when the model is freed. */
  private pool: DecoderPool | null = null;
  private disposed = false;
  /** Predictions and screenings running now: dispose() frees the model only once they are done. */
  private inFlight = 0;

  private constructor(loaded: LoadedModel, opts: PredictorOptions) {
    const { meta } = loaded;
    this.loaded = loaded;
    this.model = { name: meta.name, version: meta.version, sha256: loaded.sha256, dir: path.resolve(loaded.dir), meta };
    this.oodPolicy = opts.oodPolicy ?? 'warn';
    // A limit given as undefined ({ maxPixels: undefined }, which the options' check lets pass) keeps its default:
    // spread as given, it replaced the default with none at all (a 64-megapixel image was decoded and answered).
    const given = Object.entries(opts.limits ?? {}).filter(([, v]) => v !== undefined);
    this.limits = { ...DEFAULT_LIMITS, ...Object.fromEntries(given) };
    this.decoder = opts.decoder ?? null;
    this.notes = [];
    // A run stopped while it finished answers without its gate and has no report: said by every reader
    // (predict, evaluate, serve), so that its answers are not taken for a finished model's.
    if (stoppedWhileFinishing(loaded.dir)) {
      const data = typeof meta.data.root === 'string' ? meta.data.root : 'ROOT';
      this.notes.push(
        `${loaded.dir}: its training run did not finish (stopped while it finished: checkpoints/best is still ` +
          `there), so it lacks the gate and report that run was to add; finish it with 'cxr train --data ${data} ` +
          `--out ${loaded.dir} --resume' and the options it was started with`,
      );
    }
    const views = modelViews(loaded);
    this.notes.push(...views.notes);
    this.camProblem = views.camProblem;
    this.parts = views.parts;
    this.cams = views.cams;
    this.ood = views.ood;
    this.tap = views.tap;
  }

  /**
   * Loads the model once and runs one warm-up prediction (first calls compile kernels and fill pools). Options of
   * the wrong type or value are a TypeError; a folder that cannot be loaded is a ModelLoadError (its `code` says
   * why: NOT_FOUND, NOT_A_MODEL, UNREADABLE, BAD_CONFIG, BAD_WEIGHTS, SYSTEM).
   */
  static async load(modelDir: string, opts: PredictorOptions = {}): Promise<Predictor> {
    // A JavaScript caller's undefined (an unset CXR_MODEL) got Node's own TypeError about a "path" argument.
    if (typeof modelDir !== 'string')
      throw new TypeError(`Predictor.load: the model folder must be a path (a string), got ${describe(modelDir)}`);
    checkPredictorOptions(opts);
    await initEngine();
    const loaded = await loadPredictorModel(modelDir);
    const p = new Predictor(loaded, opts);
    if (opts.warmUp !== false) {
      try {
        await p.warmUp(await warmUpImage());
      } catch (e) {
        p.dispose();
        throw e;
      }
    }
    return p;
  }

  get oodGate(): { threshold: number; featureLayer: string; percentile: number } | null {
    return (
      this.ood && {
        threshold: this.ood.threshold,
        featureLayer: this.ood.featureLayer,
        percentile: this.ood.percentile,
      }
    );
  }

  /**
   * Decodes in `pool`'s worker threads from now on, so that a film's decode (seconds for a large JPEG 2000) does not
   * hold the event loop, and closes the pool with dispose(). False, the pool left to the caller, when this Predictor
   * has a decoder already (the `decoder` option, an earlier pool) or was disposed. startServer gives one by default.
   */
  decodeIn(pool: DecoderPool): boolean {
    if (this.decoder || this.disposed) return false;
    this.pool = pool;
    this.decoder = pool.decode;
    return true;
  }

  /** `bytes`: the file's contents (a Buffer or Uint8Array), never its path (a TypeError says so). */
  predict(bytes: Buffer | Uint8Array, opts: PredictOptions = {}): Promise<Prediction> {
    return this.track(() => this.run(bytes, opts, this.oodPolicy));
  }

  /**
   * One full prediction (heat map and thumbnail included) whose gate only warns, whatever the
   * policy: a server runs it on a synthetic image before it listens, to load every kernel, and
   * under `refuse` the gate would reject that image before the heat map ran.
   */
  warmUp(bytes: Buffer): Promise<Prediction> {
    // Under the default decode limits, not the caller's: limits below the synthetic image (a 320×320 PNG of
    // 3 KB) made Predictor.load reject with an InputError TOO_LARGE about a file the program never gave.
    return this.track(() => this.run(bytes, { heatmap: true, thumbnail: true }, 'warn', DEFAULT_LIMITS));
  }

  /**
   * `work` counted as in flight, so that dispose() waits for it; refused once dispose() was called. The count is
   * taken before `work` first awaits, so a call made before dispose() is always waited for.
   */
  private async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) throw new PredictorDisposedError();
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
      if (this.disposed && this.inFlight === 0) this.free();
    }
  }

  /**
   * The model input predict() would compute from `bytes` (size × size gray) and the gate's verdict
   * on it (OOD score and image checks), without the classification: site adaptation reads its
   * films through this, so they are preprocessed and screened exactly as predictions are.
   * Unusable bytes throw InputError, as predict() does.
   */
  screen(bytes: Buffer | Uint8Array): Promise<Screening> {
    return this.track(() => this.screenNow(bytes));
  }

  private async screenNow(bytes: Buffer | Uint8Array): Promise<Screening> {
    const buf = imageBytes(bytes);
    let img: DecodedInput;
    try {
      img = await this.decode(buf, false);
    } catch (e) {
      throw InputError.from(e);
    }
    let ood: Prediction['ood'] = null;
    if (this.ood && this.parts) {
      // The gate reads the features of the network's own input, normalised as predict() gives it.
      const x = this.networkInput(img);
      const h = features(this.parts[this.ood.member], x);
      x.dispose();
      ood = this.oodVerdict(h);
    }
    const checks = [...shapeReasons(img.width, img.height), ...imageChecks(img.facts)];
    return { pixels: img.pixels, kind: img.kind, ood, problems: oodMessages(ood, checks) };
  }

  /**
   * The network's input [1, size, size, 1] from the decoded square: normalised as the model was trained (the
   * image checks read the raw square), one rule for predict() and screen(), as the gate was fitted on it.
   */
  private networkInput(img: DecodedInput): tf.Tensor4D {
    const { inputSize, preprocessing } = this.model.meta;
    return toInput(normalizeImages(img.pixels.slice(), 1, inputSize, preprocessing.normalize), 1, inputSize);
  }

  /** The gate's verdict on features h [1, d] (disposed here). */
  private oodVerdict(h: tf.Tensor2D): NonNullable<Prediction['ood']> {
    const verdict = oodDecision(this.ood!, h.dataSync().subarray(0, h.shape[1]));
    h.dispose();
    return verdict;
  }

  /**
   * Frees the model's tensors. Calls made afterwards reject with PredictorDisposedError; predictions (and
   * screenings) already running finish normally, and the model is freed when the last of them ends, never under
   * one (freeing it at once failed them with a TF.js error, "Layer '...' is already disposed").
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.inFlight === 0) this.free();
  }

  private free(): void {
    // The pool's workers are let go even when freeing the tensors throws.
    try {
      disposeViews(this.loaded, { parts: this.parts, cams: this.cams });
    } finally {
      void this.pool?.close();
    }
  }

  private async run(
    input: Buffer | Uint8Array,
    opts: PredictOptions,
    policy: OodPolicy,
    limits: DecodeLimits = this.limits,
  ): Promise<Prediction> {
    checkPredictOptions(opts);
    const t0 = performance.now();
    const { meta } = this.model;
    const { name: opName, op } = operatingPointOf(meta, opts.operatingPoint);
    checkPatientAge(opts.patientAge);
    const bytes = imageBytes(input);
    const wantDisplay = !!(opts.heatmap || opts.thumbnail);

    let img: DecodedInput;
    try {
      img = await this.decode(bytes, wantDisplay, limits);
    } catch (e) {
      throw InputError.from(e);
    }
    const t1 = performance.now();

    const warnings: string[] = [];
    const checks = imageChecks(img.facts);
    const x = this.networkInput(img);
    let logit: number;
    let oodResult: Prediction['ood'] = null;
    let cam = null;
    let t2: number;
    let heatmapStart = 0;
    let verdict: Verdict;
    try {
      const r = predictWithFeatures(this.loaded.members, x, meta.tta, this.tap ?? undefined);
      logit = r.logits[0] / meta.temperature + meta.logitBias;
      if (this.ood && this.parts) {
        oodResult = this.oodVerdict(r.features ?? features(this.parts[this.ood.member], x));
      }
      t2 = performance.now();
      verdict = deriveVerdict({
        ood: oodResult,
        checks,
        width: img.width,
        height: img.height,
        facts: img.facts,
        statedAgeYears: opts.patientAge,
      });
      if ((verdict.status === 'cannot-assess' || oodResult?.outOfDistribution) && policy === 'refuse') {
        throw new InputError(
          'NOT_A_CHEST_XRAY',
          `not accepted as a frontal chest X-ray: ${verdict.reasons.map((r) => r.message).join('; ')}`,
          { reasons: verdict.reasons.map((r) => r.code) },
        );
      }
      // No map for an image the model cannot read: colour over a blank or a photo would look like a finding,
      // and every reader (API, page, PACS, batch) then gets the same answer without filtering it again.
      if (opts.heatmap && this.cams && showsHeatmap(verdict.status)) {
        // The network and Grad-CAM each hold the thread for as long as they run (tens to hundreds of ms on a
        // busy machine): between the two, the server answers what waits (/health, history, other uploads).
        await new Promise<void>((resolve) => setImmediate(resolve));
        heatmapStart = performance.now(); // the heat map's time is its own, not what ran in that turn
        cam = gradCam(this.cams, x, 0);
      }
    } finally {
      x.dispose();
    }
    // Notes change no verdict but qualify the answer: an age in the margin or unknown, a shape no film had.
    const notes = verdictNotes(
      { facts: img.facts, statedAgeYears: opts.patientAge, width: img.width, height: img.height },
      verdict,
    );
    warnings.push(...verdict.reasons.map((r) => r.message), ...notes, ...img.notes);

    const probability = sigmoid(logit);
    const out: Prediction = {
      probability,
      logit,
      // No label for an image the model cannot assess: its model label is no finding (verdict.ts shownLabel).
      label: shownLabel({ verdict, warnings, label: probability >= op.threshold ? 'PNEUMONIA' : 'NORMAL' }),
      operatingPoint: opName,
      threshold: op.threshold,
      verdict,
      // Which age the verdict took, and from where: the reader sees the age the answer was judged at.
      age: answerAge({ facts: img.facts, statedAgeYears: opts.patientAge }),
      warnings,
      ood: oodResult,
      input: {
        kind: img.kind,
        width: img.width,
        height: img.height,
        sha256: sha256Of(bytes),
        bytes: bytes.length,
      },
      timings: { decodeMs: t1 - t0, inferMs: t2 - t1, totalMs: 0 },
    };
    if (opts.heatmap) {
      if (cam && img.display) {
        // As strong as the model's belief: a confident NORMAL shows (almost) no colour.
        out.heatmapPng = await renderOverlay(img.display.gray, img.display.width, img.display.height, cam, {
          strength: probability,
        });
        // Only a heat map made has a time: a "none made" of a few microseconds skewed its latency in /metrics.
        out.timings.heatmapMs = performance.now() - (heatmapStart || t2);
      } else if (showsHeatmap(verdict.status)) {
        // Only here a warning: an image that cannot be assessed gets no heat map, and its headline says why.
        warnings.push(`no heat map: ${this.camProblem ?? 'unavailable for this model'}`);
      }
    }
    if (opts.thumbnail && img.display) {
      const { gray, width, height } = img.display;
      const side = img.kind === 'dicom' ? DICOM_THUMBNAIL_SIDE : THUMBNAIL_SIDE;
      out.thumbnailPng = await sharp(gray, { raw: { width, height, channels: 1 } })
        .resize(side, side, { fit: 'inside', withoutEnlargement: true })
        .toColourspace('b-w') // one channel: libvips would otherwise write RGB
        .png()
        .toBuffer();
    }
    out.timings.totalMs = performance.now() - t0;
    return out;
  }

  /** Content-sniffed decode: in-process by default, or the caller's decoder (the server's worker pool). */
  private decode(bytes: Buffer, wantDisplay: boolean, limits = this.limits): Promise<DecodedInput> {
    const req = { size: this.model.meta.inputSize, limits, wantDisplay };
    return this.decoder ? this.decoder(bytes, req) : decodeInput(bytes, req);
  }
}

function oodMessages(ood: Prediction['ood'], checks: { message: string }[]): string[] {
  const reason = oodReason(ood);
  return [...(reason ? [reason.message] : []), ...checks.map((c) => c.message)];
}
