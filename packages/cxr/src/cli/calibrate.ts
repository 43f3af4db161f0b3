// `cxr calibrate --model DIR --data ROOT`: calibration (temperature, or Platt's slope and bias) and
// operating points again, on the same patient-level validation split the model was trained with.
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BALANCED_RULES, DEFAULT_BALANCED_RULE } from '../eval/operating_points';
import { initEngine } from '../engine';
import { modelDirOrDefault } from '../paths';
import { TTA_VIEWS } from '../models/tta_views';
import { writeReport } from '../report/write_report';
import { recalibrate, SCALINGS } from '../train/calibrate';
import { positiveInt } from './args';
import { checkModelOption } from './model_folder';

export function register(program: Command): void {
  program
    .command('calibrate')
    .summary('refit calibration and operating points on the validation split')
    .description(
      'refit calibration and operating points of a model on its own validation split ' +
        '(not of a model cxr adapt wrote: calibrate its source model, then adapt again)',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .requiredOption('--data <root>', 'the Kaggle-layout data folder the model was trained on')
    .option(
      '--shifts',
      'choose them on the validation films pooled with mildly changed copies ' +
        '(exposure, gamma, contrast, blur, noise, JPEG, resampling, framing), so they hold on films from other sites',
    )
    .addOption(
      new Option(
        '--rule <name>',
        "how the balanced threshold is chosen: the middle of Youden's J plateau, or J's maximum (the earlier rule)",
      )
        .choices([...BALANCED_RULES])
        .default(DEFAULT_BALANCED_RULE),
    )
    .addOption(
      new Option(
        '--scaling <method>',
        'temperature: one divisor of the logit; platt: a divisor and a bias (corrects the level of the scores too)',
      )
        .choices([...SCALINGS])
        .default('temperature'),
    )
    .addOption(
      new Option(
        '--tta <view...>',
        "the test-time views averaged at prediction, replacing the model's (its calibration is fitted with them)",
      ).choices(TTA_VIEWS),
    )
    .option(
      '--json',
      'print one JSON object: the new temperature, logit bias, operating points, validation metrics ' +
        'and the report rewritten (null when the folder has none)',
    )
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      checkModelOption(o.model);
      await initEngine(o.threads);
      const model = path.resolve(modelDirOrDefault(o.model));
      const log = (l: string) => process.stderr.write(l + '\n');
      const c = await recalibrate(model, o.data, log, {
        shifts: o.shifts === true,
        rule: o.rule,
        scaling: o.scaling,
        tta: o.tta,
      });
      // The folder's report shows the thresholds and validation figures just replaced: write it again,
      // as `cxr report` does, rather than leave a page that contradicts cxr.json and the model card.
      const page = path.join(model, 'report', 'index.html');
      let report: string | null = null;
      if (fs.existsSync(page)) {
        // The calibration is written by now: a report that cannot be redrawn is a warning, not a failure.
        try {
          const r = await writeReport(model);
          for (const w of r.warnings) log(`warning: ${w}`);
          report = r.files[r.files.length - 1];
          log(`report rewritten with the new calibration: ${report}`);
        } catch (e) {
          log(`warning: the calibration is saved, but the report could not be rewritten: ${(e as Error).message}`);
          log(`  run \`cxr report ${model}\` to try again`);
        }
      }
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            model,
            temperature: c.temperature,
            logitBias: c.bias,
            scaling: c.scaling,
            tta: c.tta,
            operatingPoints: c.operatingPoints,
            metrics: c.metrics,
            report,
          }) + '\n',
        );
      }
    });
}
