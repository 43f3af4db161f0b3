// `cxr experiments seed --data ROOT [--quick]`
import { Command } from 'commander';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { DEFAULT_ROBUSTNESS_LIMIT, SEED_EXPERIMENTS, runSeedExperiments } from '../experiments/seed';

export function register(program: Command): void {
  const exp = program.command('experiments').description("reproduce the seed project's experiments");
  exp
    .command('seed')
    .description(`run ${SEED_EXPERIMENTS.join(', ')} in order and write a comparison table`)
    .requiredOption('--data <root>', 'Kaggle-layout data folder')
    .option('--out <dir>', 'output folder', 'runs/experiments')
    .option('--quick', 'small subset, 2 epochs, 64 px (smoke test)')
    .option('--only <names...>', 'run only these experiments')
    .option('--resume', 'skip finished experiments and resume interrupted ones')
    .option('--gan-model <dir>', 'a GAN from `cxr gan train`: also run the GAN rows')
    .option('--robustness', "also run `cxr robustness` on each run's validation split (columns in the comparison)")
    .option(
      '--robustness-limit <n>',
      'images per class for --robustness',
      (v) => parseInt(v, 10),
      DEFAULT_ROBUSTNESS_LIMIT,
    )
    .option('--threads <n>', 'engine threads', (v) => parseInt(v, 10))
    .action(async (o) => {
      await initEngine(o.threads);
      const { files } = await runSeedExperiments({
        data: o.data,
        out: path.resolve(o.out),
        quick: !!o.quick,
        only: o.only,
        resume: !!o.resume,
        ganModel: o.ganModel,
        robustness: o.robustness ? { limit: o.robustnessLimit } : undefined,
      });
      process.stdout.write(files.filter((f) => /\.(md|html)$/.test(f)).join('\n') + '\n');
    });
}
