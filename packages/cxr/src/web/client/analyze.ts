// The Analyze view: files in, one result card per file. Cards re-threshold on the client with
// the model's operating points (label = PNEUMONIA when probability >= threshold, as the server; none for
// an image that cannot be assessed).
import {
  shownLabel,
  showsHeatmap,
  statusOf,
  type Verdict,
  type VerdictStatus,
  verdictHeadline,
} from '../../predict/verdict';
import * as api from './api';
import { $, distinctOperatingPoints, el, isDicom, percent } from './dom';
import { predictLocally, preloadLocalModel } from './local_model';

export interface AnalyzeContext {
  model: () => Promise<api.ModelInfo>;
}

interface CardState {
  probability: number;
  operatingPoint: string;
  status: VerdictStatus;
}

/**
 * What the user set for a batch, read once when its files are taken: a queued film must not pick
 * up the next patient's age, another operating point or another processing place typed while it
 * waits its turn.
 */
interface BatchSettings {
  operatingPoint: string;
  /** The typed age in years (undefined: none), or why the field cannot be read, said on every card. */
  age: { years: number | undefined } | { error: string };
  local: boolean;
}

let cardCount = 0;

function globalOperatingPoint(): string {
  return document.querySelector<HTMLInputElement>('input[name="op-global"]:checked')?.value ?? 'balanced';
}

/** The age typed on the page, in years; undefined when the field is empty. An invalid age is an error, not ignored. */
function statedAge(): number | undefined {
  const field = $('#patient-age') as HTMLInputElement;
  // A number field reports text it cannot read as empty, with badInput set.
  if (field.value === '' && !field.validity.badInput) return undefined;
  if (!field.checkValidity())
    throw new Error(`Patient age must be a number of years from ${field.min} to ${field.max} (or left empty).`);
  return field.valueAsNumber;
}

function localMode(): boolean {
  return ($('#local-mode') as HTMLInputElement).checked;
}

function readSettings(): BatchSettings {
  let age: BatchSettings['age'];
  try {
    age = { years: statedAge() };
  } catch (e) {
    age = { error: api.humanError(e) };
  }
  return { operatingPoint: globalOperatingPoint(), age, local: localMode() };
}

/** The batch's age; an age that was invalid when the files were taken fails each of its films. */
function batchAge(settings: BatchSettings): number | undefined {
  if ('error' in settings.age) throw new Error(settings.age.error);
  return settings.age.years;
}

/** The age a card was computed with, on the card: it decides whether a finding is shown at all. */
function ageNote(age: number | undefined, dicom: boolean): string {
  if (age === undefined) return 'no age typed';
  return dicom
    ? `age typed ${age} years (with the DICOM's own ages: any over 10 years decides)`
    : `age typed ${age} years`;
}

function newCard(name: string): HTMLElement {
  const tpl = $('#result-template') as HTMLTemplateElement;
  const card = (tpl.content.firstElementChild as HTMLElement).cloneNode(true) as HTMLElement;
  const n = ++cardCount;
  card.id = `result-${n}`;
  card.dataset.state = 'pending';
  card.setAttribute('aria-labelledby', `result-${n}-name`);
  const title = $('.file-name', card);
  title.id = `result-${n}-name`;
  title.textContent = name;
  const badge = $('.label-badge', card);
  badge.className = 'label-badge pending';
  badge.textContent = 'Analyzing…';
  $('.viewer', card).hidden = true;
  $('.probability', card).hidden = true;
  $('.meter', card).hidden = true;
  $('.segmented', card).hidden = true;
  return card;
}

function showError(card: HTMLElement, message: string): void {
  card.dataset.state = 'error';
  const badge = $('.label-badge', card);
  badge.className = 'label-badge error';
  badge.textContent = 'Not analyzed';
  const list = $('.warnings', card);
  list.replaceChildren(el('li', { className: 'error', textContent: message }));
}

