// `cxr backbone list | fetch`: the ImageNet backbones for transfer learning and their weights.
import type { Command } from 'commander';
import { BACKBONES, backboneCacheDir, backboneSpec, fetchWeights, locateWeights } from '../models/backbones';

function status(name: string): { where: string; path: string | null } {
  try {
    const w = locateWeights(backboneSpec(name));
    return w ? { where: w.source, path: w.path } : { where: 'missing', path: null };
  } catch (e) {
    return { where: `invalid: ${(e as Error).message}`, path: null };
  }
}

export function register(program: Command): void {
  const bb = program
    .command('backbone')
    .description('ImageNet backbones for transfer learning (cxr train --backbone NAME)');

  bb.command('list')
    .description(
      `backbones, their canonical weight URLs and whether the weights are here (cache: ${backboneCacheDir()})`,
    )
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const rows = BACKBONES.map((b) => ({
        name: b.name,
        title: b.title,
        inputSize: b.defaultInputSize,
        featureLayer: b.featureLayer,
        paramsM: b.paramsM,
        format: b.weights.format,
        url: b.weights.url,
        ...status(b.name),
      }));
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        process.stdout.write(
          `${r.name.padEnd(w)}  ${String(r.inputSize).padStart(3)} px  ${r.where.padEnd(10)}  ${r.title}\n`,
        );
      }
    });

  bb.command('fetch')
    .description(
      "download a backbone's ImageNet weights once into the cache (verified), or import a local copy with --weights",
    )
    .argument('<name>', 'backbone name (cxr backbone list)')
    .option('--weights <path>', 'a local copy to import instead of downloading (TF.js model folder or Keras .h5)')
    .option('--force', 'fetch again even if the cache has it')
    .action(async (name: string, opts: { weights?: string; force?: boolean }) => {
      const spec = backboneSpec(name);
      const got = await fetchWeights(spec, {
        from: opts.weights,
        force: opts.force,
        log: (l) => process.stderr.write(l + '\n'),
      });
      process.stdout.write(`${spec.name}: ${got.path}\n`);
    });
}
