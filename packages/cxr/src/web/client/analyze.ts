// The Analyze view: files in, one result card per file, one file at a time.
//
// A card shows one answer. On the server every answer is a logged prediction: switching a card's
// operating point sends the film again at that point (with the batch's age) and shows the new
// answer under its own id, so that the audit log and History hold every answer anyone was shown; an
// answer already given for that point is shown again without a new request. In the browser ("Process
// on this computer", nothing logged) the card re-thresholds the probability it has (label =
// PNEUMONIA when probability >= threshold, as the server; none for an image that cannot be assessed).
import { shownLabel, showsHeatmap, statusOf, type Verdict, type VerdictStatus } from '../../predict/verdict';
import * as api from './api';
import { ageMeta } from './age_text';
import { type BatchSettings, batchAge, batchAgeMonths, readSettings, watchAgeField } from './batch_settings';
import {
  type CardAnswer,
  fileName,
  modelChange,
  newCard,
  offerOperatingPoints,
  renderAnswer,
  setHeatmapModel,
  setPending,
  setRechecking,
  showError,
  showImages,
  showNote,
  showProgress,
} from './card';
import {
  $,
  acceptFileDrops,
  DICOM_HEAD_BYTES,
  distinctOperatingPoints,
  isDicom,
  megabytes,
  NBSP,
  SMALLER_COPY,
  sizeAndLimit,
} from './dom';
import { announcement, findingView, type Label } from './finding';
import { predictLocally } from './local_model';
import { setUpModeSwitch } from './mode_switch';
import { askedWait, patiently, whenAgain } from './server_busy';
import { reveal } from './reveal';
import { FilmQueue } from './film_queue';
import { eraSignal } from './forget';
import { announce, type Outcome, showStatus } from './status_line';

export interface AnalyzeContext {
  model: () => Promise<api.ModelInfo>;
}

interface Job {
  file: File;
  card: HTMLElement;
  settings: BatchSettings;
}

/** The choice (a distinct threshold's first name) an operating point belongs to: the switch's value. */
function choiceOf(info: api.ModelInfo, name: string): string {
  return distinctOperatingPoints(info).find((d) => d.names.includes(name))?.names[0] ?? name;
}

/** Tells a screen reader the card's answer, at the answer's own threshold, and whether another model gave it. */
function say(card: HTMLElement, info: api.ModelInfo, a: CardAnswer, prefix = ''): void {
  const changed = modelChange(info, a);
  announce(
    prefix +
      announcement({ ...a, name: fileName(card), reasons: a.warnings.filter(Boolean) }) +
      (changed ? ` ${changed}` : ''),
  );
}

let uploadLimit: Promise<number | null> | null = null;
/**
 * The server's upload limit (from /health), null when it does not say; asked once, and again (`fresh`) when it
 * decides a film's fate: the server may have been restarted with another --max-upload-mb since.
 */
function serverUploadLimit(fresh = false): Promise<number | null> {
  if (fresh) uploadLimit = null;
  uploadLimit ??= api.uploadLimit();
  uploadLimit.catch(() => {
    uploadLimit = null;
  });
  return uploadLimit.catch(() => null);
}

/** `sent`: the server refused it, else the page did not send it. */
function tooLarge(file: File, limit: number | null, sent: boolean): Error {
  const fix = SMALLER_COPY;
  if (limit === null) {
    const what = sent ? 'the server refused it' : 'it was not sent';
    return new Error(`${file.name} is ${megabytes(file.size)}, over this server's upload limit: ${what}. ${fix}`);
  }
  const t = sizeAndLimit(file.size, limit);
  // Within the limit and still refused (a limit read from an older answer, a proxy's own): said as it is.
  if (file.size <= limit)
    return new Error(`${file.name} (${t.size}) was refused as too large (this server's limit: ${t.limit}). ${fix}`);
  const what = sent ? 'the server refused it' : 'it was not sent';
  return new Error(`${file.name} is ${t.size}, over this server's ${t.limit} limit${t.exact}: ${what}. ${fix}`);
}

/**
 * A file the server cannot read as an image: its words ("not a JPEG, PNG or DICOM image") and what to do about it,
 * which they leave out (a screenshot or a PDF of a report was taken for the film).
 */