function applyOperatingPoint(card: HTMLElement, info: api.ModelInfo, state: CardState): void {
  const op = info.operatingPoints[state.operatingPoint];
  // No label for an image that cannot be assessed, as the API gives none (verdict.ts shownLabel).
  const label = shownLabel({
    verdict: state,
    warnings: [],
    label: state.probability >= op.threshold ? 'PNEUMONIA' : 'NORMAL',
  });
  const badge = $('.label-badge', card);
  // Only an assessed image gets the green/red finding colours.
  badge.className = `label-badge ${state.status === 'assessed' ? label : state.status}`;
  badge.textContent = verdictHeadline(state.status, label);
  card.dataset.label = label ?? '';
  card.dataset.verdict = state.status;
  card.dataset.operatingPoint = state.operatingPoint;
  const sens = op.sensitivity != null ? `, sensitivity ${percent(op.sensitivity)}` : '';
  const spec = op.specificity != null ? `, specificity ${percent(op.specificity)}` : '';
  const same = distinctOperatingPoints(info).find((d) => d.names.includes(state.operatingPoint))!.names;
  const names = same.length > 1 ? `${same.join(' = ')}: the same threshold on this model` : state.operatingPoint;
  $('.threshold', card).textContent = `Threshold ${percent(op.threshold)} (${names}${sens}${spec} on validation)`;
  $('.meter-threshold', card).style.left = `${op.threshold * 100}%`;
}

function fillResult(card: HTMLElement, info: api.ModelInfo, state: CardState, warnings: string[], meta: string): void {
  card.dataset.state = 'done';
  card.dataset.probability = String(state.probability);
  // An image that cannot be assessed gets no number: a probability for a blank page or a
  // screenshot would read as a finding.
  const assessable = state.status !== 'cannot-assess';
  $('.prob-value', card).textContent = percent(state.probability);
  $('.prob-caption', card).textContent =
    state.status === 'outside-population'
      ? 'probability of pneumonia (for reference only: not validated for this patient)'
      : 'probability of pneumonia';
  $('.probability', card).hidden = !assessable;
  $('.meter', card).hidden = !assessable;
  $('.threshold', card).hidden = !assessable;
  $('.meter-fill', card).style.width = `${state.probability * 100}%`;
  const fs = $('.segmented', card);
  // A switch is offered only between thresholds that differ: one that changes nothing misleads.
  const points = distinctOperatingPoints(info);
  fs.hidden = !assessable || points.length < 2;
  const group = `${card.id}-op`;
  const current = points.find((d) => d.names.includes(state.operatingPoint))?.names[0];
  for (const { names } of points) {
    const name = names[0];
    const input = el('input', { type: 'radio', name: group, value: name, checked: name === current });
    input.addEventListener('change', () => {
      state.operatingPoint = name;
      applyOperatingPoint(card, info, state);
    });
    fs.append(el('label', {}, input, ` ${names.join(' = ')}`));
  }
  applyOperatingPoint(card, info, state);
  $('.warnings', card).replaceChildren(...warnings.map((w) => el('li', { textContent: w })));
  $('.meta', card).textContent = meta;
}

function showImages(card: HTMLElement, originalUrl: string | null, heatmapUrl: string | null): void {
  const viewer = $('.viewer', card);
  const original = $('.original', card) as HTMLImageElement;
  const heat = $('.heatmap', card) as HTMLImageElement;
  if (!originalUrl && !heatmapUrl) return;
  viewer.hidden = false;
  const name = $('.file-name', card).textContent ?? 'image';
  if (originalUrl) {
    original.src = originalUrl;
    original.alt = `Chest X-ray ${name}`;
  }
  const slider = $('.opacity', card) as HTMLInputElement;
  slider.id = `${card.id}-opacity`;
  if (heatmapUrl) {
    heat.src = heatmapUrl;
    heat.alt = `Heat map of the regions that drove the result for ${name}`;
    heat.style.opacity = String(Number(slider.value) / 100);
    slider.addEventListener('input', () => {
      heat.style.opacity = String(Number(slider.value) / 100);
    });
  } else {
    heat.hidden = true;
    heat.parentElement!.classList.add('no-heatmap');
    slider.closest('label')!.hidden = true;
    $('.legend', card).hidden = true;
    // The legend's words for screen readers go with it: there are no colours to describe.
    $('.legend-words', card).hidden = true;
  }
}

