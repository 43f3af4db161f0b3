// Where the audit log lives, from --db or CXR_DB: a postgres:// or postgresql:// URL names a
// shared PostgreSQL database, anything else is an SQLite file. The URL may carry a password, so
// it is checked here (before any connection) and only ever printed redacted.

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

const REDACTED = '*****';

export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target.trim());
}

/** Schemes taken as such even without a '/' after their ':' (`postgres:u:p@h/db`); any other needs one. */
const KNOWN_SCHEMES = /^(postgres|postgresql|https?|rediss?):/i;

/** Query parameters whose value is a password, whatever the driver makes of them: hidden as a login's is. */
const PASSWORD_PARAMS = /([?&](?:password|passwd|pwd|pass)=)[^&#\s]*/gi;

/**
 * `text` (a URL, or what was meant as one) with its password replaced by *****, and nothing else: the scheme,
 * the user, the host and the rest stay as written, whatever the slashes after the scheme (`postgres:/u:p@h/db`,
 * `http//u:p@h`, `//u:p@h`, `u:p@h` are typos a message quotes). Where the URL parses, its login ends at the
 * last '@' before the host's end, as the driver reads it (`postgres://u:p@h/db?application_name=a@b` hides `p`);
 * where it does not, at the last '@' of all, so that a password holding an unencoded '/', '?' or '#' is hidden
 * whole (at worst more is hidden than needed, never less).
 */
export function redactUrl(text: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:(?=\/)/i.exec(text) ?? KNOWN_SCHEMES.exec(text);
  const restStart = (scheme?.[0].length ?? 0) + (/^\/*/.exec(text.slice(scheme?.[0].length ?? 0))?.[0].length ?? 0);
  const rest = text.slice(restStart);
  let at = text.lastIndexOf('@');
  if (scheme && URL.canParse(`postgres://${rest}`)) {
    const authorityEnd = rest.search(/[/?#]/);
    at = text.lastIndexOf('@', restStart + (authorityEnd < 0 ? rest.length : authorityEnd) - 1);
  }
  let out = text;
  if (at >= restStart) {
    const colon = text.indexOf(':', restStart);
    if (colon >= 0 && colon + 1 < at) out = `${text.slice(0, colon + 1)}${REDACTED}${text.slice(at)}`;
  }
  return out.replace(PASSWORD_PARAMS, `$1${REDACTED}`);
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
