// Orthanc → cxr → Orthanc: reads the change feed from a saved cursor, predicts every new chest
// radiograph, and stores its report (SR) and heat map (SC) back into the film's study.
//
// Failures are of three kinds. The PACS (unreachable, refusing, odd answers: OrthancError) or the
// audit log (what onPrediction throws) stops the run with the cursor at the last finished change,
// so the next run retries the film whose results were not stored; nothing is skipped. A film the
// model cannot read (corrupt, not a chest X-ray under --ood-policy refuse: an InputError, or a
// header the results cannot be filed from) is logged and passed over, so one bad film cannot block
// the queue. Anything else (a bug, a broken install, an operating point the model lacks) is no fault
// of the film: a ProcessingError stops the run before it, as an outage does, so that a broken build
// cannot mark a whole day's films as failed and move past them.
import { buildResults, readSource, type ResultModel, type SourceImage } from '../dicom_out';
import { InputError, REQUEST_OPTION_ERRORS } from '../predict/errors';
import type { Prediction, Predictor } from '../predict/predictor';
import { statusOf, type VerdictStatus } from '../predict/verdict';
import { OrthancClient, OrthancError } from './client';
import { classifyInstance } from './filter';
import { redactOrthanc } from './config';
import { readState, writeState } from './state';
import { storedResults } from './stored_results';

export interface SyncOptions {
  client: OrthancClient;
  /** Predicts each new instance here; not needed with handleInstance. */
  predictor?: Predictor;
  stateFile: string;
  /** Start from the beginning of the change feed instead of the saved cursor. */
  sinceStart?: boolean;
  operatingPoint?: string;
  /** Called with each film's prediction before its results are stored (the audit row: cxr orthanc sync). */
  onPrediction?: ProcessOptions['onPrediction'];
  /** Called before each new film is read and predicted; a throw stops the pass before it (ProcessOptions). */
  beforePredicting?: ProcessOptions['beforePredicting'];
  /**
   * Called once the cursor the pass starts from is in stateFile, before the first batch is read: from then on
   * a restart without sinceStart resumes where this pass got to (the CLI's later passes drop --since-start).
   */
  onStarted?: (cursor: number) => void;
  /** Changes read per request (one batch; the cursor is saved after each). */
  batchSize?: number;
  /** Checked between instances: true stops after the current one, cursor saved. */
  shouldStop?: () => boolean;
  log?: (line: string) => void;
  /**
   * What to do with each new instance; default: processInstance (predict and store here). The job
   * queue passes one that queues the film for `cxr worker` instead ('processed' = queued).
   */
  handleInstance?: (id: string) => Promise<InstanceOutcome>;
}

export interface SyncStats {
  /** NewInstance changes read. */
  instances: number;
  /** Chest films predicted and stored (or completed) in this run. */
  processed: number;
  /** Films whose results were already in the PACS. */
  alreadyDone: number;
  skipped: number;
  failed: number;
  /** Cursor at the end of the run. */
  cursor: number;
}

export type InstanceOutcome = 'processed' | 'already-done' | 'skipped' | 'failed';

/** SyncStats' field for each film's outcome. */
const COUNTED = {
  processed: 'processed',
  'already-done': 'alreadyDone',
  skipped: 'skipped',
  failed: 'failed',
} as const;

/** One film more in `stats`, under its outcome (a pass's totals, and `cxr orthanc sync`'s for its whole run). */
export function countFilm(stats: SyncStats, outcome: InstanceOutcome): void {
  stats.instances++;
  stats[COUNTED[outcome]]++;
}

/**
 * A film that could not be predicted or its results written for a reason that is not the film's (a bug,
 * a broken install, an operating point the model lacks): it is not counted as failed and passed over,
 * the sync stops before it (a polling sync retries it a few times, then exits: InternalFailures), and a
 * queue's worker retries its job as it does any unexpected error (queue/retry.ts).
 */
