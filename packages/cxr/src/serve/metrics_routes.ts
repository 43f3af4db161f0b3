// The route label of cxr_http_requests_total for answers that come from no route's handler. A known path
// asked with a method it does not take is answered 405 by the not-found handler (problem.ts), where fastify
// has no route pattern (routeOptions.url is undefined): labelled "unmatched", it read as an unknown path.
// Those are labelled with the pattern of the route that has the path; only unknown paths stay "unmatched".
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The page's catch-all route (routes/web.ts): the 405 of a page file is its own. */
const CATCH_ALL = '/*';

/** A fastify route URL as a RegExp on the raw path: `:name` is one segment, `*` the rest (as methods.ts). */
function compile(url: string): RegExp {
  const parts = url.split(/(:[A-Za-z0-9_]+|\*)/).map((p) => {
    if (p === '*') return '.*';
    if (p.startsWith(':')) return '[^/]+';
    return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * Records the routes added to `app` from now on (call it before any route); the returned function gives a
 * request's route label: the matched pattern, for a 405 the pattern that has its path, else undefined.
 */
export function routeLabels(app: FastifyInstance): (req: FastifyRequest, status: number) => string | undefined {
  const patterns = new Map<string, RegExp>();
  let catchAll = false;
  app.addHook('onRoute', (route) => {
    if (route.url === CATCH_ALL) catchAll = true;
    else if (!patterns.has(route.url)) patterns.set(route.url, compile(route.url));
  });
  return (req, status) => {
    if (req.routeOptions.url !== undefined || status !== 405) return req.routeOptions.url;
    const path = req.url.split('?')[0];
    for (const [url, pattern] of patterns) if (pattern.test(path)) return url;
    return catchAll ? CATCH_ALL : undefined;
  };
}
