// Batch prediction behind `cxr predict PATH…`: files and folders to one output row per file, in the
// order the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error, and the batch goes on. CSV or JSON rows are written as they finish.
import { verdictHeadline } from './verdict';
import { csvLine } from '../report/csv';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readImageFile, sniffFormat } from '../data/decode';
import { startProgress } from '../data/progress';
import { InputError } from './errors';
import { type OodPolicy, type PredictOptions, type Prediction, Predictor } from './predictor';

export interface BatchRow {
  file: string;
  probability: number | null;
  logit: number | null;
  label: Prediction['label'] | null;
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
  /** The files to predict, already collected (collectInputs); default: expandPaths(paths, recursive). */
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
}

export interface BatchResult {
  rows: BatchRow[];
  processed: number;
  failed: number;
}

/** A file to predict, or a named path that does not exist (reported as an error row, in place). */
export interface BatchJob {
  file: string;
  missing: boolean;
}

/** What collectInputs found: the jobs, and what a user should hear about the folders named. */
export interface CollectedInputs {
  jobs: BatchJob[];
  /** Files inside named folders that are not JPEG, PNG or DICOM (by their leading bytes): not predicted. */
  skipped: string[];
  /** Named folders holding no image at all (with -r: in the whole tree). */
  emptyFolders: string[];
  /** Named folders, without -r, that have images in sub-folders left unread. */
  foldersWithImagesBelow: string[];
}

/** A file whose leading bytes say JPEG, PNG or DICOM (unreadable files count as images: their row says why). */
function looksLikeImage(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(132);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    const kind = sniffFormat(head.subarray(0, n));
    return kind === 'jpeg' || kind === 'png' || kind === 'dicom';
  } catch {
    return true;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function sortedEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether any sub-folder of `dir`, at any depth, holds an image (stops at the first). */
function imagesBelow(dir: string): boolean {
  for (const e of sortedEntries(dir)) {
    const p = path.join(dir, e.name);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st?.isDirectory()) continue;
    if (
      sortedEntries(p).some(
        (f) =>
          fs.statSync(path.join(p, f.name), { throwIfNoEntry: false })?.isFile() &&
          looksLikeImage(path.join(p, f.name)),
      )
    )
      return true;
    if (imagesBelow(p)) return true;
  }
  return false;
}

/**
 * The files named by `paths`, in order: files as given (whatever they hold: their row says what is
 * wrong), folders expanded (sorted; hidden entries skipped) to the files that look like images; the
 * others found in folders are counted as skipped, not failed: a folder of films often holds notes too.
 */
export function collectInputs(paths: readonly string[], recursive: boolean): CollectedInputs {
  const found: CollectedInputs = { jobs: [], skipped: [], emptyFolders: [], foldersWithImagesBelow: [] };
  const walk = (dir: string) => {
    for (const e of sortedEntries(dir)) {
      const p = path.join(dir, e.name);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (st?.isFile()) {
        if (looksLikeImage(p)) found.jobs.push({ file: p, missing: false });
        else found.skipped.push(p);
      } else if (st?.isDirectory() && recursive) walk(p);
    }
  };
  for (const p of paths) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) found.jobs.push({ file: p, missing: true });
    else if (st.isDirectory()) {
      const before = found.jobs.length;
      walk(p);
      if (found.jobs.length === before) found.emptyFolders.push(p);
      if (!recursive && imagesBelow(p)) found.foldersWithImagesBelow.push(p);
    } else found.jobs.push({ file: p, missing: false });
  }
  return found;
}

/** The files named by `paths` (see collectInputs). */
export function expandPaths(paths: readonly string[], recursive: boolean): BatchJob[] {
  return collectInputs(paths, recursive).jobs;
}

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
  ];
  // Every cell as text (numbers are pre-formatted): file names and messages are escaped alike.
  return csvLine(cells);
}