export class ProcessingError extends Error {
  constructor(
    readonly instanceId: string,
    readonly sopInstanceUid: string,
    what: string,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`instance ${instanceId} (${sopInstanceUid}): ${what} failed, and not because of the film: ${why}`, {
      cause,
    });
    this.name = 'ProcessingError';
  }
}

/** Passes in a row that a polling sync lets stop at the same film (ProcessingError) before it exits. */
export const INTERNAL_ATTEMPTS = 3;

/**
 * Counts the passes in a row that stopped at the same film for a fault not its own. After `limit` of them
 * the film is passed over (counted failed), so that one film whose results cannot be made does not hold
 * back every film after it; a second film given up before any other was processed means the fault is the
 * install's, not one film's, and the sync stops.
 */
export class InternalFailures {
  private instanceId: string | null = null;
  private readonly passOver = new Set<string>();
  private gaveUpInARow = 0;
  attempts = 0;

  constructor(readonly limit = INTERNAL_ATTEMPTS) {}

  /** Counts a pass stopped by `e`: try the film again, pass over it, or stop the sync. */
  retry(e: ProcessingError): 'again' | 'pass-over' | 'stop' {
    this.attempts = e.instanceId === this.instanceId ? this.attempts + 1 : 1;
    this.instanceId = e.instanceId;
    if (this.attempts < this.limit) return 'again';
    if (this.gaveUpInARow > 0) return 'stop';
    this.gaveUpInARow++;
    this.passOver.add(e.instanceId);
    return 'pass-over';
  }

  /**
   * Whether the film was given up: the next pass counts it failed instead of trying it, once (that pass
   * moves past it), so the same instance sent again later is tried again.
   */
  passedOver(instanceId: string): boolean {
    return this.passOver.delete(instanceId);
  }

  /** A film processed: the install works, so a later film given up is that film's trouble again. */
  worked(): void {
    this.gaveUpInARow = 0;
  }

  /** A pass that finished: the next failure starts counting again. */
  reset(): void {
    this.instanceId = null;
    this.attempts = 0;
  }
}

/** The film's own fault (it cannot be read, or is refused as no chest X-ray), not the request's or the system's. */
function filmsFault(e: unknown): boolean {
  return e instanceof InputError && !REQUEST_OPTION_ERRORS.has(e.code);
}

export interface ProcessOptions {
  operatingPoint?: string;
  log?: (line: string) => void;
  /**
   * Called with each new prediction before its results are stored (the queue's workers write the
   * audit row here, so a worker killed after it finds the row on retry); a throw stops the film
   * with nothing stored, and propagates.
   */
  onPrediction?: (p: Prediction, film: { sopInstanceUid: string; latencyMs: number }) => Promise<void>;
  /**
   * Called once a film is found to need predicting, before it is downloaded and predicted: a check that what
   * onPrediction needs answers (the sync pings its audit log), so that an outage stops the film before the
   * model runs rather than after, on every poll it lasts. A throw propagates, with nothing done.
   */
  beforePredicting?: () => Promise<void>;
  /**
   * Told of an instance skipped as one of cxr's own results, instead of a log line: a sync restarted from its
   * cursor meets one per result it stored, and counts them in its summary line (cli/orthanc.ts).
   */
  onOwnResult?: (id: string) => void;
  /** Told why a film is the film's own fault (the outcome 'failed'): a job's error says it to its client. */
  onFailed?: (reason: string) => void;
  /**
   * 'read' for a film a request named (a worker's Orthanc job: the sync and backfills skip lateral views before
   * queueing): it is predicted, its report saying why it cannot be assessed (classifyInstance).
   */
  lateral?: 'skip' | 'read';
}

/**
 * A result as the sync's and the workers' logs give it: the verdict, not the label, for a film the model
 * cannot assess (its label is no finding, as `cxr history` and the page show it), then the warnings.
 */
export function resultText(p: {
  label: string | null;
  probability: number;
  verdict?: { status: VerdictStatus };
  warnings: readonly string[];
}): string {
  const finding = statusOf(p) === 'cannot-assess' ? 'cannot assess' : p.label;
  return `${finding} p=${p.probability.toFixed(3)}${p.warnings.length ? ` [${p.warnings.join('; ')}]` : ''}`;
}

