// Where the audit log lives, from --db or CXR_DB: a postgres:// or postgresql:// URL names a
// shared PostgreSQL database, anything else is an SQLite file. The URL may carry a password, so
// it is checked here (before any connection) and only ever printed redacted.

import { REDACTED, redactUrl } from '../redact_url';

// Where the callers of this module have always found it (pacs/config.ts, the audit log's tests).
export { redactUrl };

export type AuditTarget =
  | { kind: 'sqlite'; file: string }
  /** `display` is the URL with its password replaced, safe for logs and errors. */
  | {
      kind: 'postgres';
      url: string;
      display: string;
      password: string | null;
      poolSize: number;
      /** Said once when the log is opened: a connection encrypted but not checked (sslmode=require/prefer). */
      caution?: string;
    };

/** Connections one process keeps to PostgreSQL unless the URL says `?pool_size=N`. */
export const DEFAULT_PG_POOL_SIZE = 8;

/** Query parameters passed on to the driver; anything else is refused rather than ignored. */
const PG_PARAMS: Record<string, RegExp> = {
  sslmode: /^(disable|prefer|require|verify-ca|verify-full|no-verify)$/,
  sslrootcert: /^[^\0]{1,4096}$/,
  application_name: /^[\w .-]{1,63}$/,
  connect_timeout: /^\d{1,4}$/,
  // cxr's own: the size of the connection pool (taken out of the URL before it reaches the driver).
  pool_size: /^([1-9]|[1-9]\d)$/,
};

/** The sslmodes the driver reads as libpq does only when told (uselibpqcompat). */
const LIBPQ_SSLMODES = new Set(['prefer', 'require', 'verify-ca']);

export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target.trim());
}

/** `message` with every appearance of the password (plain or URL-encoded) replaced. */
export function redactSecret(message: string, password: string | null): string {
  if (!password) return message;
  let out = message;
  for (const p of new Set([password, encodeURIComponent(password)])) out = out.split(p).join(REDACTED);
  return out;
}

export function parseAuditTarget(text: string): AuditTarget {
  const target = text.trim();
  if (!target) throw new Error('audit log: --db / CXR_DB is empty');
  if (!isPostgresUrl(target)) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
    if (scheme) {
      throw new Error(
        `audit log: ${scheme[1]}:// is not supported; use a postgres:// URL or the path of an SQLite file`,
      );
    }
    // sqlite:/x.db and file:/x.db read as URLs to a user but as relative file names to SQLite, which
    // would quietly make ./sqlite:/x.db in the working folder.
    // A mistyped postgres URL ('postgres:/u:p@h/db', 'postgresql//...', '//u:p@h/db', 'u:p@h/db') is no file:
    // taken as one it would send the rows to a local file named after the login, password and all.
    if (/^postgres(ql)?(:|\/\/)/i.test(target) || /^\/\//.test(target) || /^[^/@]*:[^/@]*@/.test(target)) {
      throw new Error(
        `audit log: ${redactUrl(target)} looks like a database URL but is not one: write ` +
          'postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or give the path of an SQLite file',
      );
    }
    const prefix = /^(sqlite3?|file):/i.exec(target);
    if (prefix) {
      throw new Error(
        `audit log: ${target}: a ${prefix[1]}: name is not taken; give the SQLite file's path ` +
          `(${target.slice(prefix[0].length) || 'PATH'})`,
      );
    }
    return { kind: 'sqlite', file: target };
  }
  const display = redactUrl(target);
  const bad = (why: string) => new Error(`audit log URL ${display}: ${why}`);
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw bad('not a valid URL (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)');
  }
  if (!url.hostname) throw bad('no host (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)');
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw bad('no database name after the host');
  if (database.includes('/') || !/^[^\0]{1,63}$/.test(database)) throw bad(`'${database}' is not a database name`);
  if (url.hash) throw bad('a URL fragment (#...) has no meaning here');
  for (const [key, value] of url.searchParams) {
    const allowed = PG_PARAMS[key];
    if (!allowed) throw bad(`unknown parameter '${key}' (allowed: ${Object.keys(PG_PARAMS).join(', ')})`);
    if (!allowed.test(value)) throw bad(`parameter ${key} has an invalid value`);
  }
  let password: string | null = null;
  try {
    password = url.password ? decodeURIComponent(url.password) : null;
  } catch {
    throw bad('the password is not valid URL encoding (percent-encode special characters)');
  }
  // pool_size is ours, not libpq's: the driver gets the URL without it.
  const pool = url.searchParams.get('pool_size');
  url.searchParams.delete('pool_size');
  const poolSize = pool === null ? DEFAULT_PG_POOL_SIZE : Number(pool);
  // sslmode as PostgreSQL documents it (libpq): `require` encrypts without checking the certificate (a
  // hospital's own CA), `verify-ca` checks it against sslrootcert. The driver otherwise reads all three as
  // verify-full and warns on every start.
  const sslmode = url.searchParams.get('sslmode') ?? '';
  const rootCert = url.searchParams.has('sslrootcert');
  if (sslmode === 'verify-ca' && !rootCert)
    throw bad('sslmode=verify-ca checks the certificate against sslrootcert, which is missing');
  const libpq = LIBPQ_SSLMODES.has(sslmode);
  if (libpq) url.searchParams.set('uselibpqcompat', 'true');
  const driverUrl = pool === null && !libpq ? target : url.toString();
  // Before 2026-12-06 the driver read require as verify-full: an upgrade must not drop the check unsaid.
  const caution =
    (sslmode === 'require' || sslmode === 'prefer') && !rootCert
      ? `sslmode=${sslmode} encrypts the connection but does not check the server's certificate; ` +
        'give sslrootcert (or sslmode=verify-full with it) to check it'
      : undefined;
  return { kind: 'postgres', url: driverUrl, display, password, poolSize, ...(caution ? { caution } : {}) };
}
