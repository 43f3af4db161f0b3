// The files a batch (`cxr predict PATH…`, `cxr enqueue PATH…`) is made of: files named as given, folders
// expanded to the files that look like images. Every entry of a folder is accounted for: a job (an image, or
// an entry that cannot be read, whose row says why), a skipped non-image (counted), or a note.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sniffFormat } from '../data/decode';
import { FILM_HEADER_BYTES, filmFormat } from '../data/dicom';
import { describe } from './image_bytes';
import { fileInPath, statIfThere, throughFileWords } from '../paths';

/**
 * A file to predict, or a path with nothing to read (reported as an error row, in place): a named path or
 * a link in a folder that leads nowhere, or a folder's entry that is no regular file (a FIFO, a socket).
 */
export interface BatchJob {
  file: string;
  /** Nothing there to read: the path is never opened (a FIFO would block), its row gives `error`. */
  missing: boolean;
  /** Why a missing job has no file (its row's error); default: 'no such file or folder'. */
  error?: string;
  /** Its path inside the folder named ('/'-separated), or its base name: its heat map's name (heatmapNames). */
  name?: string;
}

/** What collectInputs found: the jobs, and what a user should hear about the folders named. */
export interface CollectedInputs {
  jobs: BatchJob[];
  /**
   * Files inside named folders that are not JPEG, PNG or DICOM (by their leading bytes): not predicted. With
   * `imageLike`, only those that are no image by name and bytes either (a notes.txt, a Thumbs.db).
   */
  skipped: string[];
  /** Named folders holding no image at all (with -r: in the whole tree). */
  emptyFolders: string[];
  /** Named folders, without -r, that have images in sub-folders left unread. */
  foldersWithImagesBelow: string[];
  /** Folders passed over (a link back to a folder already read, one that cannot be read), one line each. */
  notes: string[];
  /**
   * Empty files without an extension (a `README`, a `LICENSE`, an `IM000002` left empty by a failed copy), among
   * `skipped`: no film to fail, yet named on stderr, since an extensionless name may have been a DICOM. An empty
   * `x.jpg`, `x.dcm` or UID-named file is still a film that fails (EMPTY).
   */
  emptySkipped: string[];
}

/**
 * What a folder is searched for, for the line that says none was found: `cxr predict` and `cxr enqueue` alike.
 */
export const LOOKED_FOR =
  'looked for JPEG, PNG and DICOM files by their first bytes, whatever their name, and for files named like ' +
  'images: .jpg, .jpeg, .png, .dcm, .dicom, .heic, .webp, ..., a DICOM UID, or no extension';

/** The line for a folder named that holds no film: the same words in `cxr predict` and `cxr enqueue`. */
export const noFilmsIn = (dir: string, recursive: boolean) =>
  `${dir}: no JPEG, PNG or DICOM files${recursive ? '' : ' in this folder'} (${LOOKED_FOR})`;

/** The rule for empty files, as `--help` says it (predict's and enqueue's). */
export const EMPTY_FILE_RULE =
  'In a folder, an empty file with no extension (README, LICENSE) is skipped and named on stderr; ' +
  'an empty x.jpg, x.png or x.dcm (or DICOM UID name) is still a film, failed or refused as EMPTY.';

/** The line for an empty extensionless file a folder's walk skipped (see emptySkipped). */
export const emptySkippedLine = (file: string) =>
  `skipped: ${file}: empty file (0 bytes) with no image or DICOM extension, not counted as a film`;

export interface CollectOptions {
  /**
   * Whether a folder's files that are images the decoder does not read (HEIC, WebP, ...) or named like films
   * (an empty `x.jpg`) are jobs, so that they are named with why they fail (`cxr predict`'s rows, `cxr
   * enqueue`'s refusals), rather than skipped with the files that are no images at all (default).
   */
  imageLike?: boolean;
}

/** The row's error of a job with nothing to read. */
export const missingError = (job: BatchJob) => job.error ?? 'no such file or folder';

