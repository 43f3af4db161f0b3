// Checks made before any slow work (engine start, model load): a folder or file the command will
// write must be writable, or the command stops at once with a message that names it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditLog } from '../serve/audit';

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

/** Opens (creating and migrating) the audit log at `file`, or says plainly why it cannot be written. */
export function openAuditLogForWriting(file: string): AuditLog {
  try {
    return AuditLog.open(file);
  } catch (e) {
    throw new Error(`audit log ${file}: cannot write it (${reason(e)}); choose another with --db, or --no-audit`);
  }
}
