// Checks made before any slow work (engine start, model load): a folder or file the command will
// write must be writable, or the command stops at once with a message that names it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AuditStore, openAuditStore, redactUrl } from '../serve/audit';

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission denied';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'a file is in the way';
  return e instanceof Error ? e.message : String(e);
}

/** Creates `dir` if needed and proves it writable by writing and removing a probe file. */
export function ensureWritableDir(dir: string, what: string): void {
  const probe = path.join(dir, `.cxr-write-test-${process.pid}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new Error(`${what} ${dir}: cannot write there (${reason(e)})`);
  }
}

/**
 * Opens (creating and migrating) the audit log at `target` (a file or a postgres:// URL), or says
 * plainly why it cannot be written. The target is named with any password hidden.
 */
export async function openAuditStoreForWriting(target: string): Promise<AuditStore> {
  try {
    return await openAuditStore(target);
  } catch (e) {
    const why = reason(e);
    // The stores' own messages already name the log (redacted); a file error does not.
    const what = why.startsWith('audit log') ? why : `audit log ${redactUrl(target)}: cannot write it (${why})`;
    throw new Error(`${what}; choose another with --db, or --no-audit`);
  }
}
