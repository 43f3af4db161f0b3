// "Process on this computer": the same model, preprocessing and arithmetic as the server
// (preprocess.ts and models/infer.ts are bundled as they are), on TF.js's WebAssembly backend,
// and the same gate: the OOD score (ood.json's parameters, the features from the same forward
// pass), the image checks and the verdict are the server's own modules, bundled.
// Only the model files come from the server; the image stays in the browser.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { isPng16 } from '../../data/png16';
import { normalizeImages, preprocessPixels } from '../../data/preprocess';
import { imageChecks, saturatedFraction } from '../../explain/image_checks';
import { OodModel, oodDecision } from '../../explain/ood_model';
import { type FeatureTap, predictWithFeatures, sigmoid, toInput } from '../../models/infer';
import { type AnswerAge, answerAge, deriveVerdict, type Verdict } from '../../predict/verdict';
import { verdictNotes } from '../../predict/verdict_notes';
import { apiFetch, authHeaders, ModelInfo } from './api';
import { DEFAULT_MAX_PIXELS, overPixelLimit } from '../../data/pixel_limit';
import { SMALLER_COPY } from './dom';

/** The server reads colour from a copy this size (long side); so does the page. */
const COLOUR_SIDE = 64;

export interface LocalResult {
  probability: number;
  logit: number;
  verdict: Verdict;
  /** The age the verdict took, as the server's answer says it: the typed age (a JPEG or PNG carries none). */
  age: AnswerAge | null;
  /** The verdict's reasons as text, as the server's warnings. */
  warnings: string[];
  ood: { score: number; threshold: number; outOfDistribution: boolean } | null;
  width: number;
  height: number;
  ms: number;
}

interface Loaded {
  members: tfl.LayersModel[];
  gate: { ood: OodModel; tap: FeatureTap } | null;
}

let loading: Promise<Loaded> | null = null;
let loadedFor = '';

/**
 * ood.json, validated as the server validates it; the tap is the gate's member with its feature
 * layer as a second output.
 */
async function loadGate(url: string, members: tfl.LayersModel[]): Promise<Loaded['gate']> {
  const res = await apiFetch(url);
  if (!res.ok) throw new Error(`the OOD gate's parameters could not be loaded (${res.status})`);
  const parsed = OodModel.safeParse(await res.json());
  if (!parsed.success)
    throw new Error(`the OOD gate's parameters are invalid: ${parsed.error.issues[0]?.message ?? 'unknown problem'}`);
  const ood = parsed.data;
  const m = members[ood.member];
  if (!m) throw new Error(`the OOD gate refers to member ${ood.member}, the model has ${members.length}`);
  const tap = {
    member: ood.member,
    model: tfl.model({
      inputs: m.inputs,
      outputs: [m.outputs[0], m.getLayer(ood.featureLayer).output as tfl.SymbolicTensor],
    }),
  };
  return { ood, tap };
}

