// `cxr report RUN_DIR`: plots (SVG + PNG) and one self-contained index.html in RUN_DIR/report/.
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { confusionAt, evaluate, prCurve, reliabilityBins, rocCurve } from '../eval/metrics';
import type { Metrics } from '../eval/metrics_schema';
import { dec, formatDuration, formatInterval, metricRows, pct } from '../eval/format';
import { DEFAULT_BALANCED_RULE, PLATEAU_TOLERANCE } from '../eval/operating_points';
import { readOperatingPointRules, SCREENING_SENSITIVITY, sharePercent } from '../models/operating_point_rules';
import { recordedNotes } from './evaluation_notes';
import {
  confusionChart,
  DEFAULT_CLASS_NAMES,
  prChart,
  reliabilityChart,
  rocChart,
  trainingChart,
  type ClassNames,
  type EpochLog,
  type MarkedPoint,
} from './charts';
import { escapeHtml, type Figure, figureHtml, htmlPage, kpiBox, slug, table } from './html';
import { makeOutputDir } from '../make_dirs';
import { modelSection } from './model_section';
import { isTuningSplit, reportTitle, splitHeading, splitLabel } from './split_heading';
import { writeChart, type ChartSpec } from './render';
import {
  checkRunDir,
  metaThresholds,
  readRunDir,
  type Predictions,
  type RunData,
  type RunMeta,
  type SplitData,
} from './run_dir';

export interface ReportResult {
  /** Every file written, index.html last. */
  files: string[];
  /** What was missing or unreadable in the run directory. */
  warnings: string[];
}

/** The threshold used when a split has predictions but no metrics file. */
function defaultThreshold(meta: RunMeta): number {
  const points = metaThresholds(meta);
  const preferred =
    points.find((p) => p.name === meta.defaultOperatingPoint) ?? points.find((p) => p.name === 'balanced');
  return preferred?.threshold ?? 0.5;
}

function markedPoints(meta: RunMeta, p: Predictions, evaluatedAt: number): MarkedPoint[] {
  const points = metaThresholds(meta);
  if (!points.some((x) => Math.abs(x.threshold - evaluatedAt) < 1e-9))
    points.push({ name: 'evaluated', threshold: evaluatedAt });
  return points.map(({ name, threshold }) => {
    const c = confusionAt(p.labels, p.probs, threshold);
    return {
      name: name === meta.defaultOperatingPoint ? `${name} (default)` : name,
      threshold,
      sensitivity: c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : null,
      specificity: c.tn + c.fp > 0 ? c.tn / (c.tn + c.fp) : null,
      precision: c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : null,
    };
  });
}

function summarySentence(m: Metrics, classNames: ClassNames): string {
  const c = m.confusion;
  const pos = c.tp + c.fn;
  const neg = c.tn + c.fp;
  const parts: string[] = [];
  if (pos > 0) {
    parts.push(
      `Of <b>${pos}</b> images with ${escapeHtml(classNames[1])}, ` +
        `the model flagged <b>${c.tp}</b> (${pct(m.sensitivity)}) and missed ${c.fn}.`,
    );
  }
  if (neg > 0) {
    parts.push(
      `Of <b>${neg}</b> ${escapeHtml(classNames[0])} images, ` +
        `it correctly left <b>${c.tn}</b> unflagged (${pct(m.specificity)}); ` +
        `${c.fp} ${c.fp === 1 ? 'was a false alarm' : 'were false alarms'}.`,
    );
  }
  parts.push(`An image is flagged when its predicted probability is at least ${m.threshold.toFixed(3)}.`);
  return parts.join(' ');
}

function kpis(m: Metrics): string {
  const kpi = (label: string, value: string, ci: string) => kpiBox(value, label, ci ? `95% CI ${ci}` : '&nbsp;');
  return `<div class="kpis">
${kpi('Sensitivity', pct(m.sensitivity), formatInterval(m.ci95.sensitivity, true))}
${kpi('Specificity', pct(m.specificity), formatInterval(m.ci95.specificity, true))}
${kpi('ROC AUC', dec(m.auc), formatInterval(m.ci95.auc, false))}
${kpi('Accuracy', pct(m.accuracy), formatInterval(m.ci95.accuracy, true))}
</div>`;
}

function metricsTable(m: Metrics): string {
  return table(
    ['Metric', 'Value', '95% CI', 'What it means'],
    metricRows(m).map((r) => [escapeHtml(r.label), escapeHtml(r.value), escapeHtml(r.ci), escapeHtml(r.help)]),
    'metrics',
  );
}

