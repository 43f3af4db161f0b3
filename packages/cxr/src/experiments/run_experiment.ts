// One row of an experiments table (`cxr experiments seed`, `cxr experiments shift`): train the
// recipe into its run folder unless --resume finds it finished, benchmark it with `cxr robustness`
// where asked and not done yet, and read the folder back as the comparison's summary. A folder whose rows
// hold runs is refused without --resume or --overwrite (checkRerun), before anything trains.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkGanSplitOf } from '../gan/mix';
import { splitOf } from '../data/dataset_images';
import { readMeta } from '../models/io';
import type { ExperimentSummary } from '../report';
import { ECE_BINS, eceComparable, readRobustnessResult, type RobustnessResult } from '../robustness/metrics';
import { writeRobustnessReport } from '../robustness/page';
import { runRobustness } from '../robustness/run';
import type { RecipeInput } from '../train/recipe';
import { isFinished, resolveRecipe, runTraining } from '../train/run';

/** --quick: the same experiments on a small subset at a small size, for tests and smoke runs. */
export const QUICK: Partial<RecipeInput> = { limitPerClass: 40, epochs: 2, inputSize: 64, batchSize: 16 };

export interface ExperimentRun {
  data: string;
  runDir: string;
  recipeName: string;
  /** The run's name in cxr.json. */
  name: string;
  /** The row's name in the table. */
  title: string;
  overrides: Partial<RecipeInput>;
  /**
   * Skip training when the folder holds a finished model; resume an interrupted one from its checkpoint. Without
   * it the row trains from scratch over what its folder holds: the commands refuse that unless --overwrite says
   * so (checkRerun).
   */
  resume: boolean;
  /** Benchmark with `cxr robustness` (at most `limit` images per class); `outside`: also Kaggle's val folder. */
  robustness?: { limit: number; outside: boolean };
  /** Also summarise robust sensitivity, AUC, NORMAL score shift and the outside check (the shift table). */
  shiftColumns?: boolean;
  /** Runs of one recipe over several seeds share a group (the comparison's per-recipe table). */
  group?: string;
  log: (line: string) => void;
}

// A finished run is train/run.ts's `isFinished`, re-exported for the experiment commands.
export { isFinished };

/**
 * The recipe fields an experiment command sets itself (--quick, the seeds). A finished run that --resume or
 * --table-only keeps must have been trained with the values the command asks for: the table's title and rows
 * are named after the command's options, so a --quick run kept by a full command would pass for a full one.
 */
const COMMAND_FIELDS = ['limitPerClass', 'epochs', 'inputSize', 'batchSize', 'seed', 'splitSeed'] as const;
type CommandField = (typeof COMMAND_FIELDS)[number];

/** The finished run's values of COMMAND_FIELDS, from its cxr.json (older files lack some: undefined). */
function trainedWith(runDir: string): Partial<Record<CommandField, number>> {
  const meta = readMeta(runDir);
  const r = meta.recipe;
  return {
    limitPerClass: r.limitPerClass ?? 0,
    epochs: r.epochs,
    // The size the model was built at: a recipe without one took its architecture's own size.
    inputSize: meta.inputSize,
    batchSize: r.batchSize,
    seed: r.seed,
    splitSeed: meta.data.splitSeed ?? r.splitSeed ?? r.seed,
  };
}

/** Where a finished run's recorded recipe differs from what `run` asks for, as `field: asked A, trained T`. */
export function finishedRunDifferences(run: ExperimentRun): string[] {
  const asked = resolveRecipe(run.recipeName, run.overrides);
  const want: Partial<Record<CommandField, number>> = {
    limitPerClass: asked.limitPerClass,
    epochs: asked.epochs,
    // undefined: the architecture's own size, which any size recorded may be.
    inputSize: asked.inputSize,
    batchSize: asked.batchSize,
    seed: asked.seed,
    splitSeed: asked.splitSeed ?? asked.seed,
  };
  const had = trainedWith(run.runDir);
  return COMMAND_FIELDS.filter((k) => want[k] !== undefined && had[k] !== undefined && want[k] !== had[k]).map(
    (k) => `${k}: asked ${want[k]}, trained ${had[k]}`,
  );
}

const isQuickRun = (runDir: string) => {
  const had = trainedWith(runDir);
  return (['limitPerClass', 'epochs', 'inputSize', 'batchSize'] as const).every((k) => had[k] === QUICK[k]);
};

