// Session 35's report leftovers: the robustness page's KPI says a rise of specificity as a rise, every series of
// the many-line charts is dark enough to see on white, the comparison pages link only to files that exist, and a
// Secondary Capture whose heat map has no colour says why.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import { readSource } from '../src/dicom_out';
import { buildSecondaryCapture, burnedInLines, EMPTY_HEATMAP_LINE } from '../src/dicom_out/secondary_capture';
import { evaluate } from '../src/eval';
import { rocCurve } from '../src/eval/metrics';
import { renderOverlay } from '../src/explain/gradcam';
import { rocOverlayChart, writeComparison } from '../src/report';
import { renderSvg } from '../src/report/render';
import { strengthChart } from '../src/robustness/charts';
import { readRobustnessResult, type RobustnessRow } from '../src/robustness/metrics';
import { specificityChange, writeRobustnessReport } from '../src/robustness/page';
import { imageElements, writeDicom } from './dicom-writer';
import { REPO } from './shared-data';
import { syntheticScores } from './synthetic-scores';

const made: string[] = [];
const tmpDir = (name: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-s35-${name}-`));
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

const EXPERIMENTS = path.join(REPO, 'docs', 'experiments');
const SHIFT_RUN = path.join(EXPERIMENTS, 'shift', 'cxr-shift-ema-block-s42');

test('the robustness page says a rise of specificity as a rise, never "drop -12.5 points"', async () => {
  assert.equal(specificityChange(-0.125), 'rise 12.5 points');
  assert.equal(specificityChange(0.048), 'drop 4.8 points');
  assert.equal(specificityChange(0), 'no change');
  assert.equal(specificityChange(-0.0004), 'no change', 'a change that rounds to 0.0 points');
  assert.equal(specificityChange(null), 'change n/a');
  const committed = readRobustnessResult(SHIFT_RUN);
  assert.ok(committed, `a committed robustness.json in ${SHIFT_RUN}`);
  const result = { ...committed, summary: { ...committed.summary, meanSpecificityDrop: -0.125 } };
  const dir = tmpDir('robustness');
  await writeRobustnessReport(result, [], dir);
  const page = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  assert.match(page, /perturbed rows; rise 12\.5 points/);
  assert.doesNotMatch(page, /drop [-−]/);
});

/** WCAG 2 contrast ratio of an sRGB colour ('#rrggbb') against white. */
function contrastOnWhite(hex: string): number {
  const lin = [1, 3, 5].map((i) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const l = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return 1.05 / (l + 0.05);
}

interface Stroke {
  stroke: string;
  dash: string;
  /** The path's path data. */
  d: string;
}

/** Stroke colour, dash and path data of each path in the SVG's groups of class `groupClass`. */
function strokes(svg: string, groupClass: string): Stroke[] {
  const out: Stroke[] = [];
  for (const g of svg.matchAll(new RegExp(`<g class="[^"]*${groupClass}[^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g')))
    for (const p of g[1].matchAll(/<path[^>]*>/g)) {
      const stroke = /stroke="(#[0-9a-fA-F]{6})"/.exec(p[0])?.[1];
      const dash = /stroke-dasharray="([^"]*)"/.exec(p[0])?.[1] ?? '';
      if (stroke) out.push({ stroke: stroke.toLowerCase(), dash, d: /\sd="([^"]*)"/.exec(p[0])?.[1] ?? '' });
    }
  return out;
}

/** A legend symbol long enough to show two rounds of its dash pattern (a 10 px one drew dashes as a line). */
function showsItsDash(symbol: Stroke): boolean {
  const m = /^M(-?[\d.]+),0L(-?[\d.]+),0$/.exec(symbol.d);
  const period = symbol.dash.split(',').reduce((a, b) => a + Number(b), 0);
  return m !== null && Number(m[2]) - Number(m[1]) >= 2 * period;
}

