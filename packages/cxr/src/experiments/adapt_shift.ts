// `cxr experiments adapt`: what site adaptation does to a model on its own validation films, clean
// and under synthetic acquisition changes (the shift benchmark's catalog): the model as it is,
// after plain AdaBN, and after relative AdaBN (against the model's bn-reference.json), each
// adapted on the very films it is then scored on, without their labels. The changed films are
// the reference films under a known change, so this measures how well adaptation undoes the
// change, not the sampling noise of a real site's smaller, different set of films. With `shares`,
// the same is done on the validation films resampled to other shares of pneumonia (a site's class
// mix), where relative AdaBN against the pooled reference ('relative-pooled', the behaviour before
// the reference kept the classes apart) is scored beside the class-aware default ('relative').
// Each site also says how many of its films the source model's gate and image checks flag, as `cxr
// adapt` screens them: a site where most are flagged is one `cxr adapt` refuses (adapt.ts).
import sharp from 'sharp';
import { trainingPrior } from '../adapt/adapt';
import { adaptMembers, type ClassMix, siteShareOf } from '../adapt/class_mix';
import { shiftThreshold, sitePrior } from '../adapt/prior';
import { loadRecordedSplit } from '../data/dataset_images';
import { type ImageSet, subset } from '../data/images';
import { perturbImages } from '../data/perturb_catalog';
import { normalizeImages } from '../data/preprocess';
import { confusionAt, expectedCalibrationError, rocAuc } from '../eval/metrics';
import { loadBnReference } from '../models/bn_reference';
import { calibrated, predictAllLogits } from '../models/infer';
import { type LoadedModel, loadModel, memberDirs } from '../models/io';
import { Predictor } from '../predict/predictor';
import { pct } from '../eval/format';

export const DEFAULT_ADAPT_CHANGES = ['none', 'gamma-up@1', 'contrast-down@1', 'exposure-down@1', 'blur@1'];
export const ADAPT_METHODS = [
  'none',
  'plain',
  'relative-pooled',
  'relative-first',
  'relative',
  'relative-prior',
] as const;
export type AdaptMethod = (typeof ADAPT_METHODS)[number];
/**
 * Rows by default: relative-first (the estimate before adapting, no search) and relative-prior (the default
 * adaptation, then `cxr adapt --prior`'s thresholds moved to the site's estimated prior) only on request.
 */
const DEFAULT_METHODS: AdaptMethod[] = ['none', 'plain', 'relative-pooled', 'relative'];
/** The class mix each relative kind adapts at ('relative' takes the table's, by default 'auto'). */
const CLASS_MIX_OF: Partial<Record<AdaptMethod, ClassMix>> = {
  'relative-pooled': 'reference',
  'relative-first': 'first',
};

export interface AdaptShiftRow {
  /** Share of pneumonia among the films scored (the validation split's own, or a resampled site's). */
  pneumonia: number;
  change: string;
  strength: number;
  /** 'none': the model as it is; the others: adapted on these films first. */
  adaptation: AdaptMethod;
  /** Films scored (and adapted on). */
  films: number;
  /** Share of pneumonia the reference was mixed at (relative kinds), else null. */
  mixedAt: number | null;
  /** The balanced threshold the row is scored at: the model's, or for relative-prior moved to the site's prior. */
  threshold: number;
  /** relative-prior: the site's share of pneumonia the thresholds are moved to (`cxr adapt --prior`), else null. */
  prior: number | null;
  /** Films of the site (as changed) the source model's gate or image checks flag, as `cxr adapt` screens them. */
  flagged: number;
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
  row: Pick<AdaptShiftRow, 'change' | 'strength' | 'adaptation' | 'mixedAt' | 'flagged'>,
  /** relative-prior: the calibration's prior and the share the adaptation settled on (if any). */
  prior: { train: number; classMix?: number } | null,
): Promise<AdaptShiftRow> {
  const { meta } = loaded;
  const n = set.labels.length;
  const logits = await predictAllLogits(loaded.members, pixels, n, set.size, { tta: meta.tta });
  const probs = calibrated(logits, meta.temperature, meta.logitBias);
  const labels = Array.from(set.labels);
  // As `cxr adapt --prior` writes them: the probabilities unchanged, the thresholds moved to the site's prior,
  // which is the share the adaptation settled on when it has one.
  const site =
    prior && sitePrior(probs, prior.train, { classMix: prior.classMix, balanced: meta.operatingPoints.balanced });
  const threshold = shiftThreshold(meta.operatingPoints.balanced.threshold, site?.shift ?? 0);
  const c = confusionAt(labels, probs, threshold);
  const normal = probs.filter((_, i) => labels[i] === 0);
  return {
    pneumonia: labels.reduce((a, b) => a + b, 0) / n,
    films: n,
    ...row,
    threshold,
    prior: site?.prior ?? null,
    auc: rocAuc(labels, probs),
    sensitivity: c.tp / (c.tp + c.fn),
    specificity: c.tn / (c.tn + c.fp),
    ece: expectedCalibrationError(labels, probs),
    meanNormal: normal.reduce((a, b) => a + b, 0) / normal.length,
  };
}

