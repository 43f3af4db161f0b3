// The real browser of the page tests: Debian's Chromium driven by playwright-core, and a server in this
// process that serves the built page with a model. One place, so every page test runs the browser alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { silentLogger } from '../src/log';
import { type RunningServer, startServer } from '../src/serve/server';
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
 * builds the page first even when a build is there (a test of the page as the sources stand).
 */
export async function startPageServer(dir: string, modelDir: string, rebuild = false): Promise<RunningServer> {
  if (rebuild || !fs.existsSync(path.join(STATIC_DIR, 'app.js'))) await buildWeb();
  return startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(dir, 'audit.db'),
    webDir: STATIC_DIR,
    loadPredictor: () => loadPredictor(modelDir),
    log: silentLogger(),
  });
}
