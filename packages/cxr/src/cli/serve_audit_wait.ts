// `cxr serve`'s wait at start for an audit log that does not answer yet (a database booting after the server):
// the bound of --db-wait, one line per try, the wait doubling.
import type { Logger } from '../log';
import type { AuditStore } from '../serve/audit';
import { AuditStoreOpenError } from '../serve/audit_store';

/** The first wait between start-up tries to open an audit log that is away; it doubles up to the next. */
export const AUDIT_START_FIRST_WAIT_MS = 1_000;
export const AUDIT_START_MAX_WAIT_MS = 30_000;

/**
 * How long serve waits at start for an audit log that does not answer, by default: 5 minutes outlast a database
 * booting after the server (a power cut, containers started in any order, a PostgreSQL replaying its WAL), yet a
 * mistyped host or a database that is not coming ends as a failed unit that a supervisor shows and restarts, not
 * as a server that hangs for ever without listening.
 */
export const DEFAULT_DB_WAIT_S = 300;

/**
 * Opens the audit log, waiting while it is away (PostgreSQL stopped, still starting, unreachable, out of
 * connections; an SQLite file locked by another program: AuditStoreOpenError.away), as cxr orthanc sync waits
 * for Orthanc: after a power cut the database may boot after the server, which must then come up by itself
 * within --db-wait, not exit at once for systemd to give up on. One line per try, the wait doubling up to 30 s;
 * SIGTERM meanwhile exits (closeOnSignals: not listening yet). A log no wait mends (a login refused, a newer
 * schema) is thrown at once; one still away after `boundMs` (--db-wait) is thrown with its last cause.
 */
export async function openWaiting(open: () => Promise<AuditStore>, log: Logger, boundMs: number): Promise<AuditStore> {
  const start = Date.now();
  const giveUpAt = start + boundMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const store = await open();
      if (attempt > 1) log.info({ auditLog: store.location, attempts: attempt }, `the audit log answers: starting`);
      return store;
    } catch (e) {
      if (!(e instanceof AuditStoreOpenError && e.away)) throw e;
      const left = giveUpAt - Date.now();
      if (left <= 0) {
        throw new AuditStoreOpenError(
          // The time it really waited: an attempt may outlast the bound (a lock wait on another's migration).
          `${e.message}; still so after ${Math.round((Date.now() - start) / 1000)} s of waiting ` +
            `(--db-wait ${boundMs / 1000} s, CXR_DB_WAIT)`,
          e.code,
          false,
        );
      }
      const waitMs = Math.min(AUDIT_START_MAX_WAIT_MS, AUDIT_START_FIRST_WAIT_MS * 2 ** (attempt - 1), left);
      log.warn(
        { code: e.code, attempt, retryInSeconds: Math.round(waitMs / 100) / 10 },
        `${e.message}: waiting for the audit log before listening (try ${attempt}; next in ` +
          `${Math.round(waitMs / 100) / 10} s), exiting 1 if it still does not answer ${boundMs / 1000} s after ` +
          'start (--db-wait)',
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
