// `cxr experiments seed`: the seed project's experiments in its order, then cxr's recipe, each a
// full training run on the same patient-level split, compared on that validation split.
import * as path from 'node:path';
import { writeComparison, ExperimentSummary } from '../report';
import { RECIPES } from '../train/presets';
import { checkFinishedRuns, checkRerun, type ExperimentRun, QUICK, runExperiment } from './run_experiment';

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
  /** Train every row again from scratch, over runs its folder already holds (refused without this or resume). */
  overwrite?: boolean;
  /** A GAN from `cxr gan train`: adds the GAN rows. */
  ganModel?: string;
  /** Run `cxr robustness` on each run's validation split (at most this many images per class) where it has none yet. */
  robustness?: { limit: number };
  log?: (line: string) => void;
}

export const DEFAULT_ROBUSTNESS_LIMIT = 30;

export async function runSeedExperiments(
  o: ExperimentsOptions,
): Promise<{ files: string[]; summaries: ExperimentSummary[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const all = o.ganModel ? [...SEED_EXPERIMENTS, ...GAN_EXPERIMENTS] : SEED_EXPERIMENTS;
  // A misspelt name is refused up front: filtered out, it left a run of the others only, or nothing.
  for (const name of o.only ?? []) {
    if (all.includes(name)) continue;
    if (GAN_EXPERIMENTS.includes(name))
      throw new Error(
        `experiments seed: '${name}' is a row of the GAN comparison (${GAN_EXPERIMENTS.join(', ')}), run only ` +
          "with --gan-model DIR (a GAN from 'cxr gan train'): add it",
      );
    throw new Error(
      `experiments seed: unknown experiment '${name}' in --only (known: ${SEED_EXPERIMENTS.join(', ')}; ` +
        `with --gan-model also ${GAN_EXPERIMENTS.join(', ')})`,
    );
  }
  const names = o.only?.length ? all.filter((n) => o.only!.includes(n)) : all;
  const runs: ExperimentRun[] = names.map((name) => ({
    data: o.data,
    runDir: path.join(o.out, name),
    recipeName: name,
    name,
    title: RECIPES[name].title,
    overrides: { ...(o.quick ? QUICK : {}), ...(RECIPES[name].recipe.ganImages ? { ganModel: o.ganModel } : {}) },
    resume: !!o.resume,
    robustness: o.robustness && { limit: o.robustness.limit, outside: false },
    log,
  }));
  checkRerun('experiments seed', o.out, runs, { resume: !!o.resume, overwrite: !!o.overwrite });
  // The title says --quick from the flag: every finished run kept must have been trained as the flag says.
  if (o.resume) checkFinishedRuns('experiments seed', runs, { quick: !!o.quick, keptBy: '--resume' });
  const summaries: ExperimentSummary[] = [];
  for (const run of runs) summaries.push(await runExperiment(run));
  const { files } = await writeComparison(summaries, o.out, {
    title: `The seed project's experiments, reproduced${o.quick ? ' (quick subset)' : ''}`,
    split: 'the patient-level validation split carved out of train (the official test split is withheld)',
    reference: names.includes('cxr') ? RECIPES.cxr.title : undefined,
  });
  return { files, summaries };
}
