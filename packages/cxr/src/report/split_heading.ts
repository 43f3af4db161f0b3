// The words a run's report (write_report.ts) titles itself and its splits with: what each split's file stands for,
// and which model it is of, from what the run recorded (its cxr.json, or each evaluation's model), not file names.
import type { EvaluatedModel } from '../eval/metrics_schema';
import type { RunData, RunMeta, SplitData } from './run_dir';

const SPLIT_LABELS: Record<string, string> = {
  test: 'Test set',
  val: 'Validation set',
  validation: 'Validation set',
  train: 'Training set',
  all: 'All films of the folder',
};
/**
 * `cxr evaluate --out` writes a split named as a run's own as `eval-<split>`: `eval-val` is the data's val split
 * (Kaggle's val folder), not the run's validation split that `val` is.
 */
const EVALUATED_LABELS: Record<string, string> = {
  val: 'The data’s val split',
  train: 'The data’s train split',
  validation: 'Its validation split, scored by cxr evaluate',
};
const ASSESSED = '-assessed';
const EVALUATED = 'eval-';

/**
 * What a split's file stands for, in words: `cxr evaluate --out` names its files `eval-val`, `all` or
 * `test-assessed`, and a section titled with the file name ("Split “eval-val”") said nothing a reader knows.
 */
export function splitLabel(name: string): string {
  if (name.endsWith(ASSESSED) && name.length > ASSESSED.length)
    return `${splitLabel(name.slice(0, -ASSESSED.length))}, assessed films only`;
  if (name.startsWith(EVALUATED) && name.length > EVALUATED.length)
    return EVALUATED_LABELS[name.slice(EVALUATED.length)] ?? `Split “${name}”`;
  return SPLIT_LABELS[name] ?? `Split “${name}”`;
}

/**
 * Whether a split is the films the model's thresholds and calibration were chosen on: a run's own validation split
 * (`val`), or the same films scored again by `cxr evaluate --split validation` (`eval-validation`, and the assessed
 * films of it), whose page gave no sign that its figures are optimistic.
 */
export function isTuningSplit(name: string): boolean {
  const whole = name.endsWith(ASSESSED) ? name.slice(0, -ASSESSED.length) : name;
  return whole === 'val' || whole === 'validation' || whole === `${EVALUATED}validation`;
}

/** The seed the model's recipe records: two seeds of one recipe get one name and differ in it alone. */
function recipeSeed(meta: RunMeta): number | undefined {
  const recipe = (meta as Record<string, unknown>).recipe;
  const seed = typeof recipe === 'object' && recipe !== null ? (recipe as { seed?: unknown }).seed : undefined;
  return typeof seed === 'number' ? seed : undefined;
}

/**
 * The models the folder's evaluations record, where it has no cxr.json of its own (an `cxr evaluate --out` folder
 * of several models): each split's heading then names its model, which the folder's name cannot.
 */
function recordedModels(run: RunData): Map<string, EvaluatedModel> {
  if (run.hasMeta) return new Map();
  return new Map(run.splits.flatMap((s) => (s.model ? [[s.model.sha256, s.model] as const] : [])));
}

/** A model by name and version, and by its weights' digest where another of `others` has the same two. */
function modelWords(m: EvaluatedModel, others: Iterable<EvaluatedModel> = []): string {
  const twin = [...others].some((o) => o.sha256 !== m.sha256 && o.name === m.name && o.version === m.version);
  return `${m.name} v${m.version}${twin ? ` (sha256 ${m.sha256.slice(0, 12)}…)` : ''}`;
}

/** A split's heading: what it is, and of which model where the folder holds several models' evaluations. */
export function splitHeading(split: SplitData, run: RunData): string {
  const label = splitLabel(split.name);
  const models = recordedModels(run);
  return split.model && models.size > 1 ? `${label} — ${modelWords(split.model, models.values())}` : label;
}

/** The page's title: the folder's model (name, version, training seed), or the models its evaluations record. */
export function reportTitle(run: RunData): string {
  const m = run.meta;
  const seed = recipeSeed(m);
  const id = (m.name ? ` — ${m.name}` : '') + (m.version !== undefined ? ` v${m.version}` : '');
  const own = id && seed !== undefined ? `${id}, seed ${seed}` : id;
  const evaluated = [...recordedModels(run).values()];
  const named =
    own ||
    (evaluated.length === 1
      ? ` — ${modelWords(evaluated[0])}`
      : evaluated.length > 1
        ? ` — evaluations of ${evaluated.length} models`
        : '');
  return `Pneumonia classifier report${named}`;
}
