// Batch screening of model-input squares by the same gate and checks a prediction goes through
// (predict/predictor.ts): image checks on the raw square, the OOD gate on the features of the
// normalised square, then predict/verdict.ts with the original file's size and colour (fileOrigins).
// Anything but 'assessed' is a refusal: the label would not be shown as a finding. Used by
// `cxr ood evaluate` to count false alarms and refusals.
import sharp from 'sharp';
import { DEFAULT_LIMITS, readImageFile } from '../data/decode';
import { forEachConcurrent } from '../data/pool';
import { normalizeImages, type NormalizeMode } from '../data/preprocess';
import { imageChecks, type ImageFacts } from '../explain/image_checks';
import type { ModelParts } from '../explain/model_parts';
import { oodDecision, type OodModel } from '../explain/ood_model';
import { squareFeatures } from '../explain/ood_fit';
import { decodeInput } from '../predict/decode_input';
import { deriveVerdict } from '../predict/verdict';

export interface ScreenContext {
  /** The gate's member, split for its features; null with no gate (the image checks alone). */
  parts: ModelParts | null;
  gate: OodModel | null;
  size: number;
  normalize?: NormalizeMode;
}

/**
 * Per-image facts of the original file, where known (colour, size as decoded). A prediction checks the
 * size of the file as decoded (TOO_SMALL under 64 px), not of the model's square: a square with no
 * origin is checked at the model's input size, which a model trained under 64 px always fails.
 */
export interface SquareOrigin {
  colourFraction?: number;
  width?: number;
  height?: number;
}

/**
 * What a prediction on each film file knows beyond its model-size square (predict/decode_input.ts): its
 * size as decoded (EXIF orientation applied), read from the header alone, and for a file with colour
 * channels the fraction of saturated colour, computed by decodeInput itself.
 */
export async function fileOrigins(files: readonly string[], size: number): Promise<SquareOrigin[]> {
  const out = new Array<SquareOrigin>(files.length);
  await forEachConcurrent(files, 8, async (file, i) => {
    let meta: sharp.Metadata;
    try {
      meta = await sharp(file, { limitInputPixels: false, ignoreIcc: true }).metadata();
    } catch (e) {
      throw new Error(`${file}: cannot read the image header (${(e as Error).message})`);
    }
    if ((meta.channels ?? 1) >= 3) {
      const d = await decodeInput(await readImageFile(file), { size, limits: DEFAULT_LIMITS, wantDisplay: false });
      out[i] = { colourFraction: d.facts.colourFraction, width: d.width, height: d.height };
    } else {
      out[i] = { width: meta.autoOrient?.width ?? meta.width, height: meta.autoOrient?.height ?? meta.height };
    }
  });
  return out;
}

export interface ScreenOutcome {
  score: number | null;
  refused: boolean;
  /** Verdict reason codes (OOD, BLANK, INVERTED, COLOUR...); empty when assessed. */
  reasons: string[];
}

/** Screens n raw (not yet normalised) squares back to back. */
export async function screenSquares(
  ctx: ScreenContext,
  raw: Uint8Array,
  n: number,
  origins: readonly SquareOrigin[] = [],
): Promise<ScreenOutcome[]> {
  const { size, gate, parts } = ctx;
  const per = size * size;
  let feats: Float32Array | null = null;
  if (gate && parts) {
    feats = await squareFeatures(parts, normalizeImages(raw.slice(0, n * per), n, size, ctx.normalize), n, size);
  }
  const d = parts?.featureDim ?? 0;
  const out: ScreenOutcome[] = [];
  for (let i = 0; i < n; i++) {
    const o = origins[i] ?? {};
    const facts: ImageFacts = { pixels: raw.subarray(i * per, (i + 1) * per), size, colourFraction: o.colourFraction };
    const ood = gate && feats ? oodDecision(gate, feats.subarray(i * d, (i + 1) * d)) : null;
    const verdict = deriveVerdict({
      ood,
      checks: imageChecks(facts),
      width: o.width ?? size,
      height: o.height ?? size,
      facts: {},
    });
    out.push({
      score: ood?.score ?? null,
      refused: verdict.status !== 'assessed',
      reasons: verdict.reasons.map((r) => r.code),
    });
  }
  return out;
}
