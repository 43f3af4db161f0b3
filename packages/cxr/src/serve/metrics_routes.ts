// The route label of cxr_http_requests_total for answers that come from no route's handler. A known path
// asked with a method it does not take is answered 405 by the not-found handler (problem.ts), where fastify
// has no route pattern (routeOptions.url is undefined): labelled "unmatched", it read as an unknown path.
// Those are labelled with the pattern of the route that has the path; only unknown paths stay "unmatched".
import type { FastifyInstance, FastifyRequest } from 'fastify';
// The page's catch-all (its 405 is its own) and route patterns on raw paths, as the 405 answers read them.
import { CATCH_ALL, compile } from './methods';

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
