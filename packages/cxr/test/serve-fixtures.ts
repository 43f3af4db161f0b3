// Shared by the serve/e2e/audit/bad-input tests: a tiny model with random weights (so no test
// depends on a trained model being present), the sample inputs, and the predictor under test.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cxrnet } from '../src/models/cxrnet';
import { saveModel, type WeightStorage } from '../src/models/io';
import { initEngine } from '../src/engine';
import { Predictor } from '../src/predict/predictor';
import { after, before } from 'node:test';
import { type AuditRecord, type AuditStore, openAuditStore } from '../src/serve/audit';
import type { ServePredictor } from '../src/serve/predictor_port';
import type { JobsPort } from '../src/serve/routes/jobs';
import type { TtaView } from '../src/models/tta_views';
import sharp from 'sharp';
import { testModelMeta } from './test-model-meta';

export const DATA = '/work/shared/data';
const SHARED = fs.existsSync(DATA) ? DATA : path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'data');
/** A full-resolution pediatric chest X-ray (JPEG), as a clinic would upload it. */
export const XRAY_JPEG = path.join(
  SHARED,
  'samples-fullres',
  'PNEUMONIA',
  firstJpeg(path.join(SHARED, 'samples-fullres', 'PNEUMONIA')),
);
export const XRAY_JPEG_NORMAL = path.join(
  SHARED,
  'samples-fullres',
  'NORMAL',
  firstJpeg(path.join(SHARED, 'samples-fullres', 'NORMAL')),
);
export const DICOM_DIR = path.join(SHARED, 'dicom-samples');
export const DICOM_FILE = path.join(DICOM_DIR, 'siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');

function firstJpeg(dir: string): string {
  try {
    return (
      fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.jpeg'))
        .sort()[0] ?? 'missing.jpeg'
    );
  } catch {
    return 'missing.jpeg';
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${prefix}-`));
}

/** A cxr model folder with random weights, small enough to run in milliseconds. */
export async function makeTinyModel(
  dir: string,
  opts: { inputSize?: number; tta?: TtaView[]; storage?: WeightStorage } = {},
): Promise<string> {
  await initEngine();
  const inputSize = opts.inputSize ?? 32;
  const model = cxrnet({ inputSize, widths: [4, 8, 8, 8], dropout: 0 });
  const meta = testModelMeta({
    name: 'tiny-test',
    inputSize,
    tta: opts.tta,
    recipe: {},
    data: {},
    validation: { auc: 0.5, note: 'random weights (test fixture)' },
  });
  await saveModel(model, dir, meta, opts.storage);
  model.dispose();
  return dir;
}

/** The real predictor (predict/predictor.ts) on a model folder. */
export async function loadPredictor(dir: string, oodPolicy: 'warn' | 'refuse' = 'warn'): Promise<ServePredictor> {
  await initEngine();
  return Predictor.load(dir, { oodPolicy });
}

/** What buildApp needs of a server under test: a tiny model's predictor and an SQLite audit log in `dir`. */
export interface ServerParts {
  dir: string;
  predictor: ServePredictor;
  audit: AuditStore;
}

/** What a file builds on its ServerParts (an app, rows in the log) and closes before they are let go. */
export interface ServerPartsHooks {
  /** Runs once the parts are made, in the same before(): a file's top-level before() hooks run concurrently. */
  ready?: (parts: ServerParts) => Promise<unknown> | unknown;
  /** Runs before the parts are let go, in the same after(): an app closes before the audit log it uses. */
  closing?: () => Promise<unknown> | unknown;
}

/**
 * The file's ServerParts, made before its tests (in a temporary folder named after `prefix`) and let go after
 * them; read its fields inside the tests, once they are set.
 */
export function serverParts(prefix: string, hooks: ServerPartsHooks = {}): ServerParts {
  const parts = {} as ServerParts;
  before(async () => {
    parts.dir = tempDir(prefix);
    parts.predictor = await loadPredictor(await makeTinyModel(path.join(parts.dir, 'model')));
    parts.audit = await openAuditStore(path.join(parts.dir, 'audit.db'));
    await hooks.ready?.(parts);
  });
  after(async () => {
    try {
      await hooks.closing?.();
    } finally {
      await parts.audit?.close();
      parts.predictor?.dispose();
      if (parts.dir) fs.rmSync(parts.dir, { recursive: true, force: true });
    }
  });
  return parts;
}

/** A job queue for a server under test that queues nothing; `over` gives the calls a test watches or delays. */
export function idleJobs(over: Partial<JobsPort> = {}): JobsPort {
  return {
    canonicalId: (id) => id,
    submitUpload: async () => ({ id: null, status: 'skipped' }),
    submitOrthanc: async () => ({ id: null, status: 'skipped' }),
    submitOrthancAll: async () => [],
    status: async () => null,
    depth: async () => ({ waiting: 0, active: 0, failed: 0 }),
    ...over,
  };
}

/** A radiograph-like gradient PNG: decodes and predicts like an upload, without needing the data set. */
export function gradientFilm(): Promise<Buffer> {
  const px = Buffer.alloc(256 * 200);
  for (let i = 0; i < px.length; i++) px[i] = ((i % 256) + Math.floor(i / 256)) & 0xff;
  return sharp(px, { raw: { width: 256, height: 200, channels: 1 } })
    .png()
    .toBuffer();
}

/** A multipart/form-data body with one file part. */
export function multipartBody(
  field: string,
  filename: string,
  content: Buffer,
  contentType = 'application/octet-stream',
): { body: Buffer; headers: Record<string, string> } {
  const boundary = `----cxrtest${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
      `Content-Type: ${contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    body: Buffer.concat([head, content, tail]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

/** A multipart body of films, each in a field named "image" (POST /jobs takes several). */
export function multipartFilms(...files: [string, Buffer][]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----cxrfilms${Math.random().toString(16).slice(2)}`;
  const parts = files.map(([name, bytes]) =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${name}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      bytes,
      Buffer.from('\r\n'),
    ]),
  );
  return {
    payload: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

/**
 * A queue that takes every film offered and notes its name in `submitted` (Orthanc ids it skips): for the tests of
 * what a route refuses before it offers any film.
 */
export function recordingJobs(): { jobs: JobsPort; submitted: string[] } {
  const submitted: string[] = [];
  const jobs = idleJobs({
    submitUpload: async (_bytes, name) => {
      submitted.push(name);
      return { id: `job-${submitted.length}`, status: 'queued' };
    },
    submitOrthancAll: async (ids) => ids.map(() => ({ id: null, status: 'skipped' as const })),
  });
  return { jobs, submitted };
}

export const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

/** `cxr ARGS` as a child process, to its end: its exit code and all it wrote (a test that need not block). */
export function runCli(
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cwd?: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], opts);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

export interface ChildServer {
  url: string;
  proc: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  log(): string;
  /** Sends `signal` and resolves with the exit code (null when killed by the signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * This process's environment without the API token variables, then `env`: a server with no tokens unless
 * a test gives them (an empty variable is refused, not read as "none").
 */
export function envWithoutTokens(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { CXR_API_TOKEN: _one, CXR_API_TOKENS: _many, ...rest } = process.env;
  return { ...rest, ...env };
}

/** `cxr serve` as a child process on a free port; resolves once it listens. */
export function spawnServer(args: string[], env: Record<string, string> = {}): Promise<ChildServer> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--quiet', ...args], {
    env: envWithoutTokens(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start:\n${err}`));
    }, 180_000);
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      // The start-up line is JSON (src/log.ts): the URL ends at the closing quote.
      const m = /listening on (http:\/\/[^\s"]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          proc,
          log: () => err,
          stop: (signal = 'SIGTERM') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${err}`));
    });
  });
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * POSTs `body` over real HTTP, chunked (no Content-Length) unless `contentLength` is set, in
 * `chunk`-byte writes that respect backpressure. The server may answer before the body is sent
 * (413): the answer is what counts, a reset of the unsent rest is expected.
 */
