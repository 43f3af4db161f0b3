// The page's entry point: hash routes (#/analyze, #/history, #/model), the token dialog, and the
// model info every view needs.
import * as api from './api';
import { setUpAnalyze } from './analyze';
import { $, distinctOperatingPoints, el } from './dom';
import { loadHistory, setUpHistory } from './history_view';
import { renderModel } from './model_view';
import { operatingPointHint } from './op_hints';
import { showStatus } from './status_line';

let modelInfo: Promise<api.ModelInfo> | null = null;
function model(): Promise<api.ModelInfo> {
  modelInfo ??= api.modelInfo();
  modelInfo.catch(() => {
    modelInfo = null;
  });
  return modelInfo;
}

function askToken(): Promise<string> {
  const dialog = $('#token-dialog') as HTMLDialogElement;
  const input = $('#token-input') as HTMLInputElement;
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener('close', done);
      resolve(input.value.trim());
      input.value = '';
    };
    dialog.addEventListener('close', done);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
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
  if (view === 'model')
    model().then(renderModel, (e: unknown) => {
      $('#model-card').textContent = String(e);
    });
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

function start(): void {
  api.setTokenPrompt(askToken);
  setUpAnalyze({ model });
  setUpHistory();
  window.addEventListener('hashchange', () => {
    route();
    $('#main').focus();
  });
  route();
  model().then(
    (info) => {
      renderGlobalOperatingPoints(info);
      document.body.dataset.ready = 'true';
    },
    (e: unknown) => {
      showStatus(`Cannot reach the model: ${api.humanError(e)}`);
    },
  );
}

start();
