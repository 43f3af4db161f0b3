// Watching an upload's body as it arrives (app.ts attaches it to POST /predictions and /jobs), so that
// no client can keep the server reading, or hold its upload memory (UploadBudget), for long:
// - size: the bytes really received are counted, chunked or not, and 413 comes as soon as they pass the
//   route's limit (a film followed by 500 MiB after the closing boundary used to be read whole, then 200);
// - idle: 408 BODY_TIMEOUT after `idleMs` without a byte;
// - rate: from `rateWindowMs` on, every window of that length must bring `minBytesPerS` × its length,
//   else 408 UPLOAD_TOO_SLOW. Four uploads that sent 32 MiB at once, then a byte every 5 s, held the whole
//   budget (every other upload 503 BUSY) until the 120 s request timeout; now for about one window. A body
//   of declared length slower than that is let finish when, at its last window's rate, the rest arrives
//   before `deadlineMs` (a 150 KB film at 12 KiB/s over a mobile link was refused at 10 s);
// - share: one client address may have at most `ClientShares.limit` bytes of bodies arriving at once
//   (503 BUSY beyond), so that room for another client's upload is left. A request alone from its address
//   is bounded by the budget only (a POST /jobs of several films may be larger than the share): while it
//   arrives, at the minimum rate or faster, another client's upload may find the budget full (503 BUSY).
// The refusal is delivered through the request stream's 'error' event, which @fastify/multipart (and
// fastify's body parser) turn into the error the route's reading throws: the route then answers it as a
// problem, logged and counted as any answer. A 408 closes the connection; after any other answer given
// before the body's end, the rest is read (and thrown away) for LINGER_MS at most. Where nobody reads the
// body, or the answer cannot be written, the connection is dropped and `dropped` logs and counts it.
import { clientKey } from './auth_throttle';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { HttpError } from './http_error';

export interface BodyRules {
  /** Most body bytes taken (the file limit with its multipart framing): `tooLarge()` beyond. */
  maxBytes: number;
  tooLarge: () => HttpError;
  /** No byte for this long: 408 BODY_TIMEOUT. */
  idleMs: number;
  /** Fewer than minBytesPerS × the window in a window of this length, once that long has passed: 408. */
  rateWindowMs: number;
  minBytesPerS: number;
  /** From the body watch's start, when the whole request must be in (the server's request timeout). */
  deadlineMs: number;
}

/**
 * Defaults, against the 120 s request timeout that bounds a whole request: a 32 MiB film needs 280 KB/s
 * on average to arrive within it. 32 KiB/s (256 kbit/s) over 10 s is under an eighth of that: a link that falls
 * below it for 10 s together could not bring a 4 MiB film in time either, while TCP's stalls and slow
 * starts on a congested hospital link are seconds, not a whole window. A client that sends its body at
 * once and then trickles is cut one window after its burst.
 */
export const BODY_DEFAULTS = { idleMs: 10_000, rateWindowMs: 10_000, minBytesPerS: 32 * 1024 };

/** Bytes of bodies still arriving, per client address; `limit` is the most one address may have. */
export class ClientShares {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  /**
   * Counts `n` more bytes for `client`, of a request that has `own` bytes counted with them; false when that
   * takes the client past its share while it has other uploads arriving too (one request alone is the
   * budget's to bound).
   */
  add(client: string, n: number, own: number): boolean {
    const now = (this.held.get(client) ?? 0) + n;
    this.held.set(client, now);
    return now <= this.limit || now === own;
  }

  remove(client: string, n: number): void {
    const left = (this.held.get(client) ?? 0) - n;
    if (left > 0) this.held.set(client, left);
    else this.held.delete(client);
  }

  of(client: string): number {
    return this.held.get(client) ?? 0;
  }
}

/**
 * The amount held and the limit it is over, as MiB with as many decimals as it takes to tell them apart, and in
 * bytes when even four do not: at one decimal, 80 uploads at once read "hold 95.9 MiB, over the 95.9 MiB".
 */
export function heldOverLimit(held: number, limit: number): [string, string] {
  for (let digits = 1; digits <= 4; digits++) {
    const [h, l] = [held, limit].map((n) => (n / 2 ** 20).toFixed(digits));
    if (h !== l) return [`${h} MiB`, `${l} MiB`];
  }
  return [`${held} bytes`, `${limit} bytes`];
}

function overShare(shares: ClientShares, client: string): HttpError {
  const [held, limit] = heldOverLimit(shares.of(client), shares.limit);
  return new HttpError(
    503,
    'BUSY',
    `this client's uploads in progress hold ${held}, over the ${limit} one client address may have at once; ` +
      'retry when one of them is answered',
  );
}

/**
 * How long the rest of a body is still read, and thrown away, once its request has been answered (a refusal
 * before the body's end): a client still sending when the connection closes gets a reset, which can lose the
 * answer it has not read yet. Its body ending in time keeps the connection open for the next request.
 */
const LINGER_MS = 2000;

const lingering = new WeakSet<IncomingMessage>();

/**
 * Answered before its body's end: what is left is read for LINGER_MS at most, then the connection is closed (Node
 * would read it all, for as long as the client sends). app.ts sets it on every request, as a request refused
 * before the body watch starts (401, 403 CROSS_ORIGIN, 404) had its body read to the end: 40 MiB in 8 s, and on,
 * after a 401. Once per request.
 */
