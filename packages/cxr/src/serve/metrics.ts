// What `cxr serve` exposes at /metrics, in Prometheus text format (prom-client). One registry per
// server, so that several apps in one process (the tests) keep their own counts. Labels are
// only ever drawn from small closed sets (labels, operating points, verdicts, error codes, route
// patterns): never an id, a file name, a token name or anything a client chooses freely, which
// would make the series count grow without bound and could carry patient data.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LATE } from '../deadline';
import { type InputErrorCode, REQUEST_OPTION_ERRORS } from '../predict/errors';
import type { PredictionResult } from '../predict/prediction_schema';
import { type DecodePoolStats, ENGINE_STATES, type EngineState } from './predictor_port';
import { queueProbe } from './queue_probe';

/** Seconds: a warm CPU inference takes tens of ms, a large DICOM decode seconds, the deadline is 30 s. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Input errors that are about the request, or an image that was read, not about decoding one. */
const NOT_DECODE_FAILURES = new Set<string>([...REQUEST_OPTION_ERRORS, 'NOT_A_CHEST_XRAY']);

/** A decode worker crashed or ran out of memory (serve/decode_pool.ts): counted as a decode failure. */
export const WORKER_FAILED = 'WORKER_FAILED';

/** How long a scrape waits for the job queue's depth: Redis answers in milliseconds when it is there. */
export const QUEUE_SCRAPE_WAIT_MS = 1_000;

export interface QueueDepth {
  waiting: number;
  active: number;
  /** Failed for good: a film that cannot be read, or an outage longer than the workers' retries. */
  failed: number;
}

export type DecodeFailureReason = InputErrorCode | typeof WORKER_FAILED;

/**
 * prom-client's default gauges named like counters: promtool check metrics fails a scrape for them
 * ("non-counter metrics should not have _total suffix", prometheus/client_js#283), and they add nothing:
 * each is the sum of its family by type (`sum(nodejs_active_handles)`), which stays.
 */
export const MISNAMED_DEFAULT_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** What the audit log's guard (audit_guard.ts) tells /metrics: the outage now, and failed uses by kind. */
export interface AuditWatch {
  readonly down: unknown;
  readonly failures: Readonly<Record<'read' | 'write' | 'health', number>>;
}

/**
 * The problem codes POST /predictions answers a failure on the server's side with (5xx): the labels of
 * cxr_prediction_errors_total, a closed set. OTHER: a 5xx under a code not listed here (none today).
 */
export const PREDICTION_ERROR_CODES = [
  'BUSY',
  'AUDIT_UNAVAILABLE',
  'ENGINE_RESTARTING',
  'ENGINE_UNAVAILABLE',
  'INTERNAL',
  'OTHER',
] as const;
export type PredictionErrorCode = (typeof PREDICTION_ERROR_CODES)[number];

/** cxr_predictions_total's label for an answer whose verdict is cannot-assess (its model label is no finding). */
export const CANNOT_ASSESS = 'cannot-assess';

/**
 * The exposition without its NaN samples. prom-client writes NaN as `Nan`, which is not the text
 * format's `NaN`, and a NaN is a number nobody has (the queue depth while Redis is away, the mean of
 * an event-loop histogram with no sample yet): no sample says that, as a gap, in any reader.
 * A sample line ends with its value (labels come before it, quoted), then an optional timestamp.
 */