/**
 * Refuses, before anything trains or is written, the finished runs that `keptBy` (--resume or --table-only)
 * would keep although they were trained otherwise than the command asks (as `cxr train --resume` refuses
 * changed options): their rows and the table's title would misdescribe them.
 */
export function checkFinishedRuns(
  command: string,
  runs: readonly ExperimentRun[],
  opts: { quick: boolean; keptBy: '--resume' | '--table-only' },
): void {
  const bad = runs
    .filter((r) => isFinished(r.runDir))
    .map((r) => ({ r, differ: finishedRunDifferences(r) }))
    .filter((b) => b.differ.length > 0);
  if (bad.length === 0) return;
  const one = bad.length === 1;
  const them = one ? 'it' : 'them';
  const quickRuns = bad.filter((b) => isQuickRun(b.r.runDir)).length;
  const hint =
    !opts.quick && quickRuns === bad.length
      ? `${one ? 'it is a --quick run' : 'they are --quick runs'}: add --quick to keep ${them}; or `
      : opts.quick && quickRuns === 0
        ? `${one ? 'it is a full run' : 'they are full runs'}, not --quick: drop --quick to keep ${them}; or `
        : '';
  throw new Error(
    `${command} ${opts.keptBy}: ${one ? 'a finished run was' : `${bad.length} finished runs were`} trained ` +
      `otherwise than this command asks, and the table would misdescribe ${them}:\n` +
      bad.map((b) => `  ${b.r.runDir}: ${b.differ.join('; ')}`).join('\n') +
      `\n${hint}choose another --out folder, or run with --overwrite instead of ${opts.keptBy} to train ${them} ` +
      'again over what the folder holds',
  );
}

/** How many of the rows, and which, `names` shows before it says how many more there are. */
const SHOWN = 3;
const names = (runs: readonly ExperimentRun[]) =>
  runs
    .slice(0, SHOWN)
    .map((r) => path.basename(r.runDir))
    .join(', ') + (runs.length > SHOWN ? ` and ${runs.length - SHOWN} more` : '');

/**
 * Refuses at once, before anything trains, a command run again on a folder whose rows hold runs, finished or
 * interrupted, without --resume (keep them) or --overwrite (train them again). Without either every row would
 * train again from scratch: after a long sweep, hours of training lost to a forgotten flag. `cxr train` refuses
 * a folder with a run in it alike; here the explicit --overwrite may train over it, as a sweep redone means to.
 */
