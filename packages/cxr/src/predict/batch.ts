// Batch prediction behind `cxr predict PATH…`: files and folders to one output row per file, in the
// order the files were named (folders sorted by name). A file that cannot be read or is not a usable
// image gets a row with its error, and the batch goes on. CSV or JSON rows are written as they finish.
import { verdictHeadline } from './verdict';
import { csvLine } from '../report/csv';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readImageFile } from '../data/decode';
import { startProgress } from '../data/progress';
import { InputError } from './errors';
import { type OodPolicy, type Prediction, Predictor } from './predictor';

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
  oodPolicy?: OodPolicy;
  /** Files in flight at once; default: the number of cores (decodes overlap with inference). */
  concurrency?: number;
  progress?: boolean;
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

/** The files named by `paths`, in order: files as given, folders expanded (sorted; hidden entries skipped). */
export function expandPaths(paths: readonly string[], recursive: boolean): BatchJob[] {
  const jobs: BatchJob[] = [];
  const walk = (dir: string) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (st?.isFile()) jobs.push({ file: p, missing: false });
      else if (st?.isDirectory() && recursive) walk(p);
    }
  };
  for (const p of paths) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) jobs.push({ file: p, missing: true });
    else if (st.isDirectory()) walk(p);
    else jobs.push({ file: p, missing: false });
  }
  return jobs;
}

const CSV_COLUMNS = ['file', 'result', 'verdict', 'probability', 'label', 'operating_point', 'threshold', 'ood_score', 'warnings', 'error', 'heatmap'];

function csvRow(r: BatchRow): string {
  const cells = [
    r.file, r.result ?? '', r.verdict ?? '', r.probability === null ? '' : r.probability.toFixed(6), r.label ?? '', r.operatingPoint, String(r.threshold),
    r.ood ? r.ood.score.toFixed(3) : '', r.warnings.join('; '), r.error ?? '', r.heatmap ?? '',
  ];
  // Every cell as text (numbers are pre-formatted): file names and messages are escaped alike.
  return csvLine(cells);
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
      throw new Error(`unknown operating point '${opName}' (this model has: ${Object.keys(meta.operatingPoints).join(', ')})`);
    }
    const threshold = meta.operatingPoints[opName].threshold;
    for (const n of predictor.notes) log(`note: ${n}`);
    if (o.heatmapDir) fs.mkdirSync(o.heatmapDir, { recursive: true });

    const jobs = expandPaths(o.paths, !!o.recursive);
    const errorRow = (file: string, error: string): BatchRow => ({
      file, probability: null, logit: null, label: null, verdict: null, result: null, operatingPoint: opName, threshold, warnings: [], ood: null, heatmap: null, error,
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
      let bytes: Buffer;
      try {
        bytes = await readImageFile(file);
      } catch (e) {
        return errorRow(file, (InputError.from(e) as Error).message);
      }
      try {
        const r = await predictor.predict(bytes, { operatingPoint: opName, heatmap: !!o.heatmapDir });
        let heatmap: string | null = null;
        if (r.heatmapPng) {
          heatmap = heatmapPath(file);
          fs.writeFileSync(heatmap, r.heatmapPng);
        }
        return {
          file, probability: r.probability, logit: r.logit, label: r.label, verdict: r.verdict.status,
          result: verdictHeadline(r.verdict.status, r.label), operatingPoint: r.operatingPoint,
          threshold: r.threshold, warnings: r.warnings, ood: r.ood, heatmap, error: null,
        };
      } catch (e) {
        if (e instanceof InputError) return errorRow(file, e.message);
        throw e;
      }
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
