// `cxr data inspect`: what is in a chest_xray folder before anything is trained on it: class
// counts per split, patients, image sizes, byte-identical duplicates (which inflate scores when
// they straddle a split) and files that cannot be decoded or reached (broken links). DICOM films are
// read as `cxr evaluate` and `cxr predict` read them and counted apart: training reads JPEG and PNG only.
import * as os from 'node:os';
import * as path from 'node:path';
import { type ImageRecord, scanDatasetFiles, type SplitName } from './dataset';
import {
  DecodeError,
  type DecodeErrorCode,
  type DecodeLimits,
  decodeBuffer,
  readImageFile,
  sniffFormat,
  unsupportedFormat,
} from './decode';
import { DicomError, type DicomErrorCode, decodeDicom, filmFormat } from './dicom';
import { parsePatient } from './patients';
import { forEachConcurrent } from './pool';
import { startProgress } from './progress';
import { sha256Of } from '../hash';

export interface SplitSummary {
  split: SplitName;
  images: number;
  normal: number;
  pneumonia: number;
  patients: number;
  /** Files whose name follows no known patient pattern (each counted as its own patient). */
  unrecognisedNames: number;
}

export interface Distribution {
  min: number;
  median: number;
  max: number;
}

export interface DuplicateGroup {
  sha256: string;
  /** Paths relative to the root. */
  files: string[];
  splits: SplitName[];
  acrossSplits: boolean;
  /** The same bytes labelled NORMAL in one place and PNEUMONIA in another. */
  conflictingLabels: boolean;
}

export interface InspectReport {
  root: string;
  splits: SplitSummary[];
  total: Omit<SplitSummary, 'split'>;
  /** Patients with images in more than one split (a leak between them). */
  patientsInSeveralSplits: string[];
  sizes: {
    /** Images whose size could be read. */
    measured: number;
    width: Distribution | null;
    height: Distribution | null;
    /** The third-party squashed copies are exactly 224×224. */
    square224: number;
  };
  duplicates: {
    groups: DuplicateGroup[];
    /** Extra copies: files minus distinct contents, over all groups of each kind. */
    extraCopiesWithinSplits: number;
    extraCopiesAcrossSplits: number;
  };
  /** DICOM films that read: `cxr evaluate` and `cxr predict` read them, `cxr train` skips them. */
  dicom: Array<{ path: string; width: number; height: number }>;
  /** Files no reader here reads (JPEG, PNG or DICOM), broken links among them (READ_FAILED), with why. */
  unreadable: Array<{ path: string; code: DecodeErrorCode | DicomErrorCode; message: string }>;
}

export interface InspectOptions {
  limits?: Partial<DecodeLimits>;
  progress?: boolean;
}

/** Scans and fully decodes (at a tiny size, to catch truncated files) every image of ROOT. */
export async function inspectDataset(root: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const abs = path.resolve(root);
  // The root is `cxr data inspect`'s argument, not --data: a missing one is named alone.
  const scan = await scanDatasetFiles(abs, { option: '' });
  // A broken link is counted as the file it stands for, and listed as unreadable: the report says what
  // the folder holds, and training or evaluating it skips the link.
  const records = [...scan.records, ...scan.brokenLinks];
  const rel = (p: string) => path.relative(abs, p);

  const info: Array<{ sha256?: string; width?: number; height?: number }> = records.map(() => ({}));
  const unreadable: InspectReport['unreadable'] = [];
  const dicom: InspectReport['dicom'] = [];
  for (const b of scan.brokenLinks) unreadable.push({ path: rel(b.path), code: 'READ_FAILED', message: b.reason });
  const films = scan.records;
  const bar = startProgress('inspecting', films.length, opts.progress);
  try {
    await forEachConcurrent(films, Math.max(2, os.availableParallelism()), async (r, i) => {
      try {
        const buf = await readImageFile(r.path, opts.limits);
        info[i].sha256 = sha256Of(buf);
        const format = filmFormat(buf);
        // An empty file goes on to decodeBuffer, which says "empty file (0 bytes)" as every reader does.
        if (format === null && buf.length > 0)
          throw new DecodeError('UNSUPPORTED_FORMAT', r.path, unsupportedFormat(sniffFormat(buf), true));
        // A full decode is the only way to notice truncation; 8 px keeps it cheap (JPEG
        // shrink-on-load decodes at 1/8 scale). A DICOM film's first frame is rendered, as a prediction does.
        const img =
          format === 'dicom'
            ? await decodeDicom(buf, { name: r.path, limits: opts.limits })
            : await decodeBuffer(buf, 8, { name: r.path, limits: opts.limits });
        info[i].width = img.width;
        info[i].height = img.height;
        if (format === 'dicom') dicom.push({ path: rel(r.path), width: img.width, height: img.height });
      } catch (err) {
        if (!(err instanceof DecodeError || err instanceof DicomError)) throw err;
        unreadable.push({ path: rel(r.path), code: err.code, message: err.detail });
      }
      bar.tick();
    });
  } finally {
    bar.stop();
  }
  unreadable.sort((a, b) => compare(a.path, b.path));
  dicom.sort((a, b) => compare(a.path, b.path));

  return {
    root: abs,
    ...countSplits(records),
    patientsInSeveralSplits: sharedPatients(records),
    sizes: sizeSummary(info),
    duplicates: duplicateSummary(records, info, rel),
    dicom,
    unreadable,
  };
}

