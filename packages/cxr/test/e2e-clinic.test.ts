// The page with the shipped model in Debian's Chromium: what a clinician sees.
//  - all 12 full-resolution samples (six NORMAL files carry an ICC profile) give the server's
//    probability and verdict in "process on this computer" mode, to 1e-3;
//  - a screenshot of the app is "Cannot assess" in both modes (the browser runs the same gate);
//  - the operating point switch changes the answer for a film between the two thresholds;
//  - no serious accessibility problem, and no horizontal overflow on a 390 px phone.
// CXR_SCREENSHOT_DIR=dir also writes the views at 1280 px and 390 px there.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Browser, Page } from 'playwright-core';
import type { RunningServer } from '../src/serve/server';
import { SHARED } from './ood-fixtures';
import { tempDir } from './serve-fixtures';
import { launchChromium, noChromium, startPageServer } from './browser-fixture';

const SHIPPED = path.resolve(__dirname, '../../../..', 'models', 'default');
const FULLRES = path.join(SHARED, 'samples-fullres');
const skip = noChromium
  ? noChromium
  : !fs.existsSync(path.join(SHIPPED, 'ood.json')) || !fs.existsSync(FULLRES)
    ? 'no shipped model or no samples'
    : false;
const SHOTS = process.env.CXR_SCREENSHOT_DIR;

let dir: string;
let server: RunningServer;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];
const samples = skip
  ? []
  : ['NORMAL', 'PNEUMONIA'].flatMap((c) =>
      fs
        .readdirSync(path.join(FULLRES, c))
        .filter((f) => f.endsWith('.jpeg'))
        .sort()
        .map((f) => path.join(FULLRES, c, f)),
    );