export function withoutNaN(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.startsWith('#') || !/ nan(?: -?\d+)?$/i.test(line))
    .join('\n');
}

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly predictions: Counter<'label' | 'operating_point' | 'verdict'>;
  private readonly oodChecks: Counter;
  private readonly oodFlags: Counter<'action'>;
  private readonly decodeFailures: Counter<'reason'>;
  private readonly predictionErrors: Counter<'code'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private readonly stages: Histogram<'stage'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.predictions = new Counter({
      name: 'cxr_predictions_total',
      help:
        'Predictions answered, by label (the finding: NORMAL or PNEUMONIA; cannot-assess when the image ' +
        'could not be assessed, e.g. not a chest film, and the model label is no finding), operating point ' +
        'and verdict status (assessed, cannot-assess, outside-population)',
      labelNames: ['label', 'operating_point', 'verdict'],
      registers,
    });
    this.oodChecks = new Counter({
      name: 'cxr_ood_checks_total',
      help: 'Images that went through the out-of-distribution gate',
      registers,
    });
    this.oodFlags = new Counter({
      name: 'cxr_ood_flags_total',
      help: 'Images the out-of-distribution gate flagged: answered with a warning, or refused (--ood-policy refuse)',
      labelNames: ['action'],
      registers,
    });
    this.decodeFailures = new Counter({
      name: 'cxr_decode_failures_total',
      help: 'Uploads that could not be decoded, by reason (the API error code)',
      labelNames: ['reason'],
      registers,
    });
    this.predictionErrors = new Counter({
      name: 'cxr_prediction_errors_total',
      help:
        'Predictions that failed on the server side, by the problem code answered: BUSY, ' +
        'AUDIT_UNAVAILABLE, ENGINE_RESTARTING, ENGINE_UNAVAILABLE (503), INTERNAL (500), OTHER (another 5xx); ' +
        'client errors (4xx) are not counted',
      labelNames: ['code'],
      registers,
    });
    // Every code from the start at 0: rate() and increase() need a series before its first failure.
    for (const code of PREDICTION_ERROR_CODES) this.predictionErrors.inc({ code }, 0);
    this.httpRequests = new Counter({
      name: 'cxr_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'cxr_http_request_duration_seconds',
      help: 'Time from request to answer, by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.stages = new Histogram({
      name: 'cxr_prediction_duration_seconds',
      help:
        'Time spent per prediction: decode, inference, heatmap (when asked for), predict (the three ' +
        'together) and total (upload, queueing, prediction and audit write)',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    }
  }

  /**
   * A gauge read when Prometheus scrapes: one line to expose any number the server can compute, e.g.
   * `metrics.addGauge('cxr_site_films_today', 'Films read today', async () => countToday())` (a name already
   * registered, such as the queue's own cxr_queue_waiting, is refused).
   */
  addGauge(name: string, help: string, collect: () => number | Promise<number>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      // prom-client awaits an async collect, so a number held elsewhere (Redis) can be read at scrape time.
      async collect() {
        this.set(await collect());
      },
    });
  }

  /** A gauge with one label (e.g. worker state), read at scrape time from a record of values. */
  addLabelledGauge<L extends string>(
    name: string,
    help: string,
    label: L,
    collect: () => Record<string, number>,
  ): void {
    new Gauge<L>({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        for (const [value, n] of Object.entries(collect())) this.set({ [label]: value } as Record<L, string>, n);
      },
    });
  }

  /** The decode pool's workers by state, its queue, and how often a worker had to be replaced. */
  watchDecodePool(stats: () => DecodePoolStats): void {
    this.addLabelledGauge('cxr_decode_workers', 'Decode worker threads, by state', 'state', () => {
      const s = stats();
      return { busy: s.busy, idle: s.size - s.busy };
    });
    this.addGauge('cxr_decode_queue_length', 'Decodes waiting for a free worker', () => stats().queued);
    this.addCounterFrom(
      'cxr_decode_worker_restarts_total',
      'Decode workers replaced after a crash, an out-of-memory exit or a deadline',
      () => stats().restarts,
    );
  }

  /** A counter whose count is kept elsewhere (`read`): a count that only goes up, so setting it from there is safe. */
  private addCounterFrom(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /**
   * The audit log: cxr_audit_available (1 while it answers) and cxr_audit_failures_total by operation. The
   * gauge alone misses an outage shorter than the scrape interval; the count shows each failed use, e.g.
   * `increase(cxr_audit_failures_total{operation="write"}[5m]) > 0`: rows not written (a prediction computed
   * and then refused 503 AUDIT_UNAVAILABLE, as none is answered without its row; a job's row; a retention sweep).
   */
  watchAudit(audit: AuditWatch): void {
    this.addGauge(
      'cxr_audit_available',
      '1 while the audit log answers; 0 from a use that found it unreachable or unwritable until one succeeds',
      () => (audit.down ? 0 : 1),
    );
    new Counter<'operation'>({
      name: 'cxr_audit_failures_total',
      help:
        'Uses of the audit log that failed as unavailable (unreachable, unwritable, or no answer within the ' +
        "wait), by operation: write (a row refused, POST /predictions then answers 503; a job's row; a retention " +
        "sweep), read (the history, a prediction's images, the check before a prediction) or health (/health's " +
        'ping: it rises with how often probes come during an outage)',
      labelNames: ['operation'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const operation of ['read', 'write', 'health'] as const)
          this.inc({ operation }, audit.failures[operation]);
      },
    });
  }

  /**
   * The model's engine process (predictor_process.ts): 1 for its state now, 0 for the others (alert on ready 0),
   * and how often it ended and was replaced (a rise: a fault, a heap exhausted, a prediction past its deadline).
   */
  watchEngine(state: () => EngineState, restarts: () => number): void {
    this.addLabelledGauge(
      'cxr_engine_state',
      "The model's engine process: 1 for its state now (ready, restarting, unavailable)",
      'state',
      () => {
        const now = state();
        return Object.fromEntries(ENGINE_STATES.map((s) => [s, Number(now === s)]));
      },
    );
    this.addCounterFrom(
      'cxr_engine_restarts_total',
      "Times the model's engine process ended and was replaced",
      restarts,
    );
  }

  /**
   * The job queue's depth (cxr_queue_waiting, cxr_queue_active) and whether it answered within `waitMs`
   * (cxr_queue_available). Redis that is down or unreachable never answers, and a scrape must not wait
   * for it: past `waitMs` the depths are NaN, which text() leaves out (a gap in the graphs), and
   * cxr_queue_available is 0. One read serves every gauge of a scrape, and a read still pending is
   * reused rather than repeated (queue_probe.ts), so scrapes while Redis is away do not pile up commands.
   */
  watchQueue(depth: () => Promise<QueueDepth>, waitMs = QUEUE_SCRAPE_WAIT_MS): void {
    const probe = queueProbe(depth, waitMs);
    const read = async (): Promise<QueueDepth | null> => {
      const r = await probe();
      return r !== LATE && r.ok ? r.value : null;
    };
    const of = (k: keyof QueueDepth) => async () => (await read())?.[k] ?? Number.NaN;
    this.addGauge('cxr_queue_waiting', 'Jobs of this model waiting in the queue', of('waiting'));
    this.addGauge('cxr_queue_active', 'Jobs of this model running on workers', of('active'));
    // Alert on its rise: a job fails for good only for a film that cannot be read or an outage the
    // workers' retries did not outlast, and nobody re-queues it by itself.
    this.addGauge(
      'cxr_queue_failed',
      'Jobs of this model failed for good (kept 30 days): films that could not be read, or an outage longer ' +
        'than the retries',
      of('failed'),
    );
    this.addGauge(
      'cxr_queue_available',
      `1 when the job queue (Redis) answered this scrape within ${waitMs} ms, else 0`,
      async () => ((await read()) ? 1 : 0),
    );
  }

  /** An answered prediction: its label, operating point, verdict, OOD flag and stage timings. */
  prediction(result: PredictionResult, totalMs: number): void {
    this.predictions.inc({
      // The label of an image the model cannot read is no finding (the answer's is null): counted under NORMAL
      // or PNEUMONIA it would inflate the findings a dashboard sums by label (the history's label filter agrees).
      label: result.label ?? CANNOT_ASSESS,
      operating_point: result.operatingPoint,
      verdict: result.verdict.status,
    });
    if (result.ood) {
      this.oodChecks.inc();
      if (result.ood.outOfDistribution) this.oodFlags.inc({ action: 'warned' });
    }
    const t = result.timings;
    this.stages.observe({ stage: 'decode' }, t.decodeMs / 1000);
    this.stages.observe({ stage: 'inference' }, t.inferMs / 1000);
    if (t.heatmapMs !== undefined) this.stages.observe({ stage: 'heatmap' }, t.heatmapMs / 1000);
    this.stages.observe({ stage: 'predict' }, t.totalMs / 1000);
    this.stages.observe({ stage: 'total' }, totalMs / 1000);
  }

  /** A prediction that failed on its input: a decode failure, or an image the OOD gate refused. */
  inputFailure(code: string): void {
    if (code === 'NOT_A_CHEST_XRAY') {
      this.oodChecks.inc();
      this.oodFlags.inc({ action: 'refused' });
    } else if (!NOT_DECODE_FAILURES.has(code)) this.decodeFailures.inc({ reason: code });
  }

  /** A prediction that failed on the server's side, answered 5xx with `code` (routes/predictions.ts). */
  predictionError(code: PredictionErrorCode): void {
    this.predictionErrors.inc({ code });
  }

  /** An answered HTTP request; `route` is the matched pattern (never the raw URL), undefined when none matched. */
  httpRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const r = route ?? 'unmatched';
    this.httpRequests.inc({ method, route: r, status: String(status) });
    this.httpDuration.observe({ method, route: r }, seconds);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  async text(): Promise<string> {
    return withoutNaN(await this.registry.metrics());
  }
}
