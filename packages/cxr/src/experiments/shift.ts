// `cxr experiments shift`: the recipes aimed at films from outside the training folder, each
// trained with several seeds on one patient split (split seed 42, so that every run validates on
// the same films and runs can be ensembled), each benchmarked under the nuisance changes with the
// outside check on Kaggle's val folder, and compared per run and per recipe over its seeds.
import * as path from 'node:path';
import { z } from 'zod';
import { writeComparison, type ExperimentSummary } from '../report';
import { RECIPES } from '../train/presets';
import { checkFinishedRuns, checkRerun, type ExperimentRun, isFinished, QUICK, runExperiment } from './run_experiment';

export const SHIFT_EXPERIMENTS = [
  'cxr-oversample',
  'cxr-equalize',
  'cxr-shift',
  'cxr-shift-ema',
  'cxr-shift-marks',
  'cxr-shift-mixup',
  'cxr-shift-fov',
  'cxr-shift-224',
  'cxr-shift-framing',
  'cxr-shift-ema-block',
  'cxr-shift-ema-period',
  'cxr-shift-ema-period2',
  'cxr-shift-ema-period-mobilenet',
  'cxr-shift-ema-period-mobilenet-224',
  'cxr-shift-ema-period-mobilenet-short',
  'cxr-shift-ema-period-mobilenet-224-short',
  'cxr-shift-ema-period-mobilenet-short-lpft',
  'cxr-shift-ema-period-mobilenet-224-short-lpft',
  'cxr-shift-ema-period-mobilenet-short-lpft-gentle',
];
export const SHIFT_SEEDS = [42, 1, 7];
/** The patient split every run shares (`cxr train --split-seed 42`). */
export const SHIFT_SPLIT_SEED = 42;
export const SHIFT_ROBUSTNESS_LIMIT = 60;
/** --quick's robustness limit (images per class) unless one is given. */
export const QUICK_ROBUSTNESS_LIMIT = 4;

const recipeName = z.string().refine((n) => Object.hasOwn(RECIPES, n) && !RECIPES[n].recipe.ganImages, {
  error: (i) =>
    `unknown recipe '${String(i.input)}' (known: ` +
    `${Object.keys(RECIPES)
      .filter((n) => !RECIPES[n].recipe.ganImages)
      .join(', ')}; GAN recipes need 'cxr experiments seed --gan-model')`,
});
const unique = <T>(xs: readonly T[]) => new Set(xs).size === xs.length;

export const ShiftExperimentsOptions = z.object({
  data: z.string().min(1),
  out: z.string().min(1),
  recipes: z.array(recipeName).min(1).refine(unique, 'a recipe is named twice').default(SHIFT_EXPERIMENTS),
  seeds: z.array(z.number().int().nonnegative()).min(1).refine(unique, 'a seed is named twice').default(SHIFT_SEEDS),
  resume: z.boolean().default(false),
  /** Train every run again from scratch, over runs the folders already hold (refused without this or resume). */
  overwrite: z.boolean().default(false),
  /** Images per class of the robustness benchmark (default 60; 4 with quick). */
  robustnessLimit: z.number().int().positive().optional(),
  quick: z.boolean().default(false),
  /** Train and benchmark nothing: the tables from the finished run folders only (the others are listed as missing). */
  tableOnly: z.boolean().default(false),
});
export type ShiftExperimentsOptions = z.input<typeof ShiftExperimentsOptions> & {
  log?: (line: string) => void;
  /** Told the name of each run as it starts (Ctrl-C's line names the run that was running). */
  onRow?: (name: string) => void;
};

/** The run folder's name: `<recipe>-s<seed>`. */
export const shiftRunName = (recipe: string, seed: number) => `${recipe}-s${seed}`;

export async function runShiftExperiments(
  options: ShiftExperimentsOptions,
): Promise<{ files: string[]; summaries: ExperimentSummary[] }> {
  const parsed = ShiftExperimentsOptions.safeParse(options);
  if (!parsed.success) throw new Error(`experiments shift: ${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  const log = options.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const limit = o.robustnessLimit ?? (o.quick ? QUICK_ROBUSTNESS_LIMIT : SHIFT_ROBUSTNESS_LIMIT);
  const runs: ExperimentRun[] = [];
  for (const recipe of o.recipes) {
    for (const seed of o.seeds) {
      const name = shiftRunName(recipe, seed);
      if (o.tableOnly && !isFinished(path.join(o.out, name))) {
        log(`not in the table (no finished run folder): ${name}`);
        continue;
      }
      runs.push({
        data: o.data,
        runDir: path.join(o.out, name),
        recipeName: recipe,
        name,
        title: name,
        overrides: { ...(o.quick ? QUICK : {}), seed, splitSeed: SHIFT_SPLIT_SEED },
        resume: o.resume || o.tableOnly,
        robustness: o.tableOnly ? undefined : { limit, outside: true },
        shiftColumns: true,
        group: recipe,
        log,
      });
    }
  }
  checkRerun('experiments shift', o.out, runs, o);
  // The title says --quick from the flag: every finished run kept must have been trained as the flag says.
  if (o.resume || o.tableOnly)
    checkFinishedRuns('experiments shift', runs, { quick: o.quick, keptBy: o.tableOnly ? '--table-only' : '--resume' });
  const summaries: ExperimentSummary[] = [];
  for (const run of runs) {
    options.onRow?.(run.name);
    summaries.push(await runExperiment(run));
  }
  if (summaries.length === 0) throw new Error(`experiments shift: no finished run folder in ${o.out}`);
  const { files } = await writeComparison(summaries, o.out, {
    title: `The generalisation recipes over seeds${o.quick ? ' (quick subset)' : ''}`,
    split:
      `the patient-level validation split carved out of train (split seed ${SHIFT_SPLIT_SEED}, the same for every ` +
      'run; the official test split is withheld)',
  });
  return { files, summaries };
}