async function splitSection(split: SplitData, run: RunData, outDir: string, files: string[]): Promise<string> {
  const { meta } = run;
  const classNames = meta.classNames ?? DEFAULT_CLASS_NAMES;
  const p = split.predictions;
  const m = split.metrics ?? evaluate(p!.labels, p!.probs, { threshold: defaultThreshold(meta) });
  const label = splitLabel(split.name);
  const heading = splitHeading(split, run);
  const s = slug(split.name);
  const figures: Figure[] = [];
  const chart = async (kind: string, spec: ChartSpec, caption: string) => {
    const base = path.join(outDir, `${kind}-${s}`);
    const r = await writeChart(spec, base);
    files.push(...r.files);
    figures.push({ base, svg: r.svg, caption });
  };

  await chart(
    'confusion',
    confusionChart(m.confusion, {
      title: `Confusion matrix — ${label}`,
      subtitle: `threshold ${m.threshold.toFixed(3)} · % of each actual class`,
      classNames,
    }),
    'Counts of images by actual and predicted class. The diagonal holds the correct calls.',
  );
  if (p) {
    const marks = markedPoints(meta, p, m.threshold);
    const positives = p.labels.filter((y) => y === 1).length;
    // A curve needs both classes (ROC) or at least one positive (PR); without them it would only mislead.
    if (positives > 0 && positives < p.labels.length) {
      const ci = m.ci95.auc ? ` (95% CI ${formatInterval(m.ci95.auc, false)})` : '';
      await chart(
        'roc',
        rocChart(rocCurve(p.labels, p.probs), {
          title: `ROC curve — ${label}`,
          subtitle: `AUC ${dec(m.auc)}${ci}`,
          marks,
        }),
        'Each point of the curve is one threshold: moving right flags more images, ' +
          'catching more pneumonia at the cost of more false alarms. The dashed line is guessing.',
      );
    }
    if (positives > 0) {
      await chart(
        'pr',
        prChart(prCurve(p.labels, p.probs), {
          title: `Precision–recall — ${label}`,
          subtitle: `average precision ${dec(m.pr_auc)}`,
          prevalence: positives / p.labels.length,
          marks,
        }),
        'Of the flagged images, how many truly have pneumonia (precision), ' +
          'against the share of pneumonia caught (recall).',
      );
    }
    await chart(
      'reliability',
      reliabilityChart(reliabilityBins(p.labels, p.probs), {
        title: `Reliability — ${label}`,
        subtitle: `expected calibration error ${dec(m.ece)}; Brier score ${dec(m.brier)}`,
      }),
      'Are the probabilities honest? Points on the dashed diagonal mean that, ' +
        'e.g., 80% of the images given 0.8 do have pneumonia. Bars: how many images fall in each range.',
    );
  }

  const notes = [...(m.notes ?? []), ...(p ? [] : ['no predictions file for this split: curves are not available'])];
  notes.unshift(...recordedNotes(split));
  if (split.name.endsWith('-assessed')) {
    notes.push(
      'Only the films the prediction pipeline would assess (cxr predict, the server): films it would answer ' +
        '"cannot assess" or "outside the intended population", or refuse with an input error, are left out here, ' +
        'and counted in the split above.',
    );
  }
  if (isTuningSplit(split.name)) {
    notes.push(
      'Thresholds and calibration were tuned on this set, so its numbers are optimistic; ' +
        'only an independent test set gives a fair estimate.',
    );
  }
  return `<h2 id="split-${s}">${escapeHtml(heading)}</h2>
<section class="card">
<p class="lead">${summarySentence(m, classNames)}</p>
${kpis(m)}
${notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n')}
<h3>All metrics (${m.n} images)</h3>
${metricsTable(m)}
</section>
<div class="figs">
${figures.map(figureHtml).join('\n')}
</div>`;
}

// The loop validates each epoch on one view of each film (train/loop.ts); the saved model's validation
// figures average its test-time views, so the two AUCs of one split can differ.
const PER_EPOCH_AUC =
  "(one view of each film, as training scores it; the validation figures above average the model's " +
  'test-time views, if it has any, so their AUC can differ)';

async function trainingSection(log: EpochLog[], outDir: string, files: string[]): Promise<string> {
  if (log.length === 0) return '';
  const base = path.join(outDir, 'training');
  const r = await writeChart(
    trainingChart(log, { title: 'Training progress', subtitle: `${log.length} epoch(s)` }),
    base,
  );
  files.push(...r.files);
  const seconds = log.reduce((a, e) => a + (e.seconds ?? 0), 0);
  const withAuc = log.filter((e) => typeof e.val_auc === 'number');
  const best = withAuc.length
    ? withAuc.reduce((a, b) => ((b.val_auc as number) > (a.val_auc as number) ? b : a))
    : null;
  const facts = [
    `${log.length} epoch(s)`,
    ...(seconds > 0 ? [`training time ${formatDuration(seconds)}`] : []),
    ...(best ? [`best validation AUC ${dec(best.val_auc as number)} at epoch ${best.epoch} ${PER_EPOCH_AUC}`] : []),
  ];
  const caption =
    'Loss should fall and validation AUC rise; ' +
    'a validation loss that climbs while training loss keeps falling signals over-fitting.';
  return `<h2 id="training">Training</h2>
<p>${escapeHtml(facts.join(' · '))}.</p>
<div class="figs">${figureHtml({ base, svg: r.svg, caption })}</div>`;
}

