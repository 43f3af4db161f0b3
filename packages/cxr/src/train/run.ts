// `cxr train` end to end: data -> patient split -> cache -> training loop -> report.
import { checkShiftAugment, shiftAugmentBatch } from '../data/shift_augment';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { AugmentConfig, augmentBatch, isIdentity, resolveAugment } from '../data/augment';
import { withGanImages } from '../gan/mix';
import { mixBatch } from '../data/mix';
import { BalanceMode, epochOrder, lossWeights } from '../data/balance';
import { periodWeights } from '../data/period_balance';
import { loadTrainVal, splitOf } from '../data/dataset_images';
import { DEFAULT_RECIPE, RECIPES } from './presets';
import { Recipe, RecipeInput } from './recipe';
import { modelSource } from './model_source';
import { TrainResult, train } from './trainer';
import { trainTransfer } from './transfer';

export interface RunOptions {
  data: string;
  out: string;
  recipeName?: string;
  overrides?: Partial<RecipeInput>;
  name?: string;
  resume?: boolean;
  report?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  command?: string;
  /** Fit the not-a-chest-X-ray gate at the end (default true; an ensemble's later members skip it). */
  gate?: boolean;
}

/** A finished run: training wrote its model and the validation metrics (kept by --resume-style reruns). */
export const isFinished = (runDir: string) =>
  fs.existsSync(path.join(runDir, 'cxr.json')) && fs.existsSync(path.join(runDir, 'metrics', 'val.json'));

export function resolveRecipe(name: string | undefined, overrides: Partial<RecipeInput> = {}): Recipe {
  const base = RECIPES[name ?? DEFAULT_RECIPE];
  if (!base) throw new Error(`unknown recipe '${name}' (known: ${Object.keys(RECIPES).join(', ')})`);
  // A different architecture without an explicit size takes that architecture's own size.
  const merged: RecipeInput = { ...base.recipe, ...overrides };
  if (overrides.arch && overrides.inputSize === undefined && overrides.arch !== base.recipe.arch)
    delete merged.inputSize;
  // Likewise a backbone added to a from-scratch recipe takes the backbone's own size.
  if (overrides.backbone && overrides.inputSize === undefined && !base.recipe.backbone) delete merged.inputSize;
  if (merged.backbone) merged.arch = 'transfer';
  return Recipe.parse(merged);
}

export async function runTraining(o: RunOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const recipePath = path.join(o.out, 'recipe.json');
  // --resume keeps the recipe the run started with.
  const recipe =
    o.resume && fs.existsSync(recipePath)
      ? Recipe.parse(JSON.parse(fs.readFileSync(recipePath, 'utf8')))
      : resolveRecipe(o.recipeName, o.overrides);
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(recipePath, JSON.stringify(recipe, null, 2) + '\n');
  if (recipe.backbone && !recipe.endToEnd && (recipe.mix || recipe.weightAverage || recipe.periodBalance))
    throw new Error(
      'mix, weightAverage and periodBalance need a whole-model run: from scratch, or a backbone with endToEnd',
    );
  if (recipe.endToEnd && !recipe.backbone) throw new Error('endToEnd needs a backbone (--backbone NAME)');
  if (recipe.endToEnd && recipe.fineTune)
    throw new Error('endToEnd trains every layer from the start, so fineTune has nothing to do: drop fineTune');
  if (recipe.headFirst && !recipe.endToEnd)
    throw new Error(
      'headFirst is the first phase of an endToEnd run (a head-first transfer run has its own head phase)',
    );
  const result =
    recipe.backbone && !recipe.endToEnd
      ? await trainTransfer({
          recipe,
          data: o.data,
          out: o.out,
          name: o.name,
          resume: o.resume,
          progress: o.progress,
          log,
          command: o.command,
        })
      : await trainWholeModel(o, recipe, log);
  if (o.report !== false) {
    try {
      const { writeReport } = await import('../report/index.js');
      const { files } = await writeReport(o.out);
      log(`report: ${files.find((f: string) => f.endsWith('.html')) ?? path.join(o.out, 'report')}`);
    } catch (e) {
      log(`report not written: ${(e as Error).message}`);
    }
  }
  return result;
}

/** A from-scratch architecture, or a backbone trained end to end: one trainer, one set of options. */
async function trainWholeModel(o: RunOptions, recipe: Recipe, log: (line: string) => void): Promise<TrainResult> {
  const progress = o.progress ?? process.stderr.isTTY === true;
  const source = await modelSource(recipe, { progress, log });
  const size = source.size;

  const {
    train: realTrain,
    val,
    info,
  } = await loadTrainVal(o.data, {
    size,
    progress,
    warn: log,
    normalize: recipe.normalize,
    ...splitOf(recipe),
  });
  // After the split, so generated images can only ever be training images.
  const { train: trainSet, info: ganInfo } = await withGanImages(realTrain, recipe, log);
  const augment: AugmentConfig = resolveAugment(recipe.augment);
  const shift = recipe.shiftAugment;
  if (shift) {
    // The films are changed before the tensor is made; a normalisation applied at load comes first.
    // Cropping to the body nearly commutes with the site changes (pixel-wise or local), equalisation does not.
    if (recipe.normalize === 'equalize')
      throw new Error('shiftAugment with histogram equalisation is not supported: use normalize none or fov');
    checkShiftAugment(shift);
  }
  const balance = recipe.balance as BalanceMode;
  const weights = recipe.periodBalance && periodWeights(trainSet.patients, trainSet.labels, recipe.periodBalance);
  if (weights) {
    const raised = weights.filter((w) => w > 1).length;
    const most = Math.max(...weights).toFixed(2);
    log(`period balance: ${raised} of ${weights.length} training films weigh more than 1 (at most ${most})`);
  }
  return train({
    recipe,
    source,
    train: trainSet,
    val,
    outDir: o.out,
    name: o.name,
    resume: o.resume,
    progress,
    log,
    plan: (epoch) => ({ indices: epochOrder(trainSet.labels, balance, recipe.seed, epoch, weights) }),
    classWeights: lossWeights(trainSet.labels, balance),
    augment: isIdentity(augment)
      ? undefined
      : (x, epoch, batch) => augmentBatch(x, augment, `${recipe.seed}:${epoch}:${batch}`),
    mix:
      recipe.mix &&
      ((x, y, epoch, batch) =>
        mixBatch(x as tf.Tensor4D, y as tf.Tensor2D, recipe.mix!, `${recipe.seed}:${epoch}:${batch}`)),
    pixelAugment:
      shift && ((px, n, epoch, batch) => shiftAugmentBatch(px, n, size, shift, `${recipe.seed}:${epoch}:${batch}`)),
    dataInfo: { ...info, ...ganInfo },
    command: o.command,
    gate: o.gate,
  });
}
