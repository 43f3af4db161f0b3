// The audit log as the server's routes use it: bounded and watched. A prediction is answered only once
// its row is in the log, so while the log is away (PostgreSQL stopped or out of connections, the SQLite
// disk full) the API answers 503 AUDIT_UNAVAILABLE with Retry-After, not a 500, and /health says so.
// Each use waits at most AUDIT_WAIT_MS: a database that stops answering on an open connection must not
// hold requests until the request timeout. The last outcome is kept: after an outage, a prediction
// first checks the log (one shared ping) before computing anything, so clients retrying during an
// outage cost no model time and are told that nothing was predicted. The first success clears it; after
// a failed write only a write does, as a log that answers reads may still refuse rows (the disk full, a
// standby after a failover). Such a write outage is checked by a write that changes nothing (writesRefused),
// at most every WRITE_PROBE_MS, for /health: a load balancer that stops sending predictions to a server
// that refuses them all must still see it recover, with no prediction to write.
import { LATE, orLate } from '../deadline';
import type { Logger } from '../log';
import type { AuditRecord } from '../predict/prediction_schema';
import { type AuditImages, type AuditStore, AuditUnavailableError, isSqliteLocked } from './audit_store';

/** How long one use of the audit log may take in a request before it counts as unavailable. */
export const AUDIT_WAIT_MS = 5_000;

/** Retry-After on AUDIT_UNAVAILABLE: a database restart or failover takes seconds. */
export const AUDIT_RETRY_AFTER_S = 5;

/**
 * How often a write outage is checked with a write (writesRefused), at most: /health is probed each second or
 * so, and must stay cheap; a log that takes rows again is seen within this.
 */
export const WRITE_PROBE_MS = 5_000;

export interface AuditOutage {
  /** Date.now() of the first failure of this outage. */
  since: number;
  /** The latest failure, as AuditUnavailableError's reason. */
  reason: string;
  /** A write failed: only a write that succeeds ends this outage. */
  writes: boolean;
}

const READ_CONSEQUENCE = 'try again shortly';

/**
 * What a failed use is counted as (cxr_audit_failures_total's operation): `health`, /health's ping, apart from
 * the reads, as a load balancer probing each second would make one outage look like thousands of failed reads.
 */
export type AuditUse = 'read' | 'write' | 'health';

/** An error of SQLite's lock held past the busy wait (audit_store.ts isSqliteLocked). */
function isBusy(e: unknown): boolean {
  return isSqliteLocked((e as { code?: unknown } | null)?.code);
}

export class AuditGuard {
  /** The store with each call bounded and its outages recorded (their message ends "try again shortly"). */
  readonly store: AuditStore;
  /** Uses that failed as unavailable, by kind (cxr_audit_failures_total): the outage alone keeps no count. */
  readonly failures: Record<AuditUse, number> = { read: 0, write: 0, health: 0 };
  private outage: AuditOutage | null = null;
  private probe: Promise<void> | null = null;
  private writeProbe: Promise<void> | null = null;
  private writeProbedAt = 0;
  /** A write probe found the log locked by another program, and said so: said once per such lock. */
  private busySaid = false;

  constructor(
    /** The store itself, unbounded: for work whose slowness is no outage (/health's row count). */
    readonly raw: AuditStore,
    private readonly log: Logger,
    private readonly waitMs = AUDIT_WAIT_MS,
  ) {
    const r = READ_CONSEQUENCE;
    this.store = {
      kind: raw.kind,
      location: raw.location,
      insert: (record, images) => this.use(() => raw.insert(record, images), r, true),
      insertOnce: (record, images, key) => this.use(() => raw.insertOnce(record, images, key), r, true),
      findByResultKey: (key, model, op) => this.use(() => raw.findByResultKey(key, model, op), r),
      get: (id) => this.use(() => raw.get(id), r),
      image: (id, which) => this.use(() => raw.image(id, which), r),
      list: (filter) => this.use(() => raw.list(filter), r),
      pruneImages: (before) => this.use(() => raw.pruneImages(before), r, true),
      count: () => this.use(() => raw.count(), r),
      ping: () => this.use(() => raw.ping(), r),
      close: (ms) => raw.close(ms),
    };
  }

  /** The outage going on (since the last use failed as unavailable), or null while the log answers. */
  get down(): AuditOutage | null {
    return this.outage;
  }

