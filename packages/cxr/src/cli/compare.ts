// `cxr compare --models A B --data DIR [--split NAME] --json`: two models on the same labelled films, paired.
import { Command } from 'commander';
import { positiveInt } from './args';
import { signed } from '../eval/format';
import { initEngine } from '../engine';
import { modelDirOrDefault } from '../paths';
import type { Interval } from '../eval/stats';
import type { PairedRate } from '../eval/paired';
import { type ComparisonResult, type CompareSide, runComparison } from './compare_run';
import { overlapLines, withLabelsFileHint } from './evaluate';
import { checkModelOption } from './model_folder';
import { ensureWritableDir } from './writable';

export function register(program: Command): void {
  program
    .command('compare')
    .summary('compare two models on one labelled folder, with paired tests')
    .description(
      'compare two models on the same labelled folder (NORMAL/ and PNEUMONIA/, or a Kaggle root with --split): ' +
        "each one's figures, the paired AUC difference and McNemar tests of sensitivity and specificity",
    )
    .requiredOption('--models <dirs...>', 'the two model folders, A then B (differences are B − A)')
    .requiredOption('--data <dir>', 'data folder')
    .option(
      '--split <name>',
      'split inside a Kaggle root (default: test, or the only split); `validation` on a training root means ' +
        "each model's own patient-level validation split (the same films only where both record the same split)",
    )
    .option('--operating-point <name>', "screening or balanced, on both (default: each model's own)")
    .option('--out <dir>', 'also write comparisons/<split>.json and its page, comparisons/<split>.html, here')
    .option('--overwrite', 'replace a comparison of other films or models that --out holds under the same name')
    .option('--json', 'print one JSON object')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      const models = o.models as string[];
      if (models.length !== 2)
        throw new Error(`--models takes two model folders, A and B; got ${models.length}: ${models.join(' ')}`);
      if (o.overwrite && !o.out) throw new Error('--overwrite replaces an earlier comparison in --out: give --out DIR');
      if (o.out) ensureWritableDir(o.out, '--out');
      for (const dir of models) checkModelOption(dir, '--models');
      await initEngine(o.threads);
      const warn = (l: string) => process.stderr.write(l + '\n');
      const r = await runComparison({
        models: [modelDirOrDefault(models[0]), modelDirOrDefault(models[1])],
        data: o.data,
        split: o.split,
        operatingPoint: o.operatingPoint,
        out: o.out,
        overwrite: !!o.overwrite,
        progress: !o.json && process.stderr.isTTY,
        warn,
        wrote: (f) => warn(`wrote ${f}`),
      }).catch((e) => {
        throw withLabelsFileHint(e, o.data);
      });
      process.stdout.write(o.json ? JSON.stringify(r) + '\n' : formatComparison(r));
    });
}

const rate = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
const ci = (c: Interval | null | undefined) => (c ? ` [${c[0].toFixed(3)}, ${c[1].toFixed(3)}]` : '');
const signedCi = (c: Interval | null) => (c ? ` [${signed(c[0], 4)}, ${signed(c[1], 4)}]` : '');

/** The table a person reads: each model's figures, then the paired differences and their tests. */
export function formatComparison(r: ComparisonResult): string {
  const head = (tag: string, s: CompareSide) =>
    `${tag}: ${s.dir}: ${s.model.name} (${s.model.version}), operating point ${s.operatingPoint} ` +
    `(threshold ${s.metrics.threshold.toFixed(4)})\n`;
  const row = (name: string, a: string, b: string, diff: string) =>
    `${name.padEnd(12)}${a.padEnd(28)}${b.padEnd(28)}${diff}\n`;
  const m = (s: CompareSide, k: 'auc' | 'accuracy' | 'sensitivity' | 'specificity') =>
    rate(s.metrics[k]) + ci(s.metrics.ci95[k]);
  const d = r.aucDifference;
  const test = (p: PairedRate) =>
    p.a === null || p.b === null
      ? 'n/a'
      : `${signed(p.b - p.a, 4)}  McNemar exact p = ${p.p === null ? 'n/a' : p.p.toPrecision(3)} ` +
        `(right by A alone ${p.onlyA}, by B alone ${p.onlyB}, of ${p.n})`;
  const pneumonia = r.sensitivity.n;
  return (
    head('A', r.a) +
    head('B', r.b) +
    `on ${r.source}: ${r.n} films (${pneumonia} pneumonia, ${r.specificity.n} normal), the same films for both\n\n` +
    row('', 'A', 'B', 'B − A') +
    row(
      'AUC',
      m(r.a, 'auc'),
      m(r.b, 'auc'),
      d ? `${signed(d.difference, 4)}${signedCi(d.ci95)} (paired bootstrap)` : 'n/a',
    ) +
    row('accuracy', m(r.a, 'accuracy'), m(r.b, 'accuracy'), signed(r.b.metrics.accuracy - r.a.metrics.accuracy, 4)) +
    row('sensitivity', m(r.a, 'sensitivity'), m(r.b, 'sensitivity'), test(r.sensitivity)) +
    row('specificity', m(r.a, 'specificity'), m(r.b, 'specificity'), test(r.specificity)) +
    '\neach model at its own threshold; intervals 95 %; a McNemar test counts only the films the two call ' +
    'differently\n' +
    notesOf('A', r.a) +
    notesOf('B', r.b) +
    prefixed('A', overlapLines(r.a)) +
    prefixed('B', overlapLines(r.b))
  );
}

/**
 * A side's metrics' own notes ("perfectly separated: the interval means nothing"), each under the table it
 * qualifies; the pipeline's were said on stderr as they were found, as `cxr evaluate` says them.
 */
const notesOf = (tag: string, s: CompareSide) =>
  s.notes
    .filter((n) => !s.pipelineNotes.includes(n))
    .map((n) => `${tag}: note: ${n}\n`)
    .join('');

const prefixed = (tag: string, text: string) => (text ? `${tag}: ${text}` : '');
