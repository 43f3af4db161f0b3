// Which methods a path answers to, so that a known path asked with another method gets 405 and an
// Allow header (RFC 9110 §15.5.6) instead of fastify's 404, which reads as "no such resource".
// Routes are recorded as they are added (onRoute), so the table cannot drift from the router.
import type { FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import * as path from 'node:path';

interface RouteShape {
  pattern: RegExp;
  methods: Set<string>;
}

/** The page's catch-all route (@fastify/static, routes/web.ts): it claims every path, files or not. */
const CATCH_ALL = '/*';

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
 * Whether the static handler rooted at `root` would send a file for this raw path: a file, or a
 * folder's index.html when the path ends with `/` (`/`; without the slash it answers 404). What it
 * refuses answers false: undecodable escapes, dot segments (`..`, and dotfiles, which it denies) and
 * anything resolving outside the root.
 */
export function servesStaticFile(root: string, rawPath: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return false;
  }
  const segments = decoded.split(/[/\\]/).filter(Boolean);
  if (decoded.includes('\0') || segments.some((s) => s.startsWith('.'))) return false;
  const base = path.resolve(root);
  let file = path.join(base, ...segments);
  if (file !== base && !file.startsWith(base + path.sep)) return false;
  try {
    if (fs.statSync(file).isDirectory()) {
      if (!decoded.endsWith('/')) return false;
      file = path.join(file, 'index.html');
    }
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The routes of an app as they were added: the methods a path (without its query) answers to, [] when none;
 * `routeOf` gives the pattern that has the path (the first added that matches), for a label of a request no
 * route's handler answered (metrics_routes.ts). One table, so that the 405 and its label read the same routes.
 */
export interface MethodTable {
  (path: string): string[];
  /** The route pattern that has `path`; the catch-all's (`/*`) when none does and it was added, else undefined. */
  routeOf(path: string): string | undefined;
}

/**
 * Records every route added to `app` from now on (call it before any route). The page's catch-all (`/*`,
 * the static files) is not a pattern here: it would claim every path, and a missing page file is a 404
 * whatever the method. A path it would serve a file for (`staticRoot`: the folder it serves) answers to
 * its methods (GET, HEAD), so `PUT /index.html` is a 405 too.
 */
export function methodTable(app: FastifyInstance, staticRoot?: string | null): MethodTable {
  const routes = new Map<string, RouteShape>();
  const catchAll = new Set<string>();
  app.addHook('onRoute', (route) => {
    let methods = catchAll;
    if (route.url !== CATCH_ALL) {
      const shape = routes.get(route.url) ?? { pattern: compile(route.url), methods: new Set<string>() };
      routes.set(route.url, shape);
      methods = shape.methods;
    }
    for (const m of [route.method].flat()) methods.add(m);
    // fastify answers HEAD for every GET route (exposeHeadRoutes).
    if (methods.has('GET')) methods.add('HEAD');
  });
  const allowed = (urlPath: string): string[] => {
    const found = new Set<string>();
    for (const { pattern, methods } of routes.values())
      if (pattern.test(urlPath)) for (const m of methods) found.add(m);
    // Only when the catch-all was added: routes/web.ts adds it only for a folder with a built page.
    if (!found.size && catchAll.size && staticRoot && servesStaticFile(staticRoot, urlPath))
      return [...catchAll].sort();
    return [...found].sort();
  };
  const routeOf = (urlPath: string): string | undefined => {
    for (const [url, { pattern }] of routes) if (pattern.test(urlPath)) return url;
    return catchAll.size ? CATCH_ALL : undefined;
  };
  return Object.assign(allowed, { routeOf });
}
