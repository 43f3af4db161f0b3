// MODEL_CARD.md, written next to every trained model from what the run recorded, so the card
// never states a number that the run did not produce. Each section is an array of the card's
// lines; a line longer than the source's width is split with `+`, which leaves the card unchanged
// (test/model-card-golden.test.ts holds its exact bytes).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelMeta, PRIOR_SOURCES, ValidationRecord } from './metadata';
import { readOperatingPointRules, sharePercent } from './operating_point_rules';

const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : 'n/a');
const ci = (x: unknown, asPct: boolean) => {
  if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'number') return '';
  return asPct ? ` (95% CI ${pct(x[0])}–${pct(x[1])})` : ` (95% CI ${x[0].toFixed(3)}–${x[1].toFixed(3)})`;
};
const plural = (n: unknown, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const fixed4 = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : 'n/a');

const INTENDED_USE = [
  '## Intended use and limitations',
  '- Decision support and teaching on **pediatric (age 1–5) frontal chest radiographs**, reviewed by a clinician. ' +
    'Not a diagnostic device.',
  "- Trained on one hospital's images (Guangzhou Women and Children's Medical Center, via Kermany et al. 2018), " +
    'most of them AP films.',
  "  Expect worse performance on adults, lateral views, other hospitals' equipment and processing, " +
    'and images with devices or text overlays.',
  '- Labels are NORMAL vs PNEUMONIA only; other findings are out of scope. ' +
    'Images that do not look like a frontal chest X-ray get a warning.',
  '- A published caveat of this data set: models reach near-perfect scores on splits of its training folder ' +
    'but lose mostly specificity',
  '  on the official test split (a shift between the two). ' +
    'The validation figures below come from a patient-level split of `train`',
  '  and are therefore optimistic for new data.',
];

export function modelCard(meta: ModelMeta, command?: string): string {
  const v: ValidationRecord = meta.validation ?? {};
  const c = v.ci95 ?? {};
  const ops = Object.entries(meta.operatingPoints).map(
    ([name, op]) =>
      `| ${name} | ${op.threshold.toFixed(3)} | ${pct(op.sensitivity)} | ${pct(op.specificity)} | ${op.rule ?? '-'} |`,
  );
  // The rules cxr.json records, not today's: a card rewritten for an older model (by adapt or calibrate) said 99%.
  const rules = readOperatingPointRules(meta.operatingPoints);
  const commandBlock = command ? `\nCommand:\n\n\`\`\`sh\n${command}\n\`\`\`\n` : '';
  return [
    `# Model card: ${meta.name}`,
    '',
    `Version ${meta.version}, created ${meta.createdAt}. ` +
      `Architecture \`${meta.arch}\`, input ${meta.inputSize}×${meta.inputSize} grayscale.`,
    '',
    '## What it does',
    'Estimates the probability that a frontal pediatric chest X-ray shows pneumonia (bacterial or viral), ' +
      'calibrated by',
    `${calibrationWords(meta)}, and calls it at a named operating point.`,
    '',
    // The adaptation section, when there is one, ends in a blank line of its own.
    adaptationSection(meta) + INTENDED_USE[0],
    ...INTENDED_USE.slice(1),
    '',
    ...trainingDataSection(meta),
    '',
    // Either section ends in a newline, so the command block (or nothing) follows it directly.
    (meta.ensemble ? ensembleSection(meta) : recipeSection(meta)) + commandBlock,
    '## Validation (patient-level split of train; threshold = balanced operating point)',
    '| metric | value |',
    '| --- | --- |',
    `| images | ${v.n ?? 'n/a'} |`,
    `| accuracy | ${pct(v.accuracy)}${ci(c.accuracy, true)} |`,
    `| sensitivity | ${pct(v.sensitivity)}${ci(c.sensitivity, true)} |`,
    `| specificity | ${pct(v.specificity)}${ci(c.specificity, true)} |`,
    `| ROC AUC | ${fixed4(v.auc)}${ci(c.auc, false)} |`,
    `| PR AUC | ${fixed4(v.pr_auc)} |`,
    `| Brier score | ${fixed4(v.brier)} |`,
    `| ECE | ${fixed4(v.ece)} |`,
    '',
    '## Operating points (chosen on validation)',
    '| name | threshold | sensitivity | specificity | chosen by |',
    '| --- | --- | --- | --- | --- |',
    ...ops,
    '',
    `\`screening\`: the highest threshold with validation sensitivity ≥ ${sharePercent(rules.screeningSensitivity)}, ` +
      'but never above `balanced` (so switching to',
    `screening can only add alarms). \`balanced\`: ${balancedRuleWords(rules.balancedRule)}. ` +
      `Default: \`${meta.defaultOperatingPoint}\`.`,
    '',
  ].join('\n');
}