/**
 * Whether two Orthanc URLs name the same server. splitCredentials gives a URL that carried a login as new URL()
 * writes it (host in lower case, a default port dropped) and one without as it was written: the same Orthanc,
 * its login moved out of CXR_ORTHANC_URL, was refused its own state file (a restart read nothing until the operator
 * chose between --since-start, every film again, and a new state file, which starts at the feed's end).
 */
function sameOrthanc(a: string, b: string): boolean {
  const norm = (u: string) => (URL.canParse(u) ? new URL(u).href.replace(/\/+$/, '') : u);
  return a === b || norm(a) === norm(b);
}

/**
 * The cursor to start from: saved, or the feed's end for a first run (new films only), or 0. It is in the state
 * file before the first batch whatever the start: a run killed in its first batch leaves a cursor to resume from,
 * not a missing file that would make the restart a first run, which starts at the feed's end and would never read
 * the films the killed run had not finished.
 */
async function startCursor(o: SyncOptions): Promise<number> {
  const url = o.client.config.url;
  if (o.sinceStart) {
    // Left in a service unit, --since-start would throw away the progress of every run before this one: said.
    let before: ReturnType<typeof readState> = null;
    try {
      before = readState(o.stateFile);
    } catch {
      // A damaged file is replaced, as before; this run starts at 0 all the same.
    }
    if (before && sameOrthanc(before.url, url) && before.last > 0) {
      o.log?.(
        `--since-start: ${o.stateFile} had reached change ${before.last}; it is set back to 0 and every film is ` +
          'read again. Restart without --since-start to resume instead (do not leave it in a service unit)',
      );
    }
    writeState(o.stateFile, url, 0);
    o.log?.(
      `--since-start: reading the change feed from its beginning (change 0); the cursor is saved in ${o.stateFile} ` +
        'after each batch, so a restart without --since-start resumes where this run got to',
    );
    return 0;
  }
  const saved = readState(o.stateFile);
  if (saved && !sameOrthanc(saved.url, url)) {
    throw new Error(
      `state file ${o.stateFile} belongs to ${redactOrthanc(saved.url)}, not ${url}: ` +
        'use another --state file (or --since-start)',
    );
  }
  if (saved) return saved.last;
  const last = await o.client.lastChange();
  o.log?.(
    `no state file ${o.stateFile}, so this is a first run: starting at the end of the change feed (change ${last}); ` +
      'films already in the PACS are not read (--since-start reads them)',
  );
  writeState(o.stateFile, url, last);
  return last;
}

/**
 * Handles one new instance end to end: 'failed' only for the film's own faults. Throws OrthancError,
 * ProcessingError (not the film's fault), or what onPrediction throws.
 */