function unsupported(e: api.ApiError): string {
  return (
    `${api.humanError(e).replace(/\.$/, '')}. Choose the film itself, as a DICOM file from the PACS or a JPEG or ` +
    'PNG export of it.'
  );
}

/** The server's answer as a card shows it. */
function serverAnswer(p: api.Prediction, meta: string): CardAnswer {
  // A server without verdicts (older version): its warnings still mean the image is not assessed.
  const verdict: Verdict = p.verdict ?? { status: statusOf(p), reasons: [] };
  return {
    probability: p.probability,
    operatingPoint: p.operatingPoint,
    threshold: p.threshold,
    model: p.model,
    status: verdict.status,
    label: shownLabel({ verdict, warnings: p.warnings, label: p.label as Label | null }),
    warnings: p.warnings,
    meta,
    predictionId: p.id,
    age: p.age,
  };
}

/**
 * The first answer shown on the card. Whether the film was a DICOM is the server's answer (`input.kind`), not the
 * page's guess: an old PACS export without preamble named IMG0001 (or x.jpg) is one, and its bytes are no image a
 * browser can show; a JPEG named x.dcm is none.
 */
async function analyzeOnServer(job: Job, info: api.ModelInfo, signal: AbortSignal): Promise<CardAnswer> {
  const { file, card, settings } = job;
  const age = batchAge(settings);
  const months = batchAgeMonths(settings);
  // Checked here, not after seconds of sending: the server would refuse it once it has it all. A refusal is
  // asked of the server as it is now (it may have been restarted with a larger limit).
  const over = (limit: number | null) => limit !== null && file.size > limit;
  if (over(await serverUploadLimit()) && over(await serverUploadLimit(true)))
    throw tooLarge(file, await serverUploadLimit(), false);
  signal.throwIfAborted();
  const era = eraSignal(); // aborted with a forgotten token: a re-check or image on its way then is dropped
  const gone = () => !card.isConnected; // removed with a forgotten token: nothing more drawn or said on it
  // `current`: whether this request's card still waits for it (a re-check overtaken by another choice draws
  // no progress over the answer shown meanwhile). Only the first answer can be cancelled (`signal`): a re-check
  // is the server's work on a film it already has.
  const send = (operatingPoint: string, heatmap: boolean, current = () => true, cancel?: AbortSignal) =>
    api.predict(file, file.name, {
      operatingPoint,
      patientAge: age,
      heatmap,
      signal: cancel,
      onProgress: (sent, total) => {
        if (current()) showProgress(card, { sent, total });
      },
    });
  // A time bound to its unit (NBSP, as percent's): on a phone "ms" began a line of its own.
  const metaOf = (p: api.Prediction, extra = '') =>
    `${p.input.kind.toUpperCase()} ${p.input.width}×${p.input.height} · model ${p.model.name} ${p.model.version} · ` +
    `${ageMeta(p.age, age, p.input.kind === 'dicom', months)} · ` +
    `${Math.round(p.timings.totalMs)}${NBSP}ms · id ${p.id}${extra}`;
  const p = await send(settings.operatingPoint, true, undefined, signal);
  // The view cleared as the answer was read (a token forgotten): as analyzeLocally, not shown nor said to the next.
  signal.throwIfAborted();
  const dicom = p.input.kind === 'dicom';
  card.dataset.source = 'server';
  card.dataset.inputKind = p.input.kind; // card.ts: a DICOM's header may give the age
  card.dataset.patientAge = age === undefined ? '' : String(age);
  $('.where', card).textContent = 'Analyzed on the server';
  const first = serverAnswer(p, metaOf(p));
  let shown = first;
  // Each choice's answer, asked once: a re-check still on its way is waited for, not sent again (every
  // answer sent is an audit row, and one answer shown must be one row).
  const answers = new Map<string, Promise<CardAnswer>>([[choiceOf(info, p.operatingPoint), Promise.resolve(shown)]]);
  const settled = new Set<string>([choiceOf(info, p.operatingPoint)]);
  const heatmapUrl = showsHeatmap(shown.status) ? p.heatmapUrl : null;
  setHeatmapModel(card, heatmapUrl ? p.model : null);
  // A re-check asks for no heat map: Grad-CAM explains the probability, which no threshold changes.
  const heatNote = heatmapUrl ? ` · heat map from id ${p.id.slice(0, 8)}` : '';
  let latest = 0;
  offerOperatingPoints(card, info, async (choice) => {
    const mine = ++latest;
    const isMine = () => mine === latest && !gone(); // else another choice is shown, or the card is forgotten
    const known = settled.has(choice);
    let pending = answers.get(choice);
    if (!pending) {
      const asked = send(choice, false, isMine, era).then((q) => serverAnswer(q, metaOf(q, heatNote)));
      pending = asked;
      answers.set(choice, asked);
      asked.then(
        () => settled.add(choice),
        () => answers.get(choice) === asked && answers.delete(choice), // a failed re-check is asked again
      );
    }
    if (!known) setRechecking(card, choice);
    try {
      const a = await pending;
      if (!isMine()) return;
      shown = a;
      showProgress(card, 'hide');
      renderAnswer(card, info, a);
      say(card, info, a, known ? '' : `Re-checked at ${choice}: `);
    } catch (e) {
      if (!isMine()) return;
      renderAnswer(card, info, shown);
      // A refusal for now says when the choice may be made again (server_busy.ts): the server asked for a wait.
      const wait = askedWait(e);
      const said =
        wait === null ? api.humanError(e) : whenAgain(e as api.ApiError, wait, 0, `choose ${choice} again`).message;
      const kept = `The answer shown is still the one at ${shown.operatingPoint}.`;
      const why = `Could not re-check at ${choice}: ${said} ${kept}`;
      showNote(card, why);
      announce(`${fileName(card)}: ${why}`);
    }
  });
  renderAnswer(card, info, shown);
  say(card, info, shown);
  const [heat, thumb] = await Promise.all([
    heatmapUrl ? api.imageUrl(heatmapUrl, era).catch(() => null) : null,
    dicom && p.thumbnailUrl ? api.imageUrl(p.thumbnailUrl, era).catch(() => null) : null,
  ]);
  if (gone()) for (const u of [heat, thumb]) if (u) URL.revokeObjectURL(u);
  if (gone()) return first;
  showImages(card, dicom ? thumb : URL.createObjectURL(file), heat);
  return first;
}

