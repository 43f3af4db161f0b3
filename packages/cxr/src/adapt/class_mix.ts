// Batch-norm adaptation that tells a site's class mix from its acquisition. Relative AdaBN
// (bn_stats.ts) moves each channel by how the site's inputs differ from the reference films'. But a
// site's films differ from the validation films in two ways: how they were taken, and how many show
// pneumonia. The validation split is about three quarters pneumonia; adapting a site with fewer
// pneumonia films to the pooled reference reads the difference as an acquisition change and pushes its
// normal films towards PNEUMONIA (the shipped model adapted on its own validation films resampled to
// half pneumonia lost 16 points of specificity; round 13, docs/site-adaptation.md). So the reference is
// mixed in the site's own proportion (bn_reference.ts mixReference), and that proportion is estimated
// from the films, again after each adaptation, because an acquisition change moves the scores the first
// estimate rests on. The estimate is the confusion-matrix one (Lipton et al. 2018, "black box shift
// estimation"): the share of films called PNEUMONIA at the balanced threshold, corrected by the
// sensitivity and specificity measured there on validation. Under a change of class mix alone it is
// unbiased; EM on the calibrated scores (prior.ts) leans on calibration, which is weakest in the middle
// of the scale, and read the shipped model's sites 3 to 4 points short of their share.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { bnLayers } from '../models/bn_moments';
import { type BnStats, type loadBnReference, mixReference } from '../models/bn_reference';
import { calibrated, predictAllLogits } from '../models/infer';
import type { ModelMeta } from '../models/metadata';
import { adaBn } from './bn_stats';
import { estimatePrior } from './prior';

/** Shares are kept inside these bounds: a site of one class only is not adapted to as if it were. */
const SHARE_FLOOR = 0.01;
const clampShare = (x: number) => Math.min(1 - SHARE_FLOOR, Math.max(SHARE_FLOOR, x));

/** 'auto': estimated from the films; 'reference': the validation films' mix; a number: the site's share, given. */
export type ClassMix = 'auto' | 'reference' | number;
/**
 * Adaptations at most with 'auto' (the estimate usually settles after the second). The estimate is taken
 * again only while it settles: when a round moves it at least as far as the round before, the adaptation
 * at the previous share is kept.
 */
export const MAX_MIX_ROUNDS = 3;
/** The estimate has settled when it moves less than this between two adaptations. */
export const MIX_TOLERANCE = 0.01;

export interface ClassMixRecord {
  /** Share of pneumonia among the reference (validation) films. */
  reference: number;
  /** Share the reference was mixed at for the adaptation written. */
  site: number;
  how: 'estimated' | 'given' | 'reference';
  /** With 'estimated': the estimate before the first adaptation and after each one. */
  estimates?: number[];
}

export interface SiteFilmsPixels {
  pixels: Uint8Array;
  n: number;
  size: number;
}

type Reference = ReturnType<typeof loadBnReference>;

/** The members' batch-norm weights (moving statistics included), to start each round from the source. */
function snapshot(members: readonly tfl.LayersModel[]): tf.Tensor[][][] {
  return members.map((m) => bnLayers(m).map((l) => l.getWeights().map((w) => w.clone())));
}

function restore(members: readonly tfl.LayersModel[], saved: tf.Tensor[][][]): void {
  members.forEach((m, k) => bnLayers(m).forEach((l, i) => l.setWeights(saved[k][i])));
}

type ScoreMeta = Pick<ModelMeta, 'tta' | 'temperature' | 'logitBias' | 'operatingPoints'>;

/**
 * The films' share of pneumonia under the members as they are now: from the share called PNEUMONIA at the
 * balanced threshold and that threshold's validation sensitivity and specificity; by EM on the calibrated
 * scores where those are not recorded.
 */
async function estimateShare(
  members: readonly tfl.LayersModel[],
  films: SiteFilmsPixels,
  meta: ScoreMeta,
  calibratedUnder: number,
  batchSize?: number,
): Promise<number> {
  const logits = await predictAllLogits([...members], films.pixels, films.n, films.size, { tta: meta.tta, batchSize });
  const probs = calibrated(logits, meta.temperature, meta.logitBias);
  const op = meta.operatingPoints.balanced;
  if (op && typeof op.sensitivity === 'number' && typeof op.specificity === 'number') {
    const called = probs.reduce((s, p) => s + (p >= op.threshold ? 1 : 0), 0) / probs.length;
    const falseAlarm = 1 - op.specificity;
    if (op.sensitivity - falseAlarm > 0.5) return clampShare((called - falseAlarm) / (op.sensitivity - falseAlarm));
  }
  return clampShare(estimatePrior(Array.from(probs), calibratedUnder).prior);
}

