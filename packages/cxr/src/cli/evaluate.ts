// `cxr evaluate --model DIR --data DIR [--split NAME] --json`: a model's figures on a labelled split.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { DatasetLayoutError } from '../data/dataset';
import { positiveInt } from './args';
import { initEngine } from '../engine';
import { formatMetricsTable } from '../eval/format';
import { formatGroupTable, groupPattern } from '../eval/groups';
import { type EvaluationResult, runEvaluation } from './evaluate_run';
import { modelDirOrDefault } from '../paths';
import { checkModelOption } from './model_folder';
import { ensureWritableDir } from './writable';
import { setAsideShown, STATUS_WORDS } from '../report/evaluation_notes';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate a model on a labelled folder (NORMAL/ and PNEUMONIA/, or a Kaggle root with --split)')
    .option('--model <dir>', 'model folder (default: the shipped model)')
    .requiredOption('--data <dir>', 'data folder')
    .option(
      '--split <name>',
      'split inside a Kaggle root (default: test, or the only split); `validation` on a training root means ' +
        "the model's own patient-level validation split, the one its thresholds were chosen on",
    )
    .option('--operating-point <name>', "screening or balanced (default: the model's)")
    .option(
      '--out <dir>',
      'also write predictions/<split>.json and metrics/<split>.json here (e.g. a run folder, for `cxr report`; ' +
        "a split named val or train is written as eval-val / eval-train, never over the run's own validation metrics)",
    )
    .option(
      '--overwrite',
      'replace an evaluation of other films, or of the same films by another model, that --out holds under the ' +
        'same name (without it that is refused)',
    )
    .option(
      '--groups <regex>',
      "also report specificity and sensitivity per group of films: the regular expression's first capture group " +
        "on each file name (e.g. '^(NORMAL2|IM|person)' for the Kaggle file-name series)",
    )
    .option(
      '--period-groups',
      'also report them per file-name series and sparse or dense stretch of patient numbers (the periods ' +
        '`cxr train --period-balance` evens out)',
    )
    .option('--json', 'print one JSON object')
    .option('--threads <n>', 'engine threads', positiveInt)
    .action(async (o) => {
      if (o.overwrite && !o.out) throw new Error('--overwrite replaces an earlier evaluation in --out: give --out DIR');
      if (o.out) ensureWritableDir(o.out, '--out');
      if (o.groups !== undefined && o.periodGroups) throw new Error('--groups and --period-groups: choose one');
      const groups = o.groups === undefined ? undefined : groupPattern(o.groups);
      checkModelOption(o.model);
      await initEngine(o.threads);
      const warn = (l: string) => process.stderr.write(l + '\n');
      const m = await runEvaluation({
        modelDir: modelDirOrDefault(o.model),
        data: o.data,
        split: o.split,
        operatingPoint: o.operatingPoint,
        groups,
        periodGroups: !!o.periodGroups,
        out: o.out,
        overwrite: !!o.overwrite,
        progress: !o.json && process.stderr.isTTY,
        warn,
        wrote: (f) => warn(`wrote ${f}`),
      }).catch((e) => {
        throw withLabelsFileHint(e, o.data);
      });
      if (o.json) process.stdout.write(JSON.stringify(m) + '\n');
      else
        process.stdout.write(
          `model ${m.model.name} (${m.model.version}), operating point ${m.operatingPoint}, on ${m.source}\n` +
            // The pipeline's notes are on stderr already (as they are found): the table keeps the metrics' own.
            formatMetricsTable({ ...m, notes: m.notes.filter((n) => !m.pipelineNotes.includes(n)) }) +
            '\n' +
            overlapLines(m) +
            pipelineLines(m) +
            setAsideLines(m, o.out) +
            unreadableLines(m) +
            (m.groups ? `\nper group (at the same threshold):\n${formatGroupTable(m.groups)}\n` : ''),
        );
    });
}

/**
 * Films the model has seen, once more under the table it makes optimistic (the full warning is on stderr, said
 * as it was found: a report piped to a file keeps this line).
 */
