// Finds the images of a Kaggle-style chest_xray folder. Two layouts are accepted:
//   ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*   (the Kaggle download)
//   ROOT/{NORMAL,PNEUMONIA}/*                     (one split on its own)
// Every visible regular file is listed, whatever its extension: deciding what is an image is
// the decoder's job (by content), so that a mislabelled or corrupt file is reported by name
// instead of silently vanishing here. A link whose target is gone (a broken link) is no file to
// read: the scan says how many it skipped, and `cxr data inspect` lists each.
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parsePatient } from './patients';
import { missingPathWords, statIfThere } from '../paths';

export const CLASS_NAMES = ['NORMAL', 'PNEUMONIA'] as const;
/** 0 = NORMAL, 1 = PNEUMONIA (the positive class). */
export type Label = 0 | 1;

export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
/** 'all' is used for a folder that holds NORMAL/ and PNEUMONIA/ directly and is not named like a split. */
export type SplitName = (typeof SPLIT_NAMES)[number] | 'all';

export interface ImageRecord {
  /** Absolute path. */
  path: string;
  split: SplitName;
  label: Label;
  patient: string;
}

/**
 * Why a data folder cannot be scanned: NOT_FOUND (no such path), NOT_A_FOLDER (a file), NO_LAYOUT (neither
 * train/, val/, test/ nor NORMAL/ and PNEUMONIA/ inside), UNREADABLE (a folder this user may not list); or why it
 * gives no films to use (dataset_images.ts splitRecords): NO_IMAGES (none in its class folders, or in the split
 * asked for), SPLIT_NEEDED (several splits and no test/: one must be named).
 */
export type DatasetLayoutErrorCode =
  | 'NOT_FOUND'
  | 'NOT_A_FOLDER'
  | 'NO_LAYOUT'
  | 'UNREADABLE'
  | 'NO_IMAGES'
  | 'SPLIT_NEEDED';

/** A data folder that cannot be scanned; `root` is the folder at fault, `code` says why for a program. */
export class DatasetLayoutError extends Error {
  constructor(
    readonly root: string,
    message: string,
    readonly code: DatasetLayoutErrorCode,
  ) {
    super(message);
    this.name = 'DatasetLayoutError';
  }
}

export interface ScanOptions {
  /**
   * Told about files the scan does not read (in sub-folders of a class folder, broken links); default
   * console.warn.
   */
  warn?: (line: string) => void;
  /**
   * The option that named the root, said when it is missing or a file: '--data' (every training and evaluating
   * command's) unless told; '' for a command that takes the root as an argument (`cxr data inspect ROOT`).
   */
  option?: string;
}

/** A link in a class folder whose target cannot be reached: where it would have been a film, and why not. */
export interface BrokenLink extends ImageRecord {
  /** What the link points to, as written in it. */
  target: string;
  /** Why it cannot be read, e.g. "broken link: its target /x.jpeg does not exist". */
  reason: string;
}

export interface DatasetScan {
  records: ImageRecord[];
  /** Links the records leave out, in the records' order. */
  brokenLinks: BrokenLink[];
}

/**
 * A class folder given where its parent was meant (`--data .../val/NORMAL`): the label comes from the class folder's
 * name, so its parent is what to give, as `cxr train` says of a train/ folder (train/data_check.ts).
 */
function classFolderHint(abs: string, option: string): string {
  const base = path.basename(abs).toUpperCase();
  if (!(CLASS_NAMES as readonly string[]).includes(base)) return '';
  const give = `${option ? `${option} ` : ''}${path.dirname(abs)}`;
  return `; it is a ${base}/ class folder itself: give the folder above it, ${give}`;
}

/** Lists every image of ROOT in a stable order (split, label, file name); warns once about broken links. */
export async function scanDataset(root: string, opts: ScanOptions = {}): Promise<ImageRecord[]> {
  const warn = opts.warn ?? ((line: string) => console.warn(line));
  const scan = await scanDatasetFiles(root, { ...opts, warn });
  const broken = scan.brokenLinks;
  if (broken.length > 0) warnOnce(warn, brokenLinksWarning(path.resolve(root), broken));
  return scan.records;
}

/** scanDataset's records and the broken links it skips, said by the caller (`cxr data inspect` lists them). */
export async function scanDatasetFiles(root: string, opts: ScanOptions = {}): Promise<DatasetScan> {
  const warn = opts.warn ?? ((line: string) => console.warn(line));
  const abs = path.resolve(root);
  const problem = dataFolderProblem(abs);
  const option = opts.option ?? '--data';
  if (problem) {
    const code = fsSync.existsSync(abs) ? 'NOT_A_FOLDER' : 'NOT_FOUND';
    throw new DatasetLayoutError(abs, `${option ? `${option} ` : ''}${abs}: ${problem}`, code);
  }
  const top = await readDirOrThrow(abs);
  const splitDirs = SPLIT_NAMES.flatMap((s) => {
    const d = findChild(top, s);
    return d ? [{ split: s as SplitName, dir: path.join(abs, d) }] : [];
  });

  let groups: Array<{ split: SplitName; dir: string }>;
  if (splitDirs.length > 0) {
    groups = splitDirs;
  } else if (findChild(top, 'NORMAL') || findChild(top, 'PNEUMONIA')) {
    const base = path.basename(abs).toLowerCase();
    const split = (SPLIT_NAMES as readonly string[]).includes(base) ? (base as SplitName) : 'all';
    groups = [{ split, dir: abs }];
  } else {
    throw new DatasetLayoutError(
      abs,
      `${abs}: no chest_xray layout found: ` +
        'expected train/, val/ or test/ folders, or NORMAL/ and PNEUMONIA/ folders directly inside' +
        classFolderHint(abs, option),
      'NO_LAYOUT',
    );
  }

  const records: ImageRecord[] = [];
  const brokenLinks: BrokenLink[] = [];
  for (const { split, dir } of groups) {
    const entries = await readDirOrThrow(dir);
    for (const [label, cls] of CLASS_NAMES.entries()) {
      const classDir = findChild(entries, cls);
      if (!classDir) continue;
      const { files, nested, broken } = await listFiles(path.join(dir, classDir));
      if (nested.files > 0) warnOnce(warn, nestedWarning(path.join(dir, classDir), nested));
      const record = (file: string): ImageRecord => ({
        path: file,
        split,
        label: label as Label,
        patient: parsePatient(file).id,
      });
      for (const file of files) records.push(record(file));
      for (const b of broken) brokenLinks.push({ ...record(b.path), target: b.target, reason: b.reason });
    }
  }
  return { records, brokenLinks };
}

