// `cxr compare`: two models on the same labelled films, each scored by `cxr evaluate`'s own run (evaluate_run.ts),
// then compared film by film (eval/paired.ts). A comparison is only paired when both models scored the same films:
// one that a model could not read is a film the other is judged on alone, so that is refused, naming it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PairedComparison, comparePaired } from '../eval/paired';
import type { EvaluatedModel, Metrics } from '../eval/metrics_schema';
import { writeFileAtomic } from '../atomic_write';
import { makeOutputDir } from '../make_dirs';
import { sameFilms } from './films_source';
import { modelIdentity, readMeta } from '../models/io';
import { isTrainingRoot, validationRecords } from '../robustness/images';
import { type OverlapRecord, overlapRelativeTo } from '../eval/training_overlap';
import { evaluationFileName } from './evaluation_out';
import { type ComparedFilms, writeComparePage } from '../report/compare_page';
import { type EvaluationResult, runEvaluation, type ScoredFilms, VALIDATION_SPLIT } from './evaluate_run';

export interface CompareRunOptions {
  models: [string, string];
  data: string;
  split?: string;
  /** The same named point on both models; without it each model's own default. */
  operatingPoint?: string;
  out?: string;
  overwrite?: boolean;
  progress?: boolean;
  warn?: (line: string) => void;
  wrote?: (file: string) => void;
}

/** One model's side: what it is and its figures at its operating point. */
export interface CompareSide {
  dir: string;
  model: EvaluatedModel;
  operatingPoint: string;
  metrics: Pick<Metrics, 'n' | 'accuracy' | 'sensitivity' | 'specificity' | 'auc' | 'threshold' | 'confusion' | 'ci95'>;
  /**
   * What its evaluation notes, as `cxr evaluate --json` has them: the pipeline's (said on stderr as found, listed
   * again in `pipelineNotes`), then its metrics' own (why a rate is n/a, an interval that means nothing).
   */
  notes: string[];
  pipelineNotes: string[];
  /** Films it has seen among these (the figures are optimistic where there are any), as `cxr evaluate` says. */
  trainingOverlap: OverlapRecord;
}

export type ComparisonResult = PairedComparison & {
  source: string;
  split: string;
  a: CompareSide;
  b: CompareSide;
  /** The warnings said on stderr as the runs went, each with the model it is of (A: or B:). */
  warnings: string[];
};

/** One model's scored films, and the files it could not read with why (evaluate's `unreadable`). */
export interface ScoredSide extends ScoredFilms {
  unreadable: { file: string; error: string }[];
}

/**
 * B's probabilities in A's film order; refuses two sides that scored different films (or gave one film two
 * labels), naming the films only one side scored and why the other could not read them.
 */
export function pairFilms(a: ScoredSide, b: ScoredSide): number[] {
  const rowB = new Map(b.files.map((f, i) => [f, i] as const));
  const setA = new Set(a.files);
  const why = (side: ScoredSide, f: string) => {
    const u = side.unreadable.find((x) => x.file === f);
    return u ? `: ${u.error}` : ' (not among its films)';
  };
  const onlyA = a.files.filter((f) => !rowB.has(f));
  const onlyB = b.files.filter((f) => !setA.has(f));
  // `--split validation` scores each model on its own recorded patient split: films only one side scored are
  // then no unreadable films but two different splits (another --split-seed, --val-fraction or --limit-per-class),
  // and "make each film readable" would send the user looking for a fault that is not there.
  if (a.split === VALIDATION_SPLIT) {
    const different = differentSplits(a.files, b.files);
    if (different) throw different;
  }
  if (onlyA.length || onlyB.length) {
    const lines = [
      ...onlyA.map((f) => `  ${f}: scored by A only; B could not read it${why(b, f)}`),
      ...onlyB.map((f) => `  ${f}: scored by B only; A could not read it${why(a, f)}`),
    ];
    const shown = lines.slice(0, 10).join('\n') + (lines.length > 10 ? `\n  ... and ${lines.length - 10} more` : '');
    throw new Error(
      `the two models did not score the same films (A ${a.files.length}, B ${b.files.length}), so they cannot ` +
        `be compared film by film:\n${shown}\nMake each film readable, or take it out of the folder, and compare again`,
    );
  }
  return a.files.map((f, i) => {
    const j = rowB.get(f) as number;
    if (b.labels[j] !== a.labels[i]) throw new Error(`${f}: labelled ${a.labels[i]} for A, ${b.labels[j]} for B`);
    return b.probs[j];
  });
}

/** The error for two models' own validation splits (their films, A's and B's) that are not the same films. */
export function differentSplits(aFiles: readonly string[], bFiles: readonly string[]): Error | null {
  const inA = new Set(aFiles);
  const inB = new Set(bFiles);
  const onlyA = aFiles.filter((f) => !inB.has(f));
  const onlyB = bFiles.filter((f) => !inA.has(f));
  if (!onlyA.length && !onlyB.length) return null;
  const shown = [...onlyA.map((f) => `  ${f}: in A's validation split only`)]
    .concat(onlyB.map((f) => `  ${f}: in B's validation split only`))
    .slice(0, 10);
  const more = onlyA.length + onlyB.length - shown.length;
  return new Error(
    `the two models record different validation splits (A ${aFiles.length} films, B ${bFiles.length}, ` +
      `${aFiles.length - onlyA.length} in both), so --split ${VALIDATION_SPLIT} cannot pair them film by film:\n` +
      `${shown.join('\n')}${more > 0 ? `\n  ... and ${more} more` : ''}\nCompare them on films neither ` +
      'trained on (a NORMAL/ and PNEUMONIA/ folder, or --split val), or train them with the same --split-seed',
  );
}

