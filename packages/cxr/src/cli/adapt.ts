// `cxr adapt --model DIR --images DIR --out DIR [--prior] [--plain] [--class-mix M] [--min-images N] [--json]`: a
// model adapted to a new site from that site's unlabeled films (docs/site-adaptation.md), and
// `cxr adapt-reference --model DIR [--data DIR]`, which writes the reference statistics it adapts against.
import { Command } from 'commander';
import { intAtLeast, numberInRange, positiveInt } from './args';
import * as path from 'node:path';
import { adaptModel, DEFAULT_MIN_IMAGES } from '../adapt/adapt';
import type { ClassMix } from '../adapt/class_mix';
import { filmFolderProblem } from '../adapt/films';
import { initEngine } from '../engine';
import { BN_REFERENCE_FILE, writeBnReferenceFromData } from '../models/bn_reference';
import { modelAndDataRoot } from '../models/io';
import { modelDirOrDefault } from '../paths';
import { checkModelOption } from './model_folder';
import { ensureWritableDir } from './writable';

const shareArg = numberInRange(
  0,
  1,
  'both',
  "'auto', 'first', 'reference', or the share of pneumonia films, 0 < x < 1",
);

function classMixArg(v: string): ClassMix {
  return v === 'auto' || v === 'first' || v === 'reference' ? v : shareArg(v);
}

const minImagesArg = intAtLeast(2);

export function register(program: Command): void {
  program
    .command('adapt')
    .summary('adapt a model to a new site from its unlabeled films (writes a new model folder)')
    .description(
      'adapt a model to a new site from its unlabeled films: batch-norm statistics re-estimated on them (AdaBN), ' +
        'optionally the class prior (--prior); writes a new model folder',
    )
    .option('--model <dir>', 'source model folder, left unchanged (default: the shipped model)')
    .requiredOption(
      '--images <dir>',
      "folder tree of the site's films (JPEG, PNG, DICOM; searched recursively; no labels needed)",
    )
    .requiredOption('--out <dir>', 'new folder for the adapted model (must not exist or be empty)')
    .option(
      '--prior',
      "move the thresholds to the site's share of pneumonia films: the share the adaptation settled on (or " +
        '--class-mix), estimated from the adapted scores after plain AdaBN; trades sensitivity for specificity ' +
        'where the share is low (docs/site-adaptation.md)',
    )
    .option(
      '--plain',
      "plain AdaBN: the site's own statistics, even where the model has reference statistics (bn-reference.json)",
    )
    .option(
      '--class-mix <mix>',
      "the site's share of pneumonia films, against which its films are compared with the validation films: " +
        "'auto' estimates it from the films; a number gives it (e.g. 0.2); 'first' takes the estimate before " +
        "adapting, without searching where it settles, and 'reference' the validation films' own (about 0.74), " +
        'as before the reference kept the classes apart (both for comparison)',
      classMixArg,
      'auto',
    )
    .option('--min-images <n>', 'fewest usable films to adapt on', minImagesArg, DEFAULT_MIN_IMAGES)
    .option('--json', 'print one JSON object (the adaptation record)')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      // Before anything is made or loaded: a mistyped folder is said at once, by the option that named it.
      checkModelOption(o.model);
      const problem = filmFolderProblem(o.images);
      if (problem) throw new Error(`--images ${o.images}: ${problem}`);
      ensureWritableDir(o.out, '--out', { keep: false });
      await initEngine(o.threads);
      const log = (l: string) => process.stderr.write(l + '\n');
      const command = ['cxr', ...process.argv.slice(2)].join(' ');
      const r = await adaptModel({
        modelDir: path.resolve(modelDirOrDefault(o.model)),
        imagesDir: o.images,
        outDir: o.out,
        prior: !!o.prior,
        plain: !!o.plain,
        classMix: o.classMix,
        minImages: o.minImages,
        command,
        log,
      });
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            out: path.resolve(r.outDir),
            name: r.meta.name,
            version: r.meta.version,
            adaptation: r.adaptation,
            gate: r.gate,
            warnings: r.warnings,
          }) + '\n',
        );
      } else {
        const ops = Object.entries(r.meta.operatingPoints)
          .map(([k, op]) => `${k} ${op.threshold.toFixed(3)}`)
          .join(', ');
        process.stdout.write(
          `adapted model written to ${r.outDir} (version ${r.meta.version}): ${r.adaptation.films.used} films, ` +
            `${r.adaptation.bnLayers} batch-norm layers; thresholds ${ops}\n`,
        );
      }
    });

  program
    .command('adapt-reference')
    .summary("write a model folder's batch-norm reference, which 'cxr adapt' adapts against")
    .description(
      `write ${BN_REFERENCE_FILE} into a model folder: the batch-norm input statistics of its own validation ` +
        "films, which 'cxr adapt' adapts against (training and 'cxr ensemble' write it already)",
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .option('--data <root>', 'data folder with train/{NORMAL,PNEUMONIA} (default: the one recorded in cxr.json)')
    .option('--cache <dir>', 'preprocessed-image cache folder')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .action(async (o) => {
      checkModelOption(o.model);
      const { dir, root } = modelAndDataRoot(modelDirOrDefault(o.model), o.data);
      await initEngine(o.threads);
      const log = (l: string) => process.stderr.write(l + '\n');
      const ref = await writeBnReferenceFromData(dir, root, { cacheDir: o.cache, log });
      const layers = ref.members.reduce((k, m) => k + Object.keys(m.layers).length, 0);
      process.stdout.write(
        `${path.join(dir, BN_REFERENCE_FILE)} written: ${layers} batch-norm layers in ${ref.members.length} ` +
          `member(s), from ${ref.films.count} films of the ${ref.films.source}\n`,
      );
    });
}