// The test split is withheld from the project, but one outside measurement on it (of cxr-oversample) steered
// the later recipes, so a card must not call it an untouched holdout.
const TEST_SPLIT = [
  '- The official test split is withheld from this project: no checkpoint, threshold or recipe was chosen ' +
    'on its films.',
  '  One outside measurement on it, of an earlier model (`cxr-oversample`), came back and set the direction ' +
    'of later work, so',
  '  for models made after it the test split is not an untouched holdout.',
];

function trainingDataSection(meta: ModelMeta): string[] {
  const d = meta.data;
  const split =
    d.valSplit === 'block'
      ? 'validation = the lowest patient numbers of each file-name series (block split)'
      : `split seed ${d.splitSeed ?? '?'}`;
  const generated = syntheticRecord(d.synthetic);
  return [
    '## Training data',
    `- ${d.root ? `\`${path.basename(String(d.root))}\` ` : ''}` +
      'Kaggle "Chest X-Ray Images (Pneumonia)" `train` split, carved by patient into',
    `  ${d.train?.n ?? '?'} training images (${d.train?.normal ?? '?'} normal, ` +
      `${d.train?.pneumonia ?? '?'} pneumonia; ${d.trainPatients ?? '?'} patients` +
      `${generated ? `, of the ${realCount(d.train?.n, generated)} real films` : ''}) and`,
    `  ${d.validation?.n ?? '?'} validation images (${d.validation?.normal ?? '?'} normal, ` +
      `${d.validation?.pneumonia ?? '?'} pneumonia; ${d.valPatients ?? '?'} patients),`,
    `  validation fraction ${d.valFraction ?? '?'}, ${split}. ` +
      `Data fingerprint \`${String(d.fingerprint ?? '').slice(0, 16)}\`.`,
    ...(generated ? syntheticLines(generated, meta.inputSize) : []),
    ...TEST_SPLIT,
  ];
}

/** What `withGanImages` (gan/mix.ts) records in cxr.json's data.synthetic. */
interface SyntheticRecord {
  normal: number;
  pneumonia: number;
  generator?: string;
  generatorSha256?: string;
  ganSize?: number;
}

function syntheticRecord(x: unknown): SyntheticRecord | null {
  if (typeof x !== 'object' || x === null) return null;
  const s = x as Record<string, unknown>;
  const whole = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
  const r: SyntheticRecord = { normal: whole(s.normal), pneumonia: whole(s.pneumonia) };
  if (r.normal + r.pneumonia === 0) return null;
  if (typeof s.generator === 'string') r.generator = s.generator;
  if (typeof s.generatorSha256 === 'string') r.generatorSha256 = s.generatorSha256;
  if (typeof s.ganSize === 'number') r.ganSize = s.ganSize;
  return r;
}

const realCount = (n: unknown, g: SyntheticRecord) =>
  typeof n === 'number' ? String(n - g.normal - g.pneumonia) : '?';

// Generated images count among the training images (data.train), but they are no patient's films: without this
// line a GAN-mixed run's card read as if every training image were a real film.
function syntheticLines(g: SyntheticRecord, inputSize: number): string[] {
  const sha = g.generatorSha256 ? `weights sha256 \`${g.generatorSha256.slice(0, 16)}\`` : '';
  const size = g.ganSize ? `made at ${g.ganSize}px, resized to ${inputSize}px` : '';
  const about = [sha, size].filter(Boolean).join('; ');
  return [
    `- ${g.normal + g.pneumonia} of the training images (${g.normal} normal, ${g.pneumonia} pneumonia) are ` +
      '**generated**, not films: drawn from the',
    `  class-conditional GAN \`${g.generator ?? '?'}\`${about ? ` (${about})` : ''}.`,
    '  They were added to the training images only, after the patient split: validation, checkpoint choice, ' +
      'calibration and thresholds',
    '  used real films alone, and the patient counts and data fingerprint above are of the real films.',
  ];
}

function recipeSection(meta: ModelMeta): string {
  const r = meta.recipe;
  const v: ValidationRecord = meta.validation ?? {};
  const took = typeof v.trainingSeconds === 'number' ? `${(v.trainingSeconds / 60).toFixed(1)} min` : 'n/a';
  return [
    '## Recipe',
    `${r.arch} at ${r.inputSize}px; ${r.optimizer} lr ${r.lr}, ${r.schedule} schedule, ${plural(r.epochs, 'epoch')} ` +
      `(best epoch ${v.bestEpoch ?? '?'} of ${v.epochsRun ?? '?'} by validation AUC),`,
    `batch ${r.batchSize}; balance \`${r.balance}\`; augmentation \`${r.augment}\`; ` +
      `label smoothing ${r.labelSmoothing ?? 0};`,
    // Either line below ends in its own newline when present.
    shiftLine(r) +
      normalizeLine(meta) +
      `test-time augmentation: ${meta.tta.length ? meta.tta.join(', ') : 'none'}. Training took ${took}.`,
    '',
  ].join('\n');
}

