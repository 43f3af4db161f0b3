// `cxr robustness`: one model scored on the same images clean and under every nuisance change of
// data/perturb_catalog.ts at graded strengths. Images are decoded once; each change perturbs the
// decoded model-size pixels in memory and the model runs on them through predict/infer.ts (the
// code behind `cxr evaluate` and the server), with the model's own test-time views, in batches.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHANGES, changeByName, perturbImages } from '../data/perturb_catalog';
import type { Seed } from '../data/random';
import { filesRelativeTo } from '../data/images';
import { loadModel, type LoadedModel } from '../models/io';
import { normalizeImages } from '../data/preprocess';
import { calibrated, predictAllLogits } from '../models/infer';
import { benchmarkFolderProblem, loadBenchmarkImages } from './images';
import {
  ECE_BINS,
  type OutsideCheck,
  type RobustnessResult,
  type RobustnessRow,
  rowMetrics,
  summarise,
} from './metrics';

export const DEFAULT_STRENGTHS = [1 / 3, 2 / 3, 1] as const;

export interface RobustnessOptions {
  modelDir: string;
  data: string;
  /** Images per class at most (0 or absent = all). */
  limit?: number;
  seed?: Seed;
  /** Change names to run (default: all). */
  changes?: readonly string[];
  /** Strengths in (0, 1] (default 1/3, 2/3, 1); the clean row is always added. */
  strengths?: readonly number[];
  /** A NORMAL/PNEUMONIA folder for the outside check; false for none; default: Kaggle's val folder next to the data. */
  outside?: string | false;
  batchSize?: number;
  log?: (line: string) => void;
  progress?: boolean;
}

/** Kaggle's 16-film val folder beside (or inside) the data, when it exists and is not the data itself. */
export function defaultOutsideFolder(data: string): string | null {
  const here = path.resolve(data);
  const candidates = [path.join(here, 'val'), path.join(path.dirname(here), 'val')];
  const found = candidates.find((c) => ['NORMAL', 'PNEUMONIA'].every((k) => fs.existsSync(path.join(c, k))));
  return found && path.resolve(found) !== here ? found : null;
}

async function scores(
  loaded: LoadedModel,
  pixels: Uint8Array,
  n: number,
  size: number,
  batchSize: number,
): Promise<number[]> {
  const { meta } = loaded;
  // Changes act on the film as it arrives; the model's own normalisation comes after them, as in the Predictor.
  const input = normalizeImages(pixels.slice(), n, size, meta.preprocessing.normalize);
  const logits = await predictAllLogits(loaded.members, input, n, size, { tta: meta.tta, batchSize });
  return calibrated(logits, meta.temperature, meta.logitBias);
}

/** One image under each change at the highest strength, for the report's picture sheet (not part of the JSON). */
export interface Example {
  change: string;
  strength: number;
  parameter: string;
  pixels: Uint8Array;
  size: number;
}