async function members(info: ModelInfo): Promise<Loaded> {
  if (!loading || loadedFor !== info.sha256) {
    loadedFor = info.sha256;
    loading = (async () => {
      // The .wasm files are served next to the page (no CDN); threads need cross-origin
      // isolation, which this page does not have, so the SIMD single-thread build is used.
      setWasmPaths(new URL('wasm/', document.baseURI).href);
      if (!(await tf.setBackend('wasm'))) throw new Error('WebAssembly backend failed to start');
      await tf.ready();
      const members = await Promise.all(
        info.files.members.map((url) =>
          tfl.loadLayersModel(tf.io.http(url, { requestInit: { headers: authHeaders() } })),
        ),
      );
      // Without the gate an answer would go out unchecked: a failure to load it fails the mode.
      return { members, gate: info.files.ood ? await loadGate(info.files.ood, members) : null };
    })();
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}

/** Loads the model now (e.g. when the switch is turned on) so the first image is not slow. */
export function preloadLocalModel(info: ModelInfo): Promise<unknown> {
  return members(info);
}

/**
 * Decodes with the browser (EXIF orientation applied, no colour management: embedded ICC profiles
 * are ignored, as the server and the data set do) to RGBA at full size, plus the fraction of
 * saturated colour in a small copy (the image check for colour photos).
 */
async function decode(
  file: Blob,
): Promise<{ rgba: Uint8ClampedArray; width: number; height: number; colourFraction: number }> {
  // The canvas keeps the high byte of 16-bit samples: a 12-bit film's values (0..4095) would read as levels 0..15
  // and be called blank, where the server reads the film (data/png16.ts). Such a film is not sent anywhere
  // behind the user's back (this mode promises it stays here): the user is told to send it to the server.
  if (isPng16(new Uint8Array(await file.slice(0, 25).arrayBuffer())))
    throw new Error(
      '16-bit PNGs are analyzed on the server only (this browser reads just 8 of their 16 bits, which can make a ' +
        '12- or 14-bit film look blank): turn off "Process on this computer" to analyze it.',
    );
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(file, {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'from-image',
    });
  } catch {
    throw new Error('this browser cannot decode the file (is it a JPEG or PNG image?)');
  }
  try {
    const { width, height } = bmp;
    // The server's bound and words, before a huge canvas is allocated, and what to do.
    if (width * height > DEFAULT_MAX_PIXELS)
      throw new Error(`${overPixelLimit(width, height, DEFAULT_MAX_PIXELS)}. ${SMALLER_COPY}`);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    if (!ctx) throw new Error('no 2D canvas');
    ctx.drawImage(bmp, 0, 0);
    const k = Math.min(1, COLOUR_SIDE / Math.max(width, height));
    const sw = Math.max(1, Math.round(width * k));
    const sh = Math.max(1, Math.round(height * k));
    const small = new OffscreenCanvas(sw, sh).getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    if (!small) throw new Error('no 2D canvas');
    small.imageSmoothingQuality = 'high';
    small.drawImage(bmp, 0, 0, sw, sh);
    const colourFraction = saturatedFraction(new Uint8Array(small.getImageData(0, 0, sw, sh).data.buffer), 4);
    return { rgba: ctx.getImageData(0, 0, width, height).data, width, height, colourFraction };
  } finally {
    bmp.close();
  }
}

/** `patientAge`: years, as typed on the page (the file carries none); under 1 or over 10, outside-population. */
export async function predictLocally(file: Blob, info: ModelInfo, patientAge?: number): Promise<LocalResult> {
  const { members: models, gate } = await members(info);
  const t0 = performance.now();
  const { rgba, width, height, colourFraction } = await decode(file);
  const size = info.inputSize;
  const square = preprocessPixels(rgba, width, height, 4, size);
  // As the server: the checks read the raw square, the network the normalised one.
  const checks = imageChecks({ pixels: square, size, colourFraction });
  const x = toInput(normalizeImages(square.slice(), 1, size, info.normalize), 1, size);
  let logit: number;
  let ood: LocalResult['ood'] = null;
  try {
    const r = predictWithFeatures(models, x, info.tta, gate?.tap);
    logit = r.logits[0];
    if (gate && r.features) {
      const h = r.features.dataSync();
      r.features.dispose();
      ood = oodDecision(gate.ood, h.subarray(0, gate.ood.dim));
    } else if (gate) {
      throw new Error("the OOD gate needs the identity view among the model's test-time views");
    }
  } finally {
    x.dispose();
  }
  const verdict = deriveVerdict({ ood, checks, width, height, facts: {}, statedAgeYears: patientAge });
  return {
    logit,
    probability: sigmoid(logit / info.temperature + info.logitBias),
    verdict,
    age: answerAge({ facts: {}, statedAgeYears: patientAge }),
    // As the server words them (predictor.ts): the verdict's reasons, then its notes (an age in the margin over
    // 5, a shape wider than the films' but not refused).
    warnings: [
      ...verdict.reasons.map((v) => v.message),
      ...verdictNotes({ facts: {}, statedAgeYears: patientAge, width, height }, verdict),
    ],
    ood,
    width,
    height,
    ms: performance.now() - t0,
  };
}