export async function processInstance(
  client: OrthancClient,
  predictor: Predictor,
  id: string,
  opts: ProcessOptions = {},
): Promise<InstanceOutcome> {
  const log = opts.log ?? (() => {});
  const tags = await client.instanceTags(id);
  const verdict = classifyInstance(tags, { lateral: opts.lateral });
  if (!verdict.accept) {
    if (verdict.ownResult && opts.onOwnResult) opts.onOwnResult(id);
    else log(`skip ${id}: ${verdict.reason}`);
    return 'skipped';
  }
  const model: ResultModel = {
    name: predictor.model.name,
    version: predictor.model.version,
    sha256: predictor.model.sha256,
  };
  const operatingPoint = opts.operatingPoint ?? predictor.model.meta.defaultOperatingPoint;
  const ref = {
    studyInstanceUid: String(tags.StudyInstanceUID).trim(),
    sopInstanceUid: String(tags.SOPInstanceUID).trim(),
  };
  const stored = await storedResults(client, ref, model, operatingPoint);
  if (stored.done) {
    log(`done already ${id} (${ref.sopInstanceUid})`);
    return 'already-done';
  }
  await opts.beforePredicting?.();
  const started = performance.now();
  const bytes = await client.instanceFile(id);
  const failed = (e: unknown): InstanceOutcome => {
    log(`failed ${id} (${ref.sopInstanceUid}): ${(e as Error).message}`);
    opts.onFailed?.((e as Error).message);
    return 'failed';
  };
  // The header the results are filed from is the film's: a malformed one is the film's fault.
  let source: SourceImage;
  try {
    source = readSource(bytes);
  } catch (e) {
    return failed(e);
  }
  let prediction: Prediction;
  try {
    prediction = await predictor.predict(bytes, { heatmap: true, operatingPoint });
  } catch (e) {
    if (filmsFault(e)) return failed(e);
    throw new ProcessingError(id, ref.sopInstanceUid, 'predicting it', e);
  }
  let results: Awaited<ReturnType<typeof buildResults>>;
  try {
    results = await buildResults({ source, prediction, model });
  } catch (e) {
    throw new ProcessingError(id, ref.sopInstanceUid, 'writing its results', e);
  }
  await opts.onPrediction?.(prediction, {
    sopInstanceUid: ref.sopInstanceUid,
    latencyMs: performance.now() - started,
  });
  // The heat map first: the report refers to it.
  const toStore = [];
  if (results.sc && stored.sc.length === 0) toStore.push(results.sc.bytes);
  if (stored.sr.length === 0) toStore.push(results.sr.bytes);
  await client.stow(toStore);
  // Said once all is kept: an audit row or a STOW that failed stops the film, which is done again later.
  log(`predicted ${id} (${ref.sopInstanceUid}) and stored its results: ${resultText(prediction)}`);
  return 'processed';
}

/** One pass over the change feed, from the cursor to its end (or until shouldStop). */
export async function syncOnce(o: SyncOptions): Promise<SyncStats> {
  const log = o.log ?? (() => {});
  const url = o.client.config.url;
  const limit = o.batchSize ?? 100;
  const predictor = o.predictor;
  const handle =
    o.handleInstance ??
    (predictor
      ? (id: string) =>
          processInstance(o.client, predictor, id, {
            operatingPoint: o.operatingPoint,
            log,
            onPrediction: o.onPrediction,
            beforePredicting: o.beforePredicting,
          })
      : null);
  if (!handle) throw new Error('syncOnce: needs a predictor or handleInstance');
  let cursor = await startCursor(o);
  o.onStarted?.(cursor);
  const stats: SyncStats = { instances: 0, processed: 0, alreadyDone: 0, skipped: 0, failed: 0, cursor };
  try {
    for (;;) {
      const page = await o.client.changes(cursor, limit);
      if (page.Changes.length === 0 && page.Last < cursor) {
        // Orthanc's numbering started again (its database reset, or restored from a backup): waiting for
        // change `cursor` would read nothing, silently, for ever. Films already done are found done.
        log(
          `warning: the saved position (change ${cursor} in ${o.stateFile}) is past the end of the change ` +
            `feed of ${url}, whose last change is ${page.Last}: its database was reset or restored. ` +
            'Reading the feed again from its beginning; films whose results are in the PACS are not predicted again',
        );
        cursor = 0;
        writeState(o.stateFile, url, cursor);
        stats.cursor = cursor;
        continue;
      }
      for (const change of page.Changes) {
        if (o.shouldStop?.()) return stats;
        if (change.ChangeType === 'NewInstance') {
          countFilm(stats, await handle(change.ID));
        }
        cursor = change.Seq;
      }
      // Changes of other kinds after the last one listed still move the cursor.
      if (!o.shouldStop?.()) cursor = Math.max(cursor, page.Last);
      writeState(o.stateFile, url, cursor);
      stats.cursor = cursor;
      if (page.Done || page.Changes.length === 0) return stats;
    }
  } finally {
    // Also on a stop or an Orthanc failure: everything before `cursor` is finished.
    writeState(o.stateFile, url, cursor);
    stats.cursor = cursor;
  }
}

export { OrthancError };
