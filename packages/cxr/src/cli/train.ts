// `cxr train`: one command per experiment of the seed project, and cxr's own recipe.
import { AUGMENT_PRESET_NAMES } from '../data/augment';
import { NORMALIZE_MODES } from '../data/preprocess';
import { ARCH_NAMES } from '../models';
import { TTA_VIEWS } from '../models/tta_views';
import { Command, InvalidArgumentError, Option, type OptionValues } from 'commander';
import { colonFields, intInRange, numberInRange, positiveInt, positiveNumber, wholeNumber } from './args';
import { ensureWritableDir } from './writable';
import { sayHowToContinue } from './interrupt';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { readState } from '../train/checkpoint';
import { type RunOptions, runTraining } from '../train/run';
import { trainSeedEnsemble, unfinishedMember } from '../train/seed_ensemble';
import { RECIPES } from '../train/presets';

/**
 * A recipe's name, one of the presets' own: RECIPES['toString'] is Object's, which resolveRecipe took for a recipe
 * with nothing in it, and `--recipe toString` trained the defaults without a word.
 */
function recipeName(v: string): string {
  if (!Object.hasOwn(RECIPES, v))
    throw new InvalidArgumentError(`unknown recipe (known: ${Object.keys(RECIPES).join(', ')})`);
  return v;
}

// mixup's Beta(alpha, alpha): the recipe takes 0 < alpha <= 10.
const alphaArg = numberInRange(0, 10, 'low');

