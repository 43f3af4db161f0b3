// The web page at /: the built bundle when there is one, else a line saying why there is none.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HttpError } from '../http_error';

/** The longest file name, and path, Linux takes (bytes): longer names no file of the page. */
const NAME_MAX = 255;
const PATH_MAX = 4096;

/**
 * Paths the file handler would refuse with a bare 403 "Forbidden" (it fails closed on any path that
 * is not canonical), said first: an empty or '.' segment (`/api/v1//health`, a typo) names nothing,
 * a 404 as any unknown path; a '..' segment would leave the page's folder, and hidden files (a name
 * starting with '.') are never served: a 403 that says so.
 */
function refuseOddPath(req: FastifyRequest): void {
  const raw = req.url.split('?')[0];
  let segments: string[];
  try {
    segments = decodeURIComponent(raw).split('/').slice(1);
  } catch {
    return; // bad escapes: the file handler answers those
  }
  const shown = raw.slice(0, 200);
  if (segments.includes('..')) {
    throw new HttpError(403, 'FORBIDDEN', `${shown}: a path with a '..' segment would leave the page's folder`);
  }
  if (segments.some((s) => s.startsWith('.') && s !== '.')) {
    throw new HttpError(403, 'FORBIDDEN', `${shown}: files and folders whose names start with '.' are not served`);
  }
  // A name or path longer than the file system takes names no file: the file handler's bare 403 would say it is
  // forbidden (a long API path, /api/v1/jobs/<5000 characters>, reaches it once the router's own limit passes it on).
  if (segments.some((s) => Buffer.byteLength(s) > NAME_MAX) || Buffer.byteLength(raw) >= PATH_MAX) {
    throw new HttpError(
      404,
      'NOT_FOUND',
      `no such resource: ${req.method} ${shown} (a path or name too long for a file)`,
    );
  }
  // A last empty segment is a trailing slash (a folder's index), not an empty segment.
  if (segments.slice(0, -1).includes('') || segments.includes('.')) {
    throw new HttpError(
      404,
      'NOT_FOUND',
      `no such resource: ${req.method} ${shown} (a path with an empty '//' or '.' segment names nothing here)`,
    );
  }
}

export async function webRoutes(app: FastifyInstance, webDir: string | null | undefined): Promise<void> {
  if (webDir && fs.existsSync(path.join(webDir, 'index.html'))) {
    // In a scope of its own, so that the check runs for the page's files only.
    await app.register(async (page) => {
      page.addHook('onRequest', async (req) => refuseOddPath(req));
      await page.register(fastifyStatic, {
        root: webDir,
        prefix: '/',
        index: 'index.html',
        dotfiles: 'deny',
        // The bundle's names do not change between builds: make the browser revalidate.
        cacheControl: true,
        maxAge: 0,
      });
    });
  } else {
    // Said as it is: a server started without a page (webDir null), or a folder with no built page in it (a
    // source checkout not built yet). The folder's path is not told to whoever asks.
    const why =
      webDir == null
        ? 'This server was started without the web page (no webDir).'
        : 'The web page is not in its folder (no index.html): in a source checkout, build it with ' +
          '`npm run build` in packages/cxr.';
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/plain; charset=utf-8').send(`cxr API server. ${why}\n`),
    );
  }
}