/** A file's prediction, or why the file gives none (unreadable, not a usable image). */
export type FilePrediction =
  | { ok: true; prediction: Prediction; bytes: Buffer; latencyMs: number }
  | { ok: false; error: string };

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
    return { ok: false, error: (InputError.from(e) as Error).message };
  }
  try {
    const started = performance.now();
    const prediction = await predictor.predict(bytes, opts);
    return { ok: true, prediction, bytes, latencyMs: performance.now() - started };
  } catch (e) {
    if (e instanceof InputError) return { ok: false, error: e.message };
    throw e;
  }
}

/** Runs the batch, writing rows to `out` in input order as soon as each one and its predecessors are done. */
export async function runBatch(o: BatchOptions): Promise<BatchResult> {
  const out = o.out ?? process.stdout;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const format = o.format ?? 'csv';
  const predictor = await Predictor.load(o.modelDir, { oodPolicy: o.oodPolicy });
  try {
    const meta = predictor.model.meta;
    const opName = o.operatingPoint ?? meta.defaultOperatingPoint;
    if (!Object.hasOwn(meta.operatingPoints, opName)) {
      throw new Error(
        `unknown operating point '${opName}' (this model has: ${Object.keys(meta.operatingPoints).join(', ')})`,
      );
    }
    const threshold = meta.operatingPoints[opName].threshold;
    for (const n of predictor.notes) log(`note: ${n}`);
    if (o.heatmapDir) fs.mkdirSync(o.heatmapDir, { recursive: true });

    const jobs = o.jobs ?? expandPaths(o.paths, !!o.recursive);
    const errorRow = (file: string, error: string): BatchRow => ({
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
    });
    const rows: (BatchRow | undefined)[] = new Array(jobs.length);
    const heatmapNames = new Set<string>();
    const heatmapPath = (file: string) => {
      const base = path.basename(file).replace(/\.[^.]*$/, '') || 'image';
      let name = `${base}.heatmap.png`;
      for (let k = 2; heatmapNames.has(name); k++) name = `${base}-${k}.heatmap.png`;
      heatmapNames.add(name);
      return path.join(o.heatmapDir!, name);
    };

    const predictOne = async (file: string): Promise<BatchRow> => {
      const done = await predictFile(predictor, file, {
        operatingPoint: opName,
        heatmap: !!o.heatmapDir,
        patientAge: o.patientAge,
      });
      if (!done.ok) return errorRow(file, done.error);
      const r = done.prediction;
      await o.onPrediction?.(
        file,
        r,
        { name: meta.name, version: meta.version, sha256: predictor.model.sha256 },
        done.latencyMs,
      );
      let heatmap: string | null = null;
      if (r.heatmapPng) {
        heatmap = heatmapPath(file);
        fs.writeFileSync(heatmap, r.heatmapPng);
      }
      return {
        file,
        probability: r.probability,
        logit: r.logit,
        label: r.label,
        verdict: r.verdict.status,
        result: verdictHeadline(r.verdict.status, r.label),
        operatingPoint: r.operatingPoint,
        threshold: r.threshold,
        warnings: r.warnings,
        ood: r.ood,
        heatmap,
        error: null,
      };
    };

    // Rows go out in input order; a finished row waits for the ones before it.
    let written = 0;
    const flush = () => {
      while (written < rows.length && rows[written]) {
        const r = rows[written]!;
        if (format === 'csv') out.write(csvRow(r) + '\n');
        else out.write(`${written === 0 ? '' : ',\n'}  ${JSON.stringify(r)}`);
        written++;
      }
    };
    if (format === 'csv') out.write(CSV_COLUMNS.join(',') + '\n');
    else out.write('[\n');

    const bar = startProgress('predict', jobs.length, o.progress ?? process.stderr.isTTY === true);
    const concurrency = Math.max(1, o.concurrency ?? os.availableParallelism());
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const i = next++;
        const job = jobs[i];
        rows[i] = job.missing ? errorRow(job.file, `${job.file}: no such file or folder`) : await predictOne(job.file);
        bar.tick();
        flush();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
    } finally {
      bar.stop();
    }
    if (format === 'json') out.write(jobs.length ? '\n]\n' : ']\n');
    const done = rows as BatchRow[];
    const failed = done.filter((r) => r.error !== null).length;
    return { rows: done, processed: done.length - failed, failed };
  } finally {
    predictor.dispose();
  }
}
