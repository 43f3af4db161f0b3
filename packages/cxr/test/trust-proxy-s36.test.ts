// `cxr serve --trust-proxy` (session 36). Behind the TLS proxy docs/api.md asks for, every client reached the server
// from the proxy's address, so what the server keeps per client address applied to all clinicians together: ten
// wrong tokens from one mistyped script refused everyone's requests for a minute (429), and one client's uploads
// counted against everyone's share of the upload budget. The listed proxies' X-Forwarded-For now names the client;
// no one else's is believed (a client could otherwise forge an address and dodge the throttle), and the Host/Origin
// check still reads the Host header, never a proxy's X-Forwarded-Host. A bad list is refused before anything starts.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../src/log';
import { type AppOptions, buildApp } from '../src/serve/app';
import { startServer } from '../src/serve/server';
import { TrustProxyError, trustedProxies } from '../src/serve/trust_proxy';
import { metricValue, parseMetrics } from './prometheus-text';
import { CLI, envWithoutTokens, makeTinyModel, serverParts, spawnServer } from './serve-fixtures';

const GOOD = 'right-token-proxy-0123456789';
const parts = serverParts('trust-proxy-s36');
const apps: FastifyInstance[] = [];
let modelDir = '';

before(async () => {
  modelDir = await makeTinyModel(path.join(parts.dir, 'cli-model'));
});

after(async () => {
  for (const a of apps) await a.close();
});

interface Answer {
  status: number;
  code?: string;
}

/** A listening app; `lines` gets every log line it writes (JSON). */
async function serve(opts: Partial<AppOptions>) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
  const app = await buildApp({ predictor: parts.predictor, audit: parts.audit, webDir: null, logger, ...opts });
  apps.push(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, port: (app.server.address() as net.AddressInfo).port, lines };
}

/** A real HTTP request to 127.0.0.1:`port` from loopback address `from` (a "proxy" of the test's choosing). */
function ask(
  port: number,
  { from = '127.0.0.1', headers = {}, method = 'GET', url = '/api/v1/model' } = {} as {
    from?: string;
    headers?: Record<string, string>;
    method?: string;
    url?: string;
  },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, localAddress: from, method, path: url, headers }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = JSON.parse(body).code;
        } catch {
          // not JSON: no code
        }
        resolve({ status: res.statusCode ?? 0, code });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const wrong = (i: number, via?: string) => ({
  authorization: `Bearer wrong-guess-${String(i).padStart(4, '0')}`,
  ...(via ? { 'x-forwarded-for': via } : {}),
});

test('behind a trusted proxy, two clients are throttled apart: one mistyped script locks out no one else', async () => {
  const s = await serve({
    tokens: [{ name: 'ward', token: GOOD }],
    authThrottle: { maxFailures: 3, windowMs: 60_000 },
    trustProxy: ['127.0.0.1'],
  });
  for (let i = 0; i < 3; i++)
    assert.equal((await ask(s.port, { headers: wrong(i, '10.0.0.1') })).status, 401, 'the first guesses: 401');
  const refused = await ask(s.port, { headers: wrong(3, '10.0.0.1') });
  assert.equal(refused.status, 429);
  assert.equal(refused.code, 'TOO_MANY_BAD_TOKENS');
  // Another clinician behind the same proxy: the right token works, a wrong one is a plain 401.
  const other = { authorization: `Bearer ${GOOD}`, 'x-forwarded-for': '10.0.0.2' };
  assert.equal((await ask(s.port, { headers: other })).status, 200, 'another client behind the proxy is refused');
  assert.equal((await ask(s.port, { headers: wrong(9, '10.0.0.2') })).status, 401);
  // The throttled client cannot dodge it by sending an X-Forwarded-For of its own: the proxy appends the address
  // it saw, and only the proxy (127.0.0.1) is believed, so the entry before 10.0.0.1 is never read.
  const forged = await ask(s.port, { headers: { ...wrong(4, '10.9.9.9, 10.0.0.1') } });
  assert.equal(forged.status, 429, 'a forged address before the real one dodged the throttle');
  // The log names the client, not the proxy; the request line names the proxy beside it.
  const throttled = s.lines.find((l) => String(l.msg).includes('wrong API tokens from'));
  assert.equal(throttled?.client, '10.0.0.1');
  const arrived = s.lines.filter((l) => l.msg === 'incoming request');
  const fromOther = arrived.find((l) => (l.req as { remoteAddress?: string }).remoteAddress === '10.0.0.2');
  assert.ok(fromOther, 'no request line names the client 10.0.0.2');
  assert.equal(fromOther.proxy, '127.0.0.1');
});

