// The Accept header, honoured on every route of the API (RFC 9110 §12.5.1): a request that accepts none of
// the media types an operation answers in gets 406 NOT_ACCEPTABLE before its route runs (before an upload is
// read or a prediction made), rather than a body it said it cannot take. Accepting problems
// (application/problem+json) alone is not enough: such a client could take an error but never the success, so
// it too gets the 406 (itself a problem, which it takes). The types are the operation's own, read from its
// success responses as the OpenAPI document lists them: JSON for most, image/png for the heat map and
// thumbnail, a model file's two types. A missing Accept, `*/*` and a browser's usual header (text/html, ...,
// */*;q=0.8) accept them all. As the answer depends on Accept, each says so (Vary: Accept), so that a shared
// cache never hands one client's answer to another whose Accept differs.
import type { FastifyInstance, FastifySchema } from 'fastify';
import { HttpError } from './http_error';
import { PROBLEM_TYPE } from './problem';
import { addVary } from './vary';

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

/** RFC 9110 §12.4.2's qvalue: 0 to 1, three decimals at most (`0`, `0.8`, `1.000`). */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The ranges of an Accept header. An element that is not `type/subtype` (with parameters) is passed over, and
 * so is one whose weight is not a qvalue (`q=`, `q=abc`, `q=1.5`, `q=-1`): a malformed element, which neither
 * excludes its type (as q=0 would) nor takes it (as q=1 would). Only the first `q` counts (the others are
 * extensions).
 */
export function mediaRanges(accept: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const element of accept.split(',')) {
    const [range, ...params] = element.split(';').map((s) => s.trim().toLowerCase());
    const m = /^([\w!#$%&'*+.^`|~-]+)\/([\w!#$%&'*+.^`|~-]+)$/.exec(range ?? '');
    if (!m || (m[1] === '*' && m[2] !== '*')) continue;
    const qParam = params.find((p) => /^q\s*=/.test(p));
    const qText = qParam?.replace(/^q\s*=\s*/, '');
    if (qText !== undefined && !QVALUE.test(qText)) continue;
    out.push({ type: m[1], subtype: m[2], q: qText === undefined ? 1 : Number(qText) });
  }
  return out;
}

/**
 * How much `accept` wants `media` (type/subtype): the q of the most specific range that matches it (an exact
 * one over `type/*` over `*\/*`), 0 for none or q=0 ("not this"). A header without any range wants anything (1).
 */
export function preference(accept: string | undefined, media: string): number {
  const ranges = mediaRanges(accept ?? '');
  if (!ranges.length) return 1;
  const [type, subtype] = media.toLowerCase().split('/');
  let best: MediaRange | undefined;
  let bestRank = -1;
  for (const r of ranges) {
    const rank =
      r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' ? 0 : -1;
    if (rank > bestRank) [best, bestRank] = [r, rank];
  }
  return best === undefined ? 0 : Math.max(best.q, 0);
}

/** Whether `accept` takes `media` (type/subtype) at all (preference above 0). */
export function accepts(accept: string | undefined, media: string): boolean {
  return preference(accept, media) > 0;
}

type Responses = Record<string, { content?: Record<string, unknown> } | undefined>;

/** The media types an operation succeeds in: its 2xx responses' (JSON where a response names none). */
export function answeredTypes(schema: FastifySchema | undefined): string[] {
  const responses = (schema?.response ?? {}) as Responses;
  const types = new Set<string>();
  for (const [status, r] of Object.entries(responses)) {
    if (!/^2/.test(status)) continue;
    const content = r?.content ? Object.keys(r.content) : ['application/json'];
    for (const t of content) types.add(t);
  }
  return types.size ? [...types] : ['application/json'];
}

/**
 * Refuses (406) a request of `scope`'s routes whose Accept takes none of its operation's types (register
 * first); every answer of the scope says Vary: Accept.
 */
export function honourAccept(scope: FastifyInstance): void {
  const known = new WeakMap<object, string[]>();
  // On send, so that every answer of the scope has it (a 406, an error, a HEAD) whatever set Vary before.
  scope.addHook('onSend', async (_req, reply, payload) => {
    addVary(reply, 'Accept');
    return payload;
  });
  scope.addHook('onRequest', async (req) => {
    const accept = req.headers.accept;
    if (accept === undefined) return;
    const schema = req.routeOptions.schema;
    let types = schema ? known.get(schema) : undefined;
    if (!types) {
      types = answeredTypes(schema);
      if (schema) known.set(schema, types);
    }
    // The success's types only: a client taking problems alone could not take the answer it asked for.
    if (types.some((t) => accepts(accept, t))) return;
    throw new HttpError(
      406,
      'NOT_ACCEPTABLE',
      `this operation answers ${types.join(' or ')} (and its errors ${PROBLEM_TYPE}), which the Accept header ` +
        `does not take: ${JSON.stringify(accept.slice(0, 200))}; send Accept: ${types[0]}, ${PROBLEM_TYPE}, or none`,
    );
  });
}
