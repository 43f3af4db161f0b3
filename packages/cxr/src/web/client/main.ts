// The page's entry point: hash routes (#/analyze, #/history, #/model), the token dialog, and the
// model info every view needs.
import * as api from './api';
import { type AnalyzeView, setUpAnalyze } from './analyze';
import { $, distinctOperatingPoints, el } from './dom';
import { forgetEverything } from './forget';
import { loadHistory, setOperatingPointChoices, setUpHistory } from './history_view';
import { renderModel } from './model_view';
import { operatingPointHint } from './op_hints';
import { showStatus } from './status_line';

let modelInfo: Promise<api.ModelInfo> | null = null;
/**
 * The model info every view needs, asked once; a failure is asked again by the next caller. Whoever gets it
 * first (the start, a film analyzed, the Model view's "Try again") also builds what waits for it: with the
 * API away when the page opened (or the token dialog dismissed), the operating point choice was left the
 * placeholder "balanced" for good.
 */
function model(): Promise<api.ModelInfo> {
  if (!modelInfo) {
    modelInfo = api.modelInfo();
    modelInfo.then(modelLoaded, () => {
      modelInfo = null;
    });
  }
  return modelInfo;
}

/** How many times the token dialog has been opened. */
let tokenAsks = 0;

/**
 * model() for a film: a refusal for want of a token is asked again where nobody was asked for one while this
 * film waited (the dialog neither open when it came nor opened since). A film chosen just after the dialog at
 * load was dismissed got that load's refusal, still settling, and its card said "none was entered", unasked.
 */
async function modelForFilm(): Promise<api.ModelInfo> {
  const asking = ($('#token-dialog') as HTMLDialogElement).open;
  const asks = tokenAsks;
  try {
    return await model();
  } catch (e) {
    if (!api.needsToken(e) || asking || tokenAsks !== asks) throw e;
    return model();
  }
}

let loadedSha: string | null = null;
/** Builds the operating point choice for `info`, once per model. */
function modelLoaded(info: api.ModelInfo): void {
  if (loadedSha !== info.sha256) {
    loadedSha = info.sha256;
    renderGlobalOperatingPoints(info);
    setOperatingPointChoices(Object.keys(info.operatingPoints));
  }
  // The start's "could not be loaded" is no longer true, nor the Model view's.
  if ($('#status').textContent?.startsWith(NOT_LOADED)) showStatus('', false);
  if (!$('#model-error').hidden) showModel();
  document.body.dataset.ready = 'true';
}

const NOT_LOADED = "The model's information could not be loaded.";

/** The dialog's words for a token not accepted (the page's), kept while a scope's refusal shows the server's. */
let refusedWords: string | null = null;

/**
 * Those waiting for the open dialog's answer. Every request refused while it is open gets the one answer: each
 * had a close listener of its own, the first emptied the input, and the next read '' (opened at History, the
 * model info took the token typed for both as "none": "did not accept the API token entered", the page never ready).
 */
const tokenWaiters: ((token: string) => void)[] = [];
let tokenCloseHeard = false;

/**
 * Asks for the API token; `why` says whether the one sent was refused, or lacks a scope (`detail`: the server's
 * words naming it). Resolves '' when the dialog is cancelled.
 */
function askToken(why: api.TokenWant, detail = ''): Promise<string> {
  const dialog = $('#token-dialog') as HTMLDialogElement;
  const input = $('#token-input') as HTMLInputElement;
  // The same words after a refused token would read as if nothing had happened.
  const error = $('#token-error');
  refusedWords ??= error.textContent ?? '';
  error.textContent = why === 'scope' ? `That token cannot do this: ${detail}` : refusedWords;
  error.hidden = why === 'missing';
  if (!tokenCloseHeard) {
    tokenCloseHeard = true;
    dialog.addEventListener('close', () => {
      // Only "Use token" gives the token: Escape and Cancel close the dialog without one, whatever was typed.
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      input.value = '';
      for (const resolve of tokenWaiters.splice(0)) resolve(token);
    });
  }
  return new Promise((resolve) => {
    tokenWaiters.push(resolve);
    if (!dialog.open) {
      tokenAsks++;
      dialog.returnValue = '';
      dialog.showModal();
    }
    input.focus();
  });
}

