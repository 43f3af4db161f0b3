// The History view: the audit log through GET /api/v1/predictions, with filters and paging.
import * as api from './api';
import { shownLabel, showsHeatmap, statusOf } from '../../predict/verdict';
import { $, el, percentPair } from './dom';
import { cardHeadline, findingView, type Label } from './finding';
import { showLargeView } from './large_view';

const PAGE_SIZE = 25;
let page = 1;
const thumbUrls: string[] = [];

/**
 * The filters as the API's query, or null when the dates are the wrong way round ("From" after "To"): said at
 * the fields, not sent (the server would refuse them too), where an empty range read as "No predictions match."
 */
function query(): URLSearchParams | null {
  const form = $('#history-filters') as HTMLFormElement;
  const data = new FormData(form);
  const q = new URLSearchParams({ page: String(page), limit: String(PAGE_SIZE) });
  for (const key of ['label', 'verdict', 'operatingPoint', 'hasWarnings']) {
    const v = String(data.get(key) ?? '');
    if (v) q.set(key, v);
  }
  // Dates are local days: from the start of "since" to the end of "until".
  const since = String(data.get('since') ?? '');
  const until = String(data.get('until') ?? '');
  if (since) q.set('since', new Date(`${since}T00:00:00`).toISOString());
  if (until) q.set('until', new Date(`${until}T23:59:59.999`).toISOString());
  const backwards = since !== '' && until !== '' && since > until; // yyyy-mm-dd: compared as text
  // Said as the fields show the dates (the browser's locale), not as the yyyy-mm-dd they hold.
  datesError(backwards ? `"From" (${localDay(since)}) is after "To" (${localDay(until)}): swap the two dates.` : null);
  return backwards ? null : q;
}

/** A date field's yyyy-mm-dd as the browser's locale writes a day (as the field shows it). */
function localDay(day: string): string {
  return new Date(`${day}T00:00:00`).toLocaleDateString();
}

/** The date fields' error, or none. */
function datesError(text: string | null): void {
  const error = $('#history-dates-error');
  error.hidden = text === null;
  error.textContent = text ?? '';
  for (const name of ['since', 'until']) {
    const field = $(`#history-filters input[name="${name}"]`);
    if (text === null) {
      field.removeAttribute('aria-invalid');
      field.removeAttribute('aria-describedby');
    } else {
      field.setAttribute('aria-invalid', 'true');
      field.setAttribute('aria-describedby', error.id);
    }
  }
}

/**
 * The latest heat map asked for (or the forgetting of the token): an earlier click's answer coming later replaced
 * the one the reader chose last, and one coming after "Forget token" opened the previous clinician's heat map.
 */
let heatmapAsks = 0;

/**
 * A link to the row's heat map. The image needs the API token, which a plain link cannot send,
 * so a click fetches it and shows it in a dialog; the href still works where no token is needed.
 */
function heatmapLink(url: string, id: string): HTMLAnchorElement {
  const a = el('a', { href: url, textContent: 'Heat map', title: `Heat map of prediction ${id}` });
  // Every row's link reads "Heat map": a screen reader's list of links needs each one's own name (the short id the
  // dialog's title shows too).
  a.setAttribute('aria-label', `Heat map of prediction ${id.slice(0, 8)}`);
  a.addEventListener('click', (e) => {
    e.preventDefault();
    const mine = ++heatmapAsks;
    // The page's one large view (large_view.ts, shared with the Analyze cards); the blob: URL is its own.
    api.imageUrl(url).then(
      (u) => {
        if (mine !== heatmapAsks) return URL.revokeObjectURL(u);
        showLargeView({
          title: `Heat map · ${id.slice(0, 8)}`,
          image: { src: u, alt: `Heat map of prediction ${id}` },
          legend: true,
          owned: true,
        });
      },
      (err: unknown) => {
        if (mine !== heatmapAsks) return;
        $('#history-page').textContent = `Could not load the heat map: ${api.humanError(err)}`;
      },
    );
  });
  return a;
}

/**
 * The row's finding as the Analyze view shows it (finding.ts): none, and no number, for an image that could
 * not be assessed; an answer outside the intended population in the warning style, its number for reference
 * only, never as a red finding.
 */
