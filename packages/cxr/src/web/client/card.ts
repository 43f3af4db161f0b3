// One result card of the Analyze view: its states (pending with upload progress, done, re-checking,
// error with "Try again"; cancelled, film_queue.ts) and how an answer is drawn on it. What the card shows
// is one answer: for a server answer, the one logged under the id on the card, drawn with that answer's
// own threshold: a server whose model was updated while the page was open answers with the new model,
// whose threshold and figures are not those of the model info the page loaded (the card says so and shows
// none of the old model's figures).
import type { AnswerAge, VerdictStatus } from '../../predict/verdict';
import type * as api from './api';
import { ageUsed } from './age_text';
import { $, distinctOperatingPoints, el, megabytes, NBSP, percent, percentPair } from './dom';
import { cardHeadline, findingView, type Label, nearThresholdNote } from './finding';
import { heatmapWeakness } from './heatmap_weak';
import { showLargeView } from './large_view';
import { warningText } from './warning_text';

/** The model that gave a server answer. */
export type ModelRef = api.Prediction['model'];

/** The answer a card shows. */
export interface CardAnswer {
  probability: number;
  operatingPoint: string;
  /** The threshold the answer was given at (the server's, for a server answer). */
  threshold: number;
  /** The model of a server answer; none for one computed in the browser with the page's model. */
  model?: ModelRef;
  status: VerdictStatus;
  /** The shown label: null for an image that cannot be assessed (verdict.ts shownLabel). */
  label: Label | null;
  warnings: string[];
  meta: string;
  /** The audit log's id of a server answer; none for one computed in the browser. */
  predictionId?: string;
  /** The age the answer was judged at and where from; null: none known; undefined: an older server's answer. */
  age?: AnswerAge | null;
}

let cardCount = 0;

/**
 * Whether heat maps are shown: the last choice of any card's switch, kept while the page is open, so that the
 * next film comes as the clinician last chose (one who reads films bare does not switch each one off again).
 * On at first, decided against "a clean film first avoids anchoring" (the QA registrar's point): the finding and
 * its number stand beside the film before anyone looks at it, and they anchor more than colours do; the map is
 * the reader's check against a shortcut (colour on a side marker, a border or text, which the legend says to
 * distrust), and off at first it would be missing on exactly the films a busy reader does not switch it on for.
 * A reader who wants clean films switches it off once, for the rest of the session; the film is one click from
 * its large view (showLargeView) either way, and a map with little colour says so (heatmapWeakness).
 */
let heatmapShown = true;

export function newCard(name: string): HTMLElement {
  const tpl = $('#result-template') as HTMLTemplateElement;
  const card = (tpl.content.firstElementChild as HTMLElement).cloneNode(true) as HTMLElement;
  const n = ++cardCount;
  card.id = `result-${n}`;
  card.setAttribute('aria-labelledby', `result-${n}-name`);
  const title = $('.file-name', card);
  title.id = `result-${n}-name`;
  title.textContent = name;
  $('.upload', card).setAttribute('aria-label', `Sending ${name}`);
  $('.viewer', card).hidden = true;
  setPending(card);
  return card;
}

export function fileName(card: HTMLElement): string {
  return $('.file-name', card).textContent ?? 'image';
}

/** Waiting for its turn ('Waiting…') or being analyzed: no finding, no number. */
export function setPending(card: HTMLElement, text = 'Waiting…'): void {
  card.dataset.state = 'pending';
  const badge = $('.label-badge', card);
  badge.className = 'label-badge pending';
  badge.textContent = text;
  for (const sel of [
    '.probability',
    '.meter',
    '.segmented',
    '.threshold',
    '.near-note',
    '.age-used',
    '.retry',
    '.card-note',
    '.figures',
  ])
    $(sel, card).hidden = true;
  $('.warnings', card).replaceChildren();
}

/**
 * The card's progress line: `sent` of `total` bytes on their way (a bar), or the server at work once
 * all are out (sent === total), or only `text` with no bar (sent null); `hide` removes it.
 */
export function showProgress(card: HTMLElement, p: { sent: number; total: number } | { text: string } | 'hide'): void {
  const box = $('.progress', card);
  const bar = $('.upload', card) as HTMLProgressElement;
  const text = $('.progress-text', card);
  box.hidden = p === 'hide';
  // Cancel is for a film still waiting or on its way (film_queue.ts): once the server has it all, or the browser
  // analyzes it, a cancel would hide an answer that is already made (and, on the server, logged).
  if (p === 'hide' || 'text' in p || p.sent >= p.total) $('.cancel', card).hidden = true;
  if (p === 'hide') return;
  if ('text' in p) {
    bar.hidden = true;
    text.textContent = p.text;
    return;
  }
  const working = p.sent >= p.total;
  bar.hidden = working;
  bar.max = Math.max(1, p.total);
  bar.value = p.sent;
  const share = Math.floor((100 * p.sent) / Math.max(1, p.total));
  text.textContent = working
    ? 'Sent; analyzing on the server…'
    : `Sending ${megabytes(p.sent)} of ${megabytes(p.total)} (${share}${NBSP}%)`;
}