/**
 * How many of the n films (size × size gray, as the benchmark changed them) the predictor's gate or image
 * checks flag: each as the bytes of a PNG file of that size through Predictor.screen, as `cxr adapt` reads a
 * site's files.
 */
async function flaggedFilms(predictor: Predictor, pixels: Uint8Array, n: number, size: number): Promise<number> {
  const per = size * size;
  let flagged = 0;
  for (let i = 0; i < n; i++) {
    const png = await sharp(Buffer.from(pixels.subarray(i * per, (i + 1) * per)), {
      raw: { width: size, height: size, channels: 1 },
    })
      .png()
      .toBuffer();
    if ((await predictor.screen(png)).problems.length) flagged++;
  }
  return flagged;
}

/**
 * The validation films resampled to a share of pneumonia, deterministically: with `films`, that many films
 * (each class's spread evenly over its films); otherwise every film of the scarcer class, and films of the
 * other spread evenly over it.
 */
export function resampleToShare(set: ImageSet, share: number, films?: number): ImageSet {
  if (!(share > 0 && share < 1)) throw new Error(`a share of pneumonia is in (0, 1), got ${share}`);
  const idx = [0, 1].map((c) => Array.from(set.labels, (l, i) => (l === c ? i : -1)).filter((i) => i >= 0));
  const [normal, pneumonia] = idx;
  // Without `films`: every NORMAL film if the pneumonia films that go with them suffice, else every pneumonia film.
  const wantP = Math.round((normal.length * share) / (1 - share));
  const [keepN, keepP] =
    films !== undefined
      ? [films - Math.round(films * share), Math.round(films * share)]
      : wantP <= pneumonia.length
        ? [normal.length, wantP]
        : [Math.round((pneumonia.length * (1 - share)) / share), pneumonia.length];
  if (films !== undefined && (keepP > pneumonia.length || keepN > normal.length || keepP < 1 || keepN < 1))
    throw new Error(
      `${films} films at ${share} pneumonia need ${keepN} NORMAL and ${keepP} PNEUMONIA films; ` +
        `the validation split has ${normal.length} and ${pneumonia.length}`,
    );
  const spread = (xs: number[], k: number) => Array.from({ length: k }, (_, j) => xs[Math.floor((j * xs.length) / k)]);
  return subset(
    set,
    [...spread(normal, keepN), ...spread(pneumonia, keepP)].sort((a, b) => a - b),
  );
}

/**
 * Rows for every site × change × {as is, plain AdaBN, relative AdaBN against the pooled reference,
 * relative AdaBN against the reference mixed at the estimated share} on the model's validation films;
 * the sites are the validation split itself and, for each of `shares`, the split resampled to it.
 */
