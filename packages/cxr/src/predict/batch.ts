// Batch prediction behind `cxr predict PATH…`: files and folders to one output row per file, in the
// order the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error, and the batch goes on. CSV or JSON rows are written as they finish.
import { NBSP, resultHeadline } from './result_words';
import { csvLine, printable } from '../report/csv';
import { HeatmapWriter, heatmapNames } from './heatmap_files';
import * as os from 'node:os';
import { readImageFile } from '../data/decode';
import { type BatchJob, checkPaths, collectInputs, missingError } from './batch_inputs';
import { startProgress } from '../data/progress';
import { InputError } from './errors';
import { describe } from './image_bytes';
import { checkPatientAge, operatingPointOf } from './options';
import { type OodPolicy, type PredictOptions, type Prediction, Predictor } from './predictor';
import { makeDirs } from '../make_dirs';

export interface BatchRow {
  file: string;
  /** The model's calibrated score, kept for every answer (a cannot-assess one too, for research); null for an error. */
  probability: number | null;
  logit: number | null;
  /**
   * The prediction's label (null for a cannot-assess answer, whose model label is no finding, as everywhere:
   * predict/verdict.ts shownLabel), null for an error row: filtering on it never picks such a file.
   */
  label: Prediction['label'];
  /** assessed / cannot-assess / outside-population (null for an error row). */
  verdict: Prediction['verdict']['status'] | null;
  /** The headline a clinician reads, e.g. "No signs of pneumonia detected" or "Cannot assess this image". */
  result: string | null;
  operatingPoint: string;
  threshold: number;
  warnings: string[];
  ood: Prediction['ood'];
  heatmap: string | null;
  error: string | null;
  /**
   * The error's code, as the HTTP API gives it (InputError's: UNSUPPORTED_FORMAT, EMPTY, TRUNCATED, CORRUPT,
   * READ_FAILED for a file that cannot be read, ...); null for a prediction.
   */
  errorCode: string | null;
}

export interface BatchOptions {
  paths: string[];
  modelDir: string;
  recursive?: boolean;
  format?: 'csv' | 'json';
  heatmapDir?: string;
  operatingPoint?: string;
  /** The patient's age in years, for files whose header gives none (Predictor's `patientAge`). */
  patientAge?: number;
  oodPolicy?: OodPolicy;
  /** Files in flight at once; default: the number of cores (decodes overlap with inference). */
  concurrency?: number;
  progress?: boolean;
  /**
   * The files to predict, already collected (collectInputs); default: collectInputs(paths, recursive) as `cxr
   * predict` collects them (imageLike), so that a folder's empty `x.jpg` or HEIC gets its error row here too.
   */
  jobs?: BatchJob[];
  /** Called with each prediction as it is made (the CLI writes it to the audit log); a throw stops the batch. */
  onPrediction?: (
    file: string,
    prediction: Prediction,
    model: { name: string; version: string; sha256: string },
    latencyMs: number,
  ) => void | Promise<void>;
  out?: NodeJS.WritableStream;
  log?: (line: string) => void;
  /**
   * Stops the batch (the CLI's SIGINT, SIGTERM): no new file is started, the files in flight finish
   * (their audit rows and output rows included), and the output is closed as for a finished batch.
   */
  signal?: AbortSignal;
  /**
   * Stops the batch at once (the CLI's second signal): the output is closed there and then, after the rows
   * written (a closed JSON array; CSV ends at a row's end), and nothing more goes to it or to onPrediction.
   * The files in flight are dropped; the promise settles when they are done.
   */
  halt?: AbortSignal;
}

export interface BatchResult {
  /** One row per file done, in input order: every file unless interrupted, then the files before the stop. */
  rows: BatchRow[];
  processed: number;
  failed: number;
  /** The files named (rows.length of them are done). */
  total: number;
  /** Whether `signal` stopped the batch before the last file. */
  interrupted: boolean;
}

export { heatmapNames } from './heatmap_files';
export { type BatchJob, type CollectedInputs, collectInputs, expandPaths } from './batch_inputs';

/**
 * The CSV's columns, one row per file, the same fields as a JSON row: `result` the headline, `verdict` assessed /
 * cannot-assess / outside-population, `probability` the calibrated score (six decimals), `label` the finding
 * (empty for a cannot-assess answer or an error), `ood_score` the not-a-chest-X-ray gate's score, `warnings`
 * joined by '; ', `error` why a file has no prediction, `heatmap` the map's file name, `error_code` the error's
 * code (last, so that a reader of the columns before it by position reads them as before).
 */