/** The card's finding while the server re-checks it at another operating point: no finding meanwhile. */
export function setRechecking(card: HTMLElement, operatingPoint: string): void {
  card.dataset.state = 'rechecking';
  const badge = $('.label-badge', card);
  badge.className = 'label-badge pending';
  badge.textContent = `Re-checking at ${operatingPoint}…`;
  $('.card-note', card).hidden = true;
  $('.near-note', card).hidden = true;
  // The threshold line and mark are the old point's until the answer comes (style.css hides them meanwhile).
  $('.segmented', card).setAttribute('aria-busy', 'true');
}

/** A note under the finding (e.g. a re-check that failed), or none. */
export function showNote(card: HTMLElement, text: string | null): void {
  const note = $('.card-note', card);
  note.hidden = text === null;
  note.textContent = text ?? '';
}

/**
 * The card not analyzed: why, and a button to try again (`retry`, none when trying again as it is cannot help),
 * named `action` (e.g. "Enter token" where the server wants a token the page does not have).
 */
export function showError(card: HTMLElement, message: string, retry: (() => void) | null, action = 'Try again'): void {
  card.dataset.state = 'error';
  showProgress(card, 'hide');
  const badge = $('.label-badge', card);
  badge.className = 'label-badge error';
  badge.textContent = 'Not analyzed';
  $('.warnings', card).replaceChildren(el('li', { className: 'error', textContent: message }));
  const button = $('.retry', card) as HTMLButtonElement;
  button.textContent = action;
  button.hidden = retry === null;
  button.onclick = retry;
}

/** Said when `a` was given by another model than the one the page loaded (the server's was updated), or null. */
export function modelChange(info: api.ModelInfo, a: CardAnswer): string | null {
  if (!a.model || a.model.sha256 === info.sha256) return null;
  return (
    `Answered by model ${a.model.name} ${a.model.version}, not the one this page loaded (${info.name} ` +
    `${info.version}): the server's model has changed. Reload the page for this model's operating points and ` +
    'validation figures.'
  );
}

