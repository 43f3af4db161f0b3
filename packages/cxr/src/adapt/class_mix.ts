// Batch-norm adaptation that tells a site's class mix from its acquisition. Relative AdaBN
// (bn_stats.ts) moves each channel by how the site's inputs differ from the reference films'. But a
// site's films differ from the validation films in two ways: how they were taken, and how many show
// pneumonia. The validation split is about three quarters pneumonia; adapting a site with fewer
// pneumonia films to the pooled reference reads the difference as an acquisition change and pushes its
// normal films towards PNEUMONIA (the shipped model adapted on its own validation films resampled to
// half pneumonia lost 16 points of specificity; round 13, docs/site-adaptation.md). So the reference is
// mixed in the site's own proportion (bn_reference.ts mixReference), and that proportion is estimated
// from the films: the share at which adapting and estimating again reads the share back (mix_search.ts),
// because an acquisition change moves the scores the first estimate rests on. Each estimate is the
// confusion-matrix one (prior.ts confusionShare), EM's only where the threshold's validation figures are
// not recorded.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { bnLayers } from '../models/bn_moments';
import { type BnStats, type loadBnReference, mixReference } from '../models/bn_reference';
import { calibrated, predictAllLogits } from '../models/infer';
import type { ModelMeta } from '../models/metadata';
import { adaBn } from './bn_stats';
import { clampShare, settleShare } from './mix_search';
import { confusionShare, estimatePrior } from './prior';
import { pct } from '../eval/format';

/**
 * 'auto': estimated from the films (mix_search.ts); 'first': the estimate before adapting, without the search
 * (for comparison); 'reference': the validation films' mix; a number: the site's share, given.
 */
export type ClassMix = 'auto' | 'first' | 'reference' | number;
export interface ClassMixRecord {
  /** Share of pneumonia among the reference (validation) films. */
  reference: number;
  /** Share the reference was mixed at for the adaptation written. */
  site: number;
  how: 'estimated' | 'first' | 'given' | 'reference';
  /** With 'estimated': the estimate before the first adaptation, then after each one. */
  estimates?: number[];
  /** With 'estimated': the share of each adaptation tried (mix_search.ts), in order. */
  adaptedAt?: number[];
  /** With 'estimated': how the share was settled (mix_search.ts MixSearch.how). */
  search?: 'first' | 'crossing' | 'unsettled';
}

/** The share an adaptation mixed the reference at as the site's own (estimated or given), else undefined. */
export function siteShareOf(record: ClassMixRecord | null | undefined): number | undefined {
  return record && record.how !== 'reference' ? record.site : undefined;
}

export interface SiteFilmsPixels {
  pixels: Uint8Array;
  n: number;
  size: number;
}

type Reference = ReturnType<typeof loadBnReference>;

/** A given share at least this far (absolute) from the films' estimate is flagged. */
export const MIX_MISMATCH = 0.2;

/**
 * Why a share given with --class-mix looks wrong for the films, or null. Flagged when it is at least
 * MIX_MISMATCH from the share the films read as before adapting, and also more than twice that
 * estimate's binomial sampling error over `n` films. Twenty points because smaller gaps are within what
 * the estimate itself moves: an acquisition change alone raised it by twelve points (round 14, a half
 * pneumonia site read as 62%), while a gap of this size does harm: adapting a half-pneumonia site against
 * the validation films' 74% cost 16 points of specificity (round 13, docs/site-adaptation.md). The
 * sampling term keeps a handful of films, whose estimate is that uncertain, from raising it.
 */
export function givenMixWarning(given: number, estimate: number, n: number): string | null {
  const gap = Math.abs(given - estimate);
  const noise = 2 * Math.sqrt((estimate * (1 - estimate)) / Math.max(1, n));
  if (gap < MIX_MISMATCH || gap <= noise) return null;
  const effect =
    given > estimate
      ? "the site's normal films may be pushed towards PNEUMONIA"
      : "the site's pneumonia films may be pushed towards NORMAL";
  return (
    `--class-mix ${given} is far from the ${pct(estimate)} pneumonia the site's ${n} films read as before ` +
    `adapting: ${effect}. Check the share, or leave --class-mix at 'auto' to estimate it`
  );
}

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
  const share = meta.operatingPoints.balanced ? confusionShare(probs, meta.operatingPoints.balanced) : null;
  return clampShare(share ?? estimatePrior(probs, calibratedUnder).prior);
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
    const given = opts.classMix;
    // One pass before adapting: what the films read as, to flag a given share far from it (givenMixWarning).
    const first = await estimateShare(members, films, opts.meta, byClass.pneumonia, opts.batchSize);
    log(`class mix: ${pct(given)} pneumonia (given); the films read as ${pct(first)} before adapting`);
    const warning = givenMixWarning(given, first, films.n);
    if (warning) log(`warning: ${warning}`);
    return {
      bnLayers: await run(mixed(given)),
      classMix: { reference: byClass.pneumonia, site: given, how: 'given', estimates: [first] },
    };
  }
  const saved = snapshot(members);
  try {
    const first = await estimateShare(members, films, opts.meta, byClass.pneumonia, opts.batchSize);
    log(`class mix: ${(100 * first).toFixed(1)}% pneumonia estimated before adapting`);
    if (opts.classMix === 'first') {
      return {
        bnLayers: await run(mixed(first)),
        classMix: { reference: byClass.pneumonia, site: first, how: 'first', estimates: [first] },
      };
    }
    let layers = 0;
    const search = await settleShare(first, async (share) => {
      restore(members, saved);
      layers = await run(mixed(share));
      const next = await estimateShare(members, films, opts.meta, byClass.pneumonia, opts.batchSize);
      log(`class mix: adapted at ${(100 * share).toFixed(1)}% pneumonia, estimated ${(100 * next).toFixed(1)}% after`);
      return next;
    });
    const last = search.points[search.points.length - 1];
    if (search.how === 'unsettled') {
      log(
        'warning: the class-mix estimate did not settle at or below the first estimate (the films read as more ' +
          'pneumonia at every share tried: a difference adaptation does not undo); adapting at the first ' +
          "estimate. If you know the site's share of pneumonia films, give it with --class-mix",
      );
    }
    if (last.at !== search.share) {
      restore(members, saved);
      layers = await run(mixed(search.share));
    }
    log(`class mix: ${(100 * search.share).toFixed(1)}% pneumonia`);
    return {
      bnLayers: layers,
      classMix: {
        reference: byClass.pneumonia,
        site: search.share,
        how: 'estimated',
        estimates: [first, ...search.points.map((p) => p.estimate)],
        adaptedAt: search.points.map((p) => p.at),
        search: search.how,
      },
    };
  } finally {
    for (const layer of saved) for (const ws of layer) tf.dispose(ws);
  }
}
