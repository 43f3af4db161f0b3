// `cxr experiments seed --data ROOT [--quick]`, `cxr experiments shift --data ROOT [--seeds N...]`,
// `cxr experiments adapt --model DIR --data ROOT [--changes C...] [--shares X...] [--films N] [--methods M...]`,
// `cxr experiments heatmap --model DIR --data ROOT [--layers L...] [--json]`
import { Command, InvalidArgumentError } from 'commander';
import { intAtLeast, numberInRange, positiveInt, wholeNumber } from './args';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { ensureWritableDir, ensureWritableFile } from './writable';
import { sayHowToContinue } from './interrupt';
import { checkModelOption } from './model_folder';
import {
  ADAPT_METHODS,
  type AdaptMethod,
  adaptShiftMarkdown,
  adaptShiftTable,
  DEFAULT_ADAPT_CHANGES,
} from '../experiments/adapt_shift';
import { DEFAULT_HEATMAP_FILMS, heatmapMarkdown, heatmapTable } from '../experiments/heatmap';
import { DEFAULT_ROBUSTNESS_LIMIT, GAN_EXPERIMENTS, SEED_EXPERIMENTS, runSeedExperiments } from '../experiments/seed';
import {
  QUICK_ROBUSTNESS_LIMIT,
  SHIFT_EXPERIMENTS,
  SHIFT_ROBUSTNESS_LIMIT,
  SHIFT_SEEDS,
  SHIFT_SPLIT_SEED,
  runShiftExperiments,
} from '../experiments/shift';

// Variadic: commander passes the list so far.
const shareOfPneumonia = numberInRange(0, 1, 'both', 'a share of pneumonia, 0 < x < 1');
const seedList = (v: string, previous: number[] | undefined) => [...(previous ?? []), wholeNumber(v)];
// Without --resume or this, a folder whose rows hold runs is refused: a forgotten --resume retrained a whole sweep.
const OVERWRITE =
  'train every row again from scratch, over the finished and interrupted runs --out holds ' +
  '(without it or --resume such a folder is refused)';

/**
 * Ctrl-C or SIGTERM during a sweep says which row was running and how to continue the sweep, as `cxr train`
 * does (cli/interrupt.ts): the same command with --resume, which keeps the finished rows and resumes the
 * interrupted one from its checkpoint. Returns what removes the handlers and what to tell each row as it starts.
 */
function sayHowToContinueSweep(): { quiet: () => void; onRow: (name: string) => void } {
  let running: string | undefined;
  const quiet = sayHowToContinue({
    where: () => (running === undefined ? 'interrupted' : `interrupted during row ${running}`),
    // --resume with --overwrite is refused: the rows this call had not reached yet still hold their earlier runs.
    replaces: '--overwrite',
    replacedNote: 'rows --overwrite had not trained again yet keep their earlier runs',
  });
  return { quiet, onRow: (name) => (running = name) };
}

