// `cxr train` end to end: data -> patient split -> cache -> training loop -> report.
import { checkShiftAugment, shiftAugmentBatch } from '../data/shift_augment';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { AugmentConfig, augmentBatch, isIdentity, resolveAugment } from '../data/augment';
import { checkGanSplit, withGanImages } from '../gan/mix';
import { readGanMeta } from '../gan/generator_io';
import { isGanFolder } from '../gan/run_folder';
import { resolveBackbone } from '../models/backbones';
import { mixBatch } from '../data/mix';
import { BalanceMode, epochOrder, lossWeights } from '../data/balance';
import { periodWeights } from '../data/period_balance';
import { loadTrainVal, splitOf } from '../data/dataset_images';
import { DEFAULT_RECIPE, RECIPES } from './presets';
import { z } from 'zod';
import { makeOutputDir } from '../make_dirs';
import { stoppedWhileFinishing } from '../models/io';
import { checkLoadedSplit, readRunData, recoverCheckpoints, writeRunData } from './checkpoint';
import { checkData } from './data_check';
import { Recipe, RecipeInput, writeRecipe } from './recipe';
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
  /** Why `gate` is false, for the line that says no gate was fitted (default: the user's --no-gate). */
  noGateReason?: string;
  /**
   * Refuse an `out` that already holds a trained model, an unfinished run or other files, as `cxr train` does
   * (default true; `resume` continues a run whatever this says). Only a caller that means to train over a
   * finished run sets it false: the experiment commands, which retrain a row without --resume on purpose.
   */
  refuseExisting?: boolean;
}

/**
 * A finished run (kept by --resume-style reruns): training wrote its model and the validation metrics, and got
 * past fitting its gate. A run stopped while finishing has the first two and still its checkpoints/best
 * (models/io.ts stoppedWhileFinishing; written before the model even where no epoch improved, trainer.ts):
 * --resume finishes it, as `cxr train` says of such a folder.
 */
export const isFinished = (runDir: string) =>
  fs.existsSync(path.join(runDir, 'cxr.json')) &&
  fs.existsSync(path.join(runDir, 'metrics', 'val.json')) &&
  !stoppedWhileFinishing(runDir);

export function resolveRecipe(name: string | undefined, overrides: Partial<RecipeInput> = {}): Recipe {
  // Own names only: 'toString' found Object's method, no recipe, and then the default recipe's figures.
  const key = name ?? DEFAULT_RECIPE;
  const base = Object.hasOwn(RECIPES, key) ? RECIPES[key] : undefined;
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
  // Everything is checked before anything is written: a refused command leaves --out as it was.
  checkOut(o);
  const recipe = o.resume ? resumedRecipe(o) : resolveRecipe(o.recipeName, o.overrides);
  checkRecipe(recipe);
  const { record: data, records, valPatients } = await checkData(o.data, recipe, log);
  // Generated images only from a GAN that never saw this run's validation patients (docs/gan.md).
  if (recipe.ganModel && recipe.ganImages)
    checkGanSplit(recipe.ganModel, { root: o.data, split: splitOf(recipe), records, valPatients });
  const checkpointed = fs.existsSync(path.join(o.out, 'checkpoints', 'last', 'state.json'));
  const started = o.resume && checkpointed ? readRunData(o.out) : null;
  if (started && started.fingerprint !== data.fingerprint) {
    const counts =
      `${started.train} training and ${started.validation} validation films then, ` +
      `${data.train} and ${data.validation} now`;
    // The same folder with other films in it needs other advice than another folder: naming the folder
    // the user already gave would send them round in a circle.
    const sameFolder = path.resolve(started.root) === path.resolve(o.data);
    throw new Error(
      sameFolder
        ? `the films in ${o.data} changed since this run started (split fingerprint differs; ${counts}): ` +
            'put the folder back as it was to resume, or train on it as it is now into a new folder'
        : `the data in ${o.data} is not the data this run started on (split fingerprint differs): ` +
            `its checkpoint trained on ${started.root} (${counts}); ` +
            `resume with --data ${started.root}, or train on other data into a new folder`,
    );
  }
  if (o.resume && !checkpointed)
    log(`note: ${o.out} was stopped before its first checkpoint: training starts again with its saved recipe`);
  if (o.resume && checkpointed && !started)
    log(`note: ${o.out} does not record the data it started on (an older run): resuming without checking it`);
  await checkInputsExist(recipe, log);
  makeOutputDir(o.out, '--out');
  writeRecipe(o.out, recipe);
  // A checkpoint keeps the record of the data it was trained on; a run without one starts on this data.
  if (!(o.resume && checkpointed)) writeRunData(o.out, { root: path.resolve(o.data), ...data });
  // The data root goes on as an absolute path: cxr.json records it, and the commands that default to the
  // recorded data folder (ood fit, adapt-reference, ensemble) must find it from any directory.
  const result =
    recipe.backbone && !recipe.endToEnd
      ? await trainTransfer({
          recipe,
          data: path.resolve(o.data),
          out: o.out,
          name: o.name,
          resume: o.resume,
          progress: o.progress,
          log,
          command: o.command,
          gate: o.gate,
          noGateReason: o.noGateReason,
          listed: data.train + data.validation,
        })
      : await trainWholeModel(o, recipe, log, data.train + data.validation);
  if (o.report !== false) {
    try {
      const { writeReport } = await import('../report/index.js');
      const { files } = await writeReport(o.out);
      log(`report: ${files.find((f: string) => f.endsWith('.html')) ?? path.join(o.out, 'report')}`);
    } catch (e) {
      log(`report not written: ${(e as Error).message}`);
    }
  }
  // Last: while these remain, the run is unfinished (stoppedWhileFinishing), and --resume finishes it again
  // from its best epoch: its gate and its report, not only its model.
  for (const d of ['best', 'best-head'])
    fs.rmSync(path.join(o.out, 'checkpoints', d), { recursive: true, force: true });
  return result;
}