export function lingerAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (lingering.has(req)) return;
  lingering.add(req);
  res.once('finish', () => {
    if (req.complete) return;
    // Read and thrown away: a route that stopped reading mid-body (a 503 BUSY, a 400 for a second file) left the
    // stream paused, piped to its dead parser, and Node dumps only a body nobody began to read. The client could
    // then send no more, and its connection was reset at the end of the linger though its body had come in time.
    req.unpipe();
    req.resume();
    setTimeout(() => {
      // Destroying a request whose body has not ended closes its connection.
      if (!req.complete) req.destroy();
    }, LINGER_MS).unref();
  });
}

/** The body bytes received so far of each watched request: a request dropped unanswered is logged with them. */
const bodyReceived = new WeakMap<FastifyRequest, () => number>();

/** The body bytes `req` has received, where its body is watched (undefined otherwise). */
export function bodyBytesRead(req: FastifyRequest): number | undefined {
  return bodyReceived.get(req)?.();
}

/**
 * Watches `req`'s body from now until it has arrived. Throws at once (413) when its declared length, or the
 * part of it already buffered, is over the limit. `dropped` is told of a refusal that could not be answered.
 */
export function watchBody(
  req: FastifyRequest,
  reply: FastifyReply,
  rules: BodyRules,
  shares: ClientShares | null,
  dropped: (err: HttpError) => void,
): void {
  const raw = req.raw;
  if (raw.complete && raw.readableLength <= rules.maxBytes) return;
  // Counted as the wrong-token throttle counts clients (an IPv6 subscriber's /64, an IPv4 address mapped or not).
  const client = clientKey(req.ip);
  let counted = 0; // toward the client's share
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (done) return;
    done = true;
    clearInterval(timer);
    shares?.remove(client, counted);
  };
  reply.raw.once('finish', stop);
  lingerAfterAnswer(raw, reply.raw);
  const declared = Number(req.headers['content-length']);
  // What arrived before this hook: buffered, not read yet.
  let received = raw.readableLength;
  if ((Number.isFinite(declared) && declared > rules.maxBytes) || received > rules.maxBytes) throw rules.tooLarge();
  bodyReceived.set(req, () => received);
  const started = performance.now();
  let lastByte = started;
  // (time, bytes received by then), one a tick, over the last window.
  const samples: [number, number][] = [[started, received]];

  const count = (n: number): HttpError | null => {
    received += n;
    lastByte = performance.now();
    if (received > rules.maxBytes) return rules.tooLarge();
    if (!shares) return null;
    counted += n;
    return shares.add(client, n, counted) ? null : overShare(shares, client);
  };
  // Not delivered from inside the HTTP parser's callback (push): on the next tick.
  const refuse = (err: HttpError) => {
    stop();
    process.nextTick(deliver, err);
  };
  const deliver = (err: HttpError) => {
    const res = reply.raw;
    if (res.headersSent) return; // answered meanwhile: the linger above ends it
    // RFC 9110, 15.5.9: a 408 closes the connection. A 413 or 503 lingers: that client may still be sending.
    if (err.statusCode === 408) reply.header('Connection', 'close');
    res.once('close', () => {
      if (!res.writableFinished) dropped(err);
    });
    if (raw.listenerCount('error') > 0) raw.emit('error', err);
    else raw.destroy(); // nobody is reading the body: no answer can be given in turn
  };

  // Counted where the HTTP parser hands the bytes over, whether or not the route has read them yet.
  const push = raw.push;
  raw.push = (chunk: Buffer | null, encoding?: BufferEncoding): boolean => {
    const ok = push.call(raw, chunk, encoding);
    if (chunk === null) {
      stop();
    } else if (!done) {
      const err = count(chunk.length);
      if (err) refuse(err);
    }
    return ok;
  };
  const check = () => {
    const now = performance.now();
    if (now - lastByte >= rules.idleMs) {
      req.log.info(`upload idle for ${rules.idleMs} ms: refusing it`);
      return refuse(new HttpError(408, 'BODY_TIMEOUT', `no upload data for ${rules.idleMs / 1000} s`));
    }
    samples.push([now, received]);
    while (samples.length > 1 && samples[1][0] <= now - rules.rateWindowMs) samples.shift();
    const [since, then] = samples[0];
    const span = now - since;
    // A body that has stopped is the idle rule's, which says so: this one waits while it looks stopped.
    const trickling = now - lastByte < Math.min(rules.idleMs, rules.rateWindowMs) / 2;
    if (trickling && span >= rules.rateWindowMs && (received - then) * 1000 < rules.minBytesPerS * span) {
      const rate = Math.round(((received - then) * 1000) / span);
      // A slow link that will still be done in time: its declared rest, at this window's rate. Only a body that
      // was never ahead of the minimum rate: one sent at once and then trickled, with a small rest declared,
      // would otherwise hold its bytes to the deadline (it holds no more than an honest upload at that rate).
      const left = Number.isFinite(declared) ? declared - received : Number.POSITIVE_INFINITY;
      const neverAhead = received * 1000 <= rules.minBytesPerS * (now - started + rules.rateWindowMs);
      if (neverAhead && rate > 0 && (left / rate) * 1000 <= rules.deadlineMs - (now - started)) return;
      refuse(
        new HttpError(
          408,
          'UPLOAD_TOO_SLOW',
          `the upload arrived at ${rate} bytes/s over the last ${Math.round(span / 1000)} s; ` +
            `the server needs at least ${rules.minBytesPerS} bytes/s (send it again over a faster link)`,
        ),
      );
    }
  };
  timer = setInterval(check, Math.max(10, Math.min(1000, rules.idleMs / 4, rules.rateWindowMs / 4)));
  timer.unref();
  raw.once('close', stop);
  if (shares && received > 0) {
    counted = received;
    if (!shares.add(client, received, counted)) refuse(overShare(shares, client));
  }
}
