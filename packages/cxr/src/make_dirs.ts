// Making output folders. Node's mkdir with { recursive: true } never returns where mkdir fails with
// ENOENT under a parent that exists (/proc/x: it retries the parent, finds it there, and tries the
// child again, for ever), so an --out in such a place hung the command instead of failing. Here each
// missing folder is made on its own, outermost first, and the first refusal is thrown.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Makes `dir` and its missing parents (like mkdir -p) and returns the folders it made, outermost
 * first; throws the file system's error (with its code) where one cannot be made.
 */
export function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  const made: string[] = [];
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
      made.push(d);
    } catch (e) {
      // Made meanwhile by someone else (another process writing the same run folder) is as good.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e;
    }
  }
  // The walk above stops at anything that exists, a file too: a file where the folder should be is refused here.
  if (!fs.statSync(dir).isDirectory())
    throw Object.assign(new Error(`ENOTDIR: not a folder, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir });
  return made;
}

/**
 * Why a folder or file could not be made or written, in words (from a file system error). A full disk names the
 * folder on it: `where` where the caller knows it, else the folder of the path the error names (a write's names none).
 */
export function writeFailure(e: unknown, where?: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  // Node's own words ("ENOSPC: no space left on device, write") name neither the disk nor the folder.
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    // The error's path: a folder being made (said as it is), or a file being opened, often the hidden temp of
    // writeFileAtomic, gone by now: the folder that holds it is on the same disk, and is there to name.
    const { path: named, syscall } = e as NodeJS.ErrnoException;
    const folder = where ?? (named && syscall !== 'mkdir' ? path.dirname(named) : named);
    if (code === 'EDQUOT') return `the disk quota${folder ? ` for ${folder}` : ''} is used up`;
    return `${folder ? `the disk that holds ${folder}` : 'the disk'} is full`;
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission denied';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'a file is in the way';
  // Every parent exists by then (makeDirs made them), so ENOENT is the file system refusing (/proc, /sys).
  if (code === 'ENOENT') return 'no folder can be made there';
  return e instanceof Error ? e.message : String(e);
}

/** makeDirs, or an error that names the folder, what it is for and why it cannot be made. */
export function makeOutputDir(dir: string, what: string): string[] {
  try {
    return makeDirs(dir);
  } catch (e) {
    throw new Error(`${what} ${dir}: cannot write there (${writeFailure(e, dir)})`);
  }
}
