// Checks made before any slow work (engine start, model load): a folder or file the command will
// write must be writable, or the command stops at once with a message that names it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirs, writeFailure } from '../make_dirs';
import { type AuditStore, openAuditStore, redactUrl } from '../serve/audit';
import { AuditStoreOpenError } from '../serve/audit_store';
import { isPostgresUrl } from '../serve/audit_target';
import { fileInPath } from '../paths';
import { OptionError } from './args';

/**
 * Makes `dir` if needed and proves it writable by writing and removing a probe file. With `keep`
 * false the folders it made are removed again: a command that must leave nothing behind when it is
 * refused later (train, adapt, ensemble) checks its --out this way before any slow work.
 */
export function ensureWritableDir(dir: string, what: string, opts: { keep?: boolean } = {}): void {
  const probe = path.join(dir, `.cxr-write-test-${process.pid}`);
  let made: string[] = [];
  try {
    made = makeDirs(dir);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new Error(`${what} ${dir}: cannot write there (${writeFailure(e)})`);
  } finally {
    // Best effort: a folder someone else wrote into meanwhile stays, and must not hide the error above.
    if (opts.keep === false) {
      for (const d of made.reverse()) {
        try {
          fs.rmdirSync(d);
        } catch {
          break;
        }
      }
    }
  }
}

/**
 * An --out that names one file (a table, a module) is checked before the run it ends: not a folder, and
 * its folder writable. Otherwise minutes of work end in a raw EISDIR or ENOENT and the result is lost.
 */
export function ensureWritableFile(file: string, what: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    // A file where its folder should be (ENOTDIR): the folder's check below says so and names the option,
    // where a raw 'ENOTDIR: not a directory, stat ...' named neither.
  }
  if (stat?.isDirectory()) throw new Error(`${what} ${file}: is a folder; give a file name`);
  // The folder is made now and kept: the command writes its file there without making it again.
  ensureWritableDir(path.dirname(path.resolve(file)), what, { keep: true });
}

/**
 * A `--db` file the user typed whose folder is not there is refused, naming the folder: opening the log makes
 * missing folders (right for the default place and for programs), so a mistyped path became a new, empty audit
 * log and the history seemed lost. Not given (the default, CXR_DB), a postgres:// URL or ':memory:': nothing to do.
 */
export function checkDbFolder(db: string | undefined): void {
  const file = db?.trim();
  if (!file || file === ':memory:' || isPostgresUrl(file)) return;
  const folder = path.dirname(path.resolve(file));
  // A file in the way (notes.txt/audit.db) is no folder made by mistake: the opener says it ("a file is in the way").
  if (!fs.existsSync(folder) && !fileInPath(file)) {
    throw new OptionError(
      `--db ${db}: the folder ${folder} does not exist: check the path (is the audit log elsewhere?), or create ` +
        'the folder first to start a new audit log there',
    );
  }
}

/**
 * The audit log could not be opened. `reason` names it (password hidden) and says why; the message adds
 * what the user can do. `away`: the log is there but does not answer for now (PostgreSQL stopped, starting
 * up, shutting down, out of connections, unreachable; SQLite locked by another program), which a polling
 * command waits out; otherwise (a malformed URL, a login refused, no such database, a file that is not an
 * audit log, no permission) no wait mends it.
 */
export class AuditOpenError extends Error {
  constructor(
    readonly reason: string,
    hint: string,
    readonly away: boolean,
    cause: unknown,
  ) {
    super(`${reason}; ${hint}`, { cause });
    this.name = 'AuditOpenError';
  }
}

/**
 * Opens (creating and migrating) the audit log at `target` (a file or a postgres:// URL), or throws an
 * AuditOpenError that says plainly why it cannot be written, then `hint` (what the command's user can do; by
 * default, for a log away for now, to run again once it answers, else to choose another or run without one).
 * The target is named with any password hidden.
 */
export async function openAuditStoreForWriting(target: string, hint?: string): Promise<AuditStore> {
  try {
    return await openAuditStore(target);
  } catch (e) {
    const why = writeFailure(e);
    // The stores' own messages already name the log (redacted); a file error does not.
    const what = why.startsWith('audit log') ? why : `audit log ${redactUrl(target)}: cannot write it (${why})`;
    // Whether the log is away for now is the store's to say (AuditStoreOpenError.away): each opener decides it
    // on its driver's error, by the rules its outages are read by (a PostgreSQL stopped, an SQLite file locked).
    const away = e instanceof AuditStoreOpenError && e.away;
    // A log away for now is waited out or mended, not switched off: --no-audit is offered only for a log that
    // no wait would open (a wrong URL or login, a file that is no log), where running without one may be meant.
    const otherwise = away
      ? 'it does not answer for now: run again once it does, or choose another with --db'
      : 'choose another with --db, or --no-audit';
    throw new AuditOpenError(what, hint ?? otherwise, away, e);
  }
}