export function httpPost(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  opts: { chunk?: number; contentLength?: boolean; splitAt?: number[] } = {},
): Promise<HttpAnswer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = require('node:http') as typeof import('node:http');
  const chunk = opts.chunk ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          ...(opts.contentLength ? { 'content-length': String(body.length) } : { 'transfer-encoding': 'chunked' }),
        },
      },
      (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => {
          // An answer before the whole body was sent: drop the connection rather than leave a half-sent request open.
          if (!req.writableFinished) req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    (async () => {
      // Write boundaries: the given split points first (each write is one HTTP chunk), then every `chunk` bytes.
      const cuts = [...(opts.splitAt ?? [])];
      for (let i = cuts.at(-1) ?? 0; i < body.length; i += chunk) cuts.push(i);
      let from = 0;
      for (const to of [...cuts.filter((c) => c > 0 && c < body.length), body.length]) {
        if (answered || req.destroyed) break;
        if (!req.write(body.subarray(from, to))) await new Promise((r) => req.once('drain', r));
        from = to;
      }
      if (!req.destroyed) req.end();
    })().catch(() => {
      /* the server closed early: its answer is the result */
    });
  });
}

/**
 * An audit-log row for tests that fill a log directly: id `prefix` + `n` (a valid UUID), a confident
 * PNEUMONIA answer at 0.5 unless `over` says otherwise.
 */
export function auditRecord(
  n: number,
  over: Partial<AuditRecord> = {},
  prefix = '0b6f3c7e-0000-4000-8000-',
): AuditRecord {
  return {
    id: `${prefix}${String(n).padStart(12, '0')}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
    input: { sha256: 'ab'.repeat(32), kind: 'jpeg', bytes: 1000, width: 800, height: 600 },
    model: { name: 'm', version: '1', sha256: 'cd'.repeat(32) },
    probability: 0.9,
    logit: 2,
    threshold: 0.5,
    operatingPoint: 'balanced',
    label: 'PNEUMONIA',
    warnings: [],
    ood: null,
    hasHeatmap: false,
    hasThumbnail: false,
    timings: { decodeMs: 1, inferMs: 2, totalMs: 3 },
    latencyMs: 4,
    requestedBy: null,
    resultKey: null,
    ...over,
  };
}

/** auditRecord's fields for a NORMAL answer at 0.2, with no heat-map time: what the audit-log tests fill logs with. */
export const NORMAL_ANSWER: Partial<AuditRecord> = {
  probability: 0.2,
  logit: -1.4,
  label: 'NORMAL',
  timings: { decodeMs: 1, inferMs: 2, heatmapMs: 0, totalMs: 3 },
  latencyMs: 3,
};
