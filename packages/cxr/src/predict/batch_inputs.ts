// The files a batch (`cxr predict PATH…`, `cxr enqueue PATH…`) is made of: files named as given, folders
// expanded to the files that look like images. Every entry of a folder is accounted for: a job (an image, or
// an entry that cannot be read, whose row says why), a skipped non-image (counted), or a note.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { filmFormatOfFileSync } from '../data/dicom';

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
  /** Files inside named folders that are not JPEG, PNG or DICOM (by their leading bytes): not predicted. */
  skipped: string[];
  /** Named folders holding no image at all (with -r: in the whole tree). */
  emptyFolders: string[];
  /** Named folders, without -r, that have images in sub-folders left unread. */
  foldersWithImagesBelow: string[];
  /** Folders passed over (a link back to a folder already read, one that cannot be read), one line each. */
  notes: string[];
}

/** The row's error of a job with nothing to read. */
export const missingError = (job: BatchJob) => job.error ?? 'no such file or folder';

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

/** Whether any sub-folder of `dir`, at any depth, holds an image (stops at the first). */
function imagesBelow(dir: string, walk = folderWalk(null), top = true): boolean {
  const folders: string[] = [];
  for (const e of walk.entries(dir)) {
    const p = path.join(dir, e.name);
    const st = statOf(walk.stat(p));
    if (!top && st?.isFile() && looksLikeImage(p)) return true;
    if (st?.isDirectory()) folders.push(p);
  }
  return folders.some((p) => imagesBelow(p, walk, false));
}

/**
 * The files named by `paths`, in order: files as given (whatever they hold: their row says what is
 * wrong), folders expanded (sorted; hidden entries skipped) to the files that look like images; the
 * others found in folders are counted as skipped, not failed: a folder of films often holds notes too.
 * A folder's entry that cannot be read or is no regular file (a broken link, a FIFO) is a job with nothing
 * to read, as the same path named on the command line gets an error row: it is never opened.
 */
export function collectInputs(paths: readonly string[], recursive: boolean): CollectedInputs {
  const found: CollectedInputs = { jobs: [], skipped: [], emptyFolders: [], foldersWithImagesBelow: [], notes: [] };
  const walkFolder = (dir: string, rel: string, walk: FolderWalk) => {
    for (const e of walk.entries(dir)) {
      const p = path.join(dir, e.name);
      const name = rel ? `${rel}/${e.name}` : e.name;
      const s = walk.stat(p);
      if ('error' in s) found.jobs.push({ file: p, missing: true, error: s.error, name });
      else if (s.stat.isFile()) {
        if (looksLikeImage(p)) found.jobs.push({ file: p, missing: false, name });
        else found.skipped.push(p);
      } else if (s.stat.isDirectory()) {
        if (recursive) walkFolder(p, name, walk);
      } else found.jobs.push({ file: p, missing: true, error: 'not a regular file', name });
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
