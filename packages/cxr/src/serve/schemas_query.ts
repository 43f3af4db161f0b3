// Query parameters read strictly, before the JSON schemas validate them, on every route of the API:
// - a parameter the route's querystring schema does not list (or any, on a route with none) is refused,
//   one rule for every operation: a misspelt filter silently ignored would answer the wrong question.
// - numbers: the validator (Ajv, through fastify) coerces a query string with `+value`, so "0x10" read
//   as 16, "1e1" as 10, " 5" as 5, and "Infinity" as Infinity, which then passed `minimum`/`maximum`
//   (Ajv skips them for a number that is not finite): ?page=Infinity was a 500, ?patientAge=Infinity
//   reached the predictor.
// - date-times (the parameters whose schema has date_time.ts's pattern): read by readDateTime, which
//   checks what no pattern can (a day its month has), and handed on as a plain UTC time.
// A parameter refused here is a 400 INVALID_REQUEST naming it, as the schema's own refusals are.
import type { FastifyInstance } from 'fastify';
import { auditTime } from './audit_sql';
import { DATE_TIME_PATTERN, readDateTime } from './date_time';
import { HttpError } from './http_error';

interface ParamSchema {
  type?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
}

/**
 * Decimal digits only: no sign (not '+5', '-1', nor '-0', which would pass a minimum of 0), no exponent, no
 * hex, no spaces, no leading or trailing dot. No query number of the API is negative.
 */
const DECIMAL = { number: /^\d+(\.\d+)?$/, integer: /^\d+$/ } as const;

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
  if (s.pattern === DATE_TIME_PATTERN) {
    const t = readDateTime(raw);
    if ('error' in t) refuse(name, `${t.error}; got ${shown}`);
    return auditTime(t.ms); // as the audit log writes times, which the pattern takes
  }
  return raw;
}

/** The query parameters a route lists none of, each named as the schema's own refusal names one (problem.ts). */
function refuseUnknown(names: string[], listed: string[]): never {
  const takes = listed.length ? `this operation takes ${listed.join(', ')}` : 'this operation takes none';
  // `?=1` has a parameter named '' (quoted, it reads as a misprint of the message): said in words.
  const said = (n: string) =>
    n === '' ? 'an empty query parameter name' : `unknown query parameter '${n.slice(0, 100)}'`;
  const unknown = names.map(said).join('; ');
  throw new HttpError(400, 'INVALID_REQUEST', `${unknown} (${takes})`);
}

/**
 * Checks the query of every route registered in `scope` (register it before them) against the route's
 * querystring schema, which still validates the rest: a parameter it does not list is refused, every number
 * and date-time is read strictly.
 */
export function strictQueryParams(scope: FastifyInstance): void {
  scope.addHook('preValidation', async (req) => {
    const props =
      (req.routeOptions.schema?.querystring as { properties?: Record<string, ParamSchema> } | undefined)?.properties ??
      {};
    if (!req.query || typeof req.query !== 'object') return;
    const query = req.query as Record<string, unknown>;
    const unknown = Object.keys(query).filter((name) => !Object.hasOwn(props, name));
    // Except where the route says its query means nothing (GET /health): a monitor that adds a cache-buster
    // (`?_=1700000000`) would take the 400 for a server that is down.
    const ignores = (req.routeOptions.config as { unknownQueryIgnored?: boolean }).unknownQueryIgnored === true;
    if (unknown.length && !ignores) refuseUnknown(unknown.slice(0, 5), Object.keys(props));
    for (const [name, s] of Object.entries(props)) {
      if (query[name] !== undefined) query[name] = readParam(name, s, query[name]);
    }
  });
}