/** A from-scratch architecture, or a backbone trained end to end: one trainer, one set of options. */
async function trainWholeModel(
  o: RunOptions,
  recipe: Recipe,
  log: (line: string) => void,
  listed: number,
): Promise<TrainResult> {
  const progress = o.progress ?? process.stderr.isTTY === true;
  const source = await modelSource(recipe, { progress, log });
  const size = source.size;

  // The root absolute, as cxr.json records it (runTraining).
  const {
    train: realTrain,
    val,
    info,
  } = await loadTrainVal(path.resolve(o.data), {
    size,
    progress,
    warn: log,
    normalize: recipe.normalize,
    ...splitOf(recipe),
  });
  checkLoadedSplit(o.data, realTrain, val, listed);
  // After the split, so generated images can only ever be training images.
  const split = { root: o.data, fingerprint: info.fingerprint };
  const { train: trainSet, info: ganInfo } = await withGanImages(realTrain, recipe, log, split);
  const augment: AugmentConfig = resolveAugment(recipe.augment);
  const shift = recipe.shiftAugment;
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
    noGateReason: o.noGateReason,
  });
}

// The checks before a run writes anything.

function checkOut(o: RunOptions): void {
  recoverCheckpoints(o.out);
  // A GAN's folder has a checkpoints/last too: taken for an unfinished run, --resume would fail on it.
  if (isGanFolder(o.out))
    throw new Error(`${o.out} is a GAN folder (cxr gan train), not a classifier run: choose a new --out folder`);
  const checkpointed = fs.existsSync(path.join(o.out, 'checkpoints', 'last', 'state.json'));
  // A run that was stopped while finishing still has its best epoch's checkpoint; a finished one has removed it.
  if (o.resume && isFinished(o.out))
    throw new Error(`${o.out} holds a finished run: there is nothing to resume (train again into a new folder)`);
  // A run stopped before its first epoch ended has its recipe.json and no checkpoint yet: --resume starts it
  // again with that recipe, as the line it printed on the way out said. A folder with neither holds no run.
  if (o.resume && !checkpointed && !fs.existsSync(path.join(o.out, 'recipe.json'))) {
    const why = fs.existsSync(o.out) ? 'no run checkpoint in it' : 'no such folder';
    throw new Error(
      `${o.out}: there is nothing to resume (${why}); start a new run with the same command without --resume`,
    );
  }
  // Safe by default: a second call with the same `out` must not silently train over the first one's model.
  if (o.resume || o.refuseExisting === false) return;
  // Before the trained model's test: a run stopped while finishing has written cxr.json, yet is unfinished.
  if (checkpointed && stoppedWhileFinishing(o.out))
    throw new Error(
      `${o.out} already holds an unfinished run, stopped while it finished (its model is written, its gate and ` +
        'report are not): continue it with --resume, or choose a new --out folder',
    );
  if (fs.existsSync(path.join(o.out, 'cxr.json')))
    throw new Error(
      `${o.out} already holds a trained model, which training would overwrite: choose a new --out folder`,
    );
  if (checkpointed)
    throw new Error(
      `${o.out} already holds an unfinished run: continue it with --resume, or choose a new --out folder`,
    );
  // A folder of other things (a data folder given as --out by mistake): the model's files would be mixed in.
  const entries = fs.existsSync(o.out) ? fs.readdirSync(o.out).filter((e) => !e.startsWith('.')) : [];
  const runFiles = ['recipe.json', 'log.jsonl', 'checkpoints'];
  if (entries.length && !entries.some((e) => runFiles.includes(e))) {
    const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, ... (${entries.length})` : '');
    throw new Error(`${o.out} holds other files (${shown}), not a run: choose a new or empty --out folder`);
  }
}

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x,
  );

/**
 * --resume continues the recipe the run started with (its recipe.json). Options given with it must agree
 * with that recipe: silently training another number of epochs, or another recipe, is not a resume.
 */
function resumedRecipe(o: RunOptions): Recipe {
  const file = path.join(o.out, 'recipe.json');
  if (!fs.existsSync(file)) return resolveRecipe(o.recipeName, o.overrides);
  let saved: Recipe;
  try {
    saved = Recipe.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    const why = e instanceof z.ZodError ? z.prettifyError(e) : (e as Error).message;
    throw new Error(
      `${file}, the recipe this run started with (--resume continues it), is not a valid recipe:\n${why}\n` +
        'fix it, or start the run again in a new folder',
    );
  }
  try {
    checkRecipe(saved);
  } catch (e) {
    throw new Error(`${file}, the recipe this run started with (--resume continues it): ${(e as Error).message}`);
  }
  // With --recipe the whole recipe it names is asked for; otherwise only the options given.
  const asked = o.recipeName !== undefined ? resolveRecipe(o.recipeName, o.overrides) : undefined;
  const fields = asked ? Object.keys({ ...asked, ...saved }) : Object.keys(o.overrides ?? {});
  const given = asked ?? Recipe.parse({ ...saved, ...o.overrides });
  const differ = fields.filter((k) => canonical(given[k as keyof Recipe]) !== canonical(saved[k as keyof Recipe]));
  if (differ.length > 0)
    throw new Error(
      `--resume continues the run in ${o.out} with the recipe it started with, and these options differ from it: ` +
        differ
          .map(
            (k) =>
              `${k} ${canonical(given[k as keyof Recipe]) ?? '(none)'} ` +
              `(saved: ${canonical(saved[k as keyof Recipe]) ?? '(none)'})`,
          )
          .join(', ') +
        `; drop them or give the saved values to resume, or train into a new folder`,
    );
  return saved;
}

/**
 * The generator and the backbone's weights are looked for before --out is made, so a run refused for want of
 * them leaves --out as it was. The backbone is located (or fetched into the cache) here and again, from the
 * cache, by the trainer that builds it.
 */
async function checkInputsExist(recipe: Recipe, log: (line: string) => void): Promise<void> {
  if (recipe.ganModel) readGanMeta(recipe.ganModel);
  if (recipe.backbone) await resolveBackbone(recipe.backbone, { weights: recipe.weights, log });
}

function checkRecipe(recipe: Recipe): void {
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
  if (recipe.ganImages && !recipe.ganModel)
    throw new Error(`the recipe adds GAN images (${recipe.ganImages}): pass the generator with --gan-model DIR`);
  if (recipe.shiftAugment) {
    // The films are changed before the tensor is made; a normalisation applied at load comes first.
    // Cropping to the body nearly commutes with the site changes (pixel-wise or local), equalisation does not.
    if (recipe.normalize === 'equalize')
      throw new Error('shiftAugment with histogram equalisation is not supported: use normalize none or fov');
    checkShiftAugment(recipe.shiftAugment);
  }
}