export function checkRerun(
  command: string,
  out: string,
  runs: readonly ExperimentRun[],
  opts: { resume: boolean; overwrite: boolean; tableOnly?: boolean },
): void {
  const kept = opts.tableOnly ? '--table-only' : opts.resume ? '--resume' : undefined;
  if (kept && opts.overwrite)
    throw new Error(
      `${command}: ${kept} keeps the finished rows and --overwrite trains them again: pass one of them, not both`,
    );
  if (kept || opts.overwrite) return;
  const finished = runs.filter((r) => isFinished(r.runDir));
  // An earlier model set aside by an --overwrite that did not finish is held too: a plain run would replace it.
  const interrupted = runs.filter(
    (r) =>
      !isFinished(r.runDir) &&
      (fs.existsSync(path.join(r.runDir, 'checkpoints', 'last', 'state.json')) || holdsSetAside(r.runDir)),
  );
  if (finished.length === 0 && interrupted.length === 0) return;
  const rows = (n: number, kind: string) => `${n} ${kind} row${n === 1 ? '' : 's'}`;
  const held = [
    finished.length ? `${rows(finished.length, 'finished')} (${names(finished)})` : '',
    interrupted.length ? `${rows(interrupted.length, 'interrupted')} (${names(interrupted)})` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  throw new Error(
    `${command}: ${out} already holds ${held} of the ${runs.length} this command runs, ` +
      'which it would train again from scratch: add --resume to keep the finished rows and continue the ' +
      'interrupted ones, or --overwrite to train every row again over what its folder holds',
  );
}

/** Whether runExperiment trains the row: all but the finished rows that --resume keeps. */
const trains = (r: ExperimentRun) => !(r.resume && isFinished(r.runDir));

/**
 * Refuses, before anything trains, a --gan-model trained on another patient split than a GAN row that will
 * train (gan/mix.ts checkGanSplit, which `cxr train` runs only once its own data is read): without this the
 * rows before it trained first, hours on full data, and only then was the GAN refused.
 */
export async function checkGanModels(command: string, runs: readonly ExperimentRun[]): Promise<void> {
  for (const r of runs.filter(trains)) {
    const recipe = resolveRecipe(r.recipeName, r.overrides);
    if (!recipe.ganModel || !recipe.ganImages) continue;
    await checkGanSplitOf(recipe.ganModel, r.data, splitOf(recipe), { runFlags: false, fixedBy: command });
  }
}

/** Where a row trained again keeps its old run's files until the new training starts writing (setAside). */
const SET_ASIDE = '.overwritten';
/** The checkpoints first, the markers of a finished run (cxr.json, the validation metrics) last. */
const OLD_RUN_FILES = ['checkpoints', 'robustness', 'robustness.json', 'cxr.json', path.join('metrics', 'val.json')];

/**
 * A row that a call trains again from scratch (--overwrite) is no finished run from its start on: its old
 * model's files would otherwise outlive an interrupted retraining, and --resume would keep the old model as
 * finished, beside the new recipe and without its log. Its checkpoints, its benchmark (it measured the old
 * model) and its markers of a finished run (cxr.json, metrics/val.json; model.json and the weights stay, to be
 * overwritten) are moved into .overwritten/, in that order (each a rename: stopped in between, the folder still
 * holds the old finished model, never a checkpoint --resume would take for the new run's). They come back where
 * training is refused before it writes anything (its data, its GAN), as a refused `cxr train` leaves its folder;
 * they are deleted only once a new model is trained. A failure after training wrote, or a stop, keeps them there
 * (the log says so), and the row counts as held (checkRerun): nothing deletes the earlier model but a new one.
 * An aside already there (such a stop before) is kept as it is: it holds the earlier finished model.
 */
function setAside(runDir: string): { restore(): void; where: string } {
  const aside = path.join(runDir, SET_ASIDE);
  const inAside = (p: string) => path.join(aside, p.replaceAll(path.sep, '__'));
  if (!fs.existsSync(aside)) {
    for (const p of OLD_RUN_FILES) {
      if (!fs.existsSync(path.join(runDir, p))) continue;
      fs.mkdirSync(aside, { recursive: true });
      fs.renameSync(path.join(runDir, p), inAside(p));
    }
  }
  return {
    where: aside,
    restore: () => {
      // Back only where nothing took their place; the aside goes once it is empty.
      for (const p of OLD_RUN_FILES)
        if (fs.existsSync(inAside(p)) && !fs.existsSync(path.join(runDir, p)))
          fs.renameSync(inAside(p), path.join(runDir, p));
      if (fs.existsSync(aside) && fs.readdirSync(aside).length === 0)
        fs.rmSync(aside, { recursive: true, force: true });
    },
  };
}

/** Whether a row holds an earlier model set aside by an --overwrite that did not finish (setAside). */
export const holdsSetAside = (runDir: string) => fs.existsSync(path.join(runDir, SET_ASIDE));

/** recipe.json's state: training writes it once its checks pass, before anything else of the run. */
const recipeStamp = (runDir: string) => {
  const file = path.join(runDir, 'recipe.json');
  return fs.existsSync(file) ? fs.statSync(file).mtimeMs : -1;
};

export async function runExperiment(o: ExperimentRun): Promise<ExperimentSummary> {
  const { runDir, log } = o;
  const trained = trains(o);
  if (trained) {
    log(`\n=== ${o.title} ===`);
    const old = o.resume ? undefined : setAside(runDir);
    const stamp = recipeStamp(runDir);
    const training = runTraining({
      data: o.data,
      out: runDir,
      recipeName: o.recipeName,
      name: o.name,
      overrides: o.overrides,
      resume: o.resume && fs.existsSync(path.join(runDir, 'checkpoints', 'last')),
      // A row run again without --resume is trained again on purpose (--overwrite: checkRerun), over what its
      // folder holds.
      refuseExisting: false,
      log,
    });
    try {
      await training;
    } catch (e) {
      if (old && recipeStamp(runDir) === stamp) old.restore();
      else if (old && holdsSetAside(runDir))
        log(
          `note: the earlier model of ${o.name} (its cxr.json, metrics/val.json, checkpoints and benchmark) is kept ` +
            `in ${old.where}: move them back into ${runDir} to keep it, or train the row again to replace it`,
        );
      throw e;
    }
    // A new model is trained (from scratch or resumed): what an --overwrite set aside is replaced for good.
    fs.rmSync(path.join(runDir, SET_ASIDE), { recursive: true, force: true });
  }
  const meta = readMeta(runDir);
  const metrics = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics', 'val.json'), 'utf8'));
  const predFile = path.join(runDir, 'predictions', 'val.json');
  const predictions = fs.existsSync(predFile) ? JSON.parse(fs.readFileSync(predFile, 'utf8')) : undefined;
  // A model trained just now makes any earlier benchmark of the folder stale, with --robustness or without it;
  // so does a benchmark of another model version than the folder holds, and one whose ECE used other bins than
  // the validation ECE it is shown beside (15 before 2026-12-05).
  let robust = trained ? null : readRobustnessResult(runDir);
  if (robust && robust.model.version !== meta.version) {
    log(
      `note: the robustness benchmark in ${runDir} measured model version ${robust.model.version}, not the ` +
        `version ${meta.version} the folder holds: ${o.robustness ? 'measured again' : 'left out of the table'}`,
    );
    robust = null;
  }
  if (o.robustness && (!robust || !eceComparable(robust))) {
    log(`robustness of ${o.name} (${o.robustness.limit} images per class)`);
    const { result, examples } = await runRobustness({
      modelDir: runDir,
      data: o.data,
      limit: o.robustness.limit,
      outside: o.robustness.outside ? undefined : false,
      log,
    });
    await writeRobustnessReport(result, examples, path.join(runDir, 'robustness'));
    robust = result;
  } else if (robust && !eceComparable(robust)) {
    log(
      `note: the robustness benchmark in ${runDir} computed its ECE with ${robust.eceBins} bins, the validation ` +
        `ECE uses ${ECE_BINS}: its mean ECE is not comparable; benchmark the run again (the experiment without ` +
        '--table-only) to refresh it',
    );
  }
  return {
    name: o.title,
    description: describe(meta.recipe),
    metrics,
    trainingSeconds: meta.validation?.trainingSeconds ?? null,
    runDir,
    predictions: predictions && { labels: predictions.labels, probs: predictions.probs, files: predictions.files },
    ...(robust ? { robustness: robustnessColumns(robust, !!o.shiftColumns) } : {}),
    ...(o.group === undefined ? {} : { group: o.group }),
  };
}

function robustnessColumns(r: RobustnessResult, shift: boolean): NonNullable<ExperimentSummary['robustness']> {
  const s = r.summary;
  const o = r.outside;
  return {
    robustSpecificity: s.robustSpecificity,
    worstSpecificity: s.worstSpecificity?.value ?? null,
    meanEce: s.meanEce,
    ...(shift
      ? {
          shift: {
            robustSensitivity: s.robustSensitivity ?? null,
            meanAuc: s.meanAuc,
            meanNormalScoreShift: s.meanNormalScoreShift,
            outside: o && { n: o.n, normal: o.normal ?? null, specificity: o.specificity, auc: o.auc },
          },
        }
      : {}),
  };
}

function periodText(p: Record<string, unknown>): string {
  const power = typeof p.power === 'number' && p.power !== 1 ? ` (ratio^${p.power})` : '';
  return `period balance ±${p.window} up to ${p.maxWeight}×${power}`;
}

/** The recipe in one line; the shift recipes' extra fields only where a recipe sets them. */
export function describe(r: Record<string, unknown>): string {
  const model = r.backbone
    ? `${r.backboneFallback ? `${r.backbone} (fallback: ${r.backboneFallback})` : r.backbone} backbone`
    : r.arch;
  const extras = [
    isRecord(r.headFirst) ? `head alone first ${r.headFirst.epochs} epoch(s) at lr ${r.headFirst.lr}` : '',
    r.normalize && r.normalize !== 'none' ? `normalize ${r.normalize}` : '',
    isRecord(r.shiftAugment) && Array.isArray(r.shiftAugment.changes)
      ? `shift augmentation (${r.shiftAugment.changes.length} changes)`
      : '',
    isRecord(r.weightAverage) ? `EMA ${r.weightAverage.decay}` : '',
    isRecord(r.mix) ? `${r.mix.method} ${r.mix.alpha}` : '',
    isRecord(r.periodBalance) ? periodText(r.periodBalance) : '',
    r.valSplit === 'block' ? 'validation: block split' : '',
  ].filter(Boolean);
  return (
    `${model} ${r.inputSize}px, ${r.optimizer} lr ${r.lr} (${r.schedule}), ${r.epochs} epochs, batch ${r.batchSize}, ` +
    `balance ${r.balance}, augment ${r.augment}${r.labelSmoothing ? `, label smoothing ${r.labelSmoothing}` : ''}` +
    `${Array.isArray(r.tta) && r.tta.length ? `, TTA ${r.tta.length} views` : ''}` +
    extras.map((x) => `, ${x}`).join('')
  );
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
