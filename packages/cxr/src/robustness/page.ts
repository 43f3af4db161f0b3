// `cxr robustness --out DIR`: robustness.json, the metric-against-strength plots (SVG + PNG) and
// a self-contained index.html in the style of the run reports.
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import sharp from 'sharp';
import { CHANGES } from '../data/perturb_catalog';
import { dec, pct } from '../eval/format';
import { chartBox, downloadLinks, escapeHtml, htmlPage, kpiBox, table } from '../report/html';
import { writeChart } from '../report/render';
import { METRIC_LABELS, type RowMetric, strengthChart } from './charts';
import { ECE_BINS, type RobustnessResult, type RobustnessRow } from './metrics';
import { DEFAULT_STRENGTHS, type Example } from './run';
import { makeDirs } from '../make_dirs';
import { writeFileAtomic } from '../atomic_write';

const PLOTS: { metric: RowMetric; caption: string }[] = [
  {
    metric: 'specificity',
    caption:
      "Share of NORMAL films left unflagged at the model's default threshold. " +
      'A falling line is the false alarms a shift causes.',
  },
  { metric: 'sensitivity', caption: 'Share of PNEUMONIA films flagged at the default threshold.' },
  {
    metric: 'auc',
    caption:
      'Ranking quality, independent of the threshold: ' +
      'a change that keeps the AUC but moves the specificity only moved the scores.',
  },
  {
    metric: 'normalScoreShift',
    caption:
      'Mean change of the predicted probability of NORMAL films against the same films clean; ' +
      'above 0 = pushed towards pneumonia.',
  },
  {
    metric: 'ece',
    caption:
      `Expected calibration error (${ECE_BINS} equal-width bins, as \`cxr evaluate\`): ` +
      'the gap between stated probabilities and observed rates.',
  },
];

const ROWS_NOTE =
  'Specificity in bold: 10 points or more below the clean row. ' +
  'Δ scores: mean of (perturbed − clean) predicted probability per class.';
const CHANGES_NOTE =
  'Applied to the decoded model-size image (src/data/perturb.ts), seeded per image; ' +
  'strengths scale sizes with the image side.';
const DISCLAIMER =
  "Synthetic changes measure sensitivity to nuisances, not accuracy on another hospital's films; " +
  'a model can pass them all and still fail on a real shift.';

/**
 * A score shift with its sign, to 3 decimals; one that rounds to zero has none, so a tiny negative mean no
 * longer reads "−0.000" (the CLI's rows use it too).
 */
export function signedShift(x: number | null | undefined): string {
  if (x === null || x === undefined) return 'n/a';
  const shown = Math.abs(x).toFixed(3);
  if (Number(shown) === 0) return shown;
  return `${x > 0 ? '+' : '−'}${shown}`;
}

const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);

/**
 * The command that repeats this run, from what robustness.json records: the same films (--limit, --seed), changes
 * and strengths; the defaults left out. A result written before the limit was recorded shows none.
 */
