// POST /predictions from a client that hangs up while its request waits for a prediction slot: the request
// is dropped when its turn comes, neither decoded, predicted nor audited (six clients that sent a slow file
// and timed out used to hold a normal upload for 63 s, and left audit rows for answers nobody received).
// A prediction under way when its client goes is finished and audited as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import type { ServePredictor } from '../src/serve/predictor_port';
import { gradientFilm, loadPredictor, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';

interface LogLine {
  msg?: string;
  res?: { statusCode?: number };
}

let dir: string;
let inner: ServePredictor;
let film: Buffer;

before(async () => {
  dir = tempDir('serve-client-gone');
  inner = await loadPredictor(await makeTinyModel(path.join(dir, 'model')));
  film = await gradientFilm();
});

after(() => {
  inner.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The real predictor, counting its calls; a call waits for `release` before it predicts, when one is set
 * (so that a request can be kept waiting for the only slot).
 */
function gated(): { predictor: ServePredictor; calls: () => number; hold: () => () => void } {
  let calls = 0;
  let gate: Promise<void> | null = null;
  const predictor: ServePredictor = {
    model: inner.model,
    warmUp: (b) => inner.warmUp(b),
    dispose: () => {},
    predict: async (bytes, opts) => {
      calls++;
      if (gate) await gate;
      return inner.predict(bytes, opts);
    },
  };
  const hold = () => {
    let open = () => {};
    gate = new Promise<void>((r) => {
      open = r;
    });
    return () => {
      gate = null;
      open();
    };
  };
  return { predictor, calls: () => calls, hold };
}

/** Sends the film over a socket of its own; the answer's status, and the request to hang up with. */
function send(base: string): { req: http.ClientRequest; status: Promise<number> } {
  const { body, headers } = multipartBody('image', 'film.png', film);
  let req!: http.ClientRequest;
  const status = new Promise<number>((resolve, reject) => {
    req = http.request(
      `${base}/api/v1/predictions?heatmap=false`,
      { method: 'POST', agent: false, headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  return { req, status };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function serve(
  name: string,
): Promise<{ app: FastifyInstance; audit: AuditStore; base: string; lines: LogLine[] } & ReturnType<typeof gated>> {
  const g = gated();
  const audit = await openAuditStore(path.join(dir, `${name}.db`));
  // The server's log lines, as pino writes them (JSON, one per line).
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const app = await buildApp({ predictor: g.predictor, audit, concurrency: 1, logger });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, audit, base, lines, ...g };
}

async function waiting(app: FastifyInstance): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(/^cxr_predictions_waiting (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

async function connections(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
}

test('a request whose client hung up while it waited for the slot is neither predicted nor audited', async () => {
  const s = await serve('waiting');
  try {
    const release = s.hold();
    const first = send(s.base);
    await until('the first prediction to start', async () => s.calls() === 1);
    const second = send(s.base);
    second.status.catch(() => {}); // it hangs up: no answer comes
    await until('the second request to wait for the slot', async () => (await waiting(s.app)) === 1);
    second.req.destroy();
    await until('the server to see the second client go', async () => (await connections(s.app)) === 1);
    release();
    assert.equal(await first.status, 200);
    // The slot is free again once the dropped request has had (and given back) its turn.
    await until('the queue to empty', async () => (await waiting(s.app)) === 0);
    assert.equal(await send(s.base).status, 200);
    assert.equal(s.calls(), 2, 'predicted: the first and the third request, not the abandoned one');
    assert.equal(await s.audit.count(), 2);
    // Dropped, yet counted once as nginx's 499 (the client's doing) and logged so (docs/api.md).
    const text = (await s.app.inject({ method: 'GET', url: '/metrics' })).body;
    const dropped = /^cxr_http_requests_total\{[^}]*status="499"[^}]*\} (\d+)$/m.exec(text);
    assert.equal(
      dropped?.[1],
      '1',
      text
        .split('\n')
        .filter((l) => l.startsWith('cxr_http_requests_total'))
        .join('\n'),
    );
    assert.ok(
      s.lines.some((l) => l.res?.statusCode === 499 && /CLIENT_CLOSED_REQUEST/.test(l.msg ?? '')),
      JSON.stringify(s.lines),
    );
  } finally {
    await s.app.close();
    await s.audit.close();
  }
});

test('a prediction under way when its client hangs up is still finished and audited', async () => {
  const s = await serve('running');
  try {
    const release = s.hold();
    const only = send(s.base);
    only.status.catch(() => {});
    await until('the prediction to start', async () => s.calls() === 1);
    only.req.destroy();
    await until('the server to see the client go', async () => (await connections(s.app)) === 0);
    release();
    await until('the audit row', async () => (await s.audit.count()) === 1);
  } finally {
    await s.app.close();
    await s.audit.close();
  }
});