before(async () => {
  if (skip) return;
  dir = tempDir('e2e-clinic');
  server = await startPageServer(dir, SHIPPED, true);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Card {
  name: string;
  state: string;
  source: string;
  verdict: string;
  label: string;
  probability: number;
  badge: string;
  probVisible: boolean;
}

async function cards(): Promise<Card[]> {
  return page.$$eval('.result', (els) =>
    els.map((e) => {
      const d = (e as HTMLElement).dataset;
      return {
        name: e.querySelector('.file-name')?.textContent ?? '',
        state: d.state ?? '',
        source: d.source ?? '',
        verdict: d.verdict ?? '',
        label: d.label ?? '',
        probability: Number(d.probability),
        badge: e.querySelector('.label-badge')?.textContent ?? '',
        probVisible: !(e.querySelector('.probability') as HTMLElement).hidden,
      };
    }),
  );
}

async function upload(files: string[]): Promise<Card[]> {
  const before = (await cards()).length;
  await page.setInputFiles('#file-input', files);
  await page.waitForFunction(
    (n) => document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === n,
    before + files.length,
    { timeout: 120_000 },
  );
  // Each batch is put on top of the list, in upload order.
  const out = (await cards()).slice(0, files.length);
  assert.deepEqual(
    out.map((c) => c.name),
    files.map((f) => path.basename(f)),
  );
  return out;
}

async function setLocal(on: boolean): Promise<void> {
  if (on) {
    await page.check('#local-mode');
    await page.waitForFunction(
      () => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''),
      undefined,
      { timeout: 120_000 },
    );
  } else {
    await page.uncheck('#local-mode');
  }
}

async function axe(): Promise<string[]> {
  await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  return page.evaluate(async () => {
    const a = (
      window as unknown as {
        axe: {
          run(ctx: Document, o: object): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }>;
        };
      }
    ).axe;
    const r = await a.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.nodes.length})`);
  });
}

async function shot(name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

test("in the browser: the server's probability and verdict on all 12 full-resolution samples (ICC profiles included)", {
  skip,
  timeout: 600_000,
}, async (t) => {
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  const onServer = await upload(samples);
  await setLocal(true);
  const local = await upload(samples);
  await setLocal(false);
  for (let i = 0; i < samples.length; i++) {
    const [s, l] = [onServer[i], local[i]];
    assert.equal(s.source, 'server');
    assert.equal(l.source, 'local', JSON.stringify(l));
    assert.equal(l.state, 'done', JSON.stringify(l));
    t.diagnostic(
      `${path.basename(samples[i])}: server ${s.probability.toFixed(5)} browser ${l.probability.toFixed(5)}`,
    );
    assert.ok(
      Math.abs(s.probability - l.probability) < 1e-3,
      `${samples[i]}: server ${s.probability} vs browser ${l.probability}`,
    );
    assert.equal(l.verdict, s.verdict, samples[i]);
    assert.equal(s.verdict, 'assessed', samples[i]);
  }
  assert.deepEqual(await axe(), [], 'Analyze view with results');
});

/**
 * A real film whose served probability lies between the two thresholds, whatever model is shipped:
 * the full-resolution samples first, then the shipped model's validation films that its own
 * predictions file places in that band (nearest the band's middle first; the thresholds can lie close
 * together), then NORMAL training films, each asked of the server's API.
 */
async function filmBetween(lo: number, hi: number): Promise<string> {
  const normals = path.join(SHARED, 'chest_xray', 'train', 'NORMAL');
  const val = JSON.parse(fs.readFileSync(path.join(SHIPPED, 'predictions', 'val.json'), 'utf8')) as {
    files: string[];
    probs: number[];
  };
  const mid = (lo + hi) / 2;
  const inBand = val.files
    .map((f, i) => ({ file: path.resolve(SHARED, 'chest_xray', f), p: val.probs[i] }))
    .filter((c) => c.p >= lo && c.p < hi)
    .sort((a, b) => Math.abs(a.p - mid) - Math.abs(b.p - mid))
    .map((c) => c.file);
  const candidates = [
    ...samples,
    ...inBand,
    ...fs
      .readdirSync(normals)
      .sort()
      .map((f) => path.join(normals, f)),
  ];
  for (const file of candidates.slice(0, 400)) {
    const form = new FormData();
    form.append('image', new Blob([fs.readFileSync(file)]), path.basename(file));
    const res = await fetch(`${server.url}/api/v1/predictions`, { method: 'POST', body: form });
    const p = (await res.json()) as { probability?: number; verdict?: { status: string } };
    if (p.verdict?.status === 'assessed' && p.probability !== undefined && p.probability >= lo && p.probability < hi)
      return file;
  }
  throw new Error(`no film among ${candidates.length} scores between ${lo} and ${hi}`);
}

test('the operating point switch changes a between-thresholds answer; a screenshot is unassessable in both', {
  skip,
  timeout: 300_000,
}, async () => {
  const info = (await (await fetch(`${server.url}/api/v1/model`)).json()) as {
    operatingPoints: Record<string, { threshold: number }>;
  };
  const { screening, balanced } = info.operatingPoints;
  assert.ok(screening.threshold < balanced.threshold);
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  const global = await page.$$eval('input[name="op-global"]', (els) => els.map((e) => (e as HTMLInputElement).value));
  assert.deepEqual(global.sort(), ['balanced', 'screening']);

  const between = await filmBetween(screening.threshold, balanced.threshold);
  const [card] = await upload([between]);
  assert.ok(card.probability >= screening.threshold && card.probability < balanced.threshold, `${card.probability}`);
  const sel = '.result[data-source="server"]';
  assert.equal(await page.getAttribute(sel, 'data-label'), 'NORMAL');
  // The finding as the number against its threshold (finding.ts cardHeadline).
  assert.match(
    (await page.textContent(`${sel} .label-badge`)) ?? '',
    /^Below the pneumonia threshold \(p\u00a0<\u00a0/,
  );
  // On the server the switch is a new prediction at that point: the answer shown is the one logged.
  const firstId = await page.getAttribute(sel, 'data-prediction-id');
  await page.check(`${sel} input[value="screening"]`);
  await page.waitForSelector(`${sel}[data-state="done"][data-operating-point="screening"]`, { timeout: 60_000 });
  assert.equal(await page.getAttribute(sel, 'data-label'), 'PNEUMONIA');
  assert.match(
    (await page.textContent(`${sel} .label-badge`)) ?? '',
    /^Above the pneumonia threshold \(p\u00a0≥\u00a0/,
  );
  const screeningId = (await page.getAttribute(sel, 'data-prediction-id')) ?? '';
  assert.notEqual(screeningId, firstId);
  assert.equal((await server.audit.get(screeningId))?.label, 'PNEUMONIA');
  await page.check(`${sel} input[value="balanced"]`);
  assert.equal(await page.getAttribute(sel, 'data-label'), 'NORMAL');
  assert.equal(await page.getAttribute(sel, 'data-prediction-id'), firstId);

  // A screenshot of this page, analyzed on the server and in the browser.
  const screenshot = path.join(dir, 'screenshot-of-the-app.png');
  await page.screenshot({ path: screenshot });
  const [server1] = await upload([screenshot]);
  assert.equal(server1.verdict, 'cannot-assess', JSON.stringify(server1));
  assert.equal(server1.badge, 'Cannot assess this image');
  assert.equal(server1.probVisible, false, 'no probability for an image that cannot be assessed');
  await setLocal(true);
  const [local1] = await upload([screenshot]);
  assert.equal(local1.source, 'local');
  assert.equal(local1.verdict, 'cannot-assess', JSON.stringify(local1));
  assert.equal(local1.probVisible, false);
  const localWarnings = await page.$$eval('.result[data-source="local"] .warnings li', (li) =>
    li.map((e) => e.textContent ?? ''),
  );
  assert.ok(
    localWarnings.some((w) => /does not look like a frontal chest X-ray|colour image/.test(w)),
    localWarnings.join('|'),
  );
  // An inverted film too: the browser runs the image checks.
  const inverted = path.join(dir, 'inverted.png');
  await sharp(between).greyscale().negate({ alpha: false }).png().toFile(inverted);
  const [local2] = await upload([inverted]);
  assert.equal(local2.verdict, 'cannot-assess');
  await setLocal(false);
  // The server cannot be reached: people read what to do, not the browser's "Failed to fetch".
  await page.route('**/api/v1/predictions**', (r) => r.abort('connectionrefused'));
  const [down] = await upload([between]);
  assert.equal(down.state, 'error');
  assert.match(
    (await page.textContent('.result .warnings li.error')) ?? '',
    /^Cannot reach the cxr server\..*try again\.$/,
  );
  await page.unroute('**/api/v1/predictions**');
  consoleErrors.splice(
    0,
    consoleErrors.length,
    ...consoleErrors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
  );
  await page.evaluate(() => {
    for (const c of Array.from(document.querySelectorAll('.result')).slice(1, -1)) c.remove();
  });
  await shot('analyze-1280');
  assert.deepEqual(await axe(), []);
  assert.deepEqual(consoleErrors, []);
});

test("a 390 px phone: no view wider than the screen; History links each row's heat map; no dead card link", {
  skip,
  timeout: 120_000,
}, async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  for (const view of ['analyze', 'history', 'model']) {
    await page.goto(`${server.url}/#/${view}`);
    await page.waitForSelector('body[data-ready="true"]');
    if (view === 'history') await page.waitForSelector('#history-table tbody tr td time');
    if (view === 'model') await page.waitForSelector('#model-card p');
    await shot(`${view}-390`);
    assert.ok((await overflow()) <= 0, `${view} overflows a 390 px screen by ${await overflow()} px`);
  }
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.goto(`${server.url}/#/history`);
  await page.waitForSelector('#history-table tbody tr td time');
  await shot('history-1280');
  // The screenshot analyzed above could not be assessed: History says so too, with no number.
  const findings = await page.$$eval('#history-table tbody tr', (trs) =>
    trs.map((tr) => [tr.querySelector('td.finding')?.textContent ?? '', tr.querySelector('td.num')?.textContent ?? '']),
  );
  const notAssessed = findings.filter(([f]) => f === 'Cannot assess');
  assert.ok(notAssessed.length >= 1, JSON.stringify(findings));
  assert.ok(
    notAssessed.every(([, p]) => p === '—'),
    JSON.stringify(notAssessed),
  );
  const id = await page.getAttribute('#history-table tbody tr td code.id', 'title');
  assert.match(id ?? '', /^[0-9a-f-]{36}$/);
  await page.click('#history-table tbody tr a[href$="heatmap.png"]');
  await page.waitForFunction(() => (document.querySelector<HTMLImageElement>('#heatmap-image')?.naturalWidth ?? 0) > 0);
  assert.equal(await page.isVisible('#heatmap-dialog[open]'), true);
  await page.click('#heatmap-dialog button');
  assert.deepEqual(await axe(), [], 'History view');
  await page.goto(`${server.url}/#/model`);
  await page.waitForSelector('#model-card p');
  await shot('model-1280');
  const relative = await page.$$eval('#model-card a', (as) =>
    as.map((a) => a.getAttribute('href') ?? '').filter((h) => !/^(https?:|#|mailto:)/.test(h)),
  );
  assert.deepEqual(relative, [], 'relative links in the card would 404 on this server');
  // A relative link of the shipped card (e.g. ../../docs/...) is shown as its path in the source tree.
  const cardLink = /\]\((\.\.\/[^)#]+)/.exec(fs.readFileSync(path.join(SHIPPED, 'MODEL_CARD.md'), 'utf8'))?.[1];
  assert.ok(cardLink, 'the shipped card has a relative link to check');
  const inTree = path.relative(path.resolve(SHIPPED, '..', '..'), path.resolve(SHIPPED, cardLink));
  assert.ok(((await page.textContent('#model-card')) ?? '').includes(inTree), inTree);
  assert.equal(await page.getAttribute('link[rel="icon"]', 'href'), 'favicon.svg');
  assert.equal((await fetch(`${server.url}/favicon.svg`)).status, 200);
  assert.deepEqual(await axe(), [], 'Model view');
  assert.deepEqual(consoleErrors, []);
});