/** The Model view: the model's information, or why it cannot be had and a way to try again. */
function showModel(): void {
  const box = $('#model-error');
  model().then(
    (info) => {
      // Its button ("Try again", "Enter token") hidden under the focus: focus goes to the view, as on arriving.
      const had = box.contains(document.activeElement);
      box.hidden = true;
      renderModel(info);
      if (had) $('#main').focus();
    },
    (e: unknown) => {
      $('p', box).textContent = `${NOT_LOADED} ${api.humanError(e)}`;
      const button = $('button', box) as HTMLButtonElement;
      // Either asks the server again; where it wants a token, that asks for the token first.
      button.textContent = api.needsToken(e) ? 'Enter token' : 'Try again';
      button.onclick = showModel;
      box.hidden = false;
    },
  );
}

const VIEWS = ['analyze', 'history', 'model'];

function route(): void {
  const name = location.hash.replace(/^#\/?/, '') || 'analyze';
  const view = VIEWS.includes(name) ? name : 'analyze';
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset.nav === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'history') void loadHistory();
  if (view === 'model') showModel();
  document.title = `cxr — ${view[0].toUpperCase()}${view.slice(1)}`;
}

/** One radio per distinct threshold of this model (two names for one threshold are one choice). */
function renderGlobalOperatingPoints(info: api.ModelInfo): void {
  const fs = $('#op-global');
  const points = distinctOperatingPoints(info);
  fs.hidden = points.length < 2;
  fs.replaceChildren(
    el('legend', { textContent: 'Operating point' }),
    ...points.map(({ names }) => {
      const hint = operatingPointHint(info, names);
      return el(
        'label',
        {},
        el('input', {
          type: 'radio',
          name: 'op-global',
          value: names[0],
          checked: names.includes(info.defaultOperatingPoint),
        }),
        ` ${names.join(' = ')}`,
        ...(hint ? [' ', el('span', { className: 'hint', textContent: `(${hint})` })] : []),
      );
    }),
  );
}

/** How long the start waits before asking for the model info again while the server cannot be reached. */
const RETRY_MS = 5000;
let retryTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * The model info at the start, and again until it comes: the server down when the page opened and up later left
 * the operating point choice the placeholder until a film was sent. Asked again by itself every RETRY_MS while it
 * cannot be loaded (the server unreachable, starting, or answering an error: a cheap GET), not where it wants a
 * token (that would open the token dialog every few seconds): the status line's button asks then. The line is
 * the start's own: one that says something else (a batch under way) is not overwritten, and only the first failure
 * is announced.
 */
function loadModel(announceFailure = true): void {
  clearTimeout(retryTimer);
  model().catch((e: unknown) => {
    const line = $('#status').textContent ?? '';
    const token = api.needsToken(e);
    if (line === '' || line.startsWith(NOT_LOADED))
      showStatus(`${NOT_LOADED} ${api.humanError(e)}`, announceFailure, {
        label: token ? 'Enter token' : 'Try again',
        run: () => loadModel(),
      });
    clearTimeout(retryTimer);
    if (!token) retryTimer = setTimeout(() => loadModel(false), RETRY_MS);
  });
}

/**
 * Which token the tab holds, in the header, with a way to forget it: on a shared workstation the next clinician's
 * films were logged under the previous one's name, and nothing on the page said whose token was in use. Its name
 * shows as soon as the server has said it (api.ts learnTokenName; from an older server, once an answer has).
 */
function showToken(analyze: AnalyzeView): void {
  const box = $('#token-state');
  const who = $('#token-who');
  const render = (state: api.TokenState) => {
    box.hidden = !state.held;
    who.textContent = state.name ? `Signed in with the token "${state.name}"` : 'Signed in with a token';
  };
  // The previous clinician's results go with their token: films still waiting are cancelled (they would be sent
  // with the next clinician's token), as is one on its way (its answer would be shown to them), and the cards
  // and History's rows are removed. No question first: nothing is lost that the audit log does not keep.
  $('#token-forget').addEventListener('click', () => {
    forgetEverything(() => analyze.clear());
    $('#main').focus();
  });
  api.onTokenChange(render);
  render(api.tokenState());
}

function start(): void {
  api.setTokenPrompt(askToken);
  showToken(setUpAnalyze({ model: modelForFilm }));
  setUpHistory();
  window.addEventListener('hashchange', () => {
    route();
    $('#main').focus();
  });
  route();
  loadModel();
  // A token kept from before a reload is named at once; a refused one is asked for again (api.ts).
  api.learnTokenName().catch(() => undefined);
}

start();
