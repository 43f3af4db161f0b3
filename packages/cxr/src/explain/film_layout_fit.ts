// Fitting the layout check (explain/film_layout.ts) on training films only: their statistics, clean
// and under every mild change of the robustness catalogue (every third film, to keep it quick), a
// Gaussian of the standardised statistics, and a class-balanced high percentile of the films' own
// distances as the threshold. No non-X-ray image is used, so the generated corpus stays a test.
import { loadTrainVal } from '../data/dataset_images';
import { perturbAt } from '../data/perturb_catalog';
import { DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION } from '../data/split';
import { LAYOUT_SIZE, LAYOUT_STAT_NAMES, type LayoutFit, layoutScore, layoutStats } from './film_layout';
import { fitGaussian, percentile } from './ood';
import { MILD_CHANGES, MILD_STRENGTH } from './ood_fit';

export const LAYOUT_PERCENTILE = 99.9;

export interface LayoutFitResult extends LayoutFit {
  fitted: { films: number; statistics: number; perClassThreshold: number[]; percentile: number; changes: string[] };
}

/** The fit from the training split of `dataRoot` (the patient split every shipped model uses). */
export async function fitLayout(
  dataRoot: string,
  opts: { every?: number; seed?: number; cacheDir?: string; log?: (l: string) => void } = {},
): Promise<LayoutFitResult> {
  const log = opts.log ?? (() => {});
  const size = LAYOUT_SIZE;
  const { train } = await loadTrainVal(dataRoot, {
    valFraction: DEFAULT_VAL_FRACTION,
    seed: DEFAULT_SPLIT_SEED,
    limitPerClass: 0,
    size,
    cacheDir: opts.cacheDir,
    warn: log,
  });
  const every = opts.every ?? 3;
  const per = size * size;
  const stats: number[][] = [];
  const labels: number[] = [];
  const add = (px: Uint8Array, label: number) => {
    const s = layoutStats(px, size);
    stats.push(LAYOUT_STAT_NAMES.map((k) => s[k]));
    labels.push(label);
  };
  const n = train.labels.length;
  log(`layout fit: ${n} training films, every ${every}th also under ${MILD_CHANGES.length} mild changes`);
  for (let i = 0; i < n; i++) {
    const img = { pixels: train.pixels.subarray(i * per, (i + 1) * per), size };
    add(img.pixels, train.labels[i]);
    if (i % every !== 0) continue;
    for (const c of MILD_CHANGES) {
      add((await perturbAt(c, img, MILD_STRENGTH, opts.seed ?? 7, train.files[i] ?? i)).pixels, train.labels[i]);
    }
  }
  const d = LAYOUT_STAT_NAMES.length;
  const m = stats.length;
  const mean = LAYOUT_STAT_NAMES.map((_, j) => stats.reduce((a, r) => a + r[j], 0) / m);
  const scale = LAYOUT_STAT_NAMES.map((_, j) => Math.sqrt(stats.reduce((a, r) => a + (r[j] - mean[j]) ** 2, 0) / m));
  const z = new Float64Array(m * d);
  stats.forEach((r, i) => r.forEach((v, j) => (z[i * d + j] = (v - mean[j]) / scale[j])));
  const gauss = fitGaussian(z, m, d);
  const fit: LayoutFit = {
    names: [...LAYOUT_STAT_NAMES],
    size,
    mean,
    scale,
    precision: Array.from(gauss.precision),
    threshold: Infinity,
  };
  const scores = stats.map((r) =>
    layoutScore(Object.fromEntries(LAYOUT_STAT_NAMES.map((k, j) => [k, r[j]])) as never, fit),
  );
  const perClass = [...new Set(labels)].sort().map((c) =>
    percentile(
      scores.filter((_, i) => labels[i] === c),
      LAYOUT_PERCENTILE,
    ),
  );
  return {
    ...fit,
    threshold: Math.max(...perClass),
    fitted: {
      films: n,
      statistics: m,
      perClassThreshold: perClass,
      percentile: LAYOUT_PERCENTILE,
      changes: [...MILD_CHANGES],
    },
  };
}

/** The fit as the TypeScript module film_layout_fitted.ts (the page bundles it; no JSON loading at run time). */
export function renderLayoutModule(r: LayoutFitResult, dataRoot: string): string {
  const num = (xs: readonly number[]) => `[${xs.map((x) => Number(x.toPrecision(8))).join(', ')}]`;
  return [
    '// Written by `cxr ood fit-layout` (explain/film_layout_fit.ts); do not edit by hand. Fitted on the',
    `// training split of ${dataRoot} only: ${r.fitted.films} films, ${r.fitted.statistics} statistics`,
    `// (clean and mildly changed); threshold: the larger per-class p${r.fitted.percentile} of the films' distances.`,
    '// No import: film_layout.ts imports this module and types it as a LayoutFit.',
    'export const FILM_LAYOUT_FIT = {',
    `  names: ${JSON.stringify(r.names)},`,
    `  size: ${r.size},`,
    `  mean: ${num(r.mean)},`,
    `  scale: ${num(r.scale)},`,
    `  precision: ${num(r.precision)},`,
    `  threshold: ${Number(r.threshold.toPrecision(8))},`,
    '};',
    '',
  ].join('\n');
}
