// A throttle on wrong API tokens, per client address: without it a client could try tokens as fast as the server
// answers. Only refused tokens count: a client with a right token never adds to it, and one address's wrong tokens
// never refuse another address. An address that sent `maxFailures` different wrong tokens within a window (from
// its first wrong one) is refused, 429, for the rest of that window, whatever token it sends: a right token let
// through meanwhile would tell a guess right from wrong by the answer, and the throttle would stop nothing.
// Different tokens are counted, not requests: a page that sends one mistyped token on several requests at once,
// or a script retrying with a stale one, guesses nothing new.
//
// Memory is bounded: at most `maxAddresses` windows are kept, the oldest forgotten first (a flood of addresses
// cannot grow the table; each of them gets its own few guesses in any case). An IPv6 client is counted by its
// /64 prefix, the block one subscriber is given, so that its 2^64 addresses are one client.
import * as crypto from 'node:crypto';
import * as net from 'node:net';

export interface AuthThrottleOptions {
  /** Different wrong tokens one address may send within a window; the next request is refused (default 10). */
  maxFailures?: number;
  /** The window, from an address's first wrong token (default 60 s). */
  windowMs?: number;
  /** Addresses followed at once (default 10,000); past it the oldest window is forgotten. */
  maxAddresses?: number;
  /** The clock (tests). */
  now?: () => number;
}

export const AUTH_THROTTLE_DEFAULTS = { maxFailures: 10, windowMs: 60_000, maxAddresses: 10_000 } as const;

interface Window {
  start: number;
  /** Digests of the wrong tokens sent (16 hex digits: enough to tell guesses apart, never the token). */
  tokens: Set<string>;
  /** The refusal was logged: once a window. */
  logged: boolean;
}

/** IPv6 groups of an address (its `::` expanded, an IPv4 tail as two groups). */
function ipv6Groups(address: string): string[] {
  let s = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16).toString(16));
}

/** Who an address counts as: an IPv4 address (mapped into IPv6 too) itself, an IPv6 address its /64. */
export function clientKey(address: string): string {
  // A link-local zone (fe80::1%eth0) cut off. By indexOf, not /%.*$/: that regex took time in the square of the
  // length of a string of many '%' and a line break (seconds for 100,000 characters).
  const zone = address.indexOf('%');
  const bare = zone < 0 ? address : address.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1];
  if (!net.isIPv6(bare)) return bare;
  const groups = ipv6Groups(bare);
  // A mapped IPv4 address written in hex (::ffff:a00:1, as some proxies forward it) is that IPv4 address too: as
  // a /64 it was one client with every other mapped address, and one's wrong tokens refused them all.
  if (groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff') {
    const [hi, lo] = groups.slice(6).map((g) => parseInt(g, 16));
    return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  }
  return `${groups.slice(0, 4).join(':')}::/64`;
}

export class AuthThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxAddresses: number;
  private readonly now: () => number;
  /** In the order the windows started (a window that ends is deleted, a new one appended): oldest first. */
  private readonly windows = new Map<string, Window>();

  constructor(opts: AuthThrottleOptions = {}) {
    this.maxFailures = opts.maxFailures ?? AUTH_THROTTLE_DEFAULTS.maxFailures;
    this.windowMs = opts.windowMs ?? AUTH_THROTTLE_DEFAULTS.windowMs;
    this.maxAddresses = opts.maxAddresses ?? AUTH_THROTTLE_DEFAULTS.maxAddresses;
    this.now = opts.now ?? Date.now;
    for (const [k, v] of Object.entries({ maxFailures: this.maxFailures, maxAddresses: this.maxAddresses }))
      if (!Number.isInteger(v) || v < 1) throw new TypeError(`${k}: ${v}`);
    if (!(this.windowMs > 0)) throw new TypeError(`windowMs: ${this.windowMs}`);
  }

  /** Addresses followed now (bounded by maxAddresses). */
  get size(): number {
    return this.windows.size;
  }

  /** Seconds the address must wait before it may send a token again; 0: it may now. */
  retryAfterS(address: string): number {
    const w = this.current(clientKey(address));
    if (!w || w.tokens.size < this.maxFailures) return 0;
    return Math.max(1, Math.ceil((w.start + this.windowMs - this.now()) / 1000));
  }

  /**
   * A token refused from `address` (`authorization`: the header sent). True once a window: when this one brings
   * the address to the limit (the caller logs it then, not on every refused request).
   */
  fail(address: string, authorization: string): boolean {
    const key = clientKey(address);
    let w = this.current(key);
    if (!w) {
      this.makeRoom();
      w = { start: this.now(), tokens: new Set(), logged: false };
      this.windows.set(key, w);
    }
    if (w.tokens.size < this.maxFailures)
      w.tokens.add(crypto.createHash('sha256').update(authorization).digest('hex').slice(0, 16));
    if (w.tokens.size < this.maxFailures || w.logged) return false;
    w.logged = true;
    return true;
  }

  /** The address's window, if one is running (an ended one is deleted). */
  private current(key: string): Window | undefined {
    const w = this.windows.get(key);
    if (w && this.now() - w.start >= this.windowMs) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  /** Ended windows go first (they are the oldest), then the oldest running ones while the table is full. */
  private makeRoom(): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      if (now - w.start < this.windowMs && this.windows.size < this.maxAddresses) break;
      this.windows.delete(key);
    }
  }
}
