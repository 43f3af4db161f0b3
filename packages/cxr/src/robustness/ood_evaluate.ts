// `cxr ood evaluate`: how often the not-a-chest-X-ray gate (OOD score + image checks + verdict)
// stops real chest films (false alarms) and how often it stops things that are not chest films
// (refusals). Real films: the model's own validation split (rebuilt from cxr.json), the data
// folder's `val` split (Kaggle val) when there is one, and mildly changed copies of the validation
// films through the robustness catalogue. Non-X-rays: the generated corpus (robustness/ood_corpus.ts)
// and negatives of the validation films.
import * as path from 'node:path';
import { DEFAULT_LIMITS } from '../data/decode';
import { loadImageSet, loadRecordedSplit, splitRecords } from '../data/dataset_images';
import { perturbImages } from '../data/perturb_catalog';
import { splitModel } from '../explain/model_parts';
import { loadOod } from '../explain/ood';
import { MILD_CHANGES, MILD_STRENGTH } from '../explain/ood_fit';
import { loadModel } from '../models/io';
import { decodeInput } from '../predict/decode_input';
import { DEFAULT_PER_KIND, drawNonXrays, INVERTED_KIND, invertedFilms } from './ood_corpus';
import { type HeldOutEstimate, type ScoredFilm, splitHalfEstimate } from './ood_heldout';
import { fileOrigins, type ScreenContext, type ScreenOutcome, screenSquares, type SquareOrigin } from './ood_screen';
import { pct } from '../eval/format';

/** The bars of issue 9: real films stopped at most this often, each non-X-ray kind at least this often. */
export const FALSE_ALARM_BAR = 0.01;
export const REFUSAL_BAR = 0.95;

export interface RateRow {
  /** validation, kaggle-val, mild:<change>; or a corpus kind. */
  set: string;
  /** NORMAL / PNEUMONIA for films; 'all' for the corpus. */
  group: string;
  n: number;
  stopped: number;
  rate: number;
  /** How many were stopped for each reason code (one image can have several). */
  reasons: Record<string, number>;
}

export interface GateReport {
  model: string;
  gate: { format: string; threshold: number; classMeans: boolean } | null;
  notes: string[];
  films: RateRow[];
  falseAlarms: { overall: RateRow; NORMAL: RateRow; PNEUMONIA: RateRow };
  corpus: RateRow[];
  /**
   * The false alarms on the validation films (clean and mildly changed) with a threshold set on the other
   * half of the validation patients: the rates above use the gate's own threshold, set on these same films.
   */
  heldOut: HeldOutEstimate | null;
  /** The bars and whether this gate meets them on what was measured (judgeBars). */
  bars: Bars;
}

export interface Bars {
  falseAlarmAtMost: number;
  refusalAtLeast: number;
  /** Every bar met: the in-sample rates, and the held-out false alarms where there is an estimate. */
  met: boolean;
  /** Each bar missed, in words (held-out ones start 'held out:'). */
  failures: string[];
  /** The bars on the in-sample rates alone (what `met` meant before the held-out estimate was judged). */
  inSampleMet: boolean;
  /** The false-alarm bar on the held-out estimate; null without one (no gate: nothing was fitted on the films). */
  heldOutMet: boolean | null;
}

export interface GateEvalOptions {
  dataRoot: string;
  /** Generated images per corpus kind. */
  perKind?: number;
  seed?: number;
  strength?: number;
  changes?: readonly string[];
  cacheDir?: string;
  log?: (line: string) => void;
}

function rows(set: string, outcomes: readonly ScreenOutcome[], groups: readonly string[]): RateRow[] {
  const by = new Map<string, RateRow>();
  outcomes.forEach((o, i) => {
    const g = groups[i];
    const r = by.get(g) ?? { set, group: g, n: 0, stopped: 0, rate: 0, reasons: {} };
    r.n++;
    if (o.refused) {
      r.stopped++;
      for (const c of new Set(o.reasons)) r.reasons[c] = (r.reasons[c] ?? 0) + 1;
    }
    by.set(g, r);
  });
  return [...by.values()].map((r) => ({ ...r, rate: r.n ? r.stopped / r.n : 0 }));
}

/** Rows pooled into one (e.g. all films of a class). */
export function pool(set: string, group: string, rs: readonly RateRow[]): RateRow {
  const r: RateRow = { set, group, n: 0, stopped: 0, rate: 0, reasons: {} };
  for (const x of rs) {
    r.n += x.n;
    r.stopped += x.stopped;
    for (const [k, v] of Object.entries(x.reasons)) r.reasons[k] = (r.reasons[k] ?? 0) + v;
  }
  r.rate = r.n ? r.stopped / r.n : 0;
  return r;
}

