// `cxr robustness --model DIR --data DIR [--json] [--out DIR] [--limit N] [--seed S]`: the shift benchmark.
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { numberInRange, positiveInt, wholeNumber } from './args';
import { CHANGE_NAMES } from '../data/perturb_catalog';
import { initEngine } from '../engine';
import { overlapRecord } from '../eval/training_overlap';
import { readMeta } from '../models/io';
import { repoRoot } from '../paths';
import { benchmarkFolderProblem, isTrainingRoot } from '../robustness/images';
import { signedShift, writeRobustnessReport } from '../robustness/page';
import { runRobustness } from '../robustness/run';
import { checkModelOption } from './model_folder';
import { ensureWritableDir } from './writable';

const strength = numberInRange(0, 1, 'low');

/** Each strength read as every number option is (cli/args.ts): '0x1' or '1e0x' is refused, not read as 1. */
const strengthList = (v: string) =>
  v.split(',').map((s) => {
    try {
      return strength(s.trim());
    } catch {
      throw new InvalidArgumentError(`expected comma-separated strengths in (0, 1], got '${s.trim()}'`);
    }
  });

const changeList = (v: string) => {
  const xs = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (xs.length === 0)
    throw new InvalidArgumentError(`expected one or more change names (known: ${CHANGE_NAMES.join(', ')})`);
  const unknown = xs.filter((x) => !CHANGE_NAMES.includes(x));
  if (unknown.length)
    throw new InvalidArgumentError(`unknown change(s) ${unknown.join(', ')} (known: ${CHANGE_NAMES.join(', ')})`);
  return xs;
};

export function register(program: Command): void {
  program
    .command('robustness')
    .description(
      'score a model clean and under nuisance changes (exposure, blur, JPEG, borders, markers...) at graded strengths',
    )
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .requiredOption(
      '--data <dir>',
      'a NORMAL/PNEUMONIA folder, or the data root the model was trained on (its recorded validation split)',
    )
    .option('--json', 'print one JSON object on stdout')
    .option('--out <dir>', 'write robustness.json, plots and index.html here')
    // No default value: commander would print it beside "(default: all)", and absent already means all.
    .option('--limit <n>', 'at most N images per class, chosen by --seed (default: all)', wholeNumber)
    .option('--seed <s>', 'seed of the image choice and of the random changes', wholeNumber, 1)
    .option('--changes <list>', `only these changes (comma-separated: ${CHANGE_NAMES.join(', ')})`, changeList)
    .option('--strengths <list>', 'strengths in (0, 1] (default 0.33,0.67,1)', strengthList)
    .option('--outside <dir>', "the outside-check folder (default: Kaggle's val folder beside the data)")
    .option('--no-outside', 'skip the outside check')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      // --out first, as every command that writes a folder does; then the folders read, a missing one and a
      // file told apart by the option that named them.
      if (o.out) ensureWritableDir(o.out, '--out', { keep: false });
      const modelDir = checkModelOption(o.model);
      const dataProblem = benchmarkFolderProblem(o.data);
      if (dataProblem) throw new Error(`--data ${o.data}: ${dataProblem}`);
      if (typeof o.outside === 'string') {
        const problem = benchmarkFolderProblem(o.outside);
        if (problem) throw new Error(`--outside ${o.outside}: ${problem}`);
      }
      await initEngine(o.threads);
      const log = (l: string) => process.stderr.write(l + '\n');
      const { result, examples } = await runRobustness({
        modelDir,
        data: o.data,
        limit: o.limit,
        seed: o.seed,
        changes: o.changes,
        strengths: o.strengths,
        outside: o.outside === true ? undefined : o.outside,
        log,
        progress: !o.json && process.stderr.isTTY,
      });
      // A folder of films, not the training root's validation split: it may hold films the model learned (its
      // own train/ folder, say), whose figures hold up under every change. Warned as `cxr evaluate` warns.
      if (!isTrainingRoot(o.data)) {
        const films = result.data.files.map((f) => path.resolve(o.data, f));
        const overlap = await overlapRecord(readMeta(modelDir), films, o.data, repoRoot());
        if (overlap) log(overlap.warning);
      }
      if (o.out) {
        const files = await writeRobustnessReport(result, examples, o.out);
        log(`wrote ${files.length} files; open ${files[files.length - 1]}`);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      const s = result.summary;
      const p = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
      const lines = result.rows.map(
        (r) =>
          `${r.change.padEnd(14)} ${r.strength.toFixed(2)}  auc ${r.auc?.toFixed(3) ?? 'n/a'}  ` +
          `sens ${p(r.sensitivity).padStart(6)}  spec ${p(r.specificity).padStart(6)}  ` +
          `ΔN ${signedShift(r.normalScoreShift)}  ΔP ${signedShift(r.pneumoniaScoreShift)}  ` +
          `ece ${r.ece.toFixed(3)}`,
      );
      lines.push(
        '',
        `robust specificity ${p(s.robustSpecificity)} (clean ${p(s.cleanSpecificity)}), ` +
          `worst ${p(s.worstSpecificity?.value ?? null)}` +
          (s.worstSpecificity ? ` (${s.worstSpecificity.change} at ${s.worstSpecificity.strength.toFixed(2)})` : '') +
          `, mean ECE ${s.meanEce.toFixed(3)}, mean NORMAL-score shift ${signedShift(s.meanNormalScoreShift)}`,
      );
      if (result.outside)
        lines.push(
          `outside check (${result.outside.data}, n ${result.outside.n}): ` +
            `auc ${result.outside.auc?.toFixed(3) ?? 'n/a'}, ` +
            `sens ${p(result.outside.sensitivity)}, spec ${p(result.outside.specificity)}`,
        );
      process.stdout.write(lines.join('\n') + '\n');
    });
}
