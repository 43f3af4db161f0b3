// `cxr experiments adapt`: what site adaptation does to a model on its own validation films, clean
// and under synthetic acquisition changes (the shift benchmark's catalog): the model as it is,
// after plain AdaBN, and after relative AdaBN (against the model's bn-reference.json), each
// adapted on the very films it is then scored on, without their labels. The changed films are
// the reference films under a known change, so this measures how well adaptation undoes the
// change, not the sampling noise of a real site's smaller, different set of films.
import type * as tfl from '@tensorflow/tfjs-layers';
import { adaBn } from '../adapt/bn_stats';
import { loadRecordedSplit } from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { perturbImages } from '../data/perturb_catalog';
import { confusionAt, expectedCalibrationError, rocAuc } from '../eval/metrics';
import { loadBnReference } from '../models/bn_reference';
import { calibrated, predictAllLogits } from '../models/infer';
import { type LoadedModel, loadModel, memberDirs } from '../models/io';

export const DEFAULT_ADAPT_CHANGES = ['none', 'gamma-up@1', 'contrast-down@1', 'exposure-down@1', 'blur@1'];
const METHODS = ['none', 'plain', 'relative'] as const;

export interface AdaptShiftRow {
  change: string;
  strength: number;
  /** 'none': the model as it is; 'plain' / 'relative': adapted on these films first. */
  adaptation: (typeof METHODS)[number];
  auc: number | null;
  sensitivity: number;
  specificity: number;
  ece: number;
  /** Mean probability of the NORMAL films. */
  meanNormal: number;
}

function parseChange(spec: string): { name: string; strength: number } {
  if (spec === 'none') return { name: 'none', strength: 0 };
  const m = /^([a-z-]+)@([0-9.]+)$/.exec(spec);
  const strength = m ? Number(m[2]) : Number.NaN;
  if (!m || !(strength >= 0 && strength <= 1))
    throw new Error(`change '${spec}': expected NAME@STRENGTH with a strength in [0, 1], or 'none'`);
  return { name: m[1], strength };
}

async function score(
  loaded: LoadedModel,
  set: ImageSet,
  pixels: Uint8Array,
  row: Omit<AdaptShiftRow, 'auc' | 'sensitivity' | 'specificity' | 'ece' | 'meanNormal'>,
): Promise<AdaptShiftRow> {
  const { meta } = loaded;
  const n = set.labels.length;
  const logits = await predictAllLogits(loaded.members, pixels, n, set.size, { tta: meta.tta });
  const probs = calibrated(logits, meta.temperature, meta.logitBias);
  const labels = Array.from(set.labels);
  const c = confusionAt(labels, probs, meta.operatingPoints.balanced.threshold);
  const normal = probs.filter((_, i) => labels[i] === 0);
  return {
    ...row,
    auc: rocAuc(labels, probs),
    sensitivity: c.tp / (c.tp + c.fn),
    specificity: c.tn / (c.tn + c.fp),
    ece: expectedCalibrationError(labels, probs),
    meanNormal: normal.reduce((a, b) => a + b, 0) / normal.length,
  };
}

/** Rows for every change × {as is, plain AdaBN, relative AdaBN} on the model's validation films. */
export async function adaptShiftTable(
  modelDir: string,
  dataRoot: string,
  opts: { changes?: string[]; cacheDir?: string; log?: (line: string) => void } = {},
): Promise<AdaptShiftRow[]> {
  const log = opts.log ?? (() => {});
  const changes = (opts.changes ?? DEFAULT_ADAPT_CHANGES).map(parseChange);
  const source = await loadModel(modelDir);
  const dirs = memberDirs(modelDir, source.meta);
  const reference = loadBnReference(modelDir, dirs);
  if (!reference.members) throw new Error(`${reference.problem}: run 'cxr adapt-reference' first`);
  const { val } = await loadRecordedSplit(dataRoot, source.meta, { cacheDir: opts.cacheDir, warn: log });
  const n = val.labels.length;
  const rows: AdaptShiftRow[] = [];
  try {
    for (const { name, strength } of changes) {
      const pixels =
        name === 'none' ? val.pixels : await perturbImages(name, val.pixels, val.files, val.size, strength, 1);
      for (const adaptation of METHODS) {
        const loaded = adaptation === 'none' ? source : await loadModel(modelDir);
        try {
          for (const [k, m] of adaptation === 'none' ? [] : loaded.members.entries()) {
            const ref = adaptation === 'relative' ? reference.members[k] : undefined;
            await adaBn(m as tfl.LayersModel, pixels, n, val.size, { reference: ref });
          }
          const row = await score(loaded, val, pixels, { change: name, strength, adaptation });
          log(
            `${name}@${strength} ${adaptation}: AUC ${row.auc?.toFixed(4)}, sensitivity ` +
              `${(100 * row.sensitivity).toFixed(1)}%, specificity ${(100 * row.specificity).toFixed(1)}%, ` +
              `ECE ${row.ece.toFixed(3)}`,
          );
          rows.push(row);
        } finally {
          if (loaded !== source) for (const m of loaded.members) m.dispose();
        }
      }
    }
  } finally {
    for (const m of source.members) m.dispose();
  }
  return rows;
}

/** The rows as a Markdown table. */
export function adaptShiftMarkdown(rows: readonly AdaptShiftRow[]): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return [
    '| change | adaptation | AUC | sensitivity | specificity | ECE | mean p(NORMAL films) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.change === 'none' ? 'none' : `${r.change} ${r.strength}`} | ${r.adaptation} | ` +
        `${r.auc?.toFixed(4) ?? 'n/a'} | ${pct(r.sensitivity)} | ${pct(r.specificity)} | ${r.ece.toFixed(3)} | ` +
        `${r.meanNormal.toFixed(3)} |`,
    ),
  ].join('\n');
}