/**
 * Adapts every member's batch-norm statistics to the films: plain AdaBN without a reference, relative
 * AdaBN against the pooled reference when it has no class split (format 1) or `classMix` is
 * 'reference', and otherwise against the reference mixed at the site's share of pneumonia. Returns the
 * layers re-estimated and, for a mixed reference, how the share was found.
 */
export async function adaptMembers(
  members: readonly tfl.LayersModel[],
  films: SiteFilmsPixels,
  opts: {
    reference: Reference | null;
    classMix: ClassMix;
    meta: ScoreMeta;
    batchSize?: number;
    log?: (line: string) => void;
  },
): Promise<{ bnLayers: number; classMix: ClassMixRecord | null }> {
  const log = opts.log ?? (() => {});
  const pooled = opts.reference?.members ?? null;
  const byClass = opts.reference?.members ? opts.reference.byClass : null;
  const run = async (refs: ReadonlyArray<Map<string, BnStats> | undefined>) => {
    let layers = 0;
    for (const [k, m] of members.entries()) {
      layers += (await adaBn(m, films.pixels, films.n, films.size, { batchSize: opts.batchSize, reference: refs[k] }))
        .length;
    }
    return layers;
  };
  if (!byClass || opts.classMix === 'reference') {
    if (pooled && !byClass && opts.classMix !== 'reference') {
      log(
        "note: the reference statistics do not keep the classes apart (an older bn-reference.json), so the site's " +
          "class mix is taken to be the validation films'; 'cxr adapt-reference' rewrites them",
      );
    }
    const layers = await run(members.map((_, k) => pooled?.[k]));
    const classMix: ClassMixRecord | null =
      byClass && pooled ? { reference: byClass.pneumonia, site: byClass.pneumonia, how: 'reference' } : null;
    return { bnLayers: layers, classMix };
  }
  const mixed = (share: number) => byClass.members.map((b) => mixReference(b, share));
  if (typeof opts.classMix === 'number') {
    log(`class mix: ${(100 * opts.classMix).toFixed(1)}% pneumonia (given)`);
    return {
      bnLayers: await run(mixed(opts.classMix)),
      classMix: { reference: byClass.pneumonia, site: opts.classMix, how: 'given' },
    };
  }
  const saved = snapshot(members);
  try {
    let share = await estimateShare(members, films, opts.meta, byClass.pneumonia, opts.batchSize);
    const estimates = [share];
    let layers = 0;
    let lastStep = Number.POSITIVE_INFINITY;
    for (let round = 1; round <= MAX_MIX_ROUNDS; round++) {
      if (round > 1) restore(members, saved);
      layers = await run(mixed(share));
      const next = await estimateShare(members, films, opts.meta, byClass.pneumonia, opts.batchSize);
      estimates.push(next);
      const step = Math.abs(next - share);
      log(
        `class mix, round ${round}: adapted at ${(100 * share).toFixed(1)}% pneumonia, ` +
          `estimated ${(100 * next).toFixed(1)}% after`,
      );
      if (step < MIX_TOLERANCE || round === MAX_MIX_ROUNDS) break;
      if (step >= lastStep) {
        // The estimate runs away instead of settling (few films, or classes whose statistics lie far apart:
        // a share set too high makes the films look more like pneumonia, which raises the next estimate).
        // Keep the adaptation at the share before this round's.
        share = estimates[estimates.length - 3];
        log(`class mix: the estimate does not settle; adapting at ${(100 * share).toFixed(1)}% again`);
        restore(members, saved);
        layers = await run(mixed(share));
        break;
      }
      lastStep = step;
      share = next;
    }
    return { bnLayers: layers, classMix: { reference: byClass.pneumonia, site: share, how: 'estimated', estimates } };
  } finally {
    for (const layer of saved) for (const ws of layer) tf.dispose(ws);
  }
}
