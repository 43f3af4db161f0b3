// Starts scripts/stack.sh in a temporary data folder for the PACS, audit and queue tests, and reads back
// its env file. A machine where Orthanc or Redis cannot be installed (no apt, not root) skips these tests with a
// reason; CI installs it (scripts/setup.sh --with-test-deps), so there they run.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnAsync } from './spawn-async';

export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const STACK_SH = path.join(REPO, 'scripts', 'stack.sh');

export interface Stack {
  dir: string;
  env: Record<string, string>;
  up: { code: number | null; stdout: string; stderr: string };
}

export function stackCmd(
  dir: string,
  cmd: string,
  services: string[] = [],
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(STACK_SH, [cmd, ...services], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, CXR_STACK_DIR: dir },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** stackCmd without blocking this process: for tests that run side by side and time their own answers. */
export async function stackCmdAsync(
  dir: string,
  cmd: string,
  services: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await spawnAsync(STACK_SH, [cmd, ...services], {
    timeout: 300_000,
    env: { ...process.env, CXR_STACK_DIR: dir },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const STACK_PACKAGES = ['orthanc', 'orthanc-dicomweb', 'redis-server'];

function stackInstalled(): boolean {
  // dpkg-query's own ${...} format, one line per package.
  const format = ['-f=$', '{Status}\n'].join('');
  const r = spawnSync('dpkg-query', ['-W', format, ...STACK_PACKAGES], { encoding: 'utf8' });
  return r.status === 0 && (r.stdout.match(/install ok installed/g) ?? []).length === STACK_PACKAGES.length;
}

function canInstall(): boolean {
  const root = process.getuid?.() === 0;
  const sudo = spawnSync('sudo', ['-n', 'true']).status === 0;
  const apt = spawnSync('apt-get', ['--version']).status === 0;
  return apt && (root || sudo);
}

/** Why the stack cannot run here, or null when it can (installed, or installable as root with apt). */
export function stackUnavailable(): string | null {
  if (stackInstalled() || canInstall()) return null;
  return (
    'Orthanc or Redis is not installed and cannot be installed here (needs apt-get as root): ' +
    'run scripts/setup.sh --with-test-deps'
  );
}

function postgresInstalled(): boolean {
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && fs.existsSync(path.join(fromConfig.stdout.trim(), 'initdb'))) return true;
  const lib = '/usr/lib/postgresql';
  return fs.existsSync(lib) && fs.readdirSync(lib).some((v) => fs.existsSync(path.join(lib, v, 'bin', 'initdb')));
}

/** The same for the PostgreSQL service of the stack. */
export function postgresUnavailable(): string | null {
  if (postgresInstalled() || canInstall()) return null;
  return (
    'PostgreSQL is not installed and cannot be installed here (needs apt-get as root): ' +
    'run scripts/setup.sh --with-test-deps'
  );
}

export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/**
 * `stack.sh up` (every service, or the ones named) in a fresh temporary data folder; throws with
 * the script's output when it fails.
 */
export function startStack(prefix: string, services: string[] = []): Stack {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${prefix}-`));
  const up = stackCmd(dir, 'up', services);
  if (up.code !== 0) {
    stackCmd(dir, 'kill');
    throw new Error(`stack.sh up failed (${up.code}):\n${up.stdout}\n${up.stderr}`);
  }
  return { dir, env: parseEnv(fs.readFileSync(path.join(dir, 'env'), 'utf8')), up };
}

/** startStack without blocking this process (stackCmdAsync). */
export async function startStackAsync(prefix: string, services: string[] = []): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${prefix}-`));
  const up = await stackCmdAsync(dir, 'up', services);
  if (up.code !== 0) {
    await stackCmdAsync(dir, 'kill');
    throw new Error(`stack.sh up failed (${up.code}):\n${up.stdout}\n${up.stderr}`);
  }
  return { dir, env: parseEnv(fs.readFileSync(path.join(dir, 'env'), 'utf8')), up };
}

/** stopStack without blocking this process. */
export async function stopStackAsync(stack: Stack | undefined): Promise<void> {
  if (!stack) return;
  await stackCmdAsync(stack.dir, 'kill');
  fs.rmSync(stack.dir, { recursive: true, force: true });
}

/** Stops the stack at once (`stack.sh kill`: its data folder is thrown away, so no clean shutdown). */
export function stopStack(stack: Stack | undefined): void {
  if (!stack) return;
  stackCmd(stack.dir, 'kill');
  fs.rmSync(stack.dir, { recursive: true, force: true });
}

/** GET/POST on Orthanc's REST API with the stack's credentials. */
/** Stores a DICOM file's bytes in the stack's Orthanc; its instance id. */
export async function storeInstance(stack: Stack, bytes: Buffer): Promise<string> {
  const up = await orthanc(stack, '/instances', { method: 'POST', body: new Uint8Array(bytes) });
  const text = await up.text();
  if (up.status !== 200) throw new Error(`Orthanc refused the film: ${up.status} ${text}`);
  return (JSON.parse(text) as { ID: string }).ID;
}

export async function orthanc(stack: Stack, route: string, init: RequestInit = {}): Promise<Response> {
  const auth = Buffer.from(`${stack.env.CXR_ORTHANC_USER}:${stack.env.CXR_ORTHANC_PASSWORD}`).toString('base64');
  return fetch(stack.env.CXR_ORTHANC_URL + route, {
    ...init,
    headers: { authorization: `Basic ${auth}`, ...(init.headers ?? {}) },
  });
}