/** A file's leading bytes (FILM_HEADER_BYTES of them, fewer in a shorter file). */
function headOf(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(FILM_HEADER_BYTES);
    return buf.subarray(0, fs.readSync(fd, buf, 0, FILM_HEADER_BYTES, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Names a film, or a photo of one, goes by: an empty or cut-short `x.jpg` is a film that failed, not a note.
 * DICOM files often have no extension, or a UID's digits after the last dot (`1.2.840.113619.2.55`).
 */
const IMAGE_NAME =
  /(\.(jpe?g|jfif|png|apng|dcm|dicom|dic|ima|heic|heif|avif|webp|gif|tiff?|bmp|jp2|j2k|jxl)|\.\d+|^[^.]+)$/i;

/** A name without an extension (`README`, `IM000002`): a film's only when the file has bytes to tell it by. */
const NO_EXTENSION = /^[^.]+$/;

/** Leading bytes that read as text (no NUL, no control character but tab and line ends): notes, not films. */
const looksLikeText = (head: Buffer) =>
  head.length > 0 && !head.some((b) => b < 0x20 && b !== 9 && b !== 10 && b !== 13);

/**
 * What a folder's file is: 'film', leading bytes of JPEG, PNG or DICOM (what the decoder reads, by its own
 * test: a DICOM data set without its preamble too, whatever its name; a .dcm that fails the test is still
 * tried, so its row says why); 'image-like', not one the decoder reads yet an image all the same (a HEIC or
 * WebP from a phone, by its bytes) or named like one (an empty `x.jpg`, an extensionless DICOM cut short);
 * 'other', a file that is no image by name and bytes (`notes.txt`, `Thumbs.db`); 'empty', an empty file without
 * an extension (`README`, `LICENSE`: skipped, yet named). A file that cannot be read counts as a film: its row
 * says why.
 */
function kindOf(file: string): 'film' | 'image-like' | 'other' | 'empty' {
  let head: Buffer;
  try {
    head = headOf(file);
  } catch {
    return 'film';
  }
  if (filmFormat(head) !== null || /\.dcm$/i.test(file)) return 'film';
  // Text is no image whatever it starts with: a note that begins "BMI ..." has a BMP's two leading bytes.
  if (sniffFormat(head) !== 'unknown' && !looksLikeText(head)) return 'image-like';
  const name = path.basename(file);
  // A name with a control character is a system's file, no film: the empty `Icon\r` of a folder copied from a Mac.
  if ([...name].some((c) => c.charCodeAt(0) < 0x20)) return 'other';
  // Nothing to tell an empty extensionless file by: an archive's `LICENSE` is no film that failed.
  if (head.length === 0 && NO_EXTENSION.test(name)) return 'empty';
  return IMAGE_NAME.test(name) && !looksLikeText(head) ? 'image-like' : 'other';
}

function sortedEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));

/** A folder entry's stat (links followed), or why there is none: a broken link, a loop of links. */
type EntryStat = { stat: fs.Stats } | { error: string };

/**
 * A folder walk that reads each real folder once: links are followed (a study folder may be a link), but
 * a link back up the tree was walked until ELOOP, aborting the batch. A folder that cannot be read is noted
 * and passed over.
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
    stat(p: string): EntryStat {
      try {
        const stat = fs.statSync(p, { throwIfNoEntry: false });
        // Listed by the folder, yet no entry behind it: a link to nothing (or a file gone since).
        return stat ? { stat } : { error: 'no such file or folder' };
      } catch (e) {
        // The words readImageFile uses for a file named on the command line that cannot be read.
        return { error: `cannot read (${why(e)})` };
      }
    },
  };
}
type FolderWalk = ReturnType<typeof folderWalk>;

const statOf = (s: EntryStat) => ('stat' in s ? s.stat : undefined);

/**
 * Whether any sub-folder of `dir`, at any depth, holds an image (stops at the first): one the decoder reads or
 * an image-like file (see kindOf), as a sub-folder of a phone's HEIC photos is still films left out without -r.
 */
function imagesBelow(dir: string, walk = folderWalk(null), top = true): boolean {
  const folders: string[] = [];
  for (const e of walk.entries(dir)) {
    const p = path.join(dir, e.name);
    const st = statOf(walk.stat(p));
    if (!top && st?.isFile() && ['film', 'image-like'].includes(kindOf(p))) return true;
    if (st?.isDirectory()) folders.push(p);
  }
  return folders.some((p) => imagesBelow(p, walk, false));
}

/**
 * The files named by `paths`, in order: files as given (whatever they hold: their row says what is
 * wrong), folders expanded (sorted; hidden entries skipped) to the files that look like images; the
 * others found in folders are counted as skipped, not failed: a folder of films often holds notes too
 * (with `imageLike`, an image the decoder does not read is a job, its row saying why: see kindOf).
 * A folder's entry that cannot be read or is no regular file (a broken link, a FIFO) is a job with nothing
 * to read, as the same path named on the command line gets an error row: it is never opened.
 */
export function collectInputs(
  paths: readonly string[],
  recursive: boolean,
  opts: CollectOptions = {},
): CollectedInputs {
  const found: CollectedInputs = {
    jobs: [],
    skipped: [],
    emptyFolders: [],
    foldersWithImagesBelow: [],
    notes: [],
    emptySkipped: [],
  };
  const walkFolder = (dir: string, rel: string, walk: FolderWalk) => {
    for (const e of walk.entries(dir)) {
      const p = path.join(dir, e.name);
      const name = rel ? `${rel}/${e.name}` : e.name;
      const s = walk.stat(p);
      if ('error' in s) found.jobs.push({ file: p, missing: true, error: s.error, name });
      else if (s.stat.isFile()) {
        const kind = kindOf(p);
        if (kind === 'film' || (kind === 'image-like' && opts.imageLike))
          found.jobs.push({ file: p, missing: false, name });
        else found.skipped.push(p);
        if (kind === 'empty') found.emptySkipped.push(p);
      } else if (s.stat.isDirectory()) {
        if (recursive) walkFolder(p, name, walk);
      } else found.jobs.push({ file: p, missing: true, error: 'not a regular file', name });
    }
  };
  for (const p of paths) {
    let st: fs.Stats | undefined;
    try {
      st = statIfThere(p);
    } catch {
      // There but unusable (a loop of links): tried as a file, so its row says what is wrong.
      found.jobs.push({ file: p, missing: false, name: path.basename(p) });
      continue;
    }
    if (!st) {
      // A path through a file (film.dcm/x): which part is a file, where reading it said only ENOTDIR.
      const file = fileInPath(p);
      found.jobs.push(file ? { file: p, missing: true, error: throughFileWords(file) } : { file: p, missing: true });
    } else if (st.isDirectory()) {
      const before = found.jobs.length;
      // One walk per folder named: a folder named twice is read twice, as a file named twice is.
      walkFolder(p, '', folderWalk(found.notes));
      if (found.jobs.length === before) found.emptyFolders.push(p);
      if (!recursive && imagesBelow(p)) found.foldersWithImagesBelow.push(p);
    } else found.jobs.push({ file: p, missing: false, name: path.basename(p) });
  }
  return found;
}

/**
 * The files named by `paths` (see collectInputs), as runBatch and `cxr predict` collect them (imageLike): a
 * folder's empty x.jpg or HEIC is a job whose row says why it fails. Without imageLike, a program that passed
 * these as runBatch's `jobs` lost such files unseen (no row, no count), the list runBatch's default had dropped.
 */
export function expandPaths(paths: readonly string[], recursive: boolean): BatchJob[] {
  checkPaths(paths, 'expandPaths');
  return collectInputs(paths, recursive, { imageLike: true }).jobs;
}

/**
 * Refuses `paths` that are not an array of strings, as a JavaScript caller may pass them: one path given as a
 * string was read character by character, and its '.' (of 'film.jpeg') predicted every film in the working folder.
 */
export function checkPaths(paths: unknown, who: string): void {
  if (!Array.isArray(paths)) {
    const hint = typeof paths === 'string' ? ': give an array, e.g. [path]' : '';
    throw new TypeError(`${who}: paths must be an array of files and folders, got ${describe(paths)}${hint}`);
  }
  const i = paths.findIndex((p) => typeof p !== 'string');
  if (i >= 0)
    throw new TypeError(`${who}: paths must hold strings (files and folders), got ${describe(paths[i])} at [${i}]`);
}
