// `cxr data …`: look at a chest_xray folder and prepare its preprocessed cache.
import type { Command } from 'commander';
import { positiveInt } from './args';
import { cacheImages, defaultCacheDir } from '../data/cache';
import { scanDataset } from '../data/dataset';
import { formatInspectReport, inspectDataset } from '../data/inspect';

export function register(program: Command): void {
  const data = program.command('data').description('inspect and preprocess chest X-ray data sets');

  data
    .command('inspect')
    .summary('counts per split and class, patients, image sizes, duplicates, unreadable files')
    .description(
      'counts per split and class, patients, image sizes, exact duplicates, DICOM films (read by evaluate and ' +
        'predict, not by train) and unreadable files',
    )
    .argument(
      '<root>',
      'a Kaggle chest_xray folder (train/val/test inside) or one split folder (NORMAL/ and PNEUMONIA/ inside)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (root: string, opts: { json?: boolean }) => {
      const report = await inspectDataset(root);
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatInspectReport(report)}\n`);
    });

  data
    .command('cache')
    .description(
      'decode every image once to SIZE×SIZE grayscale and store it in the cache, so training never decodes again',
    )
    .argument('<root>', 'a Kaggle chest_xray folder or one split folder')
    .option('-s, --size <px>', 'output side in pixels', positiveInt, 224)
    .option('--cache-dir <dir>', `cache folder (default: $CXR_CACHE or ${defaultCacheDir()})`)
    .option('--concurrency <n>', 'images decoded at once', positiveInt)
    .action(async (root: string, opts: { size: number; cacheDir?: string; concurrency?: number }) => {
      // The root is an argument here, not --data: the message names it alone.
      const records = await scanDataset(root, { option: '' });
      const splits = [...new Set(records.map((r) => r.split))];
      for (const split of splits) {
        const set = await cacheImages(
          records.filter((r) => r.split === split),
          {
            size: opts.size,
            cacheDir: opts.cacheDir,
            concurrency: opts.concurrency,
            name: split,
            // Filling the cache is this command's whole job: an unwritable one is an error here.
            mustWrite: true,
          },
        );
        const s = set.stats;
        // decoded + copied (+ identical copies) add up to the images; the skipped files are apart.
        const same = s.duplicates ? `, ${s.duplicates} identical to another file` : '';
        const how = s.reused ? 'already cached' : `${s.decoded} decoded, ${s.copied} copied from other packs${same}`;
        process.stdout.write(
          `${split}: ${set.length} images at ${opts.size}px (${how}; ${set.skipped.length} skipped) ` +
            `in ${s.seconds.toFixed(1)} s -> ${s.packFile}\n`,
        );
      }
    });
}
