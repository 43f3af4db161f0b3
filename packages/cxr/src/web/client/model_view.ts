// The Model view: facts from cxr.json, operating points, validation metrics and MODEL_CARD.md.
import DOMPurify from 'dompurify';
import { marked } from 'marked';
import * as api from './api';
import { $, el, NBSP, percent } from './dom';

/** Validation measures that are proportions of films (or a probability): shown in percent, as everywhere else. */
const PROPORTIONS = new Set([
  'accuracy',
  'sensitivity',
  'specificity',
  'precision',
  'recall',
  'npv',
  'ppv',
  'threshold',
  'ece',
]);

/** Names people read for the metrics' keys; a key not listed is shown as it is. */
const NAMES: Record<string, string> = {
  n: 'films',
  auc: 'AUC (ROC)',
  pr_auc: 'AUC (precision-recall)',
  f1: 'F1',
  ece: 'calibration error (ECE)',
  brier: 'Brier score',
};

function fmt(key: string, v: unknown, ci?: unknown): string {
  if (typeof v === 'number') {
    const asPercent = PROPORTIONS.has(key) && v >= 0 && v <= 1;
    // A proportion of exactly 1 or 0 (every pneumonia found on a small validation set) is a percentage too: it
    // read "sensitivity 1" beside "specificity 97.0 %".
    if (Number.isInteger(v) && !asPercent) return String(v);
    const one = (x: number) => (asPercent ? percent(x) : x.toFixed(4));
    const interval =
      Array.isArray(ci) && ci.length === 2 && ci.every((x) => typeof x === 'number')
        ? ` (95${NBSP}% CI ${one(ci[0])} to ${one(ci[1])})`
        : '';
    return one(v) + interval;
  }
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * Relative links in MODEL_CARD.md point into the source tree next to the model folder (e.g.
 * ../../docs/experiments/README.md from models/default/), which this server does not serve: in
 * the page they would resolve against the page's own URL and 404. They become the path they
 * name, as text; absolute http(s) links and in-page anchors stay links.
 */
export function fixCardLinks(root: HTMLElement): void {
  for (const a of Array.from(root.querySelectorAll('a'))) {
    const href = a.getAttribute('href') ?? '';
    if (/^(https?:|mailto:|#)/i.test(href)) {
      if (/^https?:/i.test(href)) a.rel = 'noopener noreferrer';
      continue;
    }
    // Resolved as the card's own folder would (models/<name>/MODEL_CARD.md in the source tree).
    const resolved = new URL(href, 'https://source.invalid/models/model/').pathname.replace(/^\//, '');
    const text = a.textContent ?? '';
    const span = el(
      'span',
      { className: 'source-ref', title: 'in the cxr source tree; not served by this server' },
      text,
      ' ',
      el('code', { textContent: text === resolved ? '' : resolved }),
    );
    if (text === resolved) span.lastChild?.remove();
    a.replaceWith(span);
  }
}

/** A proportion as MODEL_CARD.md writes it ("0.157", "0.0351"), or null. */
function cardProportion(text: string): number | null {
  const t = text.trim();
  return /^0?\.\d+$|^[01]$/.test(t) ? Number(t) : null;
}

/**
 * A card table's empty corner ("| | this model | without the probe |") as a plain cell: an empty header cell is a
 * header that names nothing, and a screen reader announces it, blank, before every cell of its column.
 */
function emptyCornersAsCells(root: HTMLElement): void {
  for (const th of Array.from(root.querySelectorAll('th'))) {
    if ((th.textContent ?? '').trim() !== '' || th.children.length > 0) continue;
    const td = document.createElement('td');
    for (const a of Array.from(th.attributes)) td.setAttribute(a.name, a.value);
    th.replaceWith(td);
  }
}

/**
 * The card's thresholds and calibration errors in percent, as the tables above it give them: the card wrote the
 * balanced threshold "0.157" under a table that says "15.7 %". A table column headed "threshold", and a row
 * headed "ECE", hold proportions; other numbers (AUC, Brier score) are not percentages and stay as they are.
 */
export function percentCardTables(root: HTMLElement): void {
  const toPercent = (cell: Element) => {
    const v = cardProportion(cell.textContent ?? '');
    if (v !== null) cell.textContent = percent(v);
  };
  for (const table of Array.from(root.querySelectorAll('table'))) {
    const heads = Array.from(table.querySelectorAll('thead th')).map((th) =>
      (th.textContent ?? '').trim().toLowerCase(),
    );
    const column = heads.indexOf('threshold');
    for (const tr of Array.from(table.querySelectorAll('tbody tr'))) {
      const cells = Array.from(tr.children);
      if (column >= 0 && cells[column]) toPercent(cells[column]);
      if (/^(ece|calibration error)/i.test((cells[0]?.textContent ?? '').trim())) cells.slice(1).forEach(toPercent);
    }
  }
}

export function renderModel(info: api.ModelInfo): void {
  const facts: [string, string][] = [
    ['Name', info.name],
    ['Version', info.version],
    ['Architecture', String(info.meta.arch ?? '—')],
    ['Input', `${info.inputSize}×${info.inputSize} grayscale`],
    ['Calibration temperature', info.temperature.toFixed(3)],
    ['Calibration logit bias', info.logitBias.toFixed(3)],
    ['Test-time views', info.tta.length ? info.tta.join(', ') : 'none'],
    ['Created', String(info.meta.createdAt ?? '—')],
    ['SHA-256', info.sha256],
  ];
  $('#model-facts').replaceChildren(
    ...facts.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v })]),
  );
  $('#model-ops tbody').replaceChildren(
    ...Object.entries(info.operatingPoints).map(([name, op]) =>
      el(
        'tr',
        {},
        el('th', { scope: 'row', textContent: name + (name === info.defaultOperatingPoint ? ' (default)' : '') }),
        el('td', { className: 'num', textContent: percent(op.threshold) }),
        el('td', { className: 'num', textContent: op.sensitivity != null ? percent(op.sensitivity) : '—' }),
        el('td', { className: 'num', textContent: op.specificity != null ? percent(op.specificity) : '—' }),
      ),
    ),
  );
  const metrics = info.validation ?? {};
  const cis = (metrics.ci95 ?? {}) as Record<string, unknown>;
  const validation = Object.entries(metrics).filter(([, v]) => typeof v !== 'object' || v === null);
  $('#model-validation tbody').replaceChildren(
    ...(validation.length
      ? validation.map(([k, v]) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row', textContent: NAMES[k] ?? k }),
            el('td', { className: 'num', textContent: fmt(k, v, cis[k]) }),
          ),
        )
      : [el('tr', {}, el('td', { textContent: 'No validation metrics in this model folder.' }))]),
  );
  const card = $('#model-card');
  if (info.modelCard) {
    // The card is Markdown from the model folder: rendered, then sanitised before it touches the DOM.
    card.innerHTML = DOMPurify.sanitize(marked.parse(info.modelCard, { async: false }));
    fixCardLinks(card);
    percentCardTables(card);
    emptyCornersAsCells(card);
    // Code blocks and tables scroll sideways on a narrow screen (style.css): keyboard users must reach them too.
    for (const wide of Array.from(card.querySelectorAll('pre, table'))) wide.setAttribute('tabindex', '0');
  } else {
    card.replaceChildren(el('p', { textContent: 'This model folder has no MODEL_CARD.md.' }));
  }
}
