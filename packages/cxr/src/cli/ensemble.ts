// `cxr ensemble --members A B C --out DIR [--name NAME] [--data DIR] [--float16] [--soup]`: one model folder
// averaging the members' logits (or, with --soup, their weights), with temperature and operating points
// re-chosen on their shared validation split.
import { Command } from 'commander';
import { positiveInt } from './args';
import * as path from 'node:path';
import { initEngine } from '../engine';
import { checkModelOption } from './model_folder';
import { ensureWritableDir } from './writable';
import { buildEnsemble } from '../train/ensemble';
import { buildSoup } from '../train/soup';

export function register(program: Command): void {
  program
    .command('ensemble')
    .summary('combine trained models into one model folder that averages them')
    .description(
      'combine trained models (same input size and preprocessing, same validation split) into one model folder ' +
        'that averages their logits; temperature and operating points are re-chosen on the shared validation split',
    )
    .requiredOption('--members <dirs...>', 'two or more model folders')
    .requiredOption('--out <dir>', 'new folder for the ensemble (must not exist or be empty)')
    .option('--name <name>', 'model name (default: ensemble-<member names>)')
    .option('--data <root>', 'data folder with train/ the members were trained on (default: the one they recorded)')
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option(
      '--float16',
      "store the members' weights in half precision (half the bytes), calibrated on the rounded weights",
    )
    .option(
      '--soup',
      "average the members' weights into one model (a model soup: one model's inference time); members must " +
        'share an architecture and one fine-tuning start (trained with --head-first), or it is refused',
    )
    .option('--json', 'print one JSON object: the new folder, name, version, temperature and operating points')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      ensureWritableDir(o.out, '--out', { keep: false });
      for (const member of o.members as string[]) checkModelOption(member, '--members');
      await initEngine(o.threads);
      const command = ['cxr', ...process.argv.slice(2)].join(' ');
      const meta = await (o.soup ? buildSoup : buildEnsemble)({
        members: o.members,
        outDir: o.out,
        name: o.name,
        data: o.data,
        cacheDir: o.cache,
        weights: o.float16 ? 'float16' : 'float32',
        command,
        log: (l) => process.stderr.write(l + '\n'),
      });
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            out: path.resolve(o.out),
            name: meta.name,
            version: meta.version,
            temperature: meta.temperature,
            operatingPoints: meta.operatingPoints,
          }) + '\n',
        );
      }
    });
}