export async function evaluateGate(modelDir: string, o: GateEvalOptions): Promise<GateReport> {
  const log = o.log ?? (() => {});
  const loaded = await loadModel(modelDir);
  try {
    const { meta } = loaded;
    const size = meta.inputSize;
    const memberDir = meta.members.length ? path.join(modelDir, meta.members[0]) : modelDir;
    const found = loadOod(modelDir, memberDir);
    const notes: string[] = [];
    if (!found.model) notes.push(found.problem ?? 'no ood.json: the image checks alone');
    const gate = found.model;
    const ctx: ScreenContext = {
      parts: gate ? splitModel(loaded.members[gate.member]) : null,
      gate,
      size,
      normalize: meta.preprocessing.normalize,
    };
    const names = meta.classNames;
    // Raw squares (no normalisation): the checks read them raw, screenSquares normalises for the network.
    const { val } = await loadRecordedSplit(o.dataRoot, meta, { raw: true, cacheDir: o.cacheDir, warn: log });
    const classes = Array.from(val.labels, (l) => names[l]);
    const n = val.labels.length;
    log(`validation: ${n} films`);
    // Each film at its own size and colour, as a prediction checks it (a copy changed or inverted keeps them).
    const valOrigins = await fileOrigins(val.files, size);
    const valOutcomes = await screenSquares(ctx, val.pixels, n, valOrigins);
    const films = rows('validation', valOutcomes, classes);
    // The films that set the gate's threshold, for the held-out estimate.
    const scored: ScoredFilm[] = [];
    const keep = (outcomes: readonly ScreenOutcome[]) =>
      outcomes.forEach((outcome, i) => scored.push({ outcome, group: classes[i], patient: val.patients[i] }));
    keep(valOutcomes);
    const kaggle = await splitRecords(o.dataRoot, 'val').catch(() => null);
    if (kaggle) {
      const kv = await loadImageSet(kaggle, 'val', { size, cacheDir: o.cacheDir, warn: log });
      log(`kaggle-val: ${kv.labels.length} films`);
      const kvClasses = Array.from(kv.labels, (l) => names[l]);
      const kvOrigins = await fileOrigins(kv.files, size);
      films.push(...rows('kaggle-val', await screenSquares(ctx, kv.pixels, kv.labels.length, kvOrigins), kvClasses));
    } else {
      notes.push(`${o.dataRoot} has no val split: Kaggle val not measured`);
    }
    const strength = o.strength ?? MILD_STRENGTH;
    for (const change of o.changes ?? MILD_CHANGES) {
      log(`mild:${change} (strength ${strength.toFixed(2)})`);
      const px = await perturbImages(change, val.pixels, val.files, size, strength, o.seed ?? 1);
      const outcomes = await screenSquares(ctx, px, n, valOrigins);
      keep(outcomes);
      films.push(...rows(`mild:${change}`, outcomes, classes));
    }
    const inverted = await screenSquares(ctx, invertedFilms(val.pixels), n, valOrigins);
    const corpus = rows(INVERTED_KIND, inverted, Array(n).fill('all'));
    const drawn = await drawNonXrays(o.perKind ?? DEFAULT_PER_KIND, o.seed ?? 1);
    log(`corpus: ${drawn.length} generated images`);
    const squares = new Uint8Array(drawn.length * size * size);
    const origins: SquareOrigin[] = [];
    for (const [i, img] of drawn.entries()) {
      const d = await decodeInput(img.bytes, { size, limits: DEFAULT_LIMITS, wantDisplay: false });
      squares.set(d.pixels, i * size * size);
      origins.push({ colourFraction: d.facts.colourFraction, width: d.width, height: d.height });
    }
    const outcomes = await screenSquares(ctx, squares, drawn.length, origins);
    for (const kind of new Set(drawn.map((d) => d.kind))) {
      const idx = drawn.flatMap((d, i) => (d.kind === kind ? [i] : []));
      corpus.push(
        pool(
          kind,
          'all',
          rows(
            kind,
            idx.map((i) => outcomes[i]),
            Array(idx.length).fill('all'),
          ),
        ),
      );
    }
    const falseAlarms = {
      overall: pool('films', 'all', films),
      NORMAL: pool(
        'films',
        names[0],
        films.filter((r) => r.group === names[0]),
      ),
      PNEUMONIA: pool(
        'films',
        names[1],
        films.filter((r) => r.group === names[1]),
      ),
    };
    const heldOut = gate ? splitHalfEstimate(scored, gate.percentile, gate.threshold, o.seed ?? 1) : null;
    return {
      model: path.resolve(modelDir),
      gate: gate && { format: gate.format, threshold: gate.threshold, classMeans: !!gate.classMeans?.length },
      notes,
      films,
      falseAlarms,
      corpus,
      heldOut,
      bars: judgeBars(falseAlarms, corpus, heldOut),
    };
  } finally {
    for (const m of loaded.members) m.dispose();
  }
}

/**
 * The bars judged on every estimate: the in-sample rates (the gate's own threshold, a percentile of the same
 * validation films, so its false alarms there are low by construction) and the held-out false alarms, which
 * say how the threshold does on films it was not set on. A gate meets the bars only on both.
 */