/**
 * How the thresholds moved, in words: a score shift of `logitShift` moves every threshold the other
 * way (a site with fewer pneumonia films raises them), e.g. "up by 1.400 in log-odds".
 */
export function thresholdMove(logitShift: number): string {
  if (Math.abs(logitShift) < 0.0005) return 'unchanged (within 0.001 in log-odds)';
  return `${logitShift < 0 ? 'up' : 'down'} by ${Math.abs(logitShift).toFixed(3)} in log-odds`;
}

/** Where `cxr adapt --prior` took the site's share from, as the card and the log say it. */
export const PRIOR_WORDS: Record<(typeof PRIOR_SOURCES)[number], string> = {
  'class-mix': 'the share the batch-norm adaptation settled on (or was given)',
  'confusion-matrix': "the share the adapted model calls PNEUMONIA, corrected by the threshold's validation figures",
  em: 'an EM estimate (Saerens et al. 2002) on the calibrated probabilities',
};

function adaptationSection(meta: ModelMeta): string {
  const a = meta.adaptation;
  if (!a) return '';
  const p = a.prior;
  const before = p
    ? Object.entries(p.thresholdsBefore)
        .map(([k, t]) => `${k} ${t.toFixed(3)}`)
        .join(', ')
    : '';
  // One line of the card, either way, ending in its own newline.
  const prior = p
    ? `- Class prior taken from ${PRIOR_WORDS[p.from ?? 'em']}: ` +
      `${pct(p.site)} pneumonia on the site against ${pct(p.train)} at calibration (${p.trainFrom}); ` +
      `the operating-point thresholds moved ${thresholdMove(p.logitShift)} (before: ${before}). ` +
      'Their sensitivity and specificity on the site are unknown.\n'
    : '- Temperature and operating points are the validation-chosen ones of the source model.\n';
  const relative = a.method.includes('adabn-relative');
  const m = a.classMix;
  const how = {
    estimated: 'estimated from the films',
    first: 'the estimate before adapting, without the search',
    given: 'as given',
    reference: "the validation films' own",
  };
  const mix =
    m && relative
      ? `- The validation films were compared with the site's in the site's mix of classes: ${pct(m.site)} ` +
        `pneumonia (${how[m.how]}) against ${pct(m.reference)} among the validation films.` +
        (m.search === 'unsettled'
          ? ' The estimate did not settle: at every share tried the adapted films read as more pneumonia, a ' +
            'difference adaptation does not undo, so the estimate before adapting was used; the scores of ' +
            "this site's normal films may be too high. Give the site's share if it is known.\n"
          : '\n')
      : '';
  return [
    '## Adapted to a site',
    `This is \`${a.source.name}\` version ${a.source.version} (sha256 \`${a.source.sha256.slice(0, 16)}\`) ` +
      `adapted on ${a.date} to one site's **unlabeled** films`,
    `(${a.method.join(' + ')}): the moving mean and variance of its ${a.bnLayers} batch-norm layers ` +
      (relative
        ? `were moved by how ${a.films.used} of the site's films differ from the model's validation films`
        : `were re-estimated on ${a.films.used} of the site's films`),
    `(${a.films.rejected} flagged by the OOD gate or the image checks and left out, ` +
      `${a.films.unreadable} unreadable files` +
      (a.films.duplicates ? `, ${a.films.duplicates} copies of films already used` : '') +
      `; film-set fingerprint \`${a.fingerprint.slice(0, 16)}\`).`,
    'No weight was trained and no label was used.',
    mix +
      prior +
      "- The validation figures below are the **source model's, measured before adaptation**; " +
      'the adapted model has not been validated on labelled',
    '  films of this site. Check it on a labelled local sample with `cxr evaluate` before relying on it.',
    relative
      ? "- The OOD gate is the source model's (fitted on the training split): relative adaptation keeps the " +
        'features of films like the validation films where they were.'
      : "- The OOD gate's covariance and threshold were fitted on the training split before adaptation; " +
        "its mean was refitted on the site's films.",
    "- Use it only for films from the site it was adapted to; keep the source model's folder to undo.",
    '',
    '',
  ].join('\n');
}