export function register(program: Command): void {
  program
    .command('train')
    .description('train a model on a Kaggle-layout data folder (validation carved out of train by patient)')
    .requiredOption('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA}')
    .requiredOption('--out <dir>', 'run folder: model, checkpoints, log.jsonl, report')
    .option('--recipe <name>', `named recipe (${Object.keys(RECIPES).join(', ')})`, recipeName)
    .addOption(new Option('--model <arch>', 'architecture trained from scratch').choices(ARCH_NAMES))
    .addOption(
      new Option('--balance <mode>', 'class balancing').choices(['none', 'class-weights', 'oversample', 'undersample']),
    )
    .addOption(new Option('--augment <preset>', 'augmentation preset').choices(AUGMENT_PRESET_NAMES))
    .addOption(new Option('--tta <view...>', 'test-time views averaged at prediction').choices(TTA_VIEWS))
    .option('--epochs <n>', 'epochs', positiveInt)
    .option('--batch-size <n>', 'batch size', positiveInt)
    .addOption(
      new Option('--optimizer <name>', "optimizer (default: the recipe's, else adam)").choices([
        'rmsprop',
        'adam',
        'sgd',
      ]),
    )
    .option('--lr <x>', 'learning rate', positiveNumber)
    .addOption(
      new Option('--schedule <name>', 'learning-rate schedule').choices(['constant', 'plateau', 'cosine', 'onecycle']),
    )
    .option('--input-size <px>', 'model input size, 32 to 512 pixels', intInRange(32, 512))
    .option('--label-smoothing <x>', 'label smoothing, 0 to 0.5', numberInRange(0, 0.5))
    .option('--patience <n>', 'early stopping patience in epochs (0 = off)', wholeNumber)
    .option('--limit-per-class <n>', 'use at most n training images per class (quick runs; 0 = all)', wholeNumber)
    .option('--seed <n>', 'seed for the split, order and augmentation', wholeNumber)
    .option(
      '--split-seed <n>',
      'seed of the patient split alone (ensemble members share one validation split)',
      wholeNumber,
    )
    .addOption(
      new Option('--normalize <mode>', 'per-image intensity normalisation of the input').choices([...NORMALIZE_MODES]),
    )
    .option(
      '--val-fraction <x>',
      'share of the training patients held out for validation, 0.05 to 0.5 (default 0.15)',
      numberInRange(0.05, 0.5),
    )
    .addOption(
      new Option(
        '--val-split <mode>',
        'validation patients: random, or block (lowest patient numbers of each series)',
      ).choices(['random', 'block']),
    )
    .option(
      '--backbone <name>',
      'transfer learning from an ImageNet backbone: inception_v3, mobilenet_v2_<alpha>, mobilenet_v1_<alpha>, ' +
        "or 'auto' (cxr backbone list)",
    )
    .option(
      '--weights <path>',
      'local backbone weights (TF.js model folder or Keras .h5) instead of the cache/download',
    )
    .option(
      '--fine-tune <blocks:epochs:lr>',
      'after the head, fine-tune the top backbone blocks, e.g. 2:4:1e-4',
      (v) => {
        const [blocks, epochs, lr] = colonFields(v, 'blocks:epochs:lr', [positiveInt, positiveInt, positiveNumber]);
        return { blocks, epochs, lr };
      },
    )
    .option(
      '--end-to-end',
      'with --backbone: train the whole model (batch norm too) from the first step, with every from-scratch ' +
        'option (--ema, --period-balance, the shift augmentation), instead of head first',
    )
    .option(
      '--head-first <epochs:lr>',
      'with --end-to-end: train the head alone on the frozen backbone first (a linear probe), e.g. 1:5e-3',
      (v) => {
        const [epochs, lr] = colonFields(v, 'epochs:lr', [positiveInt, positiveNumber]);
        return { epochs, lr };
      },
    )
    .option('--gan-images <n>', "generated images per class added to the training set, or 'balance'", (v) =>
      v === 'balance' ? v : wholeNumber(v),
    )
    .option('--gan-model <dir>', 'GAN folder (cxr gan train) that makes the --gan-images')
    .option('--ema <decay>', 'finish with an exponential moving average of the weights, e.g. 0.998 per step', (v) => ({
      method: 'ema',
      decay: numberInRange(0, 1, 'both')(v),
    }))
    .option('--mix <method:alpha>', 'mixup or cutmix per batch, labels mixed alike, e.g. mixup:0.2', (v) => {
      const [method, alpha, ...rest] = v.split(':');
      if ((method !== 'mixup' && method !== 'cutmix') || alpha === undefined || rest.length > 0)
        throw new InvalidArgumentError(`expected mixup:ALPHA or cutmix:ALPHA, got '${v}'`);
      return { method, alpha: alphaArg(alpha) };
    })
    .option(
      '--period-balance <window:max[:power]>',
      'draw each class evenly over its patient-number periods: stretch half-width, largest weight and the power ' +
        'the sparseness ratio is raised to (default 1), e.g. 25:4 or 25:8:2',
      (v) => {
        const [window, maxWeight, power] = colonFields(
          v,
          'window:max:power',
          [intInRange(1, 1000), numberInRange(1, 20), numberInRange(0.5, 4)],
          2,
        );
        return { window, maxWeight: maxWeight ?? 4, power: power ?? 1 };
      },
    )
    .option(
      '--seeds <n...>',
      'train one member per seed on one patient split (--split-seed, default the first seed) and combine them ' +
        'with cxr ensemble into --out; only the first member fits the OOD gate',
      (v: string, prev: number[] = []) => [...prev, wholeNumber(v)],
    )
    .option('--members-dir <dir>', "with --seeds: where the members are trained (default '<out>-members')")
    .option(
      '--soup',
      "with --seeds: average the members' weights into one model (cxr ensemble --soup) instead of their logits",
    )
    .option('--no-gate', 'do not fit the not-a-chest-X-ray gate (cxr ood fit can fit it later)')
    .option('--name <name>', 'model name recorded in cxr.json')
    .option('--resume', 'continue an interrupted run in --out from its last checkpoint')
    .option('--no-report', 'do not write the HTML/PNG report')
    .option(
      '--json',
      'end with one JSON summary line on stdout (the model folder, name, version, epochs, seconds, operating points)',
    )
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      // A from-scratch --model and a backbone (--backbone, or the recipe's own) exclude each other: training made
      // the model a transfer one and dropped --model without a word, so another network trained than was asked.
      const backbone = o.backbone ?? (o.recipe ? RECIPES[o.recipe].recipe.backbone : undefined);
      if (o.model !== undefined && backbone !== undefined) {
        const from = o.backbone ? '--backbone' : `--recipe ${o.recipe}`;
        throw new Error(
          `--model ${o.model} is an architecture trained from scratch, and ${from} transfers from the ImageNet ` +
            `backbone ${backbone}: give one of them`,
        );
      }
      // Checked, not kept: a refused run leaves no folder behind.
      ensureWritableDir(o.out, '--out', { keep: false });
      if (o.seeds)
        ensureWritableDir(o.membersDir ?? `${path.resolve(o.out)}-members`, '--members-dir', { keep: false });
      await initEngine(o.threads);
      const overrides = Object.fromEntries(
        Object.entries({
          arch: o.model,
          balance: o.balance,
          augment: o.augment,
          tta: o.tta,
          epochs: o.epochs,
          batchSize: o.batchSize,
          optimizer: o.optimizer,
          lr: o.lr,
          schedule: o.schedule,
          inputSize: o.inputSize,
          labelSmoothing: o.labelSmoothing,
          patience: o.patience,
          limitPerClass: o.limitPerClass,
          seed: o.seed,
          splitSeed: o.splitSeed,
          normalize: o.normalize,
          valSplit: o.valSplit,
          valFraction: o.valFraction,
          backbone: o.backbone,
          weights: o.weights && path.resolve(o.weights),
          fineTune: o.fineTune,
          endToEnd: o.endToEnd,
          headFirst: o.headFirst,
          ganImages: o.ganImages,
          ganModel: o.ganModel && path.resolve(o.ganModel),
          weightAverage: o.ema,
          mix: o.mix,
          periodBalance: o.periodBalance,
        }).filter(([, v]) => v !== undefined),
      );
      const run = {
        data: o.data,
        out: path.resolve(o.out),
        recipeName: o.recipe,
        overrides,
        name: o.name,
        resume: !!o.resume,
        report: o.report !== false,
        gate: o.gate !== false,
        command: ['cxr', ...process.argv.slice(2)].join(' '),
        refuseExisting: true,
      };
      const quiet = sayHowToContinue({
        where: () => whereStopped(run, o.seeds, o.membersDir),
        // What --resume needs (train/run.ts checkOut): a recipe.json or a checkpoint; a seed ensemble's members.
        resumable: () =>
          o.seeds !== undefined ||
          fs.existsSync(path.join(run.out, 'recipe.json')) ||
          fs.existsSync(path.join(run.out, 'checkpoints', 'last')),
      });
      try {
        await train(o, run);
      } finally {
        quiet();
      }
    });
}

