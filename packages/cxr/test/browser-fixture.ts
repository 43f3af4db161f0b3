// The real browser of the page tests: Debian's Chromium driven by playwright-core, and a server in this
// process that serves the built page with a model. One place, so every page test runs the browser alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { type Browser, type BrowserContextOptions, chromium, type Page, type Route } from 'playwright-core';
import { silentLogger } from '../src/log';
import { type RunningServer, type ServerOptions, startServer } from '../src/serve/server';
import { buildWeb, STATIC_DIR } from '../src/web/build';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';

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
 * One Chromium for a file's tests (the report pages' look, say): launched before them where there is one, closed
 * after them. `browser()` gives it; a test that runs without one should have been skipped (noChromium).
 */
export function browserForFile(): () => Browser {
  let browser: Browser | undefined;
  before(async () => {
    if (!noChromium) browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error(`no browser for this test: ${noChromium || 'it was not launched'}`);
    return browser;
  };
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

/** What a page test file runs against: its folder, model, server and browser, made by `pageSuite`. */
export interface PageSuite {
  /** The file's temporary folder, removed after its tests. */
  readonly dir: string;
  /** The model the server serves. */
  readonly modelDir: string;
  /** The page's server on `dir` (none with `server: false`). */
  readonly server: RunningServer;
  readonly browser: Browser;
  /**
   * A tab of its own (openPage's `options`) on the server's page (`at` after its address, e.g. "#/model"), ready;
   * `gate` is installed before the page loads.
   */
  open(options?: BrowserContextOptions & { gate?: Gate }, at?: string): Promise<{ page: Page; errors: string[] }>;
  /** Another page server, its audit log in `dir/sub` (startPageServer's arguments), closed after the file's tests. */
  serve(sub: string, modelDir: string, rebuild?: boolean, options?: Partial<ServerOptions>): Promise<RunningServer>;
}

export interface PageSuiteOptions {
  /** The model folder to serve, made in `dir`; by default a tiny one (64 px input) in `dir/model`. */
  model?: (dir: string) => Promise<string>;
  /** Changes to the model's folder before the server starts (a model card, other operating points). */
  prepare?: (modelDir: string, dir: string) => void | Promise<void>;
  /** Build the page first (startPageServer's `rebuild`). */
  rebuild?: boolean;
  /** More of the server's options; false: no server at the start (the file starts its own with `serve`). */
  server?: Partial<ServerOptions> | false;
  /**
   * The rest of the file's set-up, once all is started (more servers, a shared tab). Here, not in a `before` of
   * the file's own: Node runs a file's top-level before hooks at once, each without waiting for the last.
   */
  started?: (suite: PageSuite) => void | Promise<void>;
}

/**
 * The set-up every page test file shares, registered as the file's before and after hooks: a temporary folder
 * named for `name`, a model, the page's server and Chromium (then `started`); after the tests all closed and the
 * folder removed. Nothing is made where `skip` says why the tests cannot run.
 */
export function pageSuite(name: string, skip: string | false, options: PageSuiteOptions = {}): PageSuite {
  let dir: string | undefined;
  let modelDir: string | undefined;
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  const servers: RunningServer[] = [];
  const made = <T>(what: string, v: T | undefined): T => {
    if (v === undefined) throw new Error(`pageSuite(${name}): no ${what} (skipped, or asked for before it started)`);
    return v;
  };
  const suite: PageSuite = {
    get dir() {
      return made('folder', dir);
    },
    get modelDir() {
      return made('model', modelDir);
    },
    get server() {
      return made('server', server);
    },
    get browser() {
      return made('browser', browser);
    },
    async open({ gate, ...contextOptions } = {}, at = '') {
      const opened = await openPage(suite.browser, contextOptions);
      await gate?.install(opened.page);
      await ready(opened.page, `${suite.server.url}${at}`);
      return opened;
    },
    async serve(sub, model, rebuild = false, serverOptions = {}) {
      const at = path.join(suite.dir, sub);
      fs.mkdirSync(at, { recursive: true });
      const started = await startPageServer(at, model, rebuild, serverOptions);
      servers.push(started);
      return started;
    },
  };
  before(async () => {
    if (skip) return;
    dir = tempDir(name);
    const model = await (options.model ?? ((d) => makeTinyModel(path.join(d, 'model'), { inputSize: 64 })))(dir);
    await options.prepare?.(model, dir);
    modelDir = model;
    if (options.server !== false) server = await startPageServer(dir, model, options.rebuild, options.server);
    browser = await launchChromium();
    await options.started?.(suite);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    for (const s of servers) await s.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return suite;
}

/** WCAG 2.0 and 2.1 A/AA problems that axe-core rates serious or critical on the page as it stands. */
export async function axeProblems(page: Page): Promise<string[]> {
  // page.evaluate runs through DevTools, not as a page script, so the server's CSP does not block axe.
  await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  return page.evaluate(async () => {
    type Result = { violations: { id: string; impact: string; help: string; nodes: unknown[] }[] };
    const axe = (window as unknown as { axe: { run(c: Document, o: object): Promise<Result> } }).axe;
    const r = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
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