export function renderAnswer(card: HTMLElement, info: api.ModelInfo, a: CardAnswer): void {
  // The page's figures (sensitivity, specificity) are its model's: not said of another model's answer.
  const changed = modelChange(info, a);
  const op = changed ? null : info.operatingPoints[a.operatingPoint];
  const view = findingView(a.status, a.label);
  card.dataset.state = 'done';
  card.dataset.probability = String(a.probability);
  card.dataset.label = a.label ?? '';
  card.dataset.verdict = a.status;
  card.dataset.operatingPoint = a.operatingPoint;
  card.dataset.predictionId = a.predictionId ?? '';
  card.dataset.answerModel = a.model?.sha256 ?? '';
  showProgress(card, 'hide');
  showNote(card, null);
  $('.segmented', card).removeAttribute('aria-busy');
  const badge = $('.label-badge', card);
  badge.className = `label-badge ${view.tone}`;
  badge.replaceChildren(...unbrokenRanges(cardHeadline(view, a)));
  // An image that cannot be assessed gets no number: a probability for a blank page or a screenshot
  // would read as a finding.
  // As many decimals as it takes for the number and the threshold to read differently (dom.ts percentPair).
  const shown = percentPair(a.probability, a.threshold);
  $('.prob-value', card).textContent = shown.probability;
  $('.prob-caption', card).textContent = view.probabilityNote
    ? `probability of pneumonia (${view.probabilityNote})`
    : 'probability of pneumonia';
  for (const sel of ['.probability', '.meter', '.threshold']) $(sel, card).hidden = !view.showsProbability;
  // Outside the intended population the number is for reference only: no threshold mark to read it against, no
  // validation figures, and no switch (the answer at another point is outside the population just the same; each
  // switch would only add an audit row with nothing new to read).
  const outside = view.tone === 'outside-population';
  $('.meter-threshold', card).hidden = outside;
  // A switch is offered only between thresholds that differ: one that changes nothing misleads.
  $('.segmented', card).hidden = !view.showsProbability || outside || distinctOperatingPoints(info).length < 2;
  $('.meter-fill', card).style.width = `${a.probability * 100}%`;
  $('.meter-threshold', card).style.left = `${a.threshold * 100}%`;
  const same = distinctOperatingPoints(info).find((d) => d.names.includes(a.operatingPoint))?.names ?? [];
  const modelNote = $('.model-note', card);
  modelNote.hidden = changed === null;
  modelNote.textContent = changed ?? '';
  if (outside) {
    $('.threshold', card).textContent =
      `Threshold ${shown.threshold} (${a.operatingPoint}; figures not valid for this patient)`;
  } else if (op) {
    const sens = op.sensitivity != null ? `, sensitivity ${percent(op.sensitivity)}` : '';
    const spec = op.specificity != null ? `, specificity ${percent(op.specificity)}` : '';
    const names = same.length > 1 ? `${same.join(' = ')}: the same threshold on this model` : a.operatingPoint;
    $('.threshold', card).textContent = `Threshold ${shown.threshold} (${names}${sens}${spec} on validation)`;
  } else {
    $('.threshold', card).textContent =
      `Threshold ${shown.threshold} (${a.operatingPoint} of model ${a.model?.name} ${a.model?.version})`;
  }
  // A finding close to its threshold says so: "No signs of pneumonia" just under it is a weak finding.
  const near = view.showsProbability ? nearThresholdNote(a) : null;
  $('.near-note', card).hidden = near === null;
  $('.near-note', card).textContent = near ?? '';
  for (const input of card.querySelectorAll<HTMLInputElement>('.segmented input'))
    input.checked = same.includes(input.value);
  // The age the answer was judged at, beside its finding (and beside an outside-population answer, whose reason
  // it is); a caution when it is not known or outside the population (age_text.ts). analyze.ts keeps the typed age
  // and the input's kind on the card, for an older server's answer that does not say its age.
  const typed = card.dataset.patientAge ? Number(card.dataset.patientAge) : undefined;
  const saysAge = view.tone === 'NORMAL' || view.tone === 'PNEUMONIA' || (outside && a.age != null);
  const age = saysAge ? ageUsed(a.age, typed, card.dataset.inputKind === 'dicom') : null;
  const ageLine = $('.age-used', card);
  ageLine.hidden = age === null;
  ageLine.textContent = age?.text ?? '';
  ageLine.classList.toggle('caution', age?.caution === true);
  // Plain words in the warnings; the figures behind them in a details element, for whoever checks them.
  const texts = a.warnings.map(warningText);
  $('.warnings', card).replaceChildren(...texts.map((w) => el('li', { textContent: w.plain })));
  const figures = texts.flatMap((w) => (w.figures === null ? [] : [w.figures]));
  const box = $('.figures', card);
  box.hidden = figures.length === 0;
  $('ul', box).replaceChildren(...figures.map((f) => el('li', { textContent: f })));
  $('.meta', card).textContent = a.meta;
  syncHeatmap(card);
}

/**
 * `text` with its number ranges ("1–5") kept on one line: a phone broke "(children aged 1–" from its "5)".
 * A span, not another dash, so that the text stays as the server wrote it.
 */
function unbrokenRanges(text: string): (Node | string)[] {
  return text
    .split(/(\d+\s?–\s?\d+)/)
    .filter((part) => part !== '')
    .map((part) => (/^\d+\s?–\s?\d+$/.test(part) ? el('span', { className: 'nowrap', textContent: part }) : part));
}

/**
 * The heat map goes with the model that made it (the card's first answer's): over an answer of another model
 * (the server's was updated) it would show what drove another network, so it is hidden, and the card says why.
 */
function syncHeatmap(card: HTMLElement): void {
  const from = card.dataset.heatmapModel ?? '';
  const stale = from !== '' && card.dataset.answerModel !== from;
  card.classList.toggle('heatmap-stale', stale);
  const note = $('.heatmap-note', card);
  note.hidden = !stale;
  note.textContent = stale
    ? `Heat map hidden: it was made by model ${card.dataset.heatmapModelName} with the first answer, not by the ` +
      'model of the answer shown.'
    : '';
  // A map with little or no colour says so, while it is on: an empty overlay under "Show heat map" misleads.
  const weak = $('.heatmap-weak', card);
  const made = hasHeatmap(card) && !stale;
  const weakness = made ? heatmapWeakness(Number(card.dataset.probability)) : null;
  weak.hidden = weakness === null;
  weak.textContent = weakness ?? '';
  const viewer = $('.viewer', card);
  const overlaid = overlayShown(card);
  if (!viewer.hidden)
    viewer.setAttribute('aria-label', `${fileName(card)}: ${overlaid ? 'image with heat map' : 'image'}`);
}

/** Whether the card has a heat map for its image (an assessed film's, once loaded). */
function hasHeatmap(card: HTMLElement): boolean {
  const heat = $('.heatmap', card) as HTMLImageElement;
  return Boolean(heat.getAttribute('src')) && !heat.hidden;
}

/** Whether the heat map is drawn over the card's image now: made, switched on, and of the answer's model. */
function overlayShown(card: HTMLElement): boolean {
  return hasHeatmap(card) && !card.classList.contains('heatmap-stale') && !card.classList.contains('heatmap-off');
}

