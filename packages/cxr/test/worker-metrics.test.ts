// `cxr worker --metrics-port` as an operations team scrapes it, on the stack's Redis: a worker on a host of its
// own had no /metrics, so its throughput, refused films and the queue's depth were seen only in its log. A real
// worker processes one good and one corrupt film; its scrape counts one done and one refused, times both, reads
// the queue's depth by state at scrape time and passes `promtool check metrics` (skipped, with the reason, where
// promtool is absent: apt-get install prometheus). SIGTERM lets go of the port. Also pinned without a worker:
// how a failure is counted (retried, refused, failed for good) and that every _total family is a counter.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { startModelStack, stopQueueStack } from './queue-stack';
import { CLI, loadPredictor, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';
import { metricValue, parseMetrics, samplesOf } from './prometheus-text';
import type { Predictor } from '../src/predict/predictor';
import {
  enqueueFile,
  filmRefused,
  type JobEnd,
  type JobObserver,
  type JobQueue,
  type JobSpec,
  openQueue,
  queueApi,
  type ResultStore,
  startWorker,
  UploadStore,
  WorkerMetrics,
} from '../src/queue';
import { modelIdentity } from '../src/models/io';
import { openAuditStore } from '../src/serve/audit';

const skip = stackUnavailable() ?? (fs.existsSync(XRAY_JPEG) ? false : `no sample film (${XRAY_JPEG})`);
const promtoolMissing = spawnSync('promtool', ['--version']).error !== undefined;

let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let queue: JobQueue | undefined;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('worker-metrics', ['redis']));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopQueueStack({ queue, stack, dir });
});

/** The job of a film for the model `sha256`: balanced, no heat map, asked for by no one. */
const filmSpec = (sha256: string): JobSpec => ({
  modelSha256: sha256,
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  priority: 'normal',
});

/** Retries from 0.1 s apart (0.2 s at most), given up after 0.25 s: a job's attempts all end within the test. */
const FAST_RETRY = { firstDelayMs: 100, maxDelayMs: 200, retryForMs: 250 };

/** The tiny model's predictor and a queue of its own, emptied: the first test's jobs (the same film, done) cleared. */
async function emptiedQueue(): Promise<{ predictor: Predictor; own: JobQueue }> {
  const predictor = (await loadPredictor(modelDir)) as Predictor;
  const own = openQueue(stack!.env.CXR_REDIS_URL, predictor.model.sha256);
  await own.obliterate({ force: true });
  return { predictor, own };
}