/** The first answer shown on the card. */
async function analyzeLocally(job: Job, info: api.ModelInfo, signal: AbortSignal): Promise<CardAnswer> {
  const { file, card, settings } = job;
  const age = batchAge(settings);
  showProgress(card, { text: 'Analyzing on this computer…' });
  const r = await predictLocally(file, info, age);
  // The view was cleared meanwhile (a token forgotten): the answer is no one's to be shown or said.
  signal.throwIfAborted();
  card.dataset.source = 'local';
  card.dataset.patientAge = age === undefined ? '' : String(age);
  card.dataset.oodScore = r.ood ? String(r.ood.score) : '';
  $('.where', card).textContent = 'Analyzed on this computer (not sent, not logged)';
  const status: VerdictStatus = r.verdict.status;
  const at = (operatingPoint: string): CardAnswer => ({
    probability: r.probability,
    operatingPoint,
    threshold: info.operatingPoints[operatingPoint].threshold,
    status,
    label: shownLabel({
      verdict: r.verdict,
      warnings: [],
      label: r.probability >= info.operatingPoints[operatingPoint].threshold ? 'PNEUMONIA' : 'NORMAL',
    }),
    warnings: r.warnings,
    age: r.age,
    meta:
      `${r.width}×${r.height} · model ${info.name} ${info.version} · ` +
      `${ageMeta(r.age, age, false, batchAgeMonths(settings))} · ` +
      `${Math.round(r.ms)}${NBSP}ms in the browser · heat maps are made on the server only`,
  });
  // Nothing here is logged, so the card re-thresholds what it has.
  offerOperatingPoints(card, info, (choice) => {
    renderAnswer(card, info, at(choice));
    say(card, info, at(choice));
  });
  renderAnswer(card, info, at(settings.operatingPoint));
  say(card, info, at(settings.operatingPoint));
  showImages(card, URL.createObjectURL(file), null);
  return at(settings.operatingPoint);
}

/**
 * Failures worth another try as they are: the network, the server busy or away, a token missing, refused or
 * without the scope (the try asks for another), a proxy's sign-in page in place of the answer; not the file itself.
 */
function retryable(e: unknown): boolean {
  if (e instanceof api.ApiError)
    return [0, 408, 429].includes(e.status) || e.status >= 500 || api.needsToken(e) || e.code === api.NOT_JSON;
  return api.isNetworkFailure(e);
}

