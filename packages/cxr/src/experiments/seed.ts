// `cxr experiments seed`: the seed project's experiments in its order, then cxr's recipe, each a
// full training run on the same patient-level split, compared on that validation split.
import * as path from 'node:path';
import { writeComparison, ExperimentSummary } from '../report';
import { RECIPES } from '../train/presets';
import {
  checkFinishedRuns,
  checkGanModels,
  checkRerun,
  type ExperimentRun,
  finishedRunDifferences,
  isFinished,
  QUICK,
  runExperiment,
} from './run_experiment';

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
  /** Told the name of each row as it starts (Ctrl-C's line names the row that was running). */
  onRow?: (name: string) => void;
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
  const row = (name: string, kept: boolean): ExperimentRun => ({
    data: o.data,
    runDir: path.join(o.out, name),
    recipeName: name,
    name,
    title: RECIPES[name].title,
    overrides: { ...(o.quick ? QUICK : {}), ...(RECIPES[name].recipe.ganImages ? { ganModel: o.ganModel } : {}) },
    resume: kept || !!o.resume,
    robustness: kept ? undefined : o.robustness && { limit: o.robustness.limit, outside: false },
    log,
  });
  const runs = names.map((name) => row(name, false));
  checkRerun('experiments seed', o.out, runs, { resume: !!o.resume, overwrite: !!o.overwrite });
  // The title says --quick from the flag: every finished run kept must have been trained as the flag says.
  if (o.resume) checkFinishedRuns('experiments seed', runs, { quick: !!o.quick, keptBy: '--resume' });
  // A GAN of another split is refused now, not after the rows before the GAN rows have trained.
  await checkGanModels('experiments seed', runs);
  const earlier = earlierRows(o, names, row, log);
  const done = new Map<string, ExperimentSummary>();
  for (const run of runs) {
    o.onRow?.(run.name);
    done.set(run.name, await runExperiment(run));
  }
  // An earlier row that cannot be read (a damaged file) is left out with a line, not the failure of a call whose
  // own rows have trained.
  for (const [name, run] of earlier) {
    try {
      done.set(name, await runExperiment(run));
    } catch (e) {
      log(`note: the earlier row ${name} is left out of the comparison: ${(e as Error).message}`);
    }
  }
  // In the seed's order: the rows of this call among the finished rows it did not run.
  const shown = [...SEED_EXPERIMENTS, ...GAN_EXPERIMENTS].filter((n) => done.has(n));
  const summaries = shown.map((n) => done.get(n)!);
  const { files } = await writeComparison(summaries, o.out, {
    title: `The seed project's experiments, reproduced${o.quick ? ' (quick subset)' : ''}`,
    split: 'the patient-level validation split carved out of train (the official test split is withheld)',
    reference: shown.includes('cxr') ? RECIPES.cxr.title : undefined,
  });
  return { files, summaries };
}

/**
 * The finished rows --out holds from earlier calls that this one does not run (--only): the comparison lists
 * every finished row, not only this call's. A row trained otherwise than this call asks (a full run under a
 * --quick title) is left out, and the log says so. Read as they are: nothing of them trains or is benchmarked.
 */
function earlierRows(
  o: ExperimentsOptions,
  names: readonly string[],
  row: (name: string, kept: boolean) => ExperimentRun,
  log: (line: string) => void,
): Map<string, ExperimentRun> {
  const kept = new Map<string, ExperimentRun>();
  for (const name of [...SEED_EXPERIMENTS, ...GAN_EXPERIMENTS]) {
    if (names.includes(name) || !isFinished(path.join(o.out, name))) continue;
    const r = row(name, true);
    const differ = finishedRunDifferences(r);
    if (differ.length === 0) kept.set(name, r);
    else log(`not in the comparison: ${r.runDir}, trained otherwise than this call asks (${differ.join('; ')})`);
  }
  return kept;
}