async function until<T>(get: () => Promise<T | null>, ms: number, what: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out:\n${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function promtool(text: string): { status: number | null; findings: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, findings: `${r.stdout}${r.stderr}`.trim() };
}

test('cxr worker --metrics-port: jobs by outcome, their durations and the queue depth, promtool-clean', {
  skip,
  timeout: 180_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--concurrency', '1', '--db', path.join(dir, 'audit.db')].concat([
      '--metrics-port',
      '0',
      '--close-timeout',
      '10000',
    ]),
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const url = await until(
    async () => /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(log)?.[1] ?? null,
    60_000,
    () => log,
  );
  await until(
    async () => (/consuming/.test(log) ? true : null),
    30_000,
    () => log,
  );

  // A good film, and one that opens as a JPEG (the producer's check) but whose data is cut off.
  const bad = path.join(dir, 'cut.jpeg');
  fs.writeFileSync(bad, fs.readFileSync(XRAY_JPEG).subarray(0, 600));
  const meta = modelIdentity(modelDir);
  queue = openQueue(stack!.env.CXR_REDIS_URL, meta.sha256);
  const spec = filmSpec(meta.sha256);
  assert.equal(await enqueueFile(queue, spec, XRAY_JPEG), 'queued');
  assert.equal(await enqueueFile(queue, spec, bad), 'queued');

  const scrape = async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  const text = await until(
    async () => {
      const t = await scrape();
      const m = parseMetrics(t);
      const settled =
        metricValue(m, 'cxr_worker_jobs_total', { outcome: 'done' }) === 1 &&
        metricValue(m, 'cxr_worker_jobs_total', { outcome: 'refused' }) === 1 &&
        metricValue(m, 'cxr_worker_queue_jobs', { state: 'failed' }) === 1;
      return settled ? t : null;
    },
    90_000,
    () => log,
  );
  const m = parseMetrics(text);
  assert.equal(metricValue(m, 'cxr_worker_jobs_total', { outcome: 'done', code: 'predicted' }), 1);
  const refused = samplesOf(m, 'cxr_worker_jobs_total', { outcome: 'refused' }).filter((s) => s.value > 0);
  assert.equal(refused.length, 1);
  assert.match(refused[0].labels.code, /^(TRUNCATED|CORRUPT)$/, 'refused under its input error code');
  assert.equal(metricValue(m, 'cxr_worker_jobs_total', { outcome: 'failed' }), 0);
  assert.equal(samplesOf(m, 'cxr_worker_jobs_total', { outcome: 'failed', code: 'OUTAGE' }).length, 1, 'at 0');
  assert.equal(metricValue(m, 'cxr_worker_retries_total'), 0);
  // Each attempt timed, under how it ended.
  assert.equal(metricValue(m, 'cxr_worker_job_duration_seconds_count', { outcome: 'done' }), 1);
  assert.equal(metricValue(m, 'cxr_worker_job_duration_seconds_count', { outcome: 'refused' }), 1);
  assert.ok(metricValue(m, 'cxr_worker_job_duration_seconds_sum', { outcome: 'done' }) > 0);
  // The queue read from Redis when scraped: nothing left to run, the refused film kept as failed.
  for (const state of ['waiting', 'active', 'delayed']) {
    assert.equal(samplesOf(m, 'cxr_worker_queue_jobs', { state }).length, 1, state);
    assert.equal(metricValue(m, 'cxr_worker_queue_jobs', { state }), 0, state);
  }
  assert.equal(metricValue(m, 'cxr_worker_queue_available'), 1);
  assert.equal(metricValue(m, 'cxr_worker_jobs_running'), 0);
  assert.equal(metricValue(m, 'cxr_worker_concurrency'), 1);
  assert.ok(m.has('process_cpu_seconds_total') && m.has('nodejs_active_handles'), 'default metrics');
  assert.ok(!text.includes(dir), 'no path in a label');

  // GET /jobs/:id's answer for the refused film: its code apart from its words, as the metrics count it; the
  // worker's log line has both.
  const [failed] = await queue.getFailed();
  const api = queueApi({ queue, model: { sha256: meta.sha256, defaultOperatingPoint: 'balanced' }, orthanc: null });
  const state = await api.status(failed.id!);
  assert.equal(state?.status, 'failed');
  assert.equal(state?.errorCode, refused[0].labels.code);
  assert.ok(state?.error && !state.error.startsWith('['), state?.error ?? '');
  assert.match(log, new RegExp(`job \\S+: failed: \\[${state.errorCode}\\] `));
  const good = (await queue.getCompleted())[0];
  assert.deepEqual([(await api.status(good.id!))?.error, (await api.status(good.id!))?.errorCode], [null, null]);

  // Only GET /metrics is answered.
  assert.equal((await fetch(url.replace(/\/metrics$/, '/jobs'))).status, 404);
  assert.equal((await fetch(url, { method: 'POST' })).status, 405);

  if (promtoolMissing) console.log('# promtool check skipped: promtool is not installed (apt-get install prometheus)');
  else {
    const checked = promtool(text);
    assert.equal(checked.findings, '', `promtool check metrics:\n${checked.findings}`);
    assert.equal(checked.status, 0);
  }

  // Shutdown lets go of the port: a scrape afterwards finds nothing listening.
  child.kill('SIGTERM');
  // A port left open would hold the process (the event loop) after its jobs and connections closed.
  const stillRunning = new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000).unref());
  assert.equal(await Promise.race([exited, stillRunning]), 0, log);
  const after = await fetch(url).catch((e: unknown) => e);
  assert.ok(after instanceof Error, 'the metrics port still answers after the worker stopped');
});

test('an outage is counted as retried attempts, then as failed for good with OUTAGE, each attempt timed', {
  skip,
  timeout: 60_000,
}, async () => {
  const { predictor, own } = await emptiedQueue();
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const away: ResultStore = {
    location: 'postgres://cxr:*****@db:5432/cxr',
    findByResultKey: () => Promise.reject(refused()),
    insert: () => Promise.reject(refused()),
    insertOnce: () => Promise.reject(refused()),
  };
  const ends: { end: JobEnd; seconds: number | null }[] = [];
  let running = 0;
  const worker = await startWorker(
    { predictor, store: away, uploads: new UploadStore(own, 0), orthanc: null, storeImages: false, log: () => {} },
    {
      redisUrl: stack!.env.CXR_REDIS_URL,
      concurrency: 1,
      retry: FAST_RETRY,
      observer: { ended: (end, seconds) => ends.push({ end, seconds }), running: (d) => (running += d) },
    },
  );
  try {
    const spec = filmSpec(predictor.model.sha256);
    assert.equal(await enqueueFile(own, spec, XRAY_JPEG), 'queued');
    await until(
      async () => (ends.some((e) => e.end.outcome === 'failed') ? true : null),
      30_000,
      () => JSON.stringify(ends),
    );
    assert.deepEqual(
      ends.map((e) => e.end),
      [
        { outcome: 'retried', code: 'OUTAGE' },
        { outcome: 'retried', code: 'OUTAGE' },
        { outcome: 'failed', code: 'OUTAGE' },
      ],
    );
    assert.ok(ends.every((e) => typeof e.seconds === 'number' && e.seconds >= 0));
    assert.equal(running, 0);
  } finally {
    await worker.close();
    await own.close();
    predictor.dispose();
  }
});