export function rerunCommand(result: RobustnessResult, outDir: string): string {
  const perturbed = result.rows.filter((r) => r.strength > 0);
  const changes = [...new Set(perturbed.map((r) => r.change))];
  const strengths = [...new Set(perturbed.map((r) => r.strength))];
  const sameList = (a: readonly unknown[], b: readonly unknown[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  const args = [
    ['--model', path.resolve(result.model.dir)],
    ['--data', path.resolve(result.data.path)],
    ['--out', path.resolve(outDir)],
    ['--seed', String(result.seed)],
    ...(result.data.limit ? [['--limit', String(result.data.limit)]] : []),
    ...(sameList(
      changes,
      CHANGES.map((c) => c.name),
    )
      ? []
      : [['--changes', changes.join(',')]]),
    ...(sameList(strengths, DEFAULT_STRENGTHS) ? [] : [['--strengths', strengths.map(String).join(',')]]),
    ...(result.outside ? [['--outside', path.resolve(result.outside.data)]] : []),
  ];
  return ['cxr robustness', ...args.map(([k, v]) => `${k} ${shellWord(v)}`)].join(' ');
}

/**
 * The KPI's words for clean − robust specificity: a negative drop is a rise (the shifts made the model call
 * fewer NORMAL films PNEUMONIA), so "drop -12.5 points" is never printed. Rounded first, so that a change too
 * small to show reads "no change" rather than "drop 0.0 points".
 */
export function specificityChange(drop: number | null): string {
  if (drop === null) return 'change n/a';
  const points = Math.round(1000 * drop) / 10;
  if (points === 0) return 'no change';
  return `${points > 0 ? 'drop' : 'rise'} ${Math.abs(points).toFixed(1)} points`;
}

function kpis(r: RobustnessResult): string {
  const s = r.summary;
  const kpi = (label: string, value: string, note: string) =>
    kpiBox(escapeHtml(value), escapeHtml(label), escapeHtml(note) || '&nbsp;');
  const worst = s.worstSpecificity;
  const change = specificityChange(s.meanSpecificityDrop);
  const pneumoniaShift = signedShift(s.meanPneumoniaScoreShift);
  return `<div class="kpis">
${kpi('Clean specificity', pct(s.cleanSpecificity), `AUC ${dec(s.cleanAuc)}`)}
${kpi('Robust specificity', pct(s.robustSpecificity), `mean over ${s.perturbedRows} perturbed rows; ${change}`)}
${kpi('Worst specificity', pct(worst?.value ?? null), worst ? `${worst.change} at ${worst.strength.toFixed(2)}` : '')}
${kpi('Mean ECE', dec(s.meanEce), 'over the perturbed rows')}
${kpi('Mean NORMAL-score shift', signedShift(s.meanNormalScoreShift), `PNEUMONIA ${pneumoniaShift}`)}
</div>`;
}

function rowsTable(rows: readonly RobustnessRow[], cleanSpec: number | null): string {
  const num = (x: number | null, f: (v: number) => string) => (x === null ? 'n/a' : f(x));
  return table(
    [
      'Change',
      'Strength',
      'Parameter',
      'AUC',
      'Sensitivity',
      'Specificity',
      'Δ NORMAL score',
      'Δ PNEUMONIA score',
      'ECE',
      'n',
    ],
    rows.map((r) => {
      // A drop of 10 points or more of specificity is what the page is for: make it stand out.
      const bad = cleanSpec !== null && r.specificity !== null && cleanSpec - r.specificity >= 0.1;
      const spec = num(r.specificity, (v) => pct(v));
      return [
        escapeHtml(r.change),
        r.strength.toFixed(2),
        escapeHtml(r.parameter),
        num(r.auc, (v) => v.toFixed(3)),
        num(r.sensitivity, (v) => pct(v)),
        bad ? `<b>${spec}</b>` : spec,
        signedShift(r.normalScoreShift),
        signedShift(r.pneumoniaScoreShift),
        r.ece.toFixed(3),
        String(r.n),
      ];
    }),
    'robustness',
  );
}

function outsideSection(r: RobustnessResult): string {
  const o = r.outside;
  if (!o) {
    return (
      '<p class="note">No outside check: ' +
      "Kaggle's val folder was not found beside the data, or it is the data itself.</p>"
    );
  }
  const clean = r.rows.find((x) => x.strength === 0);
  const intro =
    `<p>The same model, clean, on <code>${escapeHtml(o.data)}</code> (${o.n} films; not used for any choice). ` +
    "Kaggle's val folder comes from the official test split's patients, " +
    "so a gap here against the benchmark's clean row is the kind of shift this page is trying to predict.</p>";
  return `${intro}
${table(
  ['Data', 'AUC', 'Sensitivity', 'Specificity', 'ECE', 'Mean NORMAL score', 'Mean PNEUMONIA score', 'n'],
  [
    [
      'Benchmark images (clean)',
      dec(clean?.auc ?? null),
      pct(clean?.sensitivity ?? null),
      pct(clean?.specificity ?? null),
      clean ? clean.ece.toFixed(3) : 'n/a',
      dec(clean?.meanNormalScore ?? null),
      dec(clean?.meanPneumoniaScore ?? null),
      String(clean?.n ?? ''),
    ],
    [
      'Kaggle val (clean)',
      dec(o.auc),
      pct(o.sensitivity),
      pct(o.specificity),
      o.ece.toFixed(3),
      dec(o.meanNormalScore),
      dec(o.meanPneumoniaScore),
      String(o.n),
    ],
  ],
)}`;
}

async function exampleSheet(examples: readonly Example[]): Promise<string> {
  if (examples.length === 0) return '';
  const cells = await Promise.all(
    examples.map(async (e) => {
      const png = await sharp(e.pixels, { raw: { width: e.size, height: e.size, channels: 1 } })
        .png()
        .toBuffer();
      const alt = `${e.change}${e.strength > 0 ? ` at strength ${e.strength.toFixed(2)}` : ''}`;
      const img =
        `<img src="data:image/png;base64,${png.toString('base64')}" ` +
        `width="${e.size}" height="${e.size}" alt="${escapeHtml(alt)}">`;
      const caption = `<b>${escapeHtml(e.change)}</b><br>${escapeHtml(e.parameter)}`;
      return `<figure class="example">${img}<figcaption>${caption}</figcaption></figure>`;
    }),
  );
  // The grid's columns fit the example images, whose size is the model's input size.
  const style =
    `.sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(${examples[0].size + 26}px, 1fr)); ` +
    'gap: 10px; } figure.example img { image-rendering: pixelated; display: block; margin: 0 auto; }';
  return `<h2 id="examples">What the changes look like</h2>
<p>One NORMAL film of the benchmark at the model's input size, clean and under each change at the highest strength.</p>
<style>${style}</style>
<div class="sheet">${cells.join('\n')}</div>`;
}

export async function writeRobustnessReport(
  result: RobustnessResult,
  examples: readonly Example[],
  outDir: string,
): Promise<string[]> {
  makeDirs(outDir);
  const files: string[] = [];
  const json = path.join(outDir, 'robustness.json');

  const figures: string[] = [];
  for (const p of PLOTS) {
    const base = path.join(outDir, `robustness-${p.metric}`);
    const spec = strengthChart(result.rows, p.metric, {
      title: `${METRIC_LABELS[p.metric]} under nuisance changes`,
      subtitle: `${result.model.name} · ${result.data.n} images`,
    });
    const r = await writeChart(spec, base);
    files.push(...r.files);
    const name = path.basename(base);
    const caption = `${escapeHtml(p.caption)} · ${downloadLinks(name)}`;
    figures.push(`<figure>${chartBox(r.svg, name, p.caption)}<figcaption>${caption}</figcaption></figure>`);
  }

  const m = result.model;
  const title = `Robustness to nuisance changes — ${m.name} v${m.version}`;
  const changes = CHANGES.filter((c) => result.rows.some((r) => r.change === c.name));
  const op = result.operatingPoint;
  const facts = [
    escapeHtml(result.data.source),
    `${result.data.normal} NORMAL, ${result.data.pneumonia} PNEUMONIA`,
    `operating point ${escapeHtml(op.name)} (threshold ${op.threshold.toFixed(3)})`,
    `test-time views: ${escapeHtml(result.tta.join(', ') || 'none')}`,
    `seed ${escapeHtml(String(result.seed))}`,
    `${result.seconds.toFixed(0)} s`,
    `generated ${escapeHtml(result.createdAt.slice(0, 16).replace('T', ' '))} UTC`,
  ];
  const sections: [string, string][] = [
    ['summary', 'Summary'],
    ['outside', 'Outside check'],
    ['plots', 'Plots'],
    ['rows', 'All rows'],
    ['examples', 'Examples'],
    ['changes', 'The changes'],
  ];
  const nav = sections.map(([id, name]) => `<a href="#${id}">${name}</a>`);
  const strengths = result.summary.perturbedRows / Math.max(1, changes.length);
  const lead =
    `The same images, scored clean and under ${changes.length} nuisance changes at ${strengths} strengths each. ` +
    'None of these changes alters the diagnosis, so a robust model keeps its specificity and sensitivity, ' +
    'and its scores stay where they were.';
  const body = `<header>
<h1>${escapeHtml(title)}</h1>
<p>${facts.join(' · ')}</p>
<p>${nav.join(' · ')}</p>
</header>
<h2 id="summary">Summary</h2>
<section class="card">
<p class="lead">${lead}</p>
${kpis(result)}
</section>
<h2 id="outside">Outside check</h2>
<section class="card">${outsideSection(result)}</section>
<h2 id="plots">Metrics against strength</h2>
<div class="figs">
${figures.join('\n')}
</div>
<h2 id="rows">All rows</h2>
<section class="card"><div class="wide">${rowsTable(result.rows, result.summary.cleanSpecificity)}</div>
<p class="desc">${ROWS_NOTE}</p></section>
${await exampleSheet(examples)}
<h2 id="changes">The changes</h2>
<section class="card">${table(
    ['Change', 'What it imitates', 'At strength 1'],
    changes.map((c) => [
      escapeHtml(c.name),
      escapeHtml(c.description),
      escapeHtml(c.parameter(1, examples[0]?.size ?? 160)),
    ]),
  )}
<p class="desc">${CHANGES_NOTE} Run it again: <code>${escapeHtml(rerunCommand(result, outDir))}</code>.</p></section>
<p class="disclaimer">${DISCLAIMER}</p>`;
  const index = path.join(outDir, 'index.html');
  await writeFile(index, htmlPage(title, body));
  // robustness.json is what marks the benchmark done (an experiment run with --resume keeps it): written last and
  // whole, so that a run stopped or failing while it wrote the page, or while it wrote the file itself, is
  // benchmarked again rather than kept without its page, or refused as 'not JSON'.
  writeFileAtomic(json, JSON.stringify(result, null, 2) + '\n');
  files.push(json, index);
  return files;
}