export async function adaptShiftTable(
  modelDir: string,
  dataRoot: string,
  opts: {
    changes?: string[];
    cacheDir?: string;
    log?: (line: string) => void;
    /** The class mix relative adaptation assumes (default 'auto', as `cxr adapt`). */
    classMix?: ClassMix;
    /** Also sites resampled to these shares of pneumonia. */
    shares?: number[];
    /** Sites of this many films (each site resampled; the validation mix kept for the split itself). */
    films?: number;
    /** Kinds of adaptation to score (default: all but relative-first and relative-prior). */
    methods?: AdaptMethod[];
  } = {},
): Promise<AdaptShiftRow[]> {
  const log = opts.log ?? (() => {});
  const changes = (opts.changes ?? DEFAULT_ADAPT_CHANGES).map(parseChange);
  const source = await loadModel(modelDir);
  const dirs = memberDirs(modelDir, source.meta);
  const reference = loadBnReference(modelDir, dirs);
  if (!reference.members) throw new Error(`${reference.problem}: run 'cxr adapt-reference' first`);
  // Raw films: a change acts on the film as it arrives and the model's own normalisation comes after it, as in the
  // robustness benchmark and the Predictor (changed after an 'equalize' or 'fov' normalisation, the films were
  // ones no pipeline gives the model, and screened normalised twice).
  const { val: all } = await loadRecordedSplit(dataRoot, source.meta, {
    cacheDir: opts.cacheDir,
    warn: log,
    raw: true,
  });
  const own = all.labels.reduce((a, b) => a + b, 0) / all.labels.length;
  const sites = [
    opts.films === undefined ? all : resampleToShare(all, own, opts.films),
    ...(opts.shares ?? []).map((s) => resampleToShare(all, s, opts.films)),
  ];
  // Against the pooled reference (or the first estimate) is the class-aware one when the reference does not
  // keep the classes apart.
  const methods = (opts.methods ?? DEFAULT_METHODS).filter(
    (m) => reference.byClass || (m !== 'relative-pooled' && m !== 'relative-first'),
  );
  // The source model's gate and image checks, to count the films `cxr adapt` would leave out.
  const trainPrior = methods.includes('relative-prior') ? trainingPrior(source.meta).prior : null;
  const predictor = await Predictor.load(modelDir, { warmUp: false });
  const rows: AdaptShiftRow[] = [];
  try {
    for (const { val, name, strength } of sites.flatMap((val) => changes.map((c) => ({ val, ...c })))) {
      const n = val.labels.length;
      const changed =
        name === 'none' ? val.pixels : await perturbImages(name, val.pixels, val.files, val.size, strength, 1);
      const flagged = await flaggedFilms(predictor, changed, n, val.size);
      const pixels = normalizeImages(changed.slice(), n, val.size, source.meta.preprocessing.normalize);
      // relative-prior scores the default adaptation's own model at moved thresholds: one adaptation for both rows.
      const kinds = methods.filter((m) => m !== 'relative-prior' || !methods.includes('relative'));
      for (const adaptation of kinds) {
        const loaded = adaptation === 'none' ? source : await loadModel(modelDir);
        try {
          // As `cxr adapt` does: relative by default with the site's class mix estimated from the films.
          let mixedAt: number | null = null;
          let siteShare: number | undefined;
          if (adaptation !== 'none') {
            const adapted = await adaptMembers(
              loaded.members,
              { pixels, n, size: val.size },
              {
                reference: adaptation === 'plain' ? null : reference,
                classMix: CLASS_MIX_OF[adaptation] ?? opts.classMix ?? 'auto',
                meta: source.meta,
                log: (l) => log(`  ${l}`),
              },
            );
            mixedAt = adapted.classMix?.site ?? null;
            siteShare = siteShareOf(adapted.classMix);
          }
          const scored =
            adaptation === 'relative' && methods.includes('relative-prior')
              ? [adaptation, 'relative-prior' as const]
              : [adaptation];
          for (const kind of scored) {
            const row = await score(
              loaded,
              val,
              pixels,
              { change: name, strength, adaptation: kind, mixedAt, flagged },
              kind === 'relative-prior' && trainPrior !== null ? { train: trainPrior, classMix: siteShare } : null,
            );
            log(
              `${(100 * row.pneumonia).toFixed(1)}% pneumonia (${n} films, ${flagged} flagged), ${name}@${strength} ` +
                `${kind}${mixedAt === null ? '' : ` at ${(100 * mixedAt).toFixed(1)}%`}` +
                `${row.prior === null ? '' : `, prior ${(100 * row.prior).toFixed(1)}%`}: ` +
                `AUC ${row.auc?.toFixed(4)}, sensitivity ${(100 * row.sensitivity).toFixed(1)}%, ` +
                `specificity ${(100 * row.specificity).toFixed(1)}%, ECE ${row.ece.toFixed(3)}`,
            );
            rows.push(row);
          }
        } finally {
          if (loaded !== source) for (const m of loaded.members) m.dispose();
        }
      }
    }
  } finally {
    for (const m of source.members) m.dispose();
    predictor.dispose();
  }
  return rows;
}

/** The rows as a Markdown table. */
export function adaptShiftMarkdown(rows: readonly AdaptShiftRow[]): string {
  return [
    '| pneumonia | films | change | flagged | adaptation | mixed at | prior | threshold | AUC | sensitivity | ' +
      'specificity | ECE | mean p(NORMAL films) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${pct(r.pneumonia)} | ${r.films} | ${r.change === 'none' ? 'none' : `${r.change} ${r.strength}`} | ` +
        `${r.flagged} | ${r.adaptation} | ${r.mixedAt === null ? '' : pct(r.mixedAt)} | ` +
        `${r.prior === null ? '' : pct(r.prior)} | ${r.threshold.toFixed(3)} | ` +
        `${r.auc?.toFixed(4) ?? 'n/a'} | ${pct(r.sensitivity)} | ${pct(r.specificity)} | ${r.ece.toFixed(3)} | ` +
        `${r.meanNormal.toFixed(3)} |`,
    ),
  ].join('\n');
}
