// The route label of cxr_http_requests_total for answers that come from no route's handler. A known path
// asked with a method it does not take is answered 405 by the not-found handler (problem.ts), where fastify
// has no route pattern (routeOptions.url is undefined): labelled "unmatched", it read as an unknown path.
// Those are labelled with the pattern of the route that has the path; only unknown paths stay "unmatched".
import type { FastifyRequest } from 'fastify';
// The routes as the 405 answers read them: one table (methods.ts), so a 405 and its label cannot disagree.
import type { MethodTable } from './methods';

/**
 * A request's route label from `routes` (methodTable's, made before any route was added): the matched
 * pattern, for a 405 the pattern that has its path, else undefined.
 */
export function routeLabels(routes: MethodTable): (req: FastifyRequest, status: number) => string | undefined {
  return (req, status) => {
    if (req.routeOptions.url !== undefined || status !== 405) return req.routeOptions.url;
    return routes.routeOf(req.url.split('?')[0]);
  };
}