async function analyze(
  job: Job,
  ctx: AnalyzeContext,
  retry: (job: Job) => void,
  signal: AbortSignal,
): Promise<Outcome> {
  const { file, card, settings } = job;
  setPending(card, 'Analyzing…');
  try {
    const info = await ctx.model();
    signal.throwIfAborted();
    if (settings.local) {
      const head = new Uint8Array(await file.slice(0, DICOM_HEAD_BYTES).arrayBuffer());
      if (isDicom(head, file.name))
        throw new Error('DICOM is processed on the server only: turn off "Process on this computer" to analyze it.');
    }
    const a = settings.local
      ? await analyzeLocally(job, info, signal)
      : await patiently(card, signal, () => analyzeOnServer(job, info, signal));
    // Counted as the card shows it: a film that cannot be assessed got no finding.
    const tone = findingView(a.status, a.label).tone;
    return tone === 'cannot-assess' || tone === 'outside-population' ? tone : 'assessed';
  } catch (e) {
    if (signal.aborted || api.isAbort(e)) return 'cancelled'; // said on the card by film_queue.ts
    // The server's limit now, from its refusal's maxUploadBytes (or /health asked again where the refusal does not
    // say it, as an older server's does not): the page's may be from before a restart.
    let limit: number | null | undefined;
    if (e instanceof api.ApiError && e.code === 'TOO_LARGE') {
      const said = e.maxUploadBytes;
      if (said !== null) uploadLimit = Promise.resolve(said);
      limit = said ?? (await serverUploadLimit(true));
      // Cleared meanwhile (a token forgotten): the film's name and refusal were said to the next clinician.
      if (signal.aborted) return 'cancelled';
    }
    const message =
      limit !== undefined
        ? tooLarge(file, limit, true).message
        : e instanceof api.ApiError && e.code === 'UNSUPPORTED_FORMAT'
          ? unsupported(e)
          : e instanceof api.ApiError && e.code === 'TOO_MANY_PIXELS'
            ? // The server's words say how large and the limit, not what to do.
              `${api.humanError(e).replace(/\.$/, '')}. ${SMALLER_COPY}`
            : api.humanError(e);
    showError(card, message, retryable(e) ? () => retry(job) : null, api.needsToken(e) ? 'Enter token' : 'Try again');
    announce(`${fileName(card)}: not analyzed: ${message}`);
    return e instanceof api.ApiError && e.code === 'UNREACHABLE' ? 'unreachable' : 'failed';
  }
}

/** What the Analyze view offers the rest of the page. */
export interface AnalyzeView {
  /**
   * Cancels every film waiting or on its way and removes every card, the status line and the age typed: the
   * previous clinician's results, on a shared workstation, once their token is forgotten.
   */
  clear(): void;
}

export function setUpAnalyze(ctx: AnalyzeContext): AnalyzeView {
  const input = $('#file-input') as HTMLInputElement;
  const drop = $('#drop');
  const results = $('#results');
  const films = new FilmQueue<Job>((job, signal, retry) => analyze(job, ctx, retry, signal));
  watchAgeField();

  const take = (files: FileList | File[], fromPicker: boolean) => {
    const list = Array.from(files);
    if (!list.length) return;
    // Read now, not at each file's turn: the fields may already hold the next patient's values.
    const settings = readSettings();
    const jobs = list.map((file) => ({ file, card: newCard(file.name), settings }));
    results.prepend(...jobs.map((j) => j.card));
    films.enqueue(jobs);
    reveal(jobs[0].card, fromPicker);
  };

  input.addEventListener('change', () => {
    if (input.files) take(input.files, document.activeElement === input);
    input.value = '';
  });
  acceptFileDrops(
    drop,
    () => !$('#view-analyze').hidden,
    (files) => take(files, false),
  );

  setUpModeSwitch(ctx.model);

  return {
    clear() {
      films.clear();
      // Their images were object URLs of the films: freed with the cards.
      for (const img of results.querySelectorAll<HTMLImageElement>('img[src^="blob:"]')) URL.revokeObjectURL(img.src);
      results.replaceChildren();
      showStatus('', false);
      const age = $('#patient-age') as HTMLInputElement;
      age.value = '';
      age.dispatchEvent(new Event('input'));
    },
  };
}
