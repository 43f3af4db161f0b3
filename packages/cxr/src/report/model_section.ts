// The Model section of a run's report (write_report.ts), from cxr.json or the evaluations' records.
// What cxr.json says of the model, its operating points and recipe; or, in a `cxr evaluate --out` folder with
// no cxr.json, the model each evaluation recorded.
import { pct } from '../eval/format';
import { escapeHtml, table } from './html';
import { metaThresholds, type RunData } from './run_dir';

export function modelSection(run: RunData): string {
  if (!run.hasMeta) return evaluatedModelsSection(run);
  const m = run.meta;
  const rows: [string, string][] = [];
  const add = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== '') rows.push([k, escapeHtml(String(v))]);
  };
  add('Name', m.name);
  add('Version', m.version);
  add('Architecture', m.arch);
  add('Input size', m.inputSize ? `${m.inputSize} × ${m.inputSize} pixels` : undefined);
  add('Classes', m.classNames?.join(' / '));
  add('Calibration temperature', m.temperature?.toFixed(3));
  if (m.logitBias) add('Calibration logit bias', m.logitBias.toFixed(3));
  add('Created', m.createdAt);
  const points = metaThresholds(m);
  const opTable = points.length
    ? `<h3>Operating points (chosen on the validation set)</h3>${table(
        ['Name', 'Threshold', 'Validation sensitivity', 'Validation specificity'],
        points.map((p) => {
          const stored = { ...m.thresholds, ...m.operatingPoints }[p.name] as
            | { sensitivity?: unknown; specificity?: unknown }
            | number;
          const rate = (x: unknown) => (typeof x === 'number' ? pct(x) : '—');
          return [
            escapeHtml(p.name + (p.name === m.defaultOperatingPoint ? ' (default)' : '')),
            p.threshold.toFixed(3),
            typeof stored === 'object' ? rate(stored.sensitivity) : '—',
            typeof stored === 'object' ? rate(stored.specificity) : '—',
          ];
        }),
      )}`
    : '';
  const recipe = (m as Record<string, unknown>).recipe;
  return `<h2 id="model">Model</h2>
<section class="card">
${table(
  ['Field', 'Value'],
  rows.map(([k, v]) => [escapeHtml(k), v]),
  'kv',
)}
${opTable}
${recipe !== undefined ? `<h3>Training recipe</h3><pre>${escapeHtml(JSON.stringify(recipe, null, 2))}</pre>` : ''}
<details><summary>All metadata (cxr.json)</summary><pre>${escapeHtml(JSON.stringify(m, null, 2))}</pre></details>
</section>`;
}

/**
 * A `cxr evaluate --out` folder of its own holds no cxr.json, but each evaluation records the model it scored: a
 * local validation's report is handed on, and must say which model (and which exact weights) it vouches for.
 */
function evaluatedModelsSection(run: RunData): string {
  const bySha = new Map(run.splits.flatMap((s) => (s.model ? [[s.model.sha256, s.model] as const] : [])));
  if (bySha.size === 0) return '<h2 id="model">Model</h2><p class="note">No cxr.json in this run directory.</p>';
  const splitsOf = (sha: string) => run.splits.flatMap((s) => (s.model?.sha256 === sha ? [s.name] : [])).join(', ');
  const rows = [...bySha.values()].map((m) =>
    [m.name, m.version, m.sha256, splitsOf(m.sha256)].map((v) => escapeHtml(v)),
  );
  return `<h2 id="model">Model</h2>
<section class="card">
<p>The model each evaluation above was made with, as the evaluation recorded it (this folder holds no cxr.json).</p>
${table(['Name', 'Version', 'sha256', 'Splits'], rows)}
</section>`;
}