/**
 * The card's image in the page's large view (large_view.ts, History's dialog), as the card shows it: the film,
 * with the heat map over it at the card's opacity when it is on; a DICOM without a thumbnail, its heat map.
 */
function enlarge(card: HTMLElement): void {
  const original = $('.original', card) as HTMLImageElement;
  const heat = $('.heatmap', card) as HTMLImageElement;
  const title = fileName(card);
  const over = overlayShown(card);
  const overlay = over ? { src: heat.src, alt: heat.alt, opacity: Number(heat.style.opacity || '1') } : null;
  if (original.getAttribute('src'))
    showLargeView({ title, image: { src: original.src, alt: original.alt }, overlay, legend: over, wide: true });
  else if (hasHeatmap(card) && !card.classList.contains('heatmap-stale'))
    showLargeView({ title, image: { src: heat.src, alt: heat.alt }, legend: true, wide: true });
}

/** The model a card's heat map was made by (its first answer's), or none. */
export function setHeatmapModel(card: HTMLElement, model: ModelRef | null): void {
  card.dataset.heatmapModel = model?.sha256 ?? '';
  card.dataset.heatmapModelName = model ? `${model.name} ${model.version}` : '';
}

/** The card's operating point switch, one radio per distinct threshold; `choose` gets the chosen name. */
export function offerOperatingPoints(card: HTMLElement, info: api.ModelInfo, choose: (name: string) => void): void {
  const fs = $('.segmented', card);
  const group = `${card.id}-op`;
  // A card analyzed again ("Try again") gets a fresh switch, not a second one.
  for (const old of Array.from(fs.querySelectorAll('label'))) old.remove();
  for (const { names } of distinctOperatingPoints(info)) {
    const input = el('input', { type: 'radio', name: group, value: names[0] });
    input.addEventListener('change', () => {
      if (input.checked) choose(names[0]);
    });
    fs.append(el('label', {}, input, ` ${names.join(' = ')}`));
  }
}

/** The original (or a DICOM's thumbnail) and the heat map over it; called once per card. */
export function showImages(card: HTMLElement, originalUrl: string | null, heatmapUrl: string | null): void {
  const viewer = $('.viewer', card);
  const original = $('.original', card) as HTMLImageElement;
  const heat = $('.heatmap', card) as HTMLImageElement;
  if (!originalUrl && !heatmapUrl) return;
  viewer.hidden = false;
  const name = fileName(card);
  if (originalUrl) {
    original.src = originalUrl;
    // Neutral: the file may be anything (a photo, a screenshot), not necessarily a chest X-ray.
    original.alt = `Uploaded image ${name}`;
  }
  const slider = $('.opacity', card) as HTMLInputElement;
  slider.id = `${card.id}-opacity`;
  if (heatmapUrl) {
    heat.src = heatmapUrl;
    // Where the model's result drew from, which is not necessarily disease (index.html's legend says so).
    heat.alt = `Heat map of where the model's result drew from, for ${name}`;
    // The value said as what it is: a screen reader read a bare "65".
    const setOpacity = () => {
      heat.style.opacity = String(Number(slider.value) / 100);
      slider.setAttribute('aria-valuetext', `${slider.value}${NBSP}%`);
    };
    setOpacity();
    slider.addEventListener('input', setOpacity);
    // On or off as last chosen; the opacity is kept while off, for when it is on again.
    const toggle = $('.heatmap-on', card) as HTMLInputElement;
    toggle.id = `${card.id}-heatmap-on`;
    const showHeatmap = (on: boolean) => {
      toggle.checked = on;
      card.classList.toggle('heatmap-off', !on);
      syncHeatmap(card);
    };
    showHeatmap(heatmapShown);
    toggle.addEventListener('change', () => {
      heatmapShown = toggle.checked;
      showHeatmap(toggle.checked);
    });
  } else {
    heat.hidden = true;
    heat.parentElement!.classList.add('no-heatmap');
    slider.closest('label')!.hidden = true;
    $('.heatmap-toggle', card).hidden = true;
    $('.legend', card).hidden = true;
    // The legend's words for screen readers go with it: there are no colours to describe.
    $('.legend-words', card).hidden = true;
    $('.legend-note', card).hidden = true;
  }
  // Larger, from a button (the keyboard's way) or a click on the image itself.
  const button = $('.enlarge', card) as HTMLButtonElement;
  button.setAttribute('aria-label', `Enlarge ${name}`);
  button.addEventListener('click', () => enlarge(card));
  $('.stack', card).addEventListener('click', () => enlarge(card));
  // The figure is named for what it holds, not by its caption (the opacity slider's label).
  syncHeatmap(card);
}