/**
 * `--split validation` on a training root: each model's own split, as its cxr.json records it, is read before
 * either model is scored (minutes each), so that two different splits are refused at once, not after both runs.
 */
async function checkSameValidationSplits(o: CompareRunOptions): Promise<void> {
  if (o.split !== VALIDATION_SPLIT || !isTrainingRoot(o.data)) return;
  const [a, b] = await Promise.all(
    o.models.map(async (dir) => (await validationRecords(o.data, readMeta(dir))).records.map((r) => r.path)),
  );
  const different = differentSplits(a, b);
  if (different) throw different;
}

const sideOf = (dir: string, m: EvaluationResult): CompareSide => ({
  dir,
  model: m.model,
  operatingPoint: m.operatingPoint,
  metrics: {
    n: m.n,
    accuracy: m.accuracy,
    sensitivity: m.sensitivity,
    specificity: m.specificity,
    auc: m.auc,
    threshold: m.threshold,
    confusion: m.confusion,
    ci95: m.ci95,
  },
  notes: m.notes,
  pipelineNotes: m.pipelineNotes,
  trainingOverlap: m.trainingOverlap,
});

export async function runComparison(o: CompareRunOptions): Promise<ComparisonResult> {
  // The two models as the --out file records them, known before scoring: a folder holding another comparison
  // of this split is refused before both models are scored (minutes), once the first run knows the split.
  const models = o.models.map((dir) => modelIdentity(dir).sha256);
  await checkSameValidationSplits(o);
  const checkOut = (split: string, source: string) => {
    if (o.out) outFile(o, split, source, models);
  };
  const warnings: string[] = [];
  const runs: { result: EvaluationResult; scored: ScoredFilms }[] = [];
  for (const [i, dir] of o.models.entries()) {
    const tag = i === 0 ? 'A' : 'B';
    let scored: ScoredFilms | undefined;
    const result = await runEvaluation({
      modelDir: dir,
      data: o.data,
      split: o.split,
      operatingPoint: o.operatingPoint,
      progress: o.progress,
      ...(i === 0 ? { beforeScoring: checkOut } : {}),
      warn: (line) => {
        warnings.push(`${tag}: ${line}`);
        o.warn?.(`${tag}: ${line}`);
      },
      scored: (s) => {
        scored = s;
      },
    });
    runs.push({ result, scored: scored as ScoredFilms });
  }
  const [a, b] = runs;
  const side = (r: (typeof runs)[number]): ScoredSide => ({ ...r.scored, unreadable: r.result.unreadable.files });
  const probsB = pairFilms(side(a), side(b));
  const paired = comparePaired(
    a.scored.labels,
    { probs: a.scored.probs, threshold: a.result.threshold },
    { probs: probsB, threshold: b.result.threshold },
  );
  const { split } = a.scored;
  const result: ComparisonResult = {
    ...paired,
    source: a.result.source,
    split,
    a: sideOf(o.models[0], a.result),
    b: sideOf(o.models[1], b.result),
    warnings,
  };
  if (o.out) {
    const stored = writeComparison(o, result, `${fs.realpathSync(o.data)} (${split})`);
    await writeComparisonPage(o, stored, { labels: a.scored.labels, probsA: a.scored.probs, probsB });
  }
  return result;
}

/**
 * --out DIR: comparisons/<split>.html beside the JSON, as `cxr report` and `cxr experiments` write a page: each side
 * named by what its cxr.json records (name, version, training seed), since two seeds of one recipe share a name.
 */
async function writeComparisonPage(o: CompareRunOptions, stored: ComparisonResult, films: ComparedFilms) {
  const seeded = (s: CompareSide) => ({ ...s, seed: readMeta(s.dir).recipe.seed });
  const base = path.join(o.out as string, 'comparisons', evaluationFileName(stored.split));
  const { files } = await writeComparePage({ ...stored, a: seeded(stored.a), b: seeded(stored.b) }, films, base);
  o.wrote?.(files[files.length - 1]);
}

/**
 * --out DIR: comparisons/<split>.json (as `cxr evaluate --out` names its files). One of other films or other
 * models there is not written over unasked (--overwrite); the same comparison again replaces it.
 */
function writeComparison(o: CompareRunOptions, r: ComparisonResult, source: string): ComparisonResult {
  const models = [r.a.model.sha256, r.b.model.sha256];
  const file = outFile(o, r.split, source, models);
  makeOutputDir(path.dirname(file), '--out');
  const stored = {
    ...r,
    source,
    models,
    a: { ...r.a, trainingOverlap: overlapRelativeTo(r.a.trainingOverlap, o.data) },
    b: { ...r.b, trainingOverlap: overlapRelativeTo(r.b.trainingOverlap, o.data) },
  };
  writeFileAtomic(file, JSON.stringify(stored, null, 2) + '\n');
  o.wrote?.(file);
  return stored;
}

/** The --out file of `split`'s comparison, refused (without --overwrite) where it holds another comparison. */
function outFile(o: CompareRunOptions, split: string, source: string, models: string[]): string {
  const file = path.join(o.out as string, 'comparisons', `${evaluationFileName(split)}.json`);
  let earlier: { source?: unknown; models?: unknown } | undefined;
  try {
    earlier = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    earlier = undefined; // None there, or none that can be read: nothing it records to keep.
  }
  const same =
    typeof earlier?.source === 'string' &&
    sameFilms(earlier.source, source) &&
    JSON.stringify(earlier?.models) === JSON.stringify(models);
  if (earlier && !same && !o.overwrite)
    throw new Error(
      `--out ${o.out} already holds a comparison of other films or other models: ${file}. Give another --out ` +
        'folder, or --overwrite to replace it',
    );
  return file;
}