/** One entry of the glossary: the term and its explanation, both HTML. */
const term = (dt: string, dd: string) => `<dt>${dt}</dt><dd>${dd}</dd>`;

/**
 * How the model's screening and balanced points were chosen, from the rules its cxr.json records, so the
 * glossary cannot promise a target the model was not held to (it said 95% while models are made at 99%, and then
 * 99% of models made at 95%). A folder without cxr.json (an evaluation) gets the rules a model trained now is given.
 */
function operatingPointRules(meta: RunMeta): string {
  const rules = meta.operatingPoints
    ? readOperatingPointRules(meta.operatingPoints)
    : { screeningSensitivity: SCREENING_SENSITIVITY, balancedRule: DEFAULT_BALANCED_RULE };
  const balancedWords =
    rules.balancedRule === 'youden-plateau-middle'
      ? '“balanced” is the middle of the thresholds whose sensitivity + specificity is within ' +
        `${PLATEAU_TOLERANCE} of its maximum`
      : '“balanced” maximises sensitivity + specificity';
  return (
    `“Screening” is the highest threshold that still catches at least ${sharePercent(rules.screeningSensitivity)} ` +
    `of pneumonia on the validation set (never above “balanced”); ${balancedWords}`
  );
}

const glossary = (meta: RunMeta) =>
  [
    '<h2 id="glossary">How to read this report</h2>',
    '<section class="card">',
    '<dl class="glossary">',
    term(
      'Sensitivity (recall)',
      'Of the children who have pneumonia, the share the model flags. ' +
        'A screening tool needs this high: a missed case is the costly error.',
    ),
    term(
      'Specificity',
      'Of the children without pneumonia, the share the model correctly leaves unflagged. ' +
        'Low specificity means many false alarms.',
    ),
    term(
      'Precision (positive predictive value)',
      'Of the flagged images, the share that truly show pneumonia. ' +
        'It depends on how common pneumonia is in the set.',
    ),
    term(
      'ROC AUC',
      'The chance that a random pneumonia image gets a higher score than a random normal one: ' +
        '0.5 is guessing, 1.0 is perfect. It does not depend on the threshold.',
    ),
    term(
      'Threshold and operating points',
      'The model outputs a probability; an image is flagged when it reaches the threshold. ' +
        'Lower thresholds catch more pneumonia but raise more false alarms. ' +
        `${operatingPointRules(meta)}.`,
    ),
    term(
      '95% confidence interval (CI)',
      'The range of values compatible with this sample: a small test set gives wide intervals. ' +
        'Wilson intervals for proportions; a bootstrap (resampling) interval for AUC.',
    ),
    term(
      'Calibration (reliability, ECE, Brier)',
      'Whether a stated probability can be taken at face value. ' +
        'The expected calibration error is the average gap between predicted and observed rates (0 is perfect).',
    ),
    '</dl>',
    '</section>',
    '<p class="disclaimer">This report describes a research model evaluated on a fixed data set. ' +
      'It is not a medical device, and its output is no substitute for review of the image ' +
      'by a qualified clinician.</p>',
  ].join('\n');

/** Reads RUN_DIR (whatever of a run is present) and writes RUN_DIR/report/; refuses a folder with no run record. */
export async function writeReport(runDir: string): Promise<ReportResult> {
  checkRunDir(runDir);
  const run = await readRunDir(runDir);
  const outDir = path.join(runDir, 'report');
  makeOutputDir(outDir, 'report folder');
  const files: string[] = [];
  const warnings = [...run.warnings];
  if (run.splits.length === 0) warnings.push('no predictions/ or metrics/ files: nothing to evaluate');

  const sections: string[] = [];
  for (const split of run.splits) sections.push(await splitSection(split, run, outDir, files));
  sections.push(await trainingSection(run.log, outDir, files));
  sections.push(modelSection(run));

  const m = run.meta;
  const title = reportTitle(run);
  const toc = [
    ...run.splits.map((s) => `<a href="#split-${slug(s.name)}">${escapeHtml(splitHeading(s, run))}</a>`),
    ...(run.log.length ? ['<a href="#training">Training</a>'] : []),
    '<a href="#model">Model</a>',
    '<a href="#glossary">How to read this report</a>',
  ].join(' · ');
  const classes = (m.classNames ?? DEFAULT_CLASS_NAMES).join(' vs ');
  const arch = m.arch ? ` · ${escapeHtml(m.arch)}` : '';
  const generated = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const body = `<header>
<h1>${escapeHtml(title)}</h1>
<p>Chest X-ray classification: ${escapeHtml(classes)}${arch} · report generated ${escapeHtml(generated)} UTC</p>
<p>${toc}</p>
</header>
${warnings.map((w) => `<p class="note">${escapeHtml(w)}</p>`).join('\n')}
${sections.join('\n')}
${glossary(m)}`;
  const index = path.join(outDir, 'index.html');
  await writeFile(index, htmlPage(title, body));
  files.push(index);
  return { files, warnings };
}