  /**
   * `work` on the log within the bound. An outage (or no answer in time) is thrown as
   * AuditUnavailableError ending with `consequence`; any other failure is thrown as it is (a bug: 500).
   * `write`: the work writes rows; `counted`: what a failure counts as.
   */
  async use<T>(
    work: () => Promise<T>,
    consequence: string,
    write = false,
    counted: AuditUse = write ? 'write' : 'read',
  ): Promise<T> {
    let r: T | typeof LATE;
    try {
      r = await orLate(work(), this.waitMs);
    } catch (e) {
      if (e instanceof AuditUnavailableError) throw this.failed(e.reason, consequence, write, counted);
      throw e;
    }
    if (r === LATE) throw this.failed(`did not answer within ${this.waitMs / 1000} s`, consequence, write, counted);
    this.answered(write);
    return r;
  }

  /** Commits a prediction's row (AuditStore.insert), bounded; an outage ends with `consequence`. */
  insert(record: AuditRecord, images: AuditImages | null, consequence: string): Promise<void> {
    return this.use(() => this.raw.insert(record, images), consequence, true);
  }

  /**
   * Before work that must end in a row: nothing to do while the log answers; during an outage, one
   * ping shared by every caller, which throws AuditUnavailableError if the log is still away (a log
   * that answers the ping is tried: only the write itself tells whether it takes rows again).
   */
  async ensure(consequence: string): Promise<void> {
    if (!this.outage) return;
    this.probe ??= this.use(() => this.raw.ping(), consequence).finally(() => {
      this.probe = null;
    });
    await this.probe;
  }

  /**
   * Whether the log refuses writes: false unless an outage began with (or saw) a failed write. Then a write
   * that touches no audit row (AuditStore.probeWrite) is tried, at most once every WRITE_PROBE_MS and shared by
   * every caller; its success ends the outage as a prediction's row would. Counted as `health` when it fails.
   * A store without probeWrite stays refused until a real write succeeds.
   */
  async writesRefused(): Promise<boolean> {
    if (!this.outage?.writes) return false;
    const raw = this.raw;
    if (!raw.probeWrite) return true;
    if (!this.writeProbe && Date.now() - this.writeProbedAt >= WRITE_PROBE_MS) {
      this.writeProbedAt = Date.now();
      this.writeProbe = this.use(() => raw.probeWrite!(), READ_CONSEQUENCE, true, 'health')
        .then(
          () => {
            this.busySaid = false;
          },
          (e: unknown) => {
            // An outage is the outage going on (failed() noted it). Anything else (a role without rights on
            // audit_probe, a bug) says nothing about the log: the write flag is dropped, said, not thrown, so that
            // the next prediction's row decides. Kept, /health would answer 503 for ever, and a load balancer would
            // send no prediction to end it.
            // A log locked by another program's write (SQLITE_BUSY past the busy wait) is no outage and no
            // answer either: the state stays as it was, /health with it, and the next probe asks again.
            const busy = isBusy(e);
            if (busy && !this.busySaid) {
              this.busySaid = true;
              this.log.info(
                { auditLog: raw.location, code: (e as { code?: unknown }).code },
                `checking whether the audit log takes writes: it is locked by another program's write ` +
                  `(${(e as Error).message}); asking again every ${WRITE_PROBE_MS / 1000} s`,
              );
            }
            if (!busy) this.busySaid = false;
            if (!busy && !(e instanceof AuditUnavailableError)) {
              if (this.outage) this.outage.writes = false;
              this.log.error(
                { err: e },
                `checking whether the audit log takes writes failed (${(e as Error).message}): the next ` +
                  "prediction's row decides; grant the role INSERT and UPDATE on audit_probe",
              );
            }
          },
        )
        .finally(() => {
          this.writeProbe = null;
        });
    }
    if (this.writeProbe) await this.writeProbe;
    return this.outage?.writes === true;
  }

  private failed(reason: string, consequence: string, write: boolean, counted: AuditUse): AuditUnavailableError {
    this.failures[counted]++;
    if (this.outage) {
      this.outage.reason = reason;
      this.outage.writes ||= write;
    } else {
      this.outage = { since: Date.now(), reason, writes: write };
      this.log.warn(
        { auditLog: this.raw.location, reason },
        `the audit log (${this.raw.location}) ${reason}: ` +
          'predictions are refused (503 AUDIT_UNAVAILABLE) until it answers',
      );
    }
    return new AuditUnavailableError(this.raw.location, reason, consequence);
  }

  private answered(write: boolean): void {
    if (!this.outage || (this.outage.writes && !write)) return;
    const seconds = Math.round((Date.now() - this.outage.since) / 1000);
    this.outage = null;
    this.log.info(
      { auditLog: this.raw.location, outageSeconds: seconds },
      `the audit log (${this.raw.location}) answers again, after ${seconds} s`,
    );
  }
}