test('an observer that throws fails no job: a finished job completes at its first attempt, and a line says so', {
  skip,
  timeout: 60_000,
}, async () => {
  const { predictor, own } = await emptiedQueue();
  const audit = await openAuditStore(path.join(dir, 'observer.db'));
  const warnings: string[] = [];
  // A metrics bug: the count of a job that has just finished throws.
  const broken: JobObserver = {
    ended: () => {
      throw new Error('observer broke');
    },
    running: () => {},
  };
  const worker = await startWorker(
    {
      predictor,
      store: audit,
      uploads: new UploadStore(own, 0),
      orthanc: null,
      storeImages: false,
      log: () => {},
      warn: (l) => warnings.push(l),
    },
    {
      redisUrl: stack!.env.CXR_REDIS_URL,
      concurrency: 1,
      retry: FAST_RETRY,
      observer: broken,
    },
  );
  try {
    const spec = filmSpec(predictor.model.sha256);
    assert.equal(await enqueueFile(own, spec, XRAY_JPEG), 'queued');
    // Done, or failed for good after its attempts (what a throwing count made of it before).
    const job = await until(
      async () => (await own.getJobs(['completed', 'failed']))[0] ?? null,
      30_000,
      () => warnings.join('\n'),
    );
    assert.equal(await job.getState(), 'completed', `${job.failedReason}\n${warnings.join('\n')}`);
    assert.equal(job.attemptsMade, 1);
    assert.equal((job.returnvalue as { outcome: string }).outcome, 'predicted');
    assert.ok(
      warnings.some((l) => /observer broke/.test(l)),
      warnings.join('\n'),
    );
  } finally {
    await worker.close();
    await own.close();
    await audit.close();
    predictor.dispose();
  }
});

test('a failure is counted by how it ends: retried, refused with its code, failed for good with why', async () => {
  const metrics = new WorkerMetrics({ defaultMetrics: false });
  metrics.ended({ outcome: 'retried', code: 'OUTAGE' }, 0.5);
  metrics.ended({ outcome: 'failed', code: 'OUTAGE' }, null);
  metrics.ended({ outcome: 'refused', code: 'NOT_A_CHEST_XRAY' }, 0.2);
  const m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_worker_retries_total', { reason: 'OUTAGE' }), 1);
  assert.equal(metricValue(m, 'cxr_worker_retries_total', { reason: 'OTHER' }), 0, 'present at 0');
  assert.equal(metricValue(m, 'cxr_worker_jobs_total', { outcome: 'failed', code: 'OUTAGE' }), 1);
  assert.equal(metricValue(m, 'cxr_worker_jobs_total', { outcome: 'refused', code: 'NOT_A_CHEST_XRAY' }), 1);
  // An attempt nobody timed (a job failed by another worker's stalled check) is counted, not observed.
  assert.equal(metricValue(m, 'cxr_worker_job_duration_seconds_count', { outcome: 'failed' }), 0);
  assert.equal(metricValue(m, 'cxr_worker_job_duration_seconds_count'), 2);
  // A refusal is still unrecoverable to BullMQ, which reads the error's name.
  const e = filmRefused('TRUNCATED', 'cut.jpeg: truncated');
  assert.ok(e instanceof UnrecoverableError);
  assert.equal(e.name, 'UnrecoverableError');
});

test("every worker family named _total is a counter (promtool's rule, checked without promtool)", async () => {
  const metrics = new WorkerMetrics({ concurrency: 2 });
  metrics.watchQueue(async () => ({ waiting: 1, active: 0, delayed: 0, failed: 0 }));
  const families = [...parseMetrics(await metrics.text()).values()];
  assert.ok(families.some((f) => f.name === 'cxr_worker_queue_jobs'));
  assert.deepEqual(
    families.filter((f) => f.name.endsWith('_total') && f.type !== 'counter').map((f) => `${f.name} (${f.type})`),
    [],
  );
});
