// A URL with its password hidden, for every message and log line that names a server: the audit log's PostgreSQL
// (serve/audit_target.ts), the job queue's Redis (queue/connection.ts) and Orthanc (pacs/config.ts). One function
// for all, so that each hides what the others hide (a login's password, a ?password= parameter) and none throws
// on a URL mistyped in a way its own parser refuses: the message about that typo is where it is quoted.

/** What every credential cxr prints is shown as. */
export const REDACTED = '*****';

/** Schemes taken as such even without a '/' after their ':' (`postgres:u:p@h/db`); any other needs one. */
const KNOWN_SCHEMES = /^(postgres|postgresql|https?|rediss?):/i;

/** Query parameters whose value is a password, whatever the driver makes of them: hidden as a login's is. */
const PASSWORD_PARAMS = /([?&](?:password|passwd|pwd|pass)=)[^&#\s]*/gi;

/**
 * `text` (a URL, or what was meant as one) with its password replaced by *****, and nothing else: the scheme,
 * the user, the host and the rest stay as written, whatever the slashes after the scheme (`postgres:/u:p@h/db`,
 * `http//u:p@h`, `//u:p@h`, `u:p@h` are typos a message quotes). Where the URL parses, its login ends at the
 * last '@' before the host's end, as the drivers read it (`postgres://u:p@h/db?application_name=a@b` hides `p`);
 * where it does not, at the last '@' of all, so that a password holding an unencoded '/', '?' or '#' is hidden
 * whole (at worst more is hidden than needed, never less).
 */
export function redactUrl(text: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:(?=\/)/i.exec(text) ?? KNOWN_SCHEMES.exec(text);
  const restStart = (scheme?.[0].length ?? 0) + (/^\/*/.exec(text.slice(scheme?.[0].length ?? 0))?.[0].length ?? 0);
  const rest = text.slice(restStart);
  let at = text.lastIndexOf('@');
  // Parsed under one scheme whatever the URL's own: WHATWG's special schemes (http) would read the login otherwise.
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
