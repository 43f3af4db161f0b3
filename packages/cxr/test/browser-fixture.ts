// The real browser of the page tests: Debian's Chromium driven by playwright-core, and a server in this
// process that serves the built page with a model. One place, so every page test runs the browser alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Browser, type BrowserContextOptions, chromium, type Page, type Route } from 'playwright-core';
import { silentLogger } from '../src/log';
import { type RunningServer, type ServerOptions, startServer } from '../src/serve/server';
import { buildWeb, STATIC_DIR } from '../src/web/build';
import { loadPredictor } from './serve-fixtures';

export const CHROMIUM = process.env.CXR_CHROMIUM ?? '/usr/bin/chromium';

/** Why the page tests cannot run here, or false. */
export const noChromium = fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

/** Headless, with nothing of its own going to the network (no updates, sync or QUIC probes). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * `cxr serve` in this process on a free port with the page and `modelDir`, its audit log in `dir`. `rebuild`
 * builds the page first even when a build is there (a test of the page as the sources stand); `options`
 * are more of the server's options (e.g. `maxUploadBytes`, or `port` to start it again where it was).
 * CXR_TEST_WEB_DIR serves another build of the page instead (e.g. the page before a change, to see that a new
 * test fails without it).
 */
export async function startPageServer(
  dir: string,
  modelDir: string,
  rebuild = false,
  options: Partial<ServerOptions> = {},
): Promise<RunningServer> {
  if (rebuild || !fs.existsSync(path.join(STATIC_DIR, 'app.js'))) await buildWeb();
  return startServer({
    ...options,
    host: '127.0.0.1',
    // A port given: the same address again, e.g. the server restarted with another model under an open page.
    port: options.port ?? 0,
    dbPath: path.join(dir, 'audit.db'),
    webDir: process.env.CXR_TEST_WEB_DIR ?? STATIC_DIR,
    loadPredictor: () => loadPredictor(modelDir),
    log: silentLogger(),
  });
}

/** Requests matching `match`, recorded; while closed, each is held until release(). */
export class Gate {
  readonly requests: URL[] = [];
  private open: Promise<void> = Promise.resolve();
  private opener = () => {};

  constructor(private readonly match: (url: URL, method: string) => boolean) {}

  async install(page: Page): Promise<void> {
    await page.route(
      () => true,
      async (route: Route) => {
        const url = new URL(route.request().url());
        if (!this.match(url, route.request().method())) return route.fallback();
        this.requests.push(url);
        await this.open;
        await route.fallback();
      },
    );
  }

  close(): void {
    this.open = new Promise((resolve) => {
      this.opener = resolve;
    });
  }

  release(): void {
    this.opener();
  }

  async seen(n: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (this.requests.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} requests, saw ${this.requests.length}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export const isPrediction = (url: URL, method: string) => method === 'POST' && url.pathname === '/api/v1/predictions';

/**
 * A tab in a context of its own (viewport, colour scheme, motion), with its console errors collected; close it
 * with `page.context().close()`.
 */
export async function openPage(
  browser: Browser,
  options: BrowserContextOptions = {},
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

/** The page loaded and its model info in. */
export async function ready(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
}

/**
 * Every message the page gives screen readers (#announcer) from now on, in order, whether or not the region still
 * holds it: it keeps only the latest.
 */
export async function recordAnnouncements(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const w = window as unknown as { announced: string[] };
    w.announced = [];
    new MutationObserver((records) => {
      for (const r of records) for (const n of Array.from(r.addedNodes)) w.announced.push(n.textContent ?? '');
    }).observe(document.querySelector('#announcer')!, { childList: true });
  });
  return () => page.evaluate(() => (window as unknown as { announced: string[] }).announced);
}

/** Until `n` cards are finished (done or not analyzed). */
export async function finished(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (k) => document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === k,
    n,
    { timeout: 90_000 },
  );
}

/** A file for setInputFiles: `source`'s bytes (or the bytes given) under `name`. */
export function upload(name: string, source: string | Buffer): { name: string; mimeType: string; buffer: Buffer } {
  const buffer = typeof source === 'string' ? fs.readFileSync(source) : source;
  const mimeType = name.endsWith('.png') ? 'image/png' : name.endsWith('.dcm') ? 'application/dicom' : 'image/jpeg';
  return { name, mimeType, buffer };
}