const CSV_COLUMNS = [
  'file',
  'result',
  'verdict',
  'probability',
  'label',
  'operating_point',
  'threshold',
  'ood_score',
  'warnings',
  'error',
  'heatmap',
  'error_code',
];

function csvRow(r: BatchRow): string {
  const cells = [
    r.file,
    r.result ?? '',
    r.verdict ?? '',
    r.probability === null ? '' : r.probability.toFixed(6),
    r.label ?? '',
    r.operatingPoint,
    String(r.threshold),
    r.ood ? r.ood.score.toFixed(3) : '',
    r.warnings.join('; '),
    r.error ?? '',
    r.heatmap ?? '',
    r.errorCode ?? '',
  ];
  // Every cell as text (numbers are pre-formatted): file names and messages are escaped alike.
  return csvLine(cells);
}

/** A file's prediction, or why the file gives none (unreadable, not a usable image). */
export type FilePrediction =
  | { ok: true; prediction: Prediction; bytes: Buffer; latencyMs: number }
  | { ok: false; error: string; code: InputError['code'] };

/**
 * One file through the model, as `cxr predict` and the queue's workers do it: read (size-capped),
 * predict. A file that cannot be read or used is an answer ({ok: false}), not a throw; what is
 * thrown is a fault of the program or the engine.
 */
export async function predictFile(predictor: Predictor, file: string, opts: PredictOptions): Promise<FilePrediction> {
  let bytes: Buffer;
  try {
    bytes = await readImageFile(file);
  } catch (e) {
    // readImageFile throws DecodeErrors alone; anything else is still a file that could not be read.
    const err = InputError.from(e);
    if (err instanceof InputError) return { ok: false, error: err.message, code: err.code };
    return { ok: false, error: (err as Error).message, code: 'READ_FAILED' };
  }
  try {
    const started = performance.now();
    const prediction = await predictor.predict(bytes, opts);
    return { ok: true, prediction, bytes, latencyMs: performance.now() - started };
  } catch (e) {
    if (e instanceof InputError) return { ok: false, error: e.message, code: e.code };
    throw e;
  }
}

/**
 * Refuses, before any file is read, the options no file could be predicted with: one error, not an error row
 * per file. The patient's age gets the error Predictor.predict gives it (an InputError, BAD_PATIENT_AGE).
 */
function checkOptions(o: BatchOptions): void {
  if (o.jobs === undefined) checkPaths(o.paths, 'runBatch');
  if (o.format !== undefined && o.format !== 'csv' && o.format !== 'json')
    throw new TypeError(`runBatch: format must be 'csv' or 'json', got ${describe(o.format)}`);
  const n = o.concurrency;
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) {
    const got = typeof n === 'number' ? String(n) : describe(n);
    throw new RangeError(`runBatch: concurrency must be a whole number of files, 1 or more, got ${got}`);
  }
  checkPatientAge(o.patientAge);
}