test('20 overlaid ROC curves: each line 3:1 or more on white, with its own colour and dash, legend alike', async () => {
  const curves = Array.from({ length: 20 }, (_, i) => {
    const s = syntheticScores(60, 30, i + 1);
    return { name: `run-${i + 1}`, auc: 0.9, points: rocCurve(s.labels, s.probs) };
  });
  const spec = rocOverlayChart(curves, { title: 'ROC' });
  const svg = await renderSvg(spec);
  const lines = strokes(svg, 'mark-line role-mark').filter((l) => l.stroke !== '#9aa5b1'); // the chance diagonal
  assert.equal(lines.length, 2 * curves.length, 'each curve drawn in both panels');
  for (const l of lines) assert.ok(contrastOnWhite(l.stroke) >= 3, `${l.stroke}: ${contrastOnWhite(l.stroke)}:1`);
  const styles = lines.slice(0, curves.length).map((l) => `${l.stroke} ${l.dash}`);
  assert.equal(new Set(styles).size, curves.length, `one look per curve: ${styles.join(', ')}`);
  // One legend, its symbols in the lines' colours and dashes, in order.
  const symbols = strokes(svg, 'role-legend-symbol');
  assert.deepEqual(
    symbols.map((l) => `${l.stroke} ${l.dash}`),
    styles,
  );
  for (const s of symbols) assert.ok(showsItsDash(s), `legend symbol ${s.d} for dash ${s.dash}`);
});

test("the robustness page's strength plots: every change's line 3:1 or more on white", async () => {
  const committed = readRobustnessResult(SHIFT_RUN);
  assert.ok(committed);
  const changes = new Set(committed.rows.filter((r) => r.strength > 0).map((r) => r.change));
  assert.ok(changes.size > 10, `${changes.size} changes: more than category20's dark half`);
  const svg = await renderSvg(strengthChart(committed.rows as RobustnessRow[], 'specificity', { title: 'S' }));
  const lines = strokes(svg, 'mark-line role-mark');
  assert.equal(lines.length, changes.size);
  for (const l of lines) assert.ok(contrastOnWhite(l.stroke) >= 3, `${l.stroke}: ${contrastOnWhite(l.stroke)}:1`);
  assert.equal(new Set(lines.map((l) => `${l.stroke} ${l.dash}`)).size, changes.size, 'one look per change');
  const symbols = strokes(svg, 'role-legend-symbol');
  assert.equal(symbols.length, changes.size, 'one legend');
  for (const s of symbols) assert.ok(showsItsDash(s), `legend symbol ${s.d} for dash ${s.dash}`);
});

