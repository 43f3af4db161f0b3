// Which methods a path answers to, so that a known path asked with another method gets 405 and an
// Allow header (RFC 9110 §15.5.6) instead of fastify's 404, which reads as "no such resource".
// Routes are recorded as they are added (onRoute), so the table cannot drift from the router.
import type { FastifyInstance } from 'fastify';

interface RouteShape {
  pattern: RegExp;
  methods: Set<string>;
}

/** A fastify route URL as a RegExp on the raw path: `:name` is one segment, `*` the rest. */
function compile(url: string): RegExp {
  const parts = url.split(/(:[A-Za-z0-9_]+|\*)/).map((p) => {
    if (p === '*') return '.*';
    if (p.startsWith(':')) return '[^/]+';
    return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * Records every route added to `app` from now on; the returned function gives the methods a path
 * (without its query) answers to, [] when none. The page's catch-all (`/*`, the static files) is
 * left out: it would claim every path, and a missing page file is a 404 whatever the method.
 */
export function methodTable(app: FastifyInstance): (path: string) => string[] {
  const routes = new Map<string, RouteShape>();
  app.addHook('onRoute', (route) => {
    if (route.url === '/*') return;
    const shape = routes.get(route.url) ?? { pattern: compile(route.url), methods: new Set<string>() };
    for (const m of [route.method].flat()) shape.methods.add(m);
    // fastify answers HEAD for every GET route (exposeHeadRoutes).
    if (shape.methods.has('GET')) shape.methods.add('HEAD');
    routes.set(route.url, shape);
  });
  return (path) => {
    const allowed = new Set<string>();
    for (const { pattern, methods } of routes.values()) if (pattern.test(path)) for (const m of methods) allowed.add(m);
    return [...allowed].sort();
  };
}