export function overlapLines(m: Pick<EvaluationResult, 'trainingOverlap'>): string {
  const o = m.trainingOverlap;
  if (!o) return '';
  const seen = [
    o.training.count ? `${o.training.count} ${o.training.count === 1 ? 'film' : 'films'} it trained on` : '',
    o.validation.count ? `${o.validation.count} of its validation split` : '',
  ].filter(Boolean);
  return `OPTIMISTIC: these films include ${seen.join(' and ')} (--json lists them under trainingOverlap)\n`;
}

/** What `cxr predict` and the server would say of the same films, and the metrics where they give a finding. */
function pipelineLines(m: EvaluationResult): string {
  const v = m.verdicts;
  const n = v.assessed + v.cannotAssess + v.outsidePopulation + v.refused;
  const head =
    `\nthe prediction pipeline (cxr predict, the server) would assess ${v.assessed} of ${n} films:\n` +
    // A gate that is off refused nothing: the line names what did (the notes on stderr say why it is off).
    `${v.cannotAssess} "cannot assess" ` +
    (m.oodGate ? '(not-a-chest-X-ray gate, image checks), ' : '(image checks; the not-a-chest-X-ray gate is off), ') +
    `${v.outsidePopulation} outside the intended population` +
    (v.refused ? `, ${v.refused} refused with an input error` : '') +
    '\n';
  if (!m.assessedOnly || v.assessed === n) return head;
  return `${head}on the assessed films only:\n${formatMetricsTable(m.assessedOnly)}\n`;
}

/** How many set-aside films the text names; --json (and --out's metrics file) list them all. */
const SET_ASIDE_SHOWN = 5;

/** The first few films the pipeline would not assess, each with its status and reasons as `cxr predict` says them. */
function setAsideLines(m: EvaluationResult, out?: string): string {
  const { count, files } = m.setAside;
  if (count === 0) return '';
  const shown = setAsideShown(files, SET_ASIDE_SHOWN);
  // The status in brackets: an outside-population reason opens with the same words.
  const lines = shown.map(
    (f) => `  ${f.file} [${STATUS_WORDS[f.status]}]${f.reasons.length ? `: ${f.reasons.join('; ')}` : ''}\n`,
  );
  const more = count - shown.length;
  const where = out ? `, as does the metrics file under ${path.join(out, 'metrics')}` : '';
  return (
    `\nthe ${count} ${count === 1 ? 'film' : 'films'} it would not assess, and why:\n` +
    lines.join('') +
    (more > 0 ? `  ... and ${more} more (--json lists them all under setAside${where})\n` : '')
  );
}

/** The files no reader could read, each with why: they are in none of the numbers above. */
function unreadableLines(m: EvaluationResult): string {
  const { count, files } = m.unreadable;
  if (count === 0) return '';
  const head = `\n${count} ${count === 1 ? 'file' : 'files'} could not be read (left out of every number above):\n`;
  return head + files.map((f) => `  ${f.file}: ${f.error}\n`).join('');
}

/**
 * A hospital's labels usually come as a spreadsheet of file and finding, and evaluate reads labels only from
 * where a film lies (NORMAL/ or PNEUMONIA/): a folder that holds a CSV gets told so, and how to lay it out,
 * rather than only that the layout is not the Kaggle one.
 */
export function withLabelsFileHint(e: unknown, data: string): unknown {
  // Only where --data itself has no layout: a class folder that cannot be read is not a labels-file mistake.
  // Its films in no class folder, not an empty split (NO_IMAGES) nor one to name (SPLIT_NEEDED), both laid out.
  if (!(e instanceof DatasetLayoutError) || e.code !== 'NO_LAYOUT' || e.root !== path.resolve(data)) return e;
  let csv: string[];
  try {
    csv = fs.readdirSync(data).filter((f) => /\.(csv|tsv)$/i.test(f));
  } catch {
    return e;
  }
  if (csv.length === 0) return e;
  const dir = path.resolve(data);
  return new Error(
    `${e.message}. ${path.join(dir, csv[0])} is not read: cxr evaluate takes each film's label from the folder ` +
      `it lies in, not from a labels file. Put (or link, \`ln -s\`) each film into ${path.join(dir, 'NORMAL')}/ or ` +
      `${path.join(dir, 'PNEUMONIA')}/ by its label, and give --data ${dir}`,
  );
}
