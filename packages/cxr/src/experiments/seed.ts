// `cxr experiments seed`: the seed project's experiments in its order, then cxr's recipe, each a
// full training run on the same patient-level split, compared on that validation split.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMeta } from '../models/io';
import { writeComparison, ExperimentSummary } from '../report';
import { readRobustnessSummary } from '../robustness/metrics';
import { writeRobustnessReport } from '../robustness/page';
import { runRobustness } from '../robustness/run';
import { RECIPES } from '../train/presets';
import { RecipeInput } from '../train/recipe';
import { runTraining } from '../train/run';

/** The seed's figures 2-8 in its order, then cxr's recipe; GAN rows need a trained GAN (--gan-model). */
export const SEED_EXPERIMENTS = [
  'seed1-baseline',
  'seed2-balanced',
  'seed3-madz2000',
  'seed4-baseline-augment',
  'seed6-transfer',
  'seed7-transfer-balanced',
  'seed8-transfer-augment',
  'cxr',
];
export const GAN_EXPERIMENTS = ['gan-mix', 'gan-vs-oversample', 'cxr-oversample'];

export interface ExperimentsOptions {
  data: string;
  out: string;
  quick?: boolean;
  only?: string[];
  /** Skip experiments whose run folder already holds a finished model. */
  resume?: boolean;
  /** A GAN from `cxr gan train`: adds the GAN rows. */
  ganModel?: string;
  /** Run `cxr robustness` on each run's validation split (at most this many images per class) where it has none yet. */
  robustness?: { limit: number };
  log?: (line: string) => void;
}

export const DEFAULT_ROBUSTNESS_LIMIT = 30;

/** --quick: the same experiments on a small subset at a small size, for tests and smoke runs. */
const QUICK: Partial<RecipeInput> = { limitPerClass: 40, epochs: 2, inputSize: 64, batchSize: 16 };

export async function runSeedExperiments(
  o: ExperimentsOptions,
): Promise<{ files: string[]; summaries: ExperimentSummary[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const all = o.ganModel ? [...SEED_EXPERIMENTS, ...GAN_EXPERIMENTS] : SEED_EXPERIMENTS;
  const names = o.only?.length ? all.filter((n) => o.only!.includes(n)) : all;
  const summaries: ExperimentSummary[] = [];
  for (const name of names) {
    const runDir = path.join(o.out, name);
    const done =
      fs.existsSync(path.join(runDir, 'cxr.json')) && fs.existsSync(path.join(runDir, 'metrics', 'val.json'));
    if (!(o.resume && done)) {
      log(`\n=== ${RECIPES[name].title} ===`);
      await runTraining({
        data: o.data,
        out: runDir,
        recipeName: name,
        name,
        overrides: { ...(o.quick ? QUICK : {}), ...(RECIPES[name].recipe.ganImages ? { ganModel: o.ganModel } : {}) },
        resume: o.resume && fs.existsSync(path.join(runDir, 'checkpoints', 'last')),
        log,
      });
    }
    const meta = readMeta(runDir);
    const metrics = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics', 'val.json'), 'utf8'));
    const v = meta.validation;
    const predFile = path.join(runDir, 'predictions', 'val.json');
    const predictions = fs.existsSync(predFile) ? JSON.parse(fs.readFileSync(predFile, 'utf8')) : undefined;
    if (o.robustness && !readRobustnessSummary(runDir)) {
      log(`robustness of ${name} (${o.robustness.limit} images per class)`);
      const { result, examples } = await runRobustness({
        modelDir: runDir,
        data: o.data,
        limit: o.robustness.limit,
        outside: false,
        log,
      });
      await writeRobustnessReport(result, examples, path.join(runDir, 'robustness'));
    }
    const robust = readRobustnessSummary(runDir);
    summaries.push({
      name: RECIPES[name].title,
      description: describe(meta.recipe),
      metrics,
      trainingSeconds: v?.trainingSeconds ?? null,
      runDir,
      predictions: predictions && { labels: predictions.labels, probs: predictions.probs, files: predictions.files },
      ...(robust
        ? {
            robustness: {
              robustSpecificity: robust.robustSpecificity,
              worstSpecificity: robust.worstSpecificity?.value ?? null,
              meanEce: robust.meanEce,
            },
          }
        : {}),
    });
  }
  const { files } = await writeComparison(summaries, o.out, {
    title: `The seed project's experiments, reproduced${o.quick ? ' (quick subset)' : ''}`,
    split: 'the patient-level validation split carved out of train (the official test split is withheld)',
    reference: names.includes('cxr') ? RECIPES.cxr.title : undefined,
  });
  return { files, summaries };
}

function describe(r: Record<string, unknown>): string {
  const model = r.backbone
    ? `${r.backboneFallback ? `${r.backbone} (fallback: ${r.backboneFallback})` : r.backbone} backbone`
    : r.arch;
  return (
    `${model} ${r.inputSize}px, ${r.optimizer} lr ${r.lr} (${r.schedule}), ${r.epochs} epochs, batch ${r.batchSize}, ` +
    `balance ${r.balance}, augment ${r.augment}${r.labelSmoothing ? `, label smoothing ${r.labelSmoothing}` : ''}` +
    `${Array.isArray(r.tta) && r.tta.length ? `, TTA ${r.tta.length} views` : ''}`
  );
}
