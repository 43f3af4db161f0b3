// Replacing a folder whole: written beside it in a temporary folder, then swapped in, so that a killed process
// leaves either the old folder or the new one, never a half-written mix; and what such a kill leaves behind (the
// old folder stepped aside, temporary folders of writers that are gone) put back or swept at the next write.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDirs } from '../make_dirs';

/**
 * Puts `tmp` in place of `dir`. A folder cannot be renamed over a full one, so the old version steps aside first,
 * as NAME.old-HOST-PID; a process killed between the steps leaves that behind (recoverReplaced).
 */
function replaceDir(tmp: string, dir: string): void {
  const old = `${dir}.old-${HOST}-${process.pid}`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  if (fs.existsSync(old)) fs.rmSync(old, { recursive: true, force: true });
}

/**
 * What replaceDir leaves when its process is killed between its steps: NAME.old-HOST-PID, the version before,
 * beside the new NAME (killed before removing it: a whole extra checkpoint, kept for good) or instead of it (killed
 * between the two renames: no NAME at all, so a resumed run found no checkpoint and began again at epoch 1). The
 * first is removed, the second renamed back. Only a gone process's (another machine's once a day old; one of an
 * earlier version, NAME.old-PID, is taken for this machine's).
 */
export function recoverReplaced(dir: string): void {
  const parent = path.dirname(path.resolve(dir));
  const name = path.basename(dir);
  for (const full of leftByGoneWriters(
    parent,
    new RegExp(`^${escapeRegExp(name)}\\.old-(?:([A-Za-z0-9_]+)-)?(\\d+)$`),
  )) {
    if (fs.existsSync(path.join(parent, name))) fs.rmSync(full, { recursive: true, force: true });
    else fs.renameSync(full, path.join(parent, name));
  }
}

/**
 * The entries of `parent` named by `own` (its groups: the writer's host, then its pid) whose writer is gone: this
 * machine's process no longer runs (a name without a host is taken for this machine's), another machine's, which
 * cannot be asked, is a day old, and a name with neither (an earlier version's) is taken for gone at once.
 */
function leftByGoneWriters(parent: string, own: RegExp): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const m = own.exec(entry);
    if (!m) continue;
    const [, host, pid] = m;
    const full = path.join(parent, entry);
    const gone =
      pid === undefined ||
      (host === undefined || host === HOST ? Number(pid) !== process.pid && !alive(Number(pid)) : olderThanADay(full));
    if (gone) out.push(full);
  }
  return out;
}

/** This machine's name as a temp folder's name may hold it. */
export const HOST = os.hostname().replace(/[^A-Za-z0-9_]/g, '_') || 'host';

/** True unless `pid` is surely gone (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Removes the temp folders earlier writes left in `parent` when their process was killed (Ctrl-C during a
 * checkpoint write: the error path below never runs on a signal). Only names of the writer's own pattern,
 * PREFIX + `HOST-PID-XXXXXX` (writeDirAtomic's `.NAME.tmp-`, saveModel's `.save-`), and only when that process
 * is gone: a writer still at work (two runs fetching the same backbone into the cache) keeps its folder. One of
 * another machine (a shared folder), whose process cannot be asked, goes only once a day old; one of an earlier
 * version, PREFIX + `XXXXXX`, goes at once.
 */
export function sweepStaleTemps(parent: string, prefix: string): void {
  const own = new RegExp(`^${escapeRegExp(prefix)}(?:([A-Za-z0-9_]+)-(\\d+)-)?[A-Za-z0-9]{6}$`);
  for (const full of leftByGoneWriters(parent, own)) fs.rmSync(full, { recursive: true, force: true });
}

function olderThanADay(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > 24 * 3600 * 1000;
  } catch {
    return false;
  }
}

const TEMP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A new folder `prefix` + six letters or digits, as mkdtemp names it, but made as a plain mkdir makes one
 * (0777 less the umask): mkdtemp's 0700 would stay on the folder swapped in, a checkpoint, a GAN's generator or a
 * whole ensemble, which `cxr serve` running as another user must read. Reading the umask to chmod afterwards
 * would set it for a moment (process.umask() with no argument does too), under other threads' file writes.
 */
export function makeTempDir(prefix: string): string {
  for (;;) {
    const suffix = Array.from(crypto.randomBytes(6), (b) => TEMP_CHARS[b % TEMP_CHARS.length]).join('');
    try {
      fs.mkdirSync(prefix + suffix);
      return prefix + suffix;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** Writes `files` (name -> content) via a temp folder next to `dir`, then swaps it in. */
export function writeDirAtomic(dir: string, write: (tmp: string) => Promise<void> | void): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  makeDirs(parent);
  const name = path.basename(dir);
  recoverReplaced(dir);
  sweepStaleTemps(parent, `.${name}.tmp-`);
  const tmp = makeTempDir(path.join(parent, `.${name}.tmp-${HOST}-${process.pid}-`));
  return Promise.resolve(write(tmp)).then(
    () => replaceDir(tmp, dir),
    (e) => {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    },
  );
}