function ensembleSection(meta: ModelMeta): string {
  const e = meta.ensemble!;
  const soup = e.method === 'weight-soup';
  const rows = e.members.map((m) => {
    const auc = m.validationAuc === null ? 'n/a' : m.validationAuc.toFixed(4);
    const where = soup ? `\`${m.from}\`` : `\`${m.dir}\``;
    return `| ${where} | ${m.name} ${m.version} | ${m.arch} | ${auc} | \`${m.sha256.slice(0, 12)}\` |`;
  });
  const how = soup
    ? [
        '## Weight soup',
        `${e.members.length} members' weights (batch-norm statistics included) averaged into this one model ` +
          '(a model soup): one forward pass per view',
      ]
    : [
        '## Ensemble',
        `${e.members.length} members, each a full model in its own sub-folder; ` +
          'the prediction is the mean of their logits',
      ];
  return [
    ...how,
    `(over test-time views too: ${meta.tta.length ? meta.tta.join(', ') : 'none'}), then temperature-scaled. ` +
      'Temperature and operating points were re-chosen',
    `for the ${soup ? 'soup' : 'ensemble'} on the members' shared validation split.` +
      (e.weights === 'float16'
        ? ` The ${soup ? 'averaged weights are' : "members' weights are"} stored in half precision (float16), ` +
          'rounded before that calibration.'
        : ''),
    '',
    `| ${soup ? 'from' : 'folder'} | member | arch | its validation AUC | sha256 |`,
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

/** The training command recorded in a model folder's card, so that a rewrite keeps it. */
export function cardCommand(dir: string): string | undefined {
  const file = path.join(dir, 'MODEL_CARD.md');
  if (!fs.existsSync(file)) return undefined;
  return /Command:\n\n```sh\n([^\n]+)\n```/.exec(fs.readFileSync(file, 'utf8'))?.[1];
}

/** Everything below this line of a card is written by hand and survives regeneration (`cxr calibrate`). */
export const HAND_WRITTEN_MARKER = '<!-- hand-written below: kept when the card is regenerated -->';

/**
 * The card as it is written over `old` (the folder's card, or '' when it has none): its hand-written section
 * kept. One text for every writer and for `cxr card --check`, so a check passes exactly on a card a writer made.
 */
export function cardOver(old: string, meta: ModelMeta, command?: string): string {
  const at = old.indexOf(HAND_WRITTEN_MARKER);
  return modelCard(meta, command) + (at >= 0 ? `\n${old.slice(at)}` : '');
}

export function writeModelCard(dir: string, meta: ModelMeta, command?: string): void {
  const file = path.join(dir, 'MODEL_CARD.md');
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  fs.writeFileSync(file, cardOver(old, meta, command));
}

/** The recipe's site-shift augmentation in words, or nothing. */
function shiftLine(r: ModelMeta['recipe']): string {
  const a = r.shiftAugment;
  const lines = [
    r.headFirst
      ? `the head alone trained first on the frozen ImageNet features (${plural(r.headFirst.epochs, 'epoch')} at lr ` +
        `${r.headFirst.lr}), then the whole model for the epochs above;\n`
      : '',
    a
      ? `site-shift augmentation on ${Math.round(a.probability * 100)}% of training films ` +
        `(${a.changes.join(', ')}; strength up to ${a.maxStrength});\n`
      : '',
    r.mix ? `${r.mix.method} on ${Math.round(r.mix.probability * 100)}% of batches (alpha ${r.mix.alpha});\n` : '',
    r.weightAverage
      ? `the weights are a moving average (${r.weightAverage.method}, decay ${r.weightAverage.decay} per step, ` +
        'batch-norm statistics included);\n'
      : '',
  ];
  return lines.join('');
}

/** The model's per-image normalisation in words, or nothing when there is none. */
function normalizeLine(meta: ModelMeta): string {
  const n = meta.preprocessing.normalize;
  return n && n !== 'none' ? `per-image normalisation \`${n}\`;\n` : '';
}

/** What the balanced point's rule means, in the card's words (models made before rules were recorded: J's maximum). */
function balancedRuleWords(rule: string): string {
  if (rule === 'youden-plateau-middle') {
    return "the middle (in logit space) of the thresholds whose Youden's J is within 0.01 of its maximum";
  }
  return "Youden's J (its maximum)";
}

function calibrationWords(meta: ModelMeta): string {
  const t = meta.temperature.toFixed(3);
  if (meta.logitBias === 0)
    // fitPlatt falls back to the temperature alone when its slope would invert the ranking.
    return meta.calibration?.scaling === 'platt'
      ? `temperature scaling (T = ${t}; the Platt fit asked for fell back to it, its slope not being positive)`
      : `temperature scaling (T = ${t})`;
  const b = `${meta.logitBias >= 0 ? '+' : '−'} ${Math.abs(meta.logitBias).toFixed(3)}`;
  return `Platt scaling (sigmoid(logit / ${t} ${b}))`;
}
