// `cxr ood fit`, `fit-layout`, `score` and `evaluate`: the not-a-chest-X-ray gate of a trained model.
// `cxr ood fit`: fits the gate (ood.json in its folder); `fit-layout`: the image checks' layout statistic.
// `cxr ood score`: shows how the gate and the image checks see some files.
// `cxr ood evaluate`: false alarms on real films and refusals of generated non-X-rays.
import { Command } from 'commander';
import { intInRange, numberInRange, positiveInt } from './args';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { fitLayout, renderLayoutModule } from '../explain/film_layout_fit';
import { DEFAULT_OOD_PERCENTILE, fitOodFromData } from '../explain/ood_fit';
import { evaluateGate, formatGateReport } from '../robustness/ood_evaluate';
import { modelAndDataRoot } from '../models/io';
import { modelDirOrDefault } from '../paths';
import { DecodeError, readErrorCode, readImageFile } from '../data/decode';
import { InputError } from '../predict/errors';
import { Predictor } from '../predict/predictor';
import { readFailure } from './evaluate_pipeline';
import { checkModelOption } from './model_folder';
import { ensureWritableFile } from './writable';

const percentileArg = numberInRange(0, 100, 'both');
const countArg = intInRange(1, 1000);

export function register(program: Command): void {
  const ood = program.command('ood').description('the not-a-chest-X-ray gate (out-of-distribution detection)');

  ood
    .command('fit')
    .summary('fit the gate on the training split and its threshold on validation')
    .description(
      'fit the gate on the training split the model was trained on (same patient split; each film also under ' +
        'one mild change), threshold from its validation split (clean and under every mild change, ' +
        'class-balanced); writes ood.json',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .option('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA} (default: the one recorded in cxr.json)')
    .option(
      '--percentile <p>',
      'class-balanced percentile of the validation scores (clean and mildly changed films) used as the threshold',
      percentileArg,
      DEFAULT_OOD_PERCENTILE,
    )
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      checkModelOption(o.model);
      const { dir, root } = modelAndDataRoot(modelDirOrDefault(o.model), o.data);
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
          `(class-balanced p${fitted.percentile} of ${v.n} validation films, clean and mildly changed; ` +
          `median ${v.p50.toFixed(2)})`,
      );
    });

  ood
    .command('fit-layout')
    .summary("fit the image checks' layout statistic on the training split")
    .description(
      "fit the image checks' layout statistic on the training split's films (clean and mildly changed; no " +
        'non-X-ray image is used) and print it as the module src/explain/film_layout_fitted.ts',
    )
    .requiredOption('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA}')
    .option('--out <file>', 'write the module here instead of printing it')
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .action(async (o) => {
      if (o.out) ensureWritableFile(o.out, '--out');
      const log = (l: string) => process.stderr.write(l + '\n');
      const fit = await fitLayout(o.data, { cacheDir: o.cache, log });
      const text = renderLayoutModule(fit, path.basename(path.resolve(o.data)));
      if (o.out) fs.writeFileSync(o.out, text);
      else process.stdout.write(text);
      const perClass = fit.fitted.perClassThreshold.map((t) => t.toFixed(2)).join(', ');
      log(`layout threshold ${fit.threshold.toFixed(2)} (per class ${perClass})`);
    });

  ood
    .command('evaluate')
    .summary('how often the gate stops real chest films and refuses other images')
    .description(
      "measure the gate: how often it stops real chest films (the model's validation split, the data " +
        "folder's val split, mildly changed validation films) and how often it refuses generated images " +
        'that are not chest films, per kind',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .option('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA} (default: the one recorded in cxr.json)')
    .option('--per-kind <n>', 'generated non-X-ray images per kind', countArg, 32)
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .option('--json', 'print one JSON object instead of the table')
    .option(
      '--check',
      'exit code 1 when a bar is not met (false alarms in-sample or on the held-out estimate, refusals per kind)',
    )
    .action(async (o) => {
      checkModelOption(o.model);
      const { dir, root } = modelAndDataRoot(modelDirOrDefault(o.model), o.data);
      await initEngine(o.threads);
      const report = await evaluateGate(dir, {
        dataRoot: root,
        perKind: o.perKind,
        cacheDir: o.cache,
        log: (l) => process.stderr.write(l + '\n'),
      });
      process.stdout.write((o.json ? JSON.stringify(report) : formatGateReport(report)) + '\n');
      if (o.check && !report.bars.met) process.exitCode = 1;
    });

  ood
    .command('score')
    .description('score files with the gate and the image checks (exit code 0 even when files are flagged)')
    .argument('<files...>', 'JPEG, PNG or DICOM files')
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .action(async (files: string[], o) => {
      checkModelOption(o.model);
      const p = await Predictor.load(path.resolve(modelDirOrDefault(o.model)));
      try {
        for (const n of p.notes) process.stderr.write(`note: ${n}\n`);
        for (const f of files) {
          try {
            const r = await p.predict(await readImageFile(f));
            const score = r.ood ? `${r.ood.score.toFixed(2)} / ${r.ood.threshold.toFixed(2)}` : 'n/a';
            process.stdout.write(`${f}\t${score}\t${r.warnings.length ? r.warnings.join('; ') : 'ok'}\n`);
          } catch (e) {
            // An unreadable or too large file (read as `cxr predict` reads one: size-checked before it is read,
            // a read failure said in words) or a bad image is reported; anything else is a bug.
            if (e instanceof DecodeError) {
              // A file named on the command line that is not there is just that, not one gone since a listing.
              const why =
                readErrorCode(e) === 'ENOENT' ? 'no such file' : e.code === 'READ_FAILED' ? readFailure(e) : e.detail;
              process.stdout.write(`${f}\terror\t${why}\n`);
            } else if (e instanceof InputError) process.stdout.write(`${f}\terror\t${e.message}\n`);
            else throw e;
          }
        }
      } finally {
        p.dispose();
      }
    });
}
