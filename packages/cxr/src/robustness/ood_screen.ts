// Batch screening of model-input squares by the same gate and checks a prediction goes through
// (predict/predictor.ts): image checks on the raw square, the OOD gate on the features of the
// normalised square, then predict/verdict.ts. Anything but 'assessed' is a refusal: the label
// would not be shown as a finding. Used by `cxr ood evaluate` to count false alarms and refusals.
import { normalizeImages, type NormalizeMode } from '../data/preprocess';
import { imageChecks, type ImageFacts } from '../explain/image_checks';
import type { ModelParts } from '../explain/model_parts';
import { oodDecision, type OodModel } from '../explain/ood_model';
import { squareFeatures } from '../explain/ood_fit';
import { deriveVerdict } from '../predict/verdict';

export interface ScreenContext {
  /** The gate's member, split for its features; null with no gate (the image checks alone). */
  parts: ModelParts | null;
  gate: OodModel | null;
  size: number;
  normalize?: NormalizeMode;
}

/** Per-image facts of the original file, where known (colour, size as decoded). */
export interface SquareOrigin {
  colourFraction?: number;
  width?: number;
  height?: number;
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