function finding(p: api.Prediction): [HTMLElement, string] {
  // The label through shownLabel: none for an unassessable answer (an older server sent the model's label).
  const view = findingView(statusOf(p), shownLabel(p) as Label | null);
  const tag = el('span', { className: `tag ${view.tone}`, textContent: view.short });
  // In full as the card's headline says it ("Below the pneumonia threshold (p < 15.7 %)"): the verdict's "No signs
  // of pneumonia detected" is what the card stopped saying (a contradiction beside 18 %), and read differently.
  const headline = cardHeadline(view, p);
  if (headline !== view.short) tag.title = headline;
  if (!view.showsProbability) return [tag, '—'];
  // As on the card: decimals enough for the probability and the threshold to read differently.
  const shown = percentPair(p.probability, p.threshold).probability;
  return [tag, view.probabilityNote ? `${shown} (for reference only)` : shown];
}

/**
 * A row's warnings, two lines at most (style.css), opened in full on a click: a film's warnings run to 80 words,
 * and in full they made rows a screen tall, on a phone several.
 */
function warnings(list: readonly string[]): HTMLElement {
  const text = list.join('; ');
  return el('details', { className: 'warn' }, el('summary', { title: text, textContent: text }));
}

/**
 * Who asked: the name of the API token the answer was given to, as the audit log recorded it (none where the
 * server needs no token). The API keeps no file name (nor anything else naming the patient), so none is shown.
 */
function askedBy(p: api.Prediction): HTMLTableCellElement {
  const cell = el('td', { className: 'asked-by', textContent: p.requestedBy ?? '—' });
  if (p.requestedBy === null) cell.title = 'No token: this server asked for none';
  return cell;
}

/** The table's column count, for a row of one cell across it. */
function columns(): number {
  return $('#history-table thead tr').childElementCount;
}

function row(p: api.Prediction): HTMLTableRowElement {
  const img = el('img', { alt: '' });
  if (p.thumbnailUrl) {
    api.imageUrl(p.thumbnailUrl).then(
      (u) => {
        thumbUrls.push(u);
        img.src = u;
        img.alt = `Thumbnail of ${p.input.kind} image`;
      },
      () => img.remove(),
    );
  } else {
    img.remove();
  }
  const when = new Date(p.createdAt);
  const [tag, probability] = finding(p);
  return el(
    'tr',
    { id: `prediction-${p.id}` },
    el('td', {}, el('time', { dateTime: p.createdAt, textContent: when.toLocaleString() })),
    // The id is what the audit log, the API and a support request refer to; shortened, full in the title.
    el('td', {}, el('code', { className: 'id', title: p.id, textContent: p.id.slice(0, 8) })),
    askedBy(p),
    el('td', {}, p.thumbnailUrl ? img : '—'),
    el('td', { className: 'finding' }, tag),
    el('td', { className: 'num', textContent: probability }),
    // These two may wrap at their space (style.css): on one line each they pushed History past a 1280 px window.
    el('td', {
      className: 'two-part',
      textContent: `${p.operatingPoint} (${percentPair(p.probability, p.threshold).threshold})`,
    }),
    el('td', {
      className: 'two-part',
      textContent: `${p.input.kind.toUpperCase()} ${p.input.width}×${p.input.height}`,
    }),
    el('td', { className: 'warnings-cell' }, p.warnings.length ? warnings(p.warnings) : '—'),
    el('td', {}, p.heatmapUrl && showsHeatmap(statusOf(p)) ? heatmapLink(p.heatmapUrl, p.id) : '—'),
    // The name only (a long one cut short): the version, and the full name, in the title.
    el(
      'td',
      {},
      el('span', { className: 'model', title: `${p.model.name} ${p.model.version}`, textContent: p.model.name }),
    ),
  );
}

/**
 * Switches the pager's buttons on or off. The one a keyboard user pressed to reach the last (or first) page is
 * switched off under the focus, which fell to the page's start ("Skip to content" next): it goes to the other.
 */
function pagerOff(prevOff: boolean, nextOff: boolean): boolean {
  const prev = $('#history-prev') as HTMLButtonElement;
  const next = $('#history-next') as HTMLButtonElement;
  const had = document.activeElement;
  prev.disabled = prevOff;
  next.disabled = nextOff;
  if (had === prev && prevOff && !nextOff) next.focus();
  if (had === next && nextOff && !prevOff) prev.focus();
  // Whether focus was on a button now off, with nowhere in the pager to go: the caller gives it a place.
  return (had === prev || had === next) && prevOff && nextOff;
}

