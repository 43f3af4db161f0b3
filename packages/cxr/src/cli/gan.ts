// `cxr gan train | sample | check`: synthetic chest X-rays from a class-conditional GAN.
import { Command, Option } from 'commander';
import { numberInRange, positiveInt, positiveNumber, wholeNumber } from './args';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { ensureWritableDir } from './writable';

export function register(program: Command): void {
  const gan = program
    .command('gan')
    .description('class-conditional GAN: train it, sample X-rays, check for memorisation');

  gan
    .command('train')
    .description('train on the training part of the patient split (validation patients are never seen)')
    .requiredOption('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA}')
    .requiredOption('--out <dir>', 'GAN folder: generator/, gan.json, samples/, log.jsonl, checkpoints/, memorisation/')
    .addOption(new Option('--size <px>', 'image side').choices(['32', '64', '128']))
    .option('--epochs <n>', 'epochs', positiveInt)
    .option('--batch-size <n>', 'batch size', positiveInt)
    .option('--g-width <n>', 'generator width (channels of its finest hidden layer)', positiveInt)
    .option('--d-width <n>', 'discriminator width (channels of its first layer)', positiveInt)
    .option('--z-dim <n>', 'noise dimensions', positiveInt)
    .option('--lr <x>', 'Adam learning rate (both networks)', positiveNumber)
    .addOption(new Option('--loss <name>', 'GAN loss').choices(['bce', 'hinge']))
    .addOption(new Option('--balance <mode>', 'class balance of the batches').choices(['none', 'oversample']))
    .option('--limit-per-class <n>', 'use at most n images per class', wholeNumber)
    .option(
      '--seed <n>',
      'seed (split, order, noise, initial weights); a classifier that adds its images must use it as its split seed',
      wholeNumber,
    )
    .option(
      '--val-fraction <x>',
      "share of the training patients held out (the classifier's --val-fraction), 0.05 to 0.5 (default 0.15)",
      numberInRange(0.05, 0.5),
    )
    .addOption(
      new Option('--val-split <mode>', "validation patients, as the classifier's --val-split").choices([
        'random',
        'block',
      ]),
    )
    .option('--quick', 'small subset and narrow networks, 2 epochs (CI smoke run)')
    .option('--resume', 'continue from the last checkpoint in --out (--epochs may extend the run)')
    .option('--check <n>', 'samples per class for the memorisation check (0 = skip)', wholeNumber, 16)
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      ensureWritableDir(o.out, '--out', { keep: false });
      await initEngine(o.threads);
      const { QUICK } = await import('../gan/config.js');
      const { trainGan } = await import('../gan/train.js');
      // With --resume, --quick's epoch count is not asked for: the run goes on to its saved count (or --epochs).
      const { epochs: _quickEpochs, ...quickResumed } = QUICK;
      const config = Object.fromEntries(
        Object.entries({
          ...(o.quick ? (o.resume ? quickResumed : QUICK) : {}),
          ...Object.fromEntries(
            Object.entries({
              size: o.size && Number(o.size),
              epochs: o.epochs,
              batchSize: o.batchSize,
              gWidth: o.gWidth,
              dWidth: o.dWidth,
              zDim: o.zDim,
              lr: o.lr,
              loss: o.loss,
              balance: o.balance,
              limitPerClass: o.limitPerClass,
              seed: o.seed,
              valFraction: o.valFraction,
              valSplit: o.valSplit,
            }).filter(([, v]) => v !== undefined),
          ),
        }),
      );
      const r = await trainGan({
        data: o.data,
        out: path.resolve(o.out),
        config,
        resume: !!o.resume,
        checkPerClass: o.check,
      });
      process.stdout.write(`${path.resolve(o.out)}\n${r.grids.at(-1) ?? ''}\n`);
    });

  gan
    .command('sample')
    .description('write generated X-rays of one class as PNG files')
    .requiredOption('--gan-model <dir>', 'folder written by cxr gan train')
    .requiredOption('--n <n>', 'number of images', positiveInt)
    .requiredOption('--class <name>', 'NORMAL or PNEUMONIA')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'noise seed', wholeNumber, 1)
    .option('--size <px>', 'resize to this side (default: the GAN size)', positiveInt)
    .action(async (o) => {
      ensureWritableDir(o.out, '--out', { keep: false });
      await initEngine();
      const { sampleToFiles } = await import('../gan/sample.js');
      const files = await sampleToFiles({
        ganModel: path.resolve(o.ganModel),
        n: o.n,
        className: o.class,
        out: path.resolve(o.out),
        seed: o.seed,
        size: o.size,
      });
      process.stdout.write(files.join('\n') + '\n');
    });

  gan
    .command('check')
    .description('memorisation check: nearest training image of each sample vs. real-to-real distances')
    .requiredOption('--gan-model <dir>', 'folder written by cxr gan train')
    .requiredOption('--data <root>', 'the data folder the GAN was trained on')
    .option('--n <n>', 'samples per class', positiveInt, 32)
    .option('--seed <n>', 'noise seed', wholeNumber, 1)
    .option('--out <dir>', 'output folder (default: <gan-model>/memorisation)')
    .action(async (o) => {
      ensureWritableDir(o.out ?? path.join(o.ganModel, 'memorisation'), '--out', { keep: false });
      await initEngine();
      const { loadGenerator } = await import('../gan/generator_io.js');
      const { memorisationCheck } = await import('../gan/memorisation.js');
      const { loadTrainVal } = await import('../data/dataset_images.js');
      const dir = path.resolve(o.ganModel);
      const { model, meta } = await loadGenerator(dir);
      const c = meta.config;
      const { train, val } = await loadTrainVal(o.data, {
        size: c.size,
        valFraction: c.valFraction,
        valSplit: c.valSplit,
        seed: c.seed,
        limitPerClass: c.limitPerClass,
      });
      const s = await memorisationCheck(
        model,
        c.zDim,
        train,
        val,
        path.resolve(o.out ?? path.join(dir, 'memorisation')),
        { perClass: o.n, seed: o.seed },
      );
      model.dispose();
      process.stdout.write(`${s.verdict}\n${s.files.markdown}\n${s.files.pairs}\n`);
    });
}
