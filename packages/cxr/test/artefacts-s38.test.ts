// The committed experiment artefacts (docs/experiments/) redrawn by the repository's own commands (session 38):
// what a redraw would have written that is not so of the recorded runs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeReport } from '../src/report';
import { REPO } from './shared-data';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** The repository's committed seed row whose screening point lies below its balanced point. */
const SEED_ROW = path.join(REPO, 'docs', 'experiments', 'seed4-baseline-augment');

/** A copy of the row's recorded files (never the committed folder itself: the report is written into it). */
function copyOfRow(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-s38-artefacts-'));
  made.push(dir);
  for (const f of ['cxr.json', 'log.jsonl', path.join('metrics', 'val.json'), path.join('predictions', 'val.json')]) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(SEED_ROW, f), path.join(dir, f));
  }
  return dir;
}

/** The glossary's entry on operating points, tags dropped. */
function operatingPointWords(html: string): string {
  const at = html.indexOf('<dt>Threshold and operating points</dt>');
  assert.ok(at >= 0, 'the glossary explains operating points');
  const dd = html.slice(at, html.indexOf('</dd>', at));
  return dd.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

test('a model made before rules were recorded gets the 95% screening target it was chosen with, not 99%', async () => {
  const dir = copyOfRow();
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'cxr.json'), 'utf8'));
  const { screening, balanced } = meta.operatingPoints;
  // No rule recorded (made 2026-11-26), and its screening point could not have come from a 99% target: it lies
  // below the balanced point yet catches under 99% of pneumonia.
  assert.equal(screening.rule, undefined, 'the row records no rule');
  assert.ok(screening.threshold < balanced.threshold, 'screening below balanced');
  assert.ok(screening.sensitivity >= 0.95 && screening.sensitivity < 0.99, `sensitivity ${screening.sensitivity}`);
  await writeReport(dir);
  const words = operatingPointWords(fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8'));
  assert.ok(words.includes('at least 95% of pneumonia'), `screening's target: ${words}`);
  assert.ok(!words.includes('99%'), `the glossary promises 99%: ${words}`);
  assert.ok(words.includes('maximises sensitivity + specificity'), `balanced's earlier rule: ${words}`);
});