async function analyzeOnServer(
  file: File,
  card: HTMLElement,
  info: api.ModelInfo,
  dicom: boolean,
  settings: BatchSettings,
): Promise<void> {
  const age = batchAge(settings);
  const p = await api.predict(file, file.name, settings.operatingPoint, age);
  card.dataset.source = 'server';
  card.dataset.patientAge = age === undefined ? '' : String(age);
  card.dataset.predictionId = p.id;
  $('.where', card).textContent = 'Analyzed on the server';
  const meta =
    `${p.input.kind.toUpperCase()} ${p.input.width}×${p.input.height} · model ${p.model.name} ${p.model.version} · ` +
    `${ageNote(age, dicom)} · ${Math.round(p.timings.totalMs)} ms · id ${p.id}`;
  // A server without verdicts (older version): its warnings still mean the image is not assessed.
  const verdict: Verdict = p.verdict ?? { status: statusOf(p), reasons: [] };
  fillResult(
    card,
    info,
    { probability: p.probability, operatingPoint: p.operatingPoint, status: verdict.status },
    p.warnings,
    meta,
  );
  const heatmapUrl = showsHeatmap(verdict.status) ? p.heatmapUrl : null;
  const [heat, thumb] = await Promise.all([
    heatmapUrl ? api.imageUrl(heatmapUrl).catch(() => null) : null,
    dicom && p.thumbnailUrl ? api.imageUrl(p.thumbnailUrl).catch(() => null) : null,
  ]);
  showImages(card, dicom ? thumb : URL.createObjectURL(file), heat);
}

async function analyzeLocally(
  file: File,
  card: HTMLElement,
  info: api.ModelInfo,
  settings: BatchSettings,
): Promise<void> {
  const age = batchAge(settings);
  const r = await predictLocally(file, info, age);
  card.dataset.source = 'local';
  card.dataset.patientAge = age === undefined ? '' : String(age);
  $('.where', card).textContent = 'Analyzed on this computer (not sent, not logged)';
  const meta =
    `${r.width}×${r.height} · model ${info.name} ${info.version} · ${ageNote(age, false)} · ` +
    `${Math.round(r.ms)} ms in the browser · heat maps are made on the server only`;
  fillResult(
    card,
    info,
    { probability: r.probability, operatingPoint: settings.operatingPoint, status: r.verdict.status },
    r.warnings,
    meta,
  );
  card.dataset.oodScore = r.ood ? String(r.ood.score) : '';
  showImages(card, URL.createObjectURL(file), null);
}

async function analyze(file: File, card: HTMLElement, ctx: AnalyzeContext, settings: BatchSettings): Promise<void> {
  try {
    const info = await ctx.model();
    const head = new Uint8Array(await file.slice(0, 132).arrayBuffer());
    const dicom = isDicom(head, file.name);
    if (settings.local) {
      if (dicom)
        throw new Error('DICOM is processed on the server only: turn off "Process on this computer" to analyze it.');
      await analyzeLocally(file, card, info, settings);
    } else {
      await analyzeOnServer(file, card, info, dicom, settings);
    }
  } catch (e) {
    showError(card, api.humanError(e));
  }
}

export function setUpAnalyze(ctx: AnalyzeContext): void {
  const input = $('#file-input') as HTMLInputElement;
  const drop = $('#drop');
  const status = $('#status');
  const results = $('#results');
  let queue = Promise.resolve();

  const take = (files: FileList | File[]) => {
    const list = Array.from(files);
    if (!list.length) return;
    // Read now, not at each file's turn: the fields may already hold the next patient's values.
    const settings = readSettings();
    status.textContent = `Analyzing ${list.length} file${list.length > 1 ? 's' : ''}…`;
    const cards = list.map((f) => newCard(f.name));
    results.prepend(...cards);
    // One at a time: keeps the order readable and the server's queue short.
    list.forEach((f, i) => {
      queue = queue.then(() => analyze(f, cards[i], ctx, settings));
    });
    queue = queue.then(() => {
      status.textContent = `Done: ${list.length} file${list.length > 1 ? 's' : ''} analyzed.`;
    });
  };

  input.addEventListener('change', () => {
    if (input.files) take(input.files);
    input.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer?.files) take(e.dataTransfer.files);
  });

  const toggle = $('#local-mode') as HTMLInputElement;
  toggle.addEventListener('change', () => {
    if (!toggle.checked) {
      status.textContent = 'Images are sent to the server, analyzed and logged.';
      return;
    }
    status.textContent = 'Loading the model into this browser…';
    ctx
      .model()
      .then(preloadLocalModel)
      .then(
        () => {
          status.textContent = 'Model loaded: images are analyzed on this computer and never leave it.';
        },
        (e: unknown) => {
          status.textContent = `Could not load the model in the browser: ${api.humanError(e)}`;
        },
      );
  });
}
