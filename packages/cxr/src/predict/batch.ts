// Batch prediction behind `cxr predict PATH…`: files and folders to one output row per file, in the
// order the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error, and the batch goes on. CSV or JSON rows are written as they finish.
import { verdictHeadline } from './verdict';
import { csvLine } from '../report/csv';
import { HeatmapWriter, heatmapNames } from './heatmap_files';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readImageFile } from '../data/decode';
import { filmFormatOfFileSync } from '../data/dicom';
import { startProgress } from '../data/progress';
import { InputError } from './errors';
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
  /**
   * Stops the batch (the CLI's SIGINT, SIGTERM): no new file is started, the files in flight finish
   * (their audit rows and output rows included), and the output is closed as for a finished batch.
   */
  signal?: AbortSignal;
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

/** A file to predict, or a named path that does not exist (reported as an error row, in place). */
export interface BatchJob {
  file: string;
  missing: boolean;
  /** Its path inside the folder named ('/'-separated), or its base name: its heat map's name (heatmapNames). */
  name?: string;
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
  /** Folders and entries passed over (a link back to a folder already read, one that cannot be read), one line each. */
  notes: string[];
}

/** A file whose leading bytes say JPEG, PNG or DICOM (unreadable files count as images: their row says why). */
function looksLikeImage(file: string): boolean {
  try {
    // What the decoder reads, by the decoder's own test: a DICOM data set without its 128-byte preamble
    // and DICM prefix too, whatever its name. A .dcm that fails the test is still tried, so its row says why.
    return filmFormatOfFileSync(file) !== null || /\.dcm$/i.test(file);
  } catch {
    return true;
  }
}

function sortedEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));

/**
 * A folder walk that reads each real folder once: links are followed (a study folder may be a link), but
 * a link back up the tree was walked until ELOOP, aborting the batch. What cannot be read is noted and passed over.
 */
function folderWalk(notes: string[] | null) {
  const seen = new Set<string>();
  const skip = (line: string) => void notes?.push(line);
  return {
    /** The folder's entries; none when it was read already, or cannot be read. */
    entries(dir: string): fs.Dirent[] {
      try {
        const real = fs.realpathSync(dir);
        if (!seen.has(real)) {
          seen.add(real);
          return sortedEntries(dir);
        }
        skip(`${dir}: skipped, the same folder as ${real}, read already (a link loop or a second link)`);
      } catch (e) {
        skip(`${dir}: skipped, cannot read this folder (${why(e)})`);
      }
      return [];
    },
    /** The entry's stat (links followed); undefined for a broken link, or a loop of links (noted). */
    stat(p: string): fs.Stats | undefined {
      try {
        return fs.statSync(p, { throwIfNoEntry: false });
      } catch (e) {
        skip(`${p}: skipped (${why(e)})`);
        return undefined;
      }
    },
  };
}
type FolderWalk = ReturnType<typeof folderWalk>;

/** Whether any sub-folder of `dir`, at any depth, holds an image (stops at the first). */
function imagesBelow(dir: string, walk = folderWalk(null), top = true): boolean {
  const folders: string[] = [];
  for (const e of walk.entries(dir)) {
    const p = path.join(dir, e.name);
    const st = walk.stat(p);
    if (!top && st?.isFile() && looksLikeImage(p)) return true;
    if (st?.isDirectory()) folders.push(p);
  }
  return folders.some((p) => imagesBelow(p, walk, false));
}

/**
 * The files named by `paths`, in order: files as given (whatever they hold: their row says what is
 * wrong), folders expanded (sorted; hidden entries skipped) to the files that look like images; the
 * others found in folders are counted as skipped, not failed: a folder of films often holds notes too.
 */
export function collectInputs(paths: readonly string[], recursive: boolean): CollectedInputs {
  const found: CollectedInputs = { jobs: [], skipped: [], emptyFolders: [], foldersWithImagesBelow: [], notes: [] };
  const walkFolder = (dir: string, rel: string, walk: FolderWalk) => {
    for (const e of walk.entries(dir)) {
      const p = path.join(dir, e.name);
      const name = rel ? `${rel}/${e.name}` : e.name;
      const st = walk.stat(p);
      if (st?.isFile()) {
        if (looksLikeImage(p)) found.jobs.push({ file: p, missing: false, name });
        else found.skipped.push(p);
      } else if (st?.isDirectory() && recursive) walkFolder(p, name, walk);
    }
  };
  for (const p of paths) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p, { throwIfNoEntry: false });
    } catch {
      // There but unusable (a loop of links): tried as a file, so its row says what is wrong.
      found.jobs.push({ file: p, missing: false, name: path.basename(p) });
      continue;
    }
    if (!st) found.jobs.push({ file: p, missing: true });
    else if (st.isDirectory()) {
      const before = found.jobs.length;
      // One walk per folder named: a folder named twice is read twice, as a file named twice is.
      walkFolder(p, '', folderWalk(found.notes));
      if (found.jobs.length === before) found.emptyFolders.push(p);
      if (!recursive && imagesBelow(p)) found.foldersWithImagesBelow.push(p);
    } else found.jobs.push({ file: p, missing: false, name: path.basename(p) });
  }
  return found;
}

/** The files named by `paths` (see collectInputs). */
export function expandPaths(paths: readonly string[], recursive: boolean): BatchJob[] {
  return collectInputs(paths, recursive).jobs;
}

export { heatmapNames } from './heatmap_files';

/**
 * The CSV's columns, one row per file, the same fields as a JSON row: `result` the headline, `verdict` assessed /
 * cannot-assess / outside-population, `probability` the calibrated score (six decimals), `label` the finding
 * (empty for a cannot-assess answer or an error), `ood_score` the not-a-chest-X-ray gate's score, `warnings`
 * joined by '; ', `error` why a file has no prediction, `heatmap` the map's file name.
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
    if (o.heatmapDir) makeDirs(o.heatmapDir);

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
    const heatmapFiles = heatmapNames(jobs);
    const maps = o.heatmapDir ? new HeatmapWriter(o.heatmapDir) : null;

    const predictOne = async (file: string, i: number): Promise<BatchRow> => {
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
      if (r.heatmapPng && maps) heatmap = maps.write(heatmapFiles[i], file, r.heatmapPng);
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
      while (next < jobs.length && !o.signal?.aborted) {
        const i = next++;
        const job = jobs[i];
        // The row names the file already: its error says what is wrong, as every other error row does.
        rows[i] = job.missing ? errorRow(job.file, 'no such file or folder') : await predictOne(job.file, i);
        bar.tick();
        flush();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
    } finally {
      bar.stop();
    }
    if (format === 'json') out.write(written ? '\n]\n' : ']\n');
    // Every file started is done, so the rows done are the first `written` (all of them unless stopped).
    const done = rows.slice(0, written) as BatchRow[];
    const failed = done.filter((r) => r.error !== null).length;
    const interrupted = written < jobs.length;
    return { rows: done, processed: done.length - failed, failed, total: jobs.length, interrupted };
  } finally {
    predictor.dispose();
  }
}
