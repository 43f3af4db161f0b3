// Orthanc → cxr → Orthanc: reads the change feed from a saved cursor, predicts every new chest
// radiograph, and stores its report (SR) and heat map (SC) back into the film's study.
//
// Failures are of two kinds. The PACS (unreachable, refusing, odd answers: OrthancError) or the
// audit log (what onPrediction throws) stops the run with the cursor at the last finished change,
// so the next run retries the film whose results were not stored; nothing is skipped. A film the
// model cannot read (corrupt, not a chest X-ray under --ood-policy refuse) is logged and passed
// over, so one bad film cannot block the queue.
import { buildResults, readSource, type ResultModel } from '../dicom_out';
import type { Prediction, Predictor } from '../predict/predictor';
import { statusOf, type VerdictStatus } from '../predict/verdict';
import { OrthancClient, OrthancError } from './client';
import { classifyInstance } from './filter';
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

export interface ProcessOptions {
  operatingPoint?: string;
  log?: (line: string) => void;
  /**
   * Called with each new prediction before its results are stored (the queue's workers write the
   * audit row here, so a worker killed after it finds the row on retry); a throw stops the film
   * with nothing stored, and propagates.
   */
  onPrediction?: (p: Prediction, film: { sopInstanceUid: string; latencyMs: number }) => Promise<void>;
}

/**
 * A result as the sync's and the workers' logs give it: the verdict, not the label, for a film the model
 * cannot assess (its label is no finding, as `cxr history` and the page show it), then the warnings.
 */
export function resultText(p: {
  label: string;
  probability: number;
  verdict?: { status: VerdictStatus };
  warnings: readonly string[];
}): string {
  const finding = statusOf(p) === 'cannot-assess' ? 'cannot assess' : p.label;
  return `${finding} p=${p.probability.toFixed(3)}${p.warnings.length ? ` [${p.warnings.join('; ')}]` : ''}`;
}

/** The cursor to start from: saved, or the feed's end for a first run (new films only), or 0. */
async function startCursor(o: SyncOptions): Promise<number> {
  const url = o.client.config.url;
  if (o.sinceStart) return 0;
  const saved = readState(o.stateFile);
  if (saved && saved.url !== url) {
    throw new Error(
      `state file ${o.stateFile} belongs to ${saved.url}, not ${url}: use another --state file (or --since-start)`,
    );
  }
  if (saved) return saved.last;
  const last = await o.client.lastChange();
  o.log?.(
    `first run: starting at the end of the change feed (change ${last}); ` +
      'films already in the PACS are not read (--since-start reads them)',
  );
  writeState(o.stateFile, url, last);
  return last;
}

/** Handles one new instance end to end. Throws OrthancError, or what onPrediction throws. */
export async function processInstance(
  client: OrthancClient,
  predictor: Predictor,
  id: string,
  opts: ProcessOptions = {},
): Promise<InstanceOutcome> {
  const log = opts.log ?? (() => {});
  const tags = await client.instanceTags(id);
  const verdict = classifyInstance(tags);
  if (!verdict.accept) {
    log(`skip ${id}: ${verdict.reason}`);
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
  const started = performance.now();
  const bytes = await client.instanceFile(id);
  let results: Awaited<ReturnType<typeof buildResults>>;
  let prediction: Prediction;
  try {
    prediction = await predictor.predict(bytes, { heatmap: true, operatingPoint });
    results = await buildResults({ source: readSource(bytes), prediction, model });
    log(`predicted ${id} (${ref.sopInstanceUid}): ${resultText(prediction)}`);
  } catch (e) {
    log(`failed ${id} (${ref.sopInstanceUid}): ${(e as Error).message}`);
    return 'failed';
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
          })
      : null);
  if (!handle) throw new Error('syncOnce: needs a predictor or handleInstance');
  let cursor = await startCursor(o);
  const stats: SyncStats = { instances: 0, processed: 0, alreadyDone: 0, skipped: 0, failed: 0, cursor };
  const count = {
    processed: 'processed',
    'already-done': 'alreadyDone',
    skipped: 'skipped',
    failed: 'failed',
  } as const;
  try {
    for (;;) {
      const page = await o.client.changes(cursor, limit);
      for (const change of page.Changes) {
        if (o.shouldStop?.()) return stats;
        if (change.ChangeType === 'NewInstance') {
          stats.instances++;
          stats[count[await handle(change.ID)]]++;
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