/** The latest load (or clear): an answer to an earlier one is not drawn over it. */
let loads = 0;

export async function loadHistory(): Promise<void> {
  const mine = ++loads;
  const body = $('#history-table tbody');
  const status = $('#history-page');
  const q = query();
  if (q === null) {
    body.replaceChildren();
    status.textContent = 'Swap "From" and "To" to search.';
    return;
  }
  try {
    const res = await api.history(q);
    if (mine !== loads) return; // a later page asked for, or the token forgotten meanwhile
    const pages = Math.max(1, Math.ceil(res.total / res.limit));
    // Past the last page (fewer rows than when the page was turned, filters changed without "Apply", another
    // token's records after "Forget token"): its last page. It read "No predictions match." and "Page 3 of 1 ·
    // 12 predictions" over predictions that do, and "Older" was off.
    if (res.items.length === 0 && res.total > 0 && page > pages) {
      page = pages;
      return loadHistory();
    }
    for (const u of thumbUrls.splice(0)) URL.revokeObjectURL(u);
    // The error row's "Try again" (or "Enter token") is replaced by the rows: focus goes to the table they are in.
    const inTable = body.contains(document.activeElement);
    body.replaceChildren(...res.items.map(row));
    if (inTable) $('#history-table').focus();
    if (!res.items.length)
      body.append(el('tr', {}, el('td', { colSpan: columns(), textContent: 'No predictions match.' })));
    status.textContent = `Page ${res.page} of ${pages} · ${res.total} prediction${res.total === 1 ? '' : 's'}`;
    // Both off (one page left after a refresh): focus on what the page now says.
    if (pagerOff(res.page <= 1, res.page >= pages)) $('#main').focus();
  } catch (e) {
    if (mine !== loads) return;
    // The button the message names ('Use "Enter token"', api.ts TOKEN_WORDS), or a way to try again; no paging
    // through a table that is not there.
    const again = el('button', { type: 'button', textContent: api.needsToken(e) ? 'Enter token' : 'Try again' });
    again.addEventListener('click', () => void loadHistory());
    const cell = el('td', { colSpan: columns(), className: 'load-error-cell' });
    cell.append(el('p', { textContent: `Could not load the history: ${api.humanError(e)}` }), again);
    // Focus on the last "Try again", replaced by this one, stays in the table.
    const inTable = body.contains(document.activeElement);
    body.replaceChildren(el('tr', {}, cell));
    status.textContent = '';
    // A page turned that could not be loaded: focus goes on to the way to try again.
    if (pagerOff(true, true) || inTable) again.focus();
  }
}

/**
 * Empties the table (the previous clinician's answers, once their token is forgotten): it is not asked for again
 * until "Apply" or the next visit, which ask for a token.
 */
export function clearHistory(): void {
  loads += 1;
  heatmapAsks += 1;
  // The next token's records start at their first page, not at the page the previous clinician had turned to.
  page = 1;
  for (const u of thumbUrls.splice(0)) URL.revokeObjectURL(u);
  const cell = el('td', { colSpan: columns(), textContent: 'Cleared with the token. Use "Apply" to load it again.' });
  $('#history-table tbody').replaceChildren(el('tr', {}, cell));
  $('#history-page').textContent = '';
  ($('#history-prev') as HTMLButtonElement).disabled = true;
  ($('#history-next') as HTMLButtonElement).disabled = true;
}

export function setUpHistory(): void {
  ($('#history-filters') as HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    page = 1;
    void loadHistory();
  });
  $('#history-prev').addEventListener('click', () => {
    page = Math.max(1, page - 1);
    void loadHistory();
  });
  $('#history-next').addEventListener('click', () => {
    page += 1;
    void loadHistory();
  });
}

/**
 * The operating point filter's choices: the model's own points. The server takes no other name (a 400), and the
 * page's fixed "screening" and "balanced" could not filter a model's other points nor leave out one it lacks. A
 * choice made stays where the model has it.
 */
export function setOperatingPointChoices(names: string[]): void {
  const select = $('#history-filters select[name="operatingPoint"]') as HTMLSelectElement;
  const chosen = select.value;
  select.replaceChildren(
    el('option', { value: '', textContent: 'any' }),
    ...names.map((name) => el('option', { value: name, textContent: name })),
  );
  select.value = names.includes(chosen) ? chosen : '';
}