test('without --trust-proxy, X-Forwarded-For is ignored: a new one each time does not dodge the throttle', async () => {
  const s = await serve({
    tokens: [{ name: 'ward', token: GOOD }],
    authThrottle: { maxFailures: 3, windowMs: 60_000 },
  });
  const said: number[] = [];
  for (let i = 0; i < 5; i++) said.push((await ask(s.port, { headers: wrong(i, `10.0.1.${i}`) })).status);
  assert.deepEqual(said, [401, 401, 401, 429, 429]);
  const arrived = s.lines.filter((l) => l.msg === 'incoming request');
  const believed = (l: Record<string, unknown>) =>
    (l.req as { remoteAddress?: string }).remoteAddress !== '127.0.0.1' || 'proxy' in l;
  assert.ok(arrived.length === 5 && !arrived.some(believed), 'the log believed X-Forwarded-For');
});

test('only the listed proxies are believed: X-Forwarded-For from any other address is ignored', async () => {
  // 127.0.0.2 is the proxy; the test's requests from 127.0.0.1 are a client that reaches the server directly.
  const s = await serve({
    tokens: [{ name: 'ward', token: GOOD }],
    authThrottle: { maxFailures: 3, windowMs: 60_000 },
    trustProxy: ['127.0.0.2/32'],
  });
  const said: number[] = [];
  for (let i = 0; i < 5; i++) said.push((await ask(s.port, { headers: wrong(i, `10.0.2.${i}`) })).status);
  assert.deepEqual(said, [401, 401, 401, 429, 429], 'a direct client dodged the throttle with X-Forwarded-For');
  // Through the proxy, the client it names counts, not the proxy: the direct client's 429 is not theirs.
  const via = { authorization: `Bearer ${GOOD}`, 'x-forwarded-for': '10.0.2.9' };
  assert.equal((await ask(s.port, { from: '127.0.0.2', headers: via })).status, 200);
});

/**
 * An upload of `bytes` zero bytes after a file part's head, sent from 127.0.0.1 as client `via` (X-Forwarded-For)
 * and left unfinished: it holds its bytes in the upload budget until `close`. `answer`: the status, if any came.
 */
function heldUpload(port: number, via: string, bytes: number) {
  const sock = net.connect({ port, host: '127.0.0.1' });
  const head = Buffer.from(
    '--B\r\nContent-Disposition: form-data; name="image"; filename="f.png"\r\nContent-Type: image/png\r\n\r\n',
  );
  sock.write(
    'POST /api/v1/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
      `X-Forwarded-For: ${via}\r\nContent-Type: multipart/form-data; boundary=B\r\n` +
      `Content-Length: ${head.length + bytes + 8}\r\n\r\n`,
  );
  sock.write(Buffer.concat([head, Buffer.alloc(bytes)]));
  let got = '';
  sock.on('data', (d) => {
    got += d;
  });
  sock.on('error', () => {}); // a reset of the unsent rest: the answer is what counts
  return { answer: () => got.split('\r\n')[0], close: () => sock.destroy() };
}

test("behind a trusted proxy, each client has its own share of the upload budget, not the proxy's one", {
  timeout: 60_000,
}, async () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  // 1 MiB uploads, 2 MiB budget: one address may hold the budget less one upload (serve-upload-watch.test.ts).
  for (const trustProxy of [['127.0.0.1'], undefined]) {
    const s = await serve({ maxUploadBytes: MiB, uploadBudgetBytes: 2 * MiB, uploadIdleMs: 30_000, trustProxy });
    const held = async () => metricValue(parseMetrics((await s.app.inject('/metrics')).body), 'cxr_upload_bytes_held');
    const first = heldUpload(s.port, '10.0.4.1', 1000 * KiB);
    const second = heldUpload(s.port, '10.0.4.2', 1000 * KiB);
    try {
      // Until both are held, or one is refused (its bytes then leave the budget at once).
      for (const until = Date.now() + 20_000; !first.answer() && !second.answer() && (await held()) < 2000 * KiB; ) {
        assert.ok(Date.now() < until, 'the uploads were not read');
        await new Promise((r) => setTimeout(r, 50));
      }
      const answers = [first.answer(), second.answer()];
      if (trustProxy) assert.deepEqual(answers, ['', ''], 'two clients behind the proxy shared one share');
      else
        assert.ok(
          answers.some((a) => a.startsWith('HTTP/1.1 503')),
          `one address: ${answers}`,
        );
    } finally {
      first.close();
      second.close();
    }
  }
});

test('the upload share counts clients as the throttle does: two addresses of one IPv6 /64 are one client', {
  timeout: 60_000,
}, async () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const s = await serve({
    maxUploadBytes: MiB,
    uploadBudgetBytes: 2 * MiB,
    uploadIdleMs: 30_000,
    trustProxy: ['127.0.0.1'],
  });
  const held = async () => metricValue(parseMetrics((await s.app.inject('/metrics')).body), 'cxr_upload_bytes_held');
  const first = heldUpload(s.port, '2001:db8:1:2::10', 1000 * KiB);
  const second = heldUpload(s.port, '2001:db8:1:2::20', 1000 * KiB);
  try {
    for (const until = Date.now() + 20_000; !first.answer() && !second.answer() && (await held()) < 2000 * KiB; ) {
      assert.ok(Date.now() < until, 'the uploads were not read');
      await new Promise((r) => setTimeout(r, 50));
    }
    const answers = [first.answer(), second.answer()];
    assert.ok(
      answers.some((a) => a.startsWith('HTTP/1.1 503')),
      `one /64: ${answers}`,
    );
  } finally {
    first.close();
    second.close();
  }
});

