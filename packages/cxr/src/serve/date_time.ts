// The one way cxr reads a time a person or program gives it: the API's history (since, until), `cxr history
// --since` / `history prune --before`, and the audit store's own filters (a library program's too). Its own
// module so that the audit store, which the query reader imports, can use it without a cycle.

/**
 * The times the API's history (since, until), `cxr history --since` / `history prune --before` and the audit
 * store's filters take, one rule for all: an RFC 3339 date-time, with 'T' (or 't', or one space, as RFC 3339
 * allows) between date and time and its zone, 'Z' or an offset ±hh:mm; the offset may also be written ±hhmm or ±hh
 * (ISO 8601's other ways, unambiguous: +01 is +01:00); the seconds, with any fraction, may be left out (08:00Z). A
 * date alone (2026-11-01) is its first moment in UTC. A time without its zone is refused: the server's zone and the
 * user's need not agree.
 */
const DATE_TIME =
  /^(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)?)?$/;

/**
 * DATE_TIME as the OpenAPI document states it (a `pattern`, ECMA-262), so that a client validating a request
 * against the document is refused nothing readDateTime takes, and sends nothing it refuses but a day its month
 * does not have (2026-02-30), which no pattern says (the parameter's description does): each field's range, no
 * leap second, and the zone a time needs, which DATE_TIME leaves to readDateTime so that it can say what is missing.
 */
export const DATE_TIME_PATTERN =
  '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])' +
  '([Tt ]([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d+)?)?([Zz]|[+-]([01]\\d|2[0-3])(:?[0-5]\\d)?))?$';

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
  // The milliseconds from the fraction's first three digits: Number('0.99999999999999999') * 1000 is 1000,
  // which would roll 23:59:59 over into the next day.
  d.setUTCHours(hour, minute, second, Number((m[7] ?? '.').slice(1, 4).padEnd(3, '0')));
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