export async function runRobustness(o: RobustnessOptions): Promise<{ result: RobustnessResult; examples: Example[] }> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 1;
  // Each strength and change once: a repeated one (`--strengths 1,1`, `--changes blur,blur`) was scored twice and
  // weighed twice in the summary's means (robust specificity, mean AUC, mean ECE).
  const strengths = [...new Set(o.strengths ?? DEFAULT_STRENGTHS)];
  if (strengths.length === 0 || strengths.some((s) => !(s > 0 && s <= 1)))
    throw new RangeError(`strengths must lie in (0, 1], got ${strengths.join(', ')}`);
  // An empty list is a mistake (e.g. `--changes ,`), not a request for every change.
  if (o.changes && o.changes.length === 0) throw new RangeError('changes: the list is empty; name at least one change');
  const changes = o.changes ? [...new Set(o.changes)].map(changeByName) : [...CHANGES];
  const bs = o.batchSize ?? 32;
  // The outside folder is checked before the model is loaded and the changes are scored: a wrong one
  // would otherwise fail only at the end of the run.
  const outsideDir = o.outside === false ? null : (o.outside ?? defaultOutsideFolder(o.data));
  const outsideProblem = outsideDir && benchmarkFolderProblem(outsideDir);
  if (outsideProblem) throw new Error(`outside-check folder ${outsideDir}: ${outsideProblem}`);

  const loaded = await loadModel(o.modelDir);
  try {
    const { meta } = loaded;
    const opName = meta.defaultOperatingPoint;
    const op = meta.operatingPoints[opName];
    if (!op) throw new Error(`${o.modelDir}: the default operating point '${opName}' is not in cxr.json`);
    const { set, source, leftOut } = await loadBenchmarkImages(o.data, meta, {
      limit: o.limit,
      seed,
      warn: log,
      progress: o.progress,
    });
    const n = set.labels.length;
    const labels = Array.from(set.labels);
    // Class folder and file name: the image's own random stream, whatever else is chosen with it.
    const ids = set.files.map((f) => `${path.basename(path.dirname(f))}/${path.basename(f)}`);
    log(`${source}: ${n} images at ${set.size} px, ${changes.length} changes × ${strengths.length} strengths`);

    // Loaded before the changes are run, so that a folder without readable films is refused at once too.
    const other =
      outsideDir && path.resolve(outsideDir) !== path.resolve(o.data)
        ? await loadBenchmarkImages(outsideDir, meta, { warn: log })
        : null;

    const clean = await scores(loaded, set.pixels, n, set.size, bs);
    const rows: RobustnessRow[] = [
      { change: 'clean', strength: 0, parameter: 'none', ...rowMetrics(labels, clean, clean, op.threshold) },
    ];
    // The sheet shows a NORMAL film: NORMAL films are the ones whose scores drift on the test split.
    const shown = Math.max(0, labels.indexOf(0));
    const per = set.size * set.size;
    const sheet = (change: string, strength: number, parameter: string, pixels: Uint8Array): Example => ({
      change,
      strength,
      parameter,
      pixels: pixels.slice(shown * per, (shown + 1) * per),
      size: set.size,
    });
    const examples: Example[] = [sheet('clean', 0, 'none', set.pixels)];
    for (const change of changes) {
      const t = performance.now();
      for (const s of strengths) {
        const pixels = await perturbImages(change.name, set.pixels, ids, set.size, s, seed);
        const probs = await scores(loaded, pixels, n, set.size, bs);
        rows.push({
          change: change.name,
          strength: s,
          parameter: change.parameter(s, set.size),
          ...rowMetrics(labels, probs, clean, op.threshold),
        });
        if (s === Math.max(...strengths)) examples.push(sheet(change.name, s, change.parameter(s, set.size), pixels));
      }
      // The row at the strongest strength, whatever the order given (the line said "at strength 1" of the last).
      const top = rows.find((r) => r.change === change.name && r.strength === Math.max(...strengths))!;
      log(
        `${change.name.padEnd(14)} spec ${fmt(top.specificity)} sens ${fmt(top.sensitivity)} ` +
          `at strength ${+top.strength.toFixed(2)} (${((performance.now() - t) / 1000).toFixed(1)} s)`,
      );
    }

    let outside: OutsideCheck | null = null;
    if (other && outsideDir) {
      const ol = Array.from(other.set.labels);
      const op2 = await scores(loaded, other.set.pixels, ol.length, other.set.size, bs);
      const m = rowMetrics(ol, op2, op2, op.threshold);
      const meanWhere = (label: number) => {
        const xs = op2.filter((_, i) => ol[i] === label);
        return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
      };
      outside = {
        data: outsideDir,
        n: ol.length,
        normal: ol.filter((y) => y === 0).length,
        auc: m.auc,
        sensitivity: m.sensitivity,
        specificity: m.specificity,
        ece: m.ece,
        meanNormalScore: meanWhere(0),
        meanPneumoniaScore: meanWhere(1),
      };
    }

    const normal = labels.filter((y) => y === 0).length;
    const result: RobustnessResult = {
      format: 'cxr-robustness/1',
      model: { name: meta.name, version: meta.version, sha256: loaded.sha256, dir: path.resolve(o.modelDir) },
      // Films named relative to the data folder, as predictions files name them (portable).
      data: {
        path: o.data,
        source,
        n,
        normal,
        pneumonia: n - normal,
        files: filesRelativeTo(o.data, set.files),
        leftOut: filesRelativeTo(
          o.data,
          leftOut.map((l) => l.file),
        ).map((file, i) => ({ file, reason: leftOut[i].reason })),
        // Recorded so that the page's "run it again" repeats the same choice of films.
        limit: o.limit ?? 0,
      },
      operatingPoint: { name: opName, threshold: op.threshold },
      tta: [...meta.tta],
      seed,
      eceBins: ECE_BINS,
      rows,
      summary: summarise(rows),
      outside,
      seconds: (performance.now() - t0) / 1000,
      createdAt: new Date().toISOString(),
    };
    return { result, examples };
  } finally {
    loaded.members.forEach((m) => m.dispose());
  }
}

const fmt = (x: number | null) => (x === null ? '  n/a' : `${(100 * x).toFixed(1).padStart(5)}%`);
