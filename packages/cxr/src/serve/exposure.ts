// Who may talk to the server, beyond the token:
// - Host allow-list against DNS rebinding: a hostile page whose name re-resolves to 127.0.0.1
//   reaches this port with its own name in the Host header. Accepted: localhost names, IP
//   literals (a rebinding attack always carries the attacker's name, never an IP), the host the
//   server is bound to, and names added with --allowed-host.
// - Origin check on state-changing requests: a browser sends Origin on a cross-site POST; a
//   request whose Origin is not the server's own origin (or an allowed host) is refused, so a
//   page elsewhere cannot submit images into the audit log from a user's browser.
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './http_error';

const LOCAL_NAMES = ['localhost', 'localhost.localdomain', 'ip6-localhost'];

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return LOCAL_NAMES.includes(h) || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'));
}

/** The hostname of a Host header or URL host, lower-cased, without port or IPv6 brackets. */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') >= 0 ? h.indexOf(']') : undefined);
  const colon = h.indexOf(':');
  return colon >= 0 && h.indexOf(':', colon + 1) < 0 ? h.slice(0, colon) : h;
}

export interface ExposureOptions {
  /** The --host the server listens on. */
  boundHost: string;
  /** Extra names accepted in Host and Origin (--allowed-host). */
  allowedHosts?: string[];
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** An onRequest check: throws 403 for a Host outside the allow-list or a foreign Origin. */
export function exposureCheck(opts: ExposureOptions): (req: FastifyRequest) => void {
  const extra = new Set((opts.allowedHosts ?? []).map(hostnameOf));
  // An --allowed-host origin (the page through a TLS proxy) on the default port of http or https (80, 443), or on
  // the port given with it (NAME:PORT): another service on that host, on another port, may not post here.
  const extraOrigins = new Set((opts.allowedHosts ?? []).map((h) => h.trim().toLowerCase()));
  const names = new Set([...LOCAL_NAMES, hostnameOf(opts.boundHost), ...extra]);
  const hostAllowed = (hostname: string) => names.has(hostname) || net.isIP(hostname) !== 0;
  return (req) => {
    const host = req.headers.host;
    // HTTP/1.0 clients may omit Host; browsers never do, so there is nothing to rebind.
    if (host !== undefined && !hostAllowed(hostnameOf(host))) {
      throw new HttpError(
        403,
        'HOST_NOT_ALLOWED',
        `Host '${host.slice(0, 100)}' is not one this server answers to (start it with --allowed-host NAME to add it)`,
      );
    }
    const origin = req.headers.origin;
    if (origin === undefined || !STATE_CHANGING.has(req.method)) return;
    let originHost: string | null = null;
    let defaultPort = false;
    try {
      const u = new URL(origin);
      if (u.protocol === 'http:' || u.protocol === 'https:') originHost = u.host;
      defaultPort = u.port === '';
    } catch {
      originHost = null; // "null" (sandboxed frames, file:) or garbage
    }
    const sameOrigin = originHost !== null && host !== undefined && originHost === host.toLowerCase();
    const allowed =
      originHost !== null && ((defaultPort && extra.has(hostnameOf(originHost))) || extraOrigins.has(originHost));
    if (!sameOrigin && !allowed) {
      throw new HttpError(
        403,
        'CROSS_ORIGIN',
        `cross-origin ${req.method} from '${origin.slice(0, 100)}' refused: only this server's own page may send it`,
      );
    }
  };
}

/** The URL the server really listens on (fastify's listen() names 127.0.0.1 for 0.0.0.0). */
export function listenUrl(address: AddressInfo | string | null): string {
  if (!address || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
