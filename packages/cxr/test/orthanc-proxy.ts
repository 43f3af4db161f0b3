// A small HTTP proxy in front of the stack's Orthanc, as hospitals put one: slow (each request held for a
// while, a PACS under load), or serving Orthanc under a path prefix (/pacs/) and answering 404 elsewhere, as
// nginx does. It notes every request that reaches it, so a test can tell when the client stopped asking. A test
// may also take some requests itself (an outage's 503, a download that never answers) before they are passed on.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyOptions {
  /** Milliseconds each request is held before it is passed on. */
  delayMs?: number;
  /** Orthanc is served under this path only ('/pacs'); anything else is nginx's 404 page. */
  prefix?: string;
  /** What a path outside the prefix gets: nginx's 404 (default), or a web page with 200 (a portal's catch-all). */
  elsewhere?: 'not-found' | 'html-page';
  /**
   * Sees each request first (its body read): true when it took the request itself (answered it, or left it
   * without an answer on purpose), false to pass it on to Orthanc.
   */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

/** Whether `url` is a film's download (GET /instances/ID/file), where the sync tests make their faults. */
export const isFilmDownload = (url: string | undefined) => /^\/instances\/[^/]+\/file$/.test(url ?? '');

export interface OrthancProxy {
  /** The proxy's root URL, without a trailing slash. */
  url: string;
  /** Every request that reached it: when, and its path. */
  seen: { at: number; path: string }[];
  close(): Promise<void>;
}

export async function startOrthancProxy(target: string, o: ProxyOptions = {}): Promise<OrthancProxy> {
  const seen: { at: number; path: string }[] = [];
  const server = http.createServer(async (req, res) => {
    const url = req.url ?? '/';
    seen.push({ at: Date.now(), path: url });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (o.intercept?.(req, res)) return;
    if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
    let route = url;
    if (o.prefix) {
      if (url !== o.prefix && !url.startsWith(`${o.prefix}/`)) {
        const page = o.elsewhere === 'html-page';
        res.writeHead(page ? 200 : 404, { 'content-type': 'text/html' });
        res.end(page ? '<html><body>Hospital portal</body></html>' : '<html><body>404 Not Found</body></html>');
        return;
      }
      route = url.slice(o.prefix.length) || '/';
    }
    try {
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'content-type', 'accept']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const body = chunks.length ? new Uint8Array(Buffer.concat(chunks)) : undefined;
      const r = await fetch(target + route, { method: req.method, headers, body });
      const bytes = Buffer.from(await r.arrayBuffer());
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(bytes);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