export function judgeBars(
  falseAlarms: GateReport['falseAlarms'],
  corpus: readonly RateRow[],
  heldOut: HeldOutEstimate | null,
): Bars {
  const over = (rate: number) => `${pct(rate)} > ${pct(FALSE_ALARM_BAR)}`;
  const inSample = [
    ...Object.values(falseAlarms)
      .filter((r) => r.rate > FALSE_ALARM_BAR)
      .map((r) => `in-sample false alarms on ${r.group} films ${over(r.rate)}`),
    ...corpus
      .filter((r) => r.rate < REFUSAL_BAR)
      .map((r) => `refusal of ${r.set} ${pct(r.rate)} < ${pct(REFUSAL_BAR)}`),
  ];
  const held = Object.entries(heldOut?.rates ?? {})
    .filter(([, r]) => r.rate > FALSE_ALARM_BAR)
    .map(([group, r]) => `held out: false alarms on ${group === 'overall' ? 'all' : group} films ${over(r.rate)}`);
  const failures = [...inSample, ...held];
  return {
    falseAlarmAtMost: FALSE_ALARM_BAR,
    refusalAtLeast: REFUSAL_BAR,
    met: failures.length === 0,
    failures,
    inSampleMet: inSample.length === 0,
    heldOutMet: heldOut ? held.length === 0 : null,
  };
}

/** The verdict in words: in-sample and held out side by side where both were measured, then the whole. */
function verdictLines(r: GateReport): string[] {
  const b = r.bars;
  const whole = b.met ? 'bars met' : `bars NOT met: ${b.failures.join('; ')}`;
  const h = r.heldOut;
  if (!h || b.heldOutMet === null) return [whole];
  const overall = h.rates.overall?.rate ?? 0;
  const perClass = Object.entries(h.rates).filter(([k]) => k !== 'overall');
  const rates = perClass.map(([k, x]) => `${k} ${pct(x.rate)}`).join(', ');
  // The bar holds for each rate on its own: the overall figure can be under it while a class is over, so the
  // line names the rates that are over rather than put "over" beside a figure that is not.
  const over = [['overall', overall] as const, ...perClass.map(([k, x]) => [k, x.rate] as const)]
    .filter(([, rate]) => rate > b.falseAlarmAtMost)
    .map(([k, rate]) => `${k} ${pct(rate)}`);
  const bar = `the ${pct(b.falseAlarmAtMost)} bar`;
  const verdict =
    over.length === 0
      ? `within ${bar}`
      : `${over.slice(0, -1).join(', ')}${over.length > 1 ? ' and ' : ''}${over.at(-1)} ` +
        `${over.length === 1 ? 'is' : 'are'} over ${bar}`;
  return [
    `in-sample: ${b.inSampleMet ? 'bars met' : 'bars NOT met'}; ` +
      `held out: ${pct(overall)} false alarms${rates ? ` (${rates})` : ''}; ${verdict}`,
    whole,
  ];
}

function heldOutLines(h: HeldOutEstimate | null): string[] {
  if (!h) return [];
  const rate = (k: string, x: Record<string, { n: number; stopped: number; rate: number }>) =>
    `${k} ${pct(x[k]?.rate ?? 0)} (${x[k]?.stopped ?? 0} / ${x[k]?.n ?? 0})`;
  const keys = Object.keys(h.rates);
  return [
    `held out (validation and its mild changes; ${h.method}; p${h.percentile}, thresholds ` +
      `${h.thresholds.map((t) => t.toFixed(2)).join(' / ')}):`,
    `  held-out   ${keys.map((k) => rate(k, h.rates)).join(', ')}`,
    `  in-sample  ${keys.map((k) => rate(k, h.inSample)).join(', ')}`,
  ];
}

/** The report as a plain-text table for people. */
export function formatGateReport(r: GateReport): string {
  const reasons = (x: RateRow) =>
    Object.entries(x.reasons)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const line = (x: RateRow) => {
    const name = `${x.set} ${x.group === 'all' ? '' : x.group}`.padEnd(32);
    const count = `${String(x.stopped).padStart(5)} / ${String(x.n).padEnd(5)}`;
    return `  ${name}${count}${pct(x.rate).padStart(7)}  ${reasons(x)}`;
  };
  const gate = r.gate
    ? `${r.gate.format}, threshold ${r.gate.threshold.toFixed(2)}${r.gate.classMeans ? ', nearest class mean' : ''}`
    : 'none (image checks only)';
  return [
    `model ${r.model}; gate ${gate}`,
    ...r.notes.map((n) => `note: ${n}`),
    `false alarms on real chest films (bar: at most ${pct(r.bars.falseAlarmAtMost)})`,
    ...r.films.map(line),
    ...Object.values(r.falseAlarms).map(line),
    ...heldOutLines(r.heldOut),
    `refusals of images that are not chest films (bar: at least ${pct(r.bars.refusalAtLeast)} per kind)`,
    ...r.corpus.map(line),
    ...verdictLines(r),
  ].join('\n');
}