test('a trusted proxy does not widen the Host/Origin check: X-Forwarded-Host is never read', async () => {
  const s = await serve({ trustProxy: ['127.0.0.1'] });
  const host = `127.0.0.1:${s.port}`;
  const rebound = await ask(s.port, {
    url: '/api/v1/health',
    headers: { host: 'attacker.example', 'x-forwarded-host': 'localhost' },
  });
  assert.equal(rebound.status, 403);
  assert.equal(rebound.code, 'HOST_NOT_ALLOWED');
  // The request log says the Host that was refused, not the proxy's X-Forwarded-Host.
  const line = s.lines.find((l) => l.msg === 'incoming request');
  assert.equal((line?.req as { host?: string } | undefined)?.host, 'attacker.example');
  const crossOrigin = await ask(s.port, {
    method: 'POST',
    url: '/api/v1/predictions',
    headers: { host, origin: 'http://attacker.example', 'x-forwarded-host': 'attacker.example' },
  });
  assert.equal(crossOrigin.status, 403);
  assert.equal(crossOrigin.code, 'CROSS_ORIGIN');
  assert.equal((await ask(s.port, { url: '/api/v1/health', headers: { host } })).status, 200);
});

test('a bad trust-proxy list is refused with what is wrong, before anything starts', async () => {
  for (const bad of ['true', '*', '10.0.0.300', '127.1', '0.0.0.0/0', '::/0', '10.0.0.0/33', '10.0.0.0/x', ''])
    assert.throws(() => trustedProxies([bad], '--trust-proxy'), TrustProxyError, `${JSON.stringify(bad)} was taken`);
  assert.deepEqual(trustedProxies(['127.0.0.1, 10.1.2.0/24', '::1', 'fd00::/8']), [
    '127.0.0.1',
    '10.1.2.0/24',
    '::1',
    'fd00::/8',
  ]);
  await assert.rejects(
    buildApp({ predictor: parts.predictor, audit: parts.audit, trustProxy: ['all'] }),
    TrustProxyError,
  );
  // startServer refuses it before the model is loaded.
  let loaded = false;
  const start = startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(parts.dir, 'never.db'),
    trustProxy: ['10.0.0.0/0'],
    loadPredictor: async () => {
      loaded = true;
      return parts.predictor;
    },
  });
  await assert.rejects(start, /10\.0\.0\.0\/0.*every client/);
  assert.equal(loaded, false, 'the model was loaded for a server that cannot start');
  // cxr serve: the option and the variable, each named, exit 1, before the model is even looked for.
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--model', '/nonexistent/model', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: envWithoutTokens(env),
    });
  const option = cli(['--trust-proxy', '127.0.0.1,10.0.0.300']);
  assert.equal(option.status, 1, option.stderr);
  assert.ok(/--trust-proxy/.test(option.stderr) && /10\.0\.0\.300/.test(option.stderr), option.stderr);
  assert.ok(!/nonexistent/.test(option.stderr), 'the model was looked for first');
  const variable = cli([], { CXR_TRUST_PROXY: 'true' });
  assert.equal(variable.status, 1, variable.stderr);
  assert.ok(/CXR_TRUST_PROXY/.test(variable.stderr) && /"true"/.test(variable.stderr), variable.stderr);
});

test('cxr serve --trust-proxy (and CXR_TRUST_PROXY): the proxy named at start, its clients throttled apart', {
  timeout: 240_000,
}, async () => {
  for (const [args, env] of [
    [['--trust-proxy', '127.0.0.1'], {}],
    [[], { CXR_TRUST_PROXY: '127.0.0.1/32' }],
  ] as const) {
    const server = await spawnServer(['--model', modelDir, '--db', path.join(parts.dir, 'cli.db'), ...args], {
      CXR_API_TOKEN: GOOD,
      ...env,
    });
    try {
      const port = Number(new URL(server.url).port);
      const start = server
        .log()
        .split('\n')
        .find((l) => l.includes('listening on'));
      assert.ok(start && /"trustProxy":\["127\.0\.0\.1(\/32)?"\]/.test(start), start);
      // The server's own limit, 10 different wrong tokens a minute.
      for (let i = 0; i < 10; i++) await ask(port, { headers: wrong(i, '10.0.3.1') });
      assert.equal((await ask(port, { headers: wrong(10, '10.0.3.1') })).status, 429);
      const other = { authorization: `Bearer ${GOOD}`, 'x-forwarded-for': '10.0.3.2' };
      assert.equal((await ask(port, { headers: other })).status, 200, "the proxy's other clients are locked out");
    } finally {
      await server.stop();
    }
  }
});
