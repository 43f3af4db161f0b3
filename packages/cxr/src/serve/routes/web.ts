// The web page at /: the built bundle when there is one, else a line saying how to build it.
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import * as fs from 'node:fs';
import * as path from 'node:path';

export async function webRoutes(app: FastifyInstance, webDir: string | null | undefined): Promise<void> {
  if (webDir && fs.existsSync(path.join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webDir,
      prefix: '/',
      index: 'index.html',
      dotfiles: 'deny',
      // The bundle's names do not change between builds: make the browser revalidate.
      cacheControl: true,
      maxAge: 0,
    });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .send('cxr API server. The web page is not built: run `npm run build` in packages/cxr.\n'),
    );
  }
}
