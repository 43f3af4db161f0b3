// Query parameters read strictly, before the JSON schemas validate them. Two gaps of the validator
// (Ajv, through fastify) that reached the routes:
// - numbers: a query string is coerced with `+value`, so "0x10" read as 16, "1e1" as 10, " 5" as 5,
//   and "Infinity" as Infinity, which then passed `minimum`/`maximum` (Ajv skips them for a number
//   that is not finite): ?page=Infinity was a 500, ?patientAge=Infinity reached the predictor.
// - date-times: format "date-time" takes a leap second (23:59:60), a 2-digit offset (+01) and a
//   space for the "T", which JavaScript's Date cannot read or reads wrongly (a 500, or year 0050
//   read as 1950). Each is read here (readDateTime), and handed on as a plain UTC time.
// A parameter refused here is a 400 INVALID_REQUEST naming it, as the schema's own refusals are.
import type { FastifyInstance } from 'fastify';
import { auditTime } from './audit_sql';
import { HttpError } from './http_error';

interface ParamSchema {
  type?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
}

/**
 * Decimal digits only: no sign (not '+5', '-1', nor '-0', which would pass a minimum of 0), no exponent, no
 * hex, no spaces, no leading or trailing dot. No query number of the API is negative.
 */
const DECIMAL = { number: /^\d+(\.\d+)?$/, integer: /^\d+$/ } as const;

/**
 * The times the API's history (since, until) and `cxr history --since` / `history prune --before` take, one
 * rule for both: an RFC 3339 date-time, with 'T' (or 't', or one space, as RFC 3339 allows) between date and
 * time and its zone, 'Z' or an offset ±hh:mm; the offset may also be written ±hhmm or ±hh (ISO 8601's other
 * ways, unambiguous: +01 is +01:00); the seconds, with any fraction, may be left out (08:00Z). A date alone
 * (2026-11-01) is its first moment in UTC. A time without its zone is refused: the server's zone and the
 * user's need not agree.
 */
const DATE_TIME =
  /^(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)?)?$/;

/** How to write a time, as every refusal of one says it. */
export const DATE_TIME_FORMS =
  'a date (2026-11-01, its first moment in UTC) or a date and time with its zone ' +
  '(2026-11-01T08:00:00Z, 2026-11-01 09:00+01:00)';

export type DateTimeReading = { ms: number } | { error: string };

/**
 * A date or date-time (DATE_TIME) as milliseconds since the epoch, or why it cannot be one (a sentence
 * that follows the value's name: "--since ...", "query parameter 'since' ..."). A leap second (second 60)
 * is refused: the log's times never hold one.
 */
export function readDateTime(raw: string): DateTimeReading {
  const m = DATE_TIME.exec(raw);
  if (!m) return { error: `is not ${DATE_TIME_FORMS}` };
  const [year, month, day] = m.slice(1, 4).map(Number);
  const timed = m[4] !== undefined;
  if (timed && !m[8] && !m[9]) {
    return { error: 'has no zone: add Z for UTC or its offset from UTC (e.g. 2026-11-01T08:00:00+01:00)' };
  }
  const [hour, minute, second] = [m[4], m[5], m[6]].map((x) => Number(x ?? 0));
  if (second === 60) {
    return { error: 'has second 60 (a leap second), which the audit log never holds: give :59 or the next minute' };
  }
  const offsetMinutes = m[9] ? (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11] ?? 0)) : 0;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, Math.floor(Number(`0${m[7] ?? ''}`) * 1000));
  const valid =
    d.getUTCMonth() === month - 1 &&
    d.getUTCDate() === day &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    Number(m[10] ?? 0) <= 23 &&
    Number(m[11] ?? 0) <= 59;
  if (!valid) return { error: 'is not a real date and time' };
  return { ms: d.getTime() - offsetMinutes * 60_000 };
}

function refuse(name: string, message: string): never {
  throw new HttpError(400, 'INVALID_REQUEST', `query parameter '${name}' ${message}`);
}

function range(s: ParamSchema): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return ` from ${s.minimum} to ${s.maximum}`;
  if (s.minimum !== undefined) return ` of at least ${s.minimum}`;
  return s.maximum !== undefined ? ` of at most ${s.maximum}` : '';
}

/**
 * Query parameters whose values are patient data, the one list: a refusal here says how long the value was,
 * never what it was, since an error's text reaches the server log; serve/request_log.ts logs their values
 * as `*****`.
 */
export const PATIENT_PARAMS: readonly string[] = ['patientAge'];

/** One query value checked, and what the route gets instead (a date-time as its UTC form). */
function readParam(name: string, s: ParamSchema, raw: unknown): unknown {
  if (Array.isArray(raw) && s.type !== 'array') refuse(name, `is given ${raw.length} times: give it once`);
  if (typeof raw !== 'string') return raw;
  const shown = PATIENT_PARAMS.includes(name)
    ? `a value of ${raw.length} character${raw.length === 1 ? '' : 's'} (not shown: patient data)`
    : JSON.stringify(raw.slice(0, 40));
  if (s.type === 'number' || s.type === 'integer') {
    const what = s.type === 'integer' ? 'a whole number' : 'a number';
    const example = s.type === 'integer' ? 'e.g. 20' : 'e.g. 7 or 3.5';
    const n = Number(raw);
    if (
      !DECIMAL[s.type].test(raw) ||
      (s.minimum !== undefined && n < s.minimum) ||
      (s.maximum !== undefined && n > s.maximum)
    )
      refuse(name, `must be ${what}${range(s)} in decimal digits (${example}); got ${shown}`);
    return raw;
  }
  if (s.format === 'date-time') {
    const t = readDateTime(raw);
    if ('error' in t) refuse(name, `${t.error}; got ${shown}`);
    return auditTime(t.ms); // as the audit log writes times; still a date-time to the schema
  }
  return raw;
}

/**
 * Checks every number and date-time query parameter of the routes registered in `scope` (register
 * it before them) against the route's querystring schema, which still validates the rest.
 */
export function strictQueryParams(scope: FastifyInstance): void {
  scope.addHook('preValidation', async (req) => {
    const props = (req.routeOptions.schema?.querystring as { properties?: Record<string, ParamSchema> } | undefined)
      ?.properties;
    if (!props || !req.query || typeof req.query !== 'object') return;
    const query = req.query as Record<string, unknown>;
    for (const [name, s] of Object.entries(props)) {
      if (query[name] !== undefined) query[name] = readParam(name, s, query[name]);
    }
  });
}