function countSplits(records: readonly ImageRecord[]): Pick<InspectReport, 'splits' | 'total'> {
  const summarize = (rs: readonly ImageRecord[]) => ({
    images: rs.length,
    normal: rs.filter((r) => r.label === 0).length,
    pneumonia: rs.filter((r) => r.label === 1).length,
    patients: new Set(rs.map((r) => r.patient)).size,
    unrecognisedNames: rs.filter((r) => !parsePatient(r.path).recognised).length,
  });
  const splits = [...new Set(records.map((r) => r.split))].map((split) => ({
    split,
    ...summarize(records.filter((r) => r.split === split)),
  }));
  return { splits, total: summarize(records) };
}

function sharedPatients(records: readonly ImageRecord[]): string[] {
  const splitsOf = new Map<string, Set<SplitName>>();
  for (const r of records) {
    const s = splitsOf.get(r.patient) ?? new Set();
    s.add(r.split);
    splitsOf.set(r.patient, s);
  }
  return [...splitsOf]
    .filter(([, s]) => s.size > 1)
    .map(([p]) => p)
    .sort(compare);
}

function sizeSummary(info: ReadonlyArray<{ width?: number; height?: number }>): InspectReport['sizes'] {
  const measured = info.filter(
    (i): i is { width: number; height: number } => i.width !== undefined && i.height !== undefined,
  );
  return {
    measured: measured.length,
    width: distribution(measured.map((i) => i.width)),
    height: distribution(measured.map((i) => i.height)),
    square224: measured.filter((i) => i.width === 224 && i.height === 224).length,
  };
}

function distribution(values: number[]): Distribution | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { min: v[0], median, max: v[v.length - 1] };
}

function duplicateSummary(
  records: readonly ImageRecord[],
  info: ReadonlyArray<{ sha256?: string }>,
  rel: (p: string) => string,
): InspectReport['duplicates'] {
  const byHash = new Map<string, number[]>();
  records.forEach((_, i) => {
    const h = info[i].sha256;
    if (!h) return;
    const list = byHash.get(h);
    if (list) list.push(i);
    else byHash.set(h, [i]);
  });
  const groups: DuplicateGroup[] = [];
  let within = 0;
  let across = 0;
  for (const [sha256, idx] of byHash) {
    if (idx.length < 2) continue;
    const splits = [...new Set(idx.map((i) => records[i].split))];
    const labels = new Set(idx.map((i) => records[i].label));
    const acrossSplits = splits.length > 1;
    if (acrossSplits) across += idx.length - 1;
    else within += idx.length - 1;
    groups.push({
      sha256,
      files: idx.map((i) => rel(records[i].path)).sort(compare),
      splits,
      acrossSplits,
      conflictingLabels: labels.size > 1,
    });
  }
  groups.sort((a, b) => compare(a.files[0], b.files[0]));
  return { groups, extraCopiesWithinSplits: within, extraCopiesAcrossSplits: across };
}

/** The human-readable report printed by `cxr data inspect`. */
export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [`Dataset: ${r.root}`, ''];
  const rows = [
    ['split', 'NORMAL', 'PNEUMONIA', 'images', 'patients'],
    ...r.splits.map((s) => [s.split, s.normal, s.pneumonia, s.images, s.patients].map(String)),
    ['total', r.total.normal, r.total.pneumonia, r.total.images, r.total.patients].map(String),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows)
    lines.push(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  if (r.total.unrecognisedNames > 0) {
    lines.push(`(${r.total.unrecognisedNames} file names name no patient; each is counted as its own patient)`);
  }
  lines.push('');
  lines.push(
    r.patientsInSeveralSplits.length === 0
      ? 'Patients in more than one split: none'
      : `Patients in more than one split: ${r.patientsInSeveralSplits.length} (${preview(r.patientsInSeveralSplits)})`,
  );

  const fmt = (d: Distribution | null) => (d ? `${d.min} / ${d.median} / ${d.max}` : 'n/a');
  lines.push('', `Image sizes (${r.sizes.measured} readable images), min / median / max:`);
  lines.push(`  width   ${fmt(r.sizes.width)}`, `  height  ${fmt(r.sizes.height)}`);
  lines.push(`  exactly 224×224: ${r.sizes.square224}`);

  const d = r.duplicates;
  lines.push(
    '',
    `Exact duplicates (identical bytes): ${d.groups.length} groups; ` +
      `extra copies within a split: ${d.extraCopiesWithinSplits}, across splits: ${d.extraCopiesAcrossSplits}`,
  );
  for (const g of d.groups) {
    const flags = [g.acrossSplits ? 'ACROSS SPLITS' : '', g.conflictingLabels ? 'CONFLICTING LABELS' : '']
      .filter(Boolean)
      .join(', ');
    lines.push(`  ${g.files.join(' = ')}${flags ? `  [${flags}]` : ''}`);
  }

  if (r.dicom.length > 0) {
    lines.push(
      '',
      `DICOM films (read by evaluate and predict, not by train): ${r.dicom.length} ` +
        `(${preview(r.dicom.map((f) => f.path))})`,
    );
  }
  lines.push('', `Unreadable files: ${r.unreadable.length === 0 ? 'none' : r.unreadable.length}`);
  for (const u of r.unreadable) lines.push(`  ${u.path}: ${u.message} [${u.code}]`);
  return lines.join('\n');
}

function preview(items: readonly string[], n = 10): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')}, …`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
