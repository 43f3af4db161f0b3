// Which proxies' X-Forwarded-For the server believes (`cxr serve --trust-proxy`). Behind a TLS proxy every client
// reaches the server from the proxy's address, so the protections kept per client address (the wrong-token
// throttle, the upload share) would apply to all clinicians together: one client's wrong tokens would lock them
// all out.
// The proxies listed here are believed; no one else is: a client believed could give itself any address and dodge
// the throttle. So the list holds IP addresses and CIDR ranges only, never "everyone" (true, *, a /0), and a bad
// entry is refused before the server starts, not found at the first request.
import * as net from 'node:net';

/** An entry of the list that is not an IP address or a CIDR range (its message says which and why). */
export class TrustProxyError extends Error {
  readonly code = 'BAD_TRUST_PROXY';
  constructor(message: string) {
    super(message);
    this.name = 'TrustProxyError';
  }
}

const EXAMPLES = 'an IP address or CIDR range of a proxy, e.g. 127.0.0.1, 10.1.2.0/24 or ::1';

/** Why `entry` is not an address or range of a proxy to believe; null when it is one. */
export function trustProxyProblem(entry: string): string | null {
  const slash = entry.lastIndexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  // net.isIP, not the looser parser Fastify's proxy-addr uses: '127.1' or '0x7f000001' are refused, not read.
  const family = net.isIP(address);
  if (family === 0) return `not ${EXAMPLES}`;
  if (slash < 0) return null;
  const bits = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `the range's prefix must be a number from 1 to ${max}`;
  // A /0 believes every client: any of them could then give itself any address.
  if (Number(bits) === 0) return 'a /0 range would believe every client (any of them could forge its address)';
  return null;
}

/**
 * The list as given (repeated, or comma-separated in one value), each entry checked: throws TrustProxyError naming
 * the first bad one. `source` names where the list came from in the message (`--trust-proxy`, `CXR_TRUST_PROXY`).
 */
export function trustedProxies(values: readonly string[], source = 'trustProxy'): string[] {
  const entries = values.flatMap((v) => v.split(',')).map((e) => e.trim());
  for (const entry of entries) {
    const problem = entry === '' ? `an empty entry (${EXAMPLES})` : trustProxyProblem(entry);
    if (problem) throw new TrustProxyError(`${source} ${JSON.stringify(entry)}: ${problem}`);
  }
  return entries;
}