/** The command once its options are read: a seed ensemble, or one run. */
async function train(o: OptionValues, run: RunOptions): Promise<void> {
  if (o.seeds) {
    const e = await trainSeedEnsemble({ ...run, seeds: o.seeds, membersDir: o.membersDir, soup: o.soup === true });
    const trained = e.members.filter((m) => m.trained).length;
    process.stderr.write(
      `${e.meta.name}: ${e.members.length} members (${trained} trained now) in ${e.seconds.toFixed(0)} s\n`,
    );
    if (o.json) {
      process.stdout.write(
        JSON.stringify({
          out: run.out,
          name: e.meta.name,
          version: e.meta.version,
          members: e.members,
          seconds: e.seconds,
          temperature: e.meta.temperature,
          operatingPoints: e.meta.operatingPoints,
        }) + '\n',
      );
    }
    return;
  }
  if (o.membersDir) throw new Error('--members-dir goes with --seeds');
  if (o.soup) throw new Error('--soup goes with --seeds: it averages the members --seeds trains');
  const r = await runTraining(run);
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        out: path.resolve(o.out),
        name: r.meta.name,
        version: r.meta.version,
        epochs: r.epochs,
        seconds: r.seconds,
        temperature: r.meta.temperature,
        operatingPoints: r.meta.operatingPoints,
      }) + '\n',
    );
  }
}

/**
 * Where a stopped run is, for the line Ctrl-C or SIGTERM leaves (cli/interrupt.ts): the epoch of its checkpoint,
 * which holds every epoch whose line was printed. A seed ensemble's own --out has no checkpoint: the line names
 * the member it was training (its number, seed and folder) and that member's epoch, which --resume goes on from.
 */
function whereStopped(run: RunOptions, seeds: number[] | undefined, membersDir: string | undefined): string {
  const epochOf = (dir: string, its: string) => {
    const state = readState(path.join(dir, 'checkpoints', 'last'));
    return state ? `after ${its}epoch ${state.epoch}` : `before ${its}first epoch ended`;
  };
  if (!seeds) return `interrupted ${epochOf(run.out, '')}`;
  const member = unfinishedMember({ ...run, seeds, membersDir });
  if (!member) return `interrupted while the ${seeds.length} trained members were combined into ${run.out}`;
  return (
    `interrupted in member ${member.number} of ${seeds.length} (seed ${member.seed}, in ${member.dir}) ` +
    epochOf(member.dir, 'its ')
  );
}
