// `cxr predict PATH…`: predictions for a batch of files, one output row per file, in the order
// the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error, and the batch goes on.
//
// Exit status: 0 when at least one file got a prediction; 1 when none did (no files, or every
// file failed), and for usage errors or a model that cannot be loaded.
import { Command, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { defaultModelDir } from '../paths';
import { runBatch } from '../predict/batch';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

export function register(program: Command): void {
  program.command('predict')
    .description('predict JPEG, PNG or DICOM files (or folders of them): one row per file on stdout. ' +
      'A file that fails gets a row with its error and the batch goes on. ' +
      'Exit status 0 when at least one file got a prediction, 1 when none did.')
    .argument('<paths...>', 'files and folders')
    .option('--model <dir>', 'model folder (default: the shipped model, or $CXR_MODEL)')
    .option('-r, --recursive', 'descend into sub-folders')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'json']).default('csv'))
    .option('--heatmaps <dir>', 'write a Grad-CAM overlay PNG per file into this folder')
    .option('--operating-point <name>', 'threshold to call PNEUMONIA (default: the model\'s, usually balanced)')
    .addOption(new Option('--ood-policy <policy>', 'images that do not look like chest X-rays: warn, or refuse (an error row)').choices(['warn', 'refuse']).default('warn'))
    .option('--concurrency <n>', 'files in flight at once (default: number of cores)', positiveInt)
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .option('--no-progress', 'no progress bar (it is shown only on a terminal anyway)')
    .action(async (paths: string[], o) => {
      await initEngine(o.threads);
      const result = await runBatch({
        paths, modelDir: path.resolve(o.model ?? defaultModelDir()), recursive: !!o.recursive, format: o.format,
        heatmapDir: o.heatmaps, operatingPoint: o.operatingPoint, oodPolicy: o.oodPolicy, concurrency: o.concurrency,
        progress: o.progress === false ? false : undefined,
      });
      if (result.failed) process.stderr.write(`cxr predict: ${result.processed} predicted, ${result.failed} failed\n`);
      if (result.processed === 0) process.exitCode = 1;
    });
}