/** Runs the batch, writing rows to `out` in input order as soon as each one and its predecessors are done. */
export async function runBatch(o: BatchOptions): Promise<BatchResult> {
  checkOptions(o);
  const out = o.out ?? process.stdout;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const format = o.format ?? 'csv';
  // CSV rows read on a terminal: a film's name is the file's, chosen by whoever wrote it, and its escape sequences
  // would move the cursor (over another film's row) there. Into a file or pipe it stays as it is (a script opens the
  // film by it); JSON escapes control characters itself.
  const toTerminal = (out as { isTTY?: boolean }).isTTY === true;
  // imageLike, as `cxr predict`: without it a folder's empty x.jpg or HEIC got no row and no count, lost unseen.
  const jobs = o.jobs ?? collectInputs(o.paths, !!o.recursive, { imageLike: true }).jobs;
  const halted = () => o.halt?.aborted === true;
  const rows: (BatchRow | undefined)[] = new Array(jobs.length);
  // The output is opened (its header) once the model is ready, and closed once: at the end, or when `halt`
  // fires, there and then: between two rows (each row is one write), so what was written stays whole.
  let opened = false;
  let closed = false;
  let written = 0;
  const open = () => {
    if (!opened) out.write(format === 'csv' ? CSV_COLUMNS.join(',') + '\n' : '[\n');
    opened = true;
  };
  const close = () => {
    if (closed) return;
    open();
    closed = true;
    if (format === 'json') out.write(written ? '\n]\n' : ']\n');
  };
  // Rows go out in input order; a finished row waits for the ones before it.
  const flush = () => {
    while (!closed && written < rows.length && rows[written]) {
      const r = rows[written]!;
      if (format === 'csv') out.write((toTerminal ? printable(csvRow(r)) : csvRow(r)) + '\n');
      else out.write(`${written === 0 ? '' : ',\n'}  ${JSON.stringify(r)}`);
      written++;
    }
  };
  const result = (): BatchResult => {
    // Every file started is done, so the rows done are the first `written` (all of them unless stopped).
    const done = rows.slice(0, written) as BatchRow[];
    const failed = done.filter((r) => r.error !== null).length;
    const interrupted = written < jobs.length;
    return { rows: done, processed: done.length - failed, failed, total: jobs.length, interrupted };
  };
  if (halted()) {
    close();
    return result();
  }
  o.halt?.addEventListener('abort', close, { once: true });
  let predictor: Predictor | undefined;
  try {
    predictor = await Predictor.load(o.modelDir, { oodPolicy: o.oodPolicy });
    const meta = predictor.model.meta;
    // The error Predictor.predict gives, once, before any file.
    const { name: opName, op } = operatingPointOf(meta, o.operatingPoint);
    const threshold = op.threshold;
    for (const n of predictor.notes) log(`note: ${n}`);
    if (o.heatmapDir) makeDirs(o.heatmapDir);

    const errorRow = (file: string, error: string, errorCode: string | null): BatchRow => ({
      file,
      probability: null,
      logit: null,
      label: null,
      verdict: null,
      result: null,
      operatingPoint: opName,
      threshold,
      warnings: [],
      ood: null,
      heatmap: null,
      error,
      errorCode,
    });
    const heatmapFiles = heatmapNames(jobs);
    const maps = o.heatmapDir ? new HeatmapWriter(o.heatmapDir) : null;
    const model = { name: meta.name, version: meta.version, sha256: predictor.model.sha256 };

    const predictOne = async (p: Predictor, file: string, i: number): Promise<BatchRow> => {
      const done = await predictFile(p, file, {
        operatingPoint: opName,
        heatmap: !!o.heatmapDir,
        patientAge: o.patientAge,
      });
      if (!done.ok) return errorRow(file, done.error, done.code);
      // Halted meanwhile: the row is never written, so neither its audit record nor its map.
      if (halted()) return errorRow(file, 'stopped', null);
      const r = done.prediction;
      await o.onPrediction?.(file, r, model, done.latencyMs);
      let heatmap: string | null = null;
      if (r.heatmapPng && maps) heatmap = maps.write(heatmapFiles[i], file, r.heatmapPng);
      return {
        file,
        probability: r.probability,
        logit: r.logit,
        label: r.label,
        verdict: r.verdict.status,
        // The card's headline (result_words.ts), with plain spaces: a CSV or JSON reader splits on no NBSP.
        result: resultHeadline({ ...r, status: r.verdict.status }).replaceAll(NBSP, ' '),
        operatingPoint: r.operatingPoint,
        threshold: r.threshold,
        warnings: r.warnings,
        ood: r.ood,
        heatmap,
        error: null,
        errorCode: null,
      };
    };

    open();
    const bar = startProgress('predict', jobs.length, o.progress ?? process.stderr.isTTY === true);
    const concurrency = o.concurrency ?? Math.max(1, os.availableParallelism());
    let next = 0;
    // A throw (onPrediction's, the engine's) stops the batch: no new file starts, and runBatch rejects only once
    // the files in flight are done. Promise.all rejected at the first throw while the other workers went on: their
    // files reached onPrediction (the CLI's audit log, closed by then) and the output after the rejection.
    let faulted = false;
    const worker = async (p: Predictor) => {
      while (next < jobs.length && !o.signal?.aborted && !halted() && !faulted) {
        const i = next++;
        const job = jobs[i];
        // The row names the file already: its error says what is wrong, as every other error row does.
        // READ_FAILED: what readImageFile says of the same path named (no such file, not a regular file).
        try {
          rows[i] = job.missing
            ? errorRow(job.file, missingError(job), 'READ_FAILED')
            : await predictOne(p, job.file, i);
        } catch (e) {
          faulted = true;
          throw e;
        }
        bar.tick();
        flush();
      }
    };
    // allSettled never rejects: the bar stops in any case.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(concurrency, jobs.length) }, () => worker(predictor!)),
    );
    bar.stop();
    const fault = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (fault) throw fault.reason;
    close();
    return result();
  } finally {
    o.halt?.removeEventListener('abort', close);
    predictor?.dispose();
  }
}