/** The relative links of a page that name no file there (anchors and data: URLs aside). */
function deadLinks(page: string, dir: string): string[] {
  return [...page.matchAll(/href="([^"#][^"]*)"/g)]
    .map((m) => m[1].replace(/&amp;/g, '&'))
    .filter((h) => !/^[a-z]+:/i.test(h) && !fs.existsSync(path.join(dir, decodeURIComponent(h))));
}

test('the comparison page links a run to its report where the folder has one, else to its model card', async () => {
  const dir = tmpDir('comparison');
  const runs = ['with-report', 'card-only', 'bare'];
  fs.mkdirSync(path.join(dir, 'with-report', 'report'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'with-report', 'report', 'index.html'), '<html></html>');
  fs.mkdirSync(path.join(dir, 'card-only'));
  fs.writeFileSync(path.join(dir, 'card-only', 'MODEL_CARD.md'), '# card');
  const experiments = runs.map((name, i) => {
    const s = syntheticScores(60, 30, i + 1);
    return {
      name,
      metrics: evaluate(s.labels, s.probs, { bootstrap: { n: 20, seed: 1 } }),
      trainingSeconds: 60,
      runDir: path.join(dir, name),
    };
  });
  await writeComparison(experiments, dir);
  const page = fs.readFileSync(path.join(dir, 'comparison.html'), 'utf8');
  assert.deepEqual(deadLinks(page, dir), []);
  assert.match(page, /<a href="with-report\/report\/index.html">report<\/a>/);
  assert.match(page, /<a href="card-only\/MODEL_CARD.md">model card<\/a>/);
});

test('the committed comparison pages link only to committed files', () => {
  for (const rel of ['comparison.html', 'seed-recipes/comparison.html', 'shift/comparison.html']) {
    const file = path.join(EXPERIMENTS, rel);
    const dead = deadLinks(fs.readFileSync(file, 'utf8'), path.dirname(file));
    assert.deepEqual(dead, [], `${rel}: ${dead.length} dead links`);
  }
});

test('a Secondary Capture whose heat map has no colour says so in its burned-in lines', async () => {
  const uid = (n: number) => `1.2.826.0.1.3680043.8.498.${n}`;
  const source = readSource(
    writeDicom(
      imageElements({
        rows: 64,
        columns: 64,
        bitsAllocated: 8,
        pixels: new Uint8Array(64 * 64).fill(90),
        extra: [
          { tag: 0x0020000d, vr: 'UI', value: uid(1) },
          { tag: 0x0020000e, vr: 'UI', value: uid(2) },
          { tag: 0x00080018, vr: 'UI', value: uid(3) },
          { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
        ],
      }),
    ),
  );
  const gray = new Uint8Array(64 * 64).fill(90);
  const cam = { map: new Float32Array(16).fill(1), height: 4, width: 4, peak: 1 };
  const at = async (probability: number) => {
    const input = {
      source,
      prediction: {
        probability,
        label: probability >= 0.5 ? ('PNEUMONIA' as const) : ('NORMAL' as const),
        operatingPoint: 'balanced',
        threshold: 0.5,
        warnings: [],
        verdict: { status: 'assessed' as const, reasons: [] },
      },
      model: { name: 'tiny', version: '0.0.1', sha256: 'ab'.repeat(32) },
      now: new Date('2024-05-01T12:34:56Z'),
    };
    // The overlay as the predictor draws it: colours scaled by the probability.
    const png = await renderOverlay(gray, 64, 64, cam, { strength: probability });
    const sc = await buildSecondaryCapture(input, png);
    const ds = dicomParser.parseDicom(new Uint8Array(sc.bytes));
    return { lines: burnedInLines(input), rows: ds.uint16('x00280010')!, columns: ds.uint16('x00280011')! };
  };
  const empty = await at(0.05);
  const coloured = await at(0.6);
  assert.equal(empty.lines.at(-1), EMPTY_HEATMAP_LINE);
  assert.match(EMPTY_HEATMAP_LINE, /no region raised the pneumonia score/);
  assert.equal(coloured.lines.length, 2, 'a coloured map: the caveat and the result only, as before');
  assert.deepEqual(
    empty.lines.slice(0, 2).map((l) => l.split(':')[0]),
    coloured.lines.map((l) => l.split(':')[0]),
  );
  // The line is burned in: the image is taller by its rows of text, as wide as before.
  assert.equal(empty.columns, coloured.columns);
  assert.ok(empty.rows > coloured.rows, `${empty.rows} rows against ${coloured.rows}`);
});

test('48 overlaid ROC curves (the shift page): every curve named in the legend, none in "…N entries"', async () => {
  const curves = Array.from({ length: 48 }, (_, i) => {
    const s = syntheticScores(40, 20, i + 1);
    return { name: `run-${i + 1}`, auc: 0.9, points: rocCurve(s.labels, s.probs) };
  });
  const svg = await renderSvg(rocOverlayChart(curves, { title: 'ROC' }));
  // assert.ok, not assert.match: a failing match prints the whole SVG, which kept the test runner busy for minutes.
  const folded = /…\d+ entries/.exec(svg)?.[0];
  assert.ok(folded === undefined, `the legend folds curves into "${folded}"`);
  const unnamed = curves.filter((c) => !svg.includes(`>${c.name} (AUC 0.900)<`)).map((c) => c.name);
  assert.deepEqual(unnamed, []);
  assert.equal(strokes(svg, 'role-legend-symbol').length, curves.length);
});