/**
 * Why `root` cannot be a data folder before it is read (null when it may be): a missing folder and a file are
 * told apart, as `cxr robustness --data` and `cxr adapt --images` tell them, rather than said as a bare
 * "cannot read folder (ENOENT)"; the scan words it once for every command that reads a data root.
 */
export function dataFolderProblem(root: string): string | null {
  const st = statIfThere(root);
  if (!st) return missingPathWords(root);
  if (!st.isDirectory())
    return 'is a file, not a folder (give the folder holding train/, val/, test/, or NORMAL/ and PNEUMONIA/)';
  return null;
}

/** Directory names are matched case-insensitively: copies of the data set differ in case. */
export function findChild(entries: import('node:fs').Dirent[], name: string): string | undefined {
  return entries.find((e) => isDirLike(e) && e.name.toLowerCase() === name.toLowerCase())?.name;
}

function isDirLike(e: import('node:fs').Dirent): boolean {
  return e.isDirectory() || e.isSymbolicLink();
}

/** Files in sub-folders of a class folder, which the scan does not read: how many, and in which folders. */
interface Nested {
  files: number;
  folders: string[];
}

type Broken = Pick<BrokenLink, 'path' | 'target' | 'reason'>;

async function listFiles(dir: string): Promise<{ files: string[]; nested: Nested; broken: Broken[] }> {
  const entries = await readDirOrThrow(dir);
  const out: string[] = [];
  const nested: Nested = { files: 0, folders: [] };
  const broken: Broken[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    // Symlinks are followed so a folder of links into a shared copy works.
    let st: import('node:fs').Stats | null = null;
    if (e.isSymbolicLink()) {
      try {
        st = await fs.stat(full);
      } catch (err) {
        broken.push(await brokenLink(full, err));
        continue;
      }
    }
    if (e.isFile() || st?.isFile()) out.push(full);
    else if (e.isDirectory() || st?.isDirectory()) {
      // A class folder's own files are its films; a sub-folder (a second copy, a batch not yet sorted) is
      // not read, but it is said, so that films put there by mistake do not vanish unnoticed.
      const n = await countFiles(full);
      if (n > 0) {
        nested.files += n;
        nested.folders.push(e.name);
      }
    }
  }
  broken.sort((a, b) => compareNames(a.path, b.path));
  return { files: out.sort(compareNames), nested, broken };
}

/** A link `fs.stat` could not follow: what it points to and why it cannot be read. */
async function brokenLink(file: string, err: unknown): Promise<Broken> {
  const target = await fs.readlink(file).catch(() => '?');
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? `its target ${target} does not exist`
      : code === 'ELOOP'
        ? `its target ${target} leads round a loop of links`
        : `its target ${target} cannot be reached (${code ?? String(err)})`;
  return { path: file, target, reason: `broken link: ${why}` };
}

/** Visible files anywhere under `dir`, links to files included (symlinked folders inside it not followed). */
async function countFiles(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const visible = entries.filter((e) => {
    const rel = path.relative(dir, path.join(e.parentPath, e.name));
    return (e.isFile() || e.isSymbolicLink()) && !rel.split(path.sep).some((part) => part.startsWith('.'));
  });
  // A link counts when it leads to a file: one to a folder is not a film put there by mistake.
  const isFile = await Promise.all(
    visible.map((e) =>
      e.isFile()
        ? true
        : fs.stat(path.join(e.parentPath, e.name)).then(
            (st) => st.isFile(),
            () => false,
          ),
    ),
  );
  return isFile.filter(Boolean).length;
}

function nestedWarning(classDir: string, n: Nested): string {
  const shown = n.folders.slice(0, 3).map((f) => `${f}/`);
  const more = n.folders.length > shown.length ? ` and ${n.folders.length - shown.length} more` : '';
  return (
    `warning: ${classDir}: skipping ${n.files} file(s) in sub-folder(s) ${shown.join(', ')}${more}: ` +
    `only files directly in ${path.basename(classDir)}/ are read; move them up to use them`
  );
}

function brokenLinksWarning(root: string, broken: readonly BrokenLink[]): string {
  const [first] = broken;
  const one = broken.length === 1;
  return (
    `warning: ${root}: skipping ${broken.length} broken ${one ? 'link' : 'links, e.g.'} ${first.path} ` +
    `(${first.reason.replace(/^broken link: /, '')}); 'cxr data inspect' lists ${one ? 'it' : 'them all'}`
  );
}

/** A command scans one folder more than once (train checks its data, then loads it): each warning is said once. */
const warned = new Set<string>();
function warnOnce(warn: (line: string) => void, line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  warn(line);
}

async function readDirOrThrow(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetLayoutError(dir, `${dir}: cannot read folder (${code ?? String(err)})`, 'UNREADABLE');
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
