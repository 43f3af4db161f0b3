// `cxr ood fit`: fits the not-a-chest-X-ray gate of a trained model (ood.json in its folder).
// `cxr ood score`: shows how the gate and the image checks see some files.
import { Command, InvalidArgumentError } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { fitOodFromData } from '../explain/ood_fit';
import { readMeta } from '../models/io';
import { defaultModelDir } from '../paths';
import { InputError } from '../predict/errors';
import { Predictor } from '../predict/predictor';

function percentileArg(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 100)) throw new InvalidArgumentError('a percentile between 0 and 100 (exclusive)');
  return n;
}

export function register(program: Command): void {
  const ood = program.command('ood').description('the not-a-chest-X-ray gate (out-of-distribution detection)');

  ood
    .command('fit')
    .description(
      'fit the gate on the training split the model was trained on (same patient split), ' +
        'threshold from its validation split; writes ood.json',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .option('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA} (default: the one recorded in cxr.json)')
    .option('--percentile <p>', 'validation percentile used as the threshold', percentileArg, 99)
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads (default: all cores)', (v) => parseInt(v, 10))
    .action(async (o) => {
      const dir = path.resolve(o.model ?? defaultModelDir());
      const root = o.data ?? recordedDataRoot(dir);
      if (!root) throw new Error(`${dir}: cxr.json records no data folder: pass --data`);
      await initEngine(o.threads);
      const log = (l: string) => process.stderr.write(l + '\n');
      const fitted = await fitOodFromData(dir, root, {
        percentile: o.percentile,
        cacheDir: o.cache,
        progress: process.stderr.isTTY === true,
        log,
      });
      const v = fitted.scores.validation;
      log(
        `ood.json written to ${dir}: ${fitted.dim} features from '${fitted.featureLayer}', ` +
          `shrinkage ${fitted.shrinkage.toFixed(3)}, threshold ${fitted.threshold.toFixed(2)} ` +
          `(p${fitted.percentile} of ${v.n} validation scores; median ${v.p50.toFixed(2)})`,
      );
    });

  ood
    .command('score')
    .description('score files with the gate and the image checks (exit code 0 even when files are flagged)')
    .argument('<files...>', 'JPEG, PNG or DICOM files')
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .action(async (files: string[], o) => {
      const p = await Predictor.load(path.resolve(o.model ?? defaultModelDir()));
      try {
        for (const n of p.notes) process.stderr.write(`note: ${n}\n`);
        for (const f of files) {
          try {
            const r = await p.predict(fs.readFileSync(f));
            const score = r.ood ? `${r.ood.score.toFixed(2)} / ${r.ood.threshold.toFixed(2)}` : 'n/a';
            process.stdout.write(`${f}\t${score}\t${r.warnings.length ? r.warnings.join('; ') : 'ok'}\n`);
          } catch (e) {
            // An unreadable file (fs errors carry a syscall) or a bad image is reported; anything else is a bug.
            if (!(e instanceof InputError) && !(e as NodeJS.ErrnoException).syscall) throw e;
            process.stdout.write(`${f}\terror\t${(e as Error).message}\n`);
          }
        }
      } finally {
        p.dispose();
      }
    });
}

/**
 * The data root recorded at training time, if it still exists (relative roots were relative to the
 * working directory).
 */
function recordedDataRoot(dir: string): string | undefined {
  const root = readMeta(dir).data.root;
  return typeof root === 'string' && fs.existsSync(root) ? root : undefined;
}