export function register(program: Command): void {
  const exp = program
    .command('experiments')
    .description("experiment tables: the seed project's experiments, the generalisation recipes over seeds");
  exp
    .command('seed')
    .summary("run the seed project's experiments in order and write a comparison table")
    .description(`run ${SEED_EXPERIMENTS.join(', ')} in order and write a comparison table`)
    .requiredOption('--data <root>', 'Kaggle-layout data folder')
    .option('--out <dir>', 'output folder', 'runs/experiments')
    .option('--quick', 'small subset, 2 epochs, 64 px (smoke test)')
    .option(
      '--only <names...>',
      `run only these experiments (of ${SEED_EXPERIMENTS.join(' ')}; ` +
        `with --gan-model also ${GAN_EXPERIMENTS.join(' ')})`,
    )
    .option('--resume', 'skip finished experiments and resume interrupted ones')
    .option('--overwrite', OVERWRITE)
    .option('--gan-model <dir>', 'a GAN from `cxr gan train`: also run the GAN rows')
    .option('--robustness', "also run `cxr robustness` on each run's validation split (columns in the comparison)")
    .option('--robustness-limit <n>', 'images per class for --robustness', positiveInt, DEFAULT_ROBUSTNESS_LIMIT)
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      ensureWritableDir(o.out, '--out', { keep: false });
      await initEngine(o.threads);
      const { quiet, onRow } = sayHowToContinueSweep();
      const { files } = await runSeedExperiments({
        onRow,
        data: o.data,
        out: path.resolve(o.out),
        quick: !!o.quick,
        only: o.only,
        resume: !!o.resume,
        overwrite: !!o.overwrite,
        ganModel: o.ganModel,
        robustness: o.robustness ? { limit: o.robustnessLimit } : undefined,
      }).finally(quiet);
      process.stdout.write(files.filter((f) => /\.(md|html)$/.test(f)).join('\n') + '\n');
    });
  exp
    .command('shift')
    .summary('train the generalisation recipes over 3 seeds, benchmark and compare them')
    .description(
      `train ${SHIFT_EXPERIMENTS.join(', ')} with seeds ${SHIFT_SEEDS.join(' ')} (split seed ${SHIFT_SPLIT_SEED}), ` +
        'benchmark each with `cxr robustness` and the outside check, and compare them per run and per recipe',
    )
    .requiredOption('--data <root>', 'Kaggle-layout data folder (train/, and val/ for the outside check)')
    .option('--out <dir>', 'output folder', 'runs/shift-experiments')
    .option('--recipes <names...>', `recipes to run (default: ${SHIFT_EXPERIMENTS.join(' ')})`)
    .option('--seeds <n...>', `training seeds (default: ${SHIFT_SEEDS.join(' ')})`, seedList)
    .option('--resume', 'skip finished runs and resume interrupted ones')
    .option('--overwrite', OVERWRITE)
    .option(
      '--robustness-limit <n>',
      `images per class of the robustness benchmark (default ${SHIFT_ROBUSTNESS_LIMIT}; ` +
        `${QUICK_ROBUSTNESS_LIMIT} with --quick)`,
      positiveInt,
    )
    .option('--quick', 'small subset, 2 epochs, 64 px, a small benchmark (smoke test)')
    .option('--table-only', 'train and benchmark nothing: redraw the tables from the finished run folders in --out')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      ensureWritableDir(o.out, '--out', { keep: false });
      await initEngine(o.threads);
      // --table-only trains nothing: there is nothing to continue.
      const { quiet, onRow } = o.tableOnly ? { quiet: () => {}, onRow: undefined } : sayHowToContinueSweep();
      const { files } = await runShiftExperiments({
        onRow,
        tableOnly: !!o.tableOnly,
        data: o.data,
        out: path.resolve(o.out),
        recipes: o.recipes,
        seeds: o.seeds,
        resume: !!o.resume,
        overwrite: !!o.overwrite,
        robustnessLimit: o.robustnessLimit,
        quick: !!o.quick,
      }).finally(quiet);
      process.stdout.write(files.filter((f) => /\.(md|html)$/.test(f)).join('\n') + '\n');
    });

  exp
    .command('adapt')
    .summary('what site adaptation does on the validation films, clean and changed')
    .description(
      "site adaptation on the model's own validation films, clean and under catalog changes, and (--shares) on " +
        'them resampled to other shares of pneumonia: the model as it is, after plain AdaBN, after relative AdaBN ' +
        "against the pooled reference and against the reference mixed at the site's estimated share (the default " +
        "of 'cxr adapt'), each adapted on the films it is scored on (no labels used)",
    )
    .option('--model <dir>', 'model folder with bn-reference.json (default: the shipped model)')
    .requiredOption('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA} (the model trained on it)')
    .option('--changes <specs...>', `NAME@STRENGTH or none (default: ${DEFAULT_ADAPT_CHANGES.join(' ')})`)
    .option(
      '--shares <x...>',
      'also sites of the validation films resampled to these shares of pneumonia (a class mix unlike the split)',
      (v: string, prev: number[] = []) => [...prev, shareOfPneumonia(v)],
    )
    .option('--films <n>', 'sites of this many films each (a smaller site: more sampling noise)', intAtLeast(10))
    .option(
      '--methods <kinds...>',
      `kinds of adaptation to score: ${ADAPT_METHODS.join(', ')} (default: all but relative-first, which adapts ` +
        'at the estimate before adapting, without the search, and relative-prior, the default adaptation with ' +
        "the thresholds moved to the site's estimated prior as 'cxr adapt --prior' does)",
      (v: string, prev: AdaptMethod[] = []) => {
        if (!(ADAPT_METHODS as readonly string[]).includes(v))
          throw new InvalidArgumentError(`one of ${ADAPT_METHODS.join(', ')}`);
        return [...prev, v as AdaptMethod];
      },
    )
    .option('--out <file>', 'also write the Markdown table to this file')
    .option('--json', 'print the rows as one JSON object')
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      // The table's folder is checked before the long run, not after it.
      if (o.out) ensureWritableFile(o.out, '--out');
      const model = path.resolve(checkModelOption(o.model));
      await initEngine(o.threads);
      const rows = await adaptShiftTable(model, o.data, {
        changes: o.changes,
        shares: o.shares,
        films: o.films,
        methods: o.methods,
        cacheDir: o.cache,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      const table = adaptShiftMarkdown(rows);
      if (o.out) fs.writeFileSync(o.out, `${table}\n`);
      process.stdout.write(o.json ? `${JSON.stringify({ model, rows })}\n` : `${table}\n`);
    });

  exp
    .command('heatmap')
    .summary("how faithful the model's heat maps are, per layer")
    .description(
      "how faithful the model's Grad-CAM maps are, per layer: the logit's fall when the pixels a map ranks " +
        'highest are blurred away (against random maps of the same grid), on its validation pneumonia films',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .option(
      '--data <root>',
      'data folder with train/{NORMAL,PNEUMONIA}: its validation split (the model trained on it)',
    )
    .option('--images <dir>', 'instead of --data: a folder of pneumonia films')
    .option('--layers <names...>', "more layers to compare (the heat map's layer and last_conv always are)")
    .option('--limit <n>', `films (default ${DEFAULT_HEATMAP_FILMS})`, positiveInt)
    .option('--out <file>', 'also write the Markdown table to this file')
    .option('--json', 'print the result as one JSON object')
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      if (!o.data === !o.images) throw new InvalidArgumentError('pass one of --data and --images');
      if (o.out) ensureWritableFile(o.out, '--out');
      const model = path.resolve(checkModelOption(o.model));
      await initEngine(o.threads);
      const films = o.images ? { images: o.images } : { data: o.data, cacheDir: o.cache };
      const result = await heatmapTable(model, films, {
        layers: o.layers,
        limit: o.limit,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      const table = heatmapMarkdown(result);
      if (o.out) fs.writeFileSync(o.out, `${table}\n`);
      process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : `${table}\n`);
    });
}
