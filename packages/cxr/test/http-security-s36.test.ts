// HTTP API exposure (session 36). GET /api/v1/model answered the whole cxr.json to any token, with the folders the
// model was made from (a hospital file server's data folder, a run folder, an internal mirror's URL): it now
// answers their last component. Wrong tokens could be tried as fast as the server answered: an address that sends
// too many different wrong ones within a window is answered 429 TOO_MANY_BAD_TOKENS for the rest of it, never
// another address, in a table that a flood of addresses cannot grow. Node's 431 and 408, written by hand on the
// socket, lacked the `Vary: Accept` every other refusal says.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../src/log';
import { openAuditStore } from '../src/serve/audit';
import type { AuditStore } from '../src/serve/audit';
import { type AppOptions, buildApp } from '../src/serve/app';
import { AuthThrottle, clientKey } from '../src/serve/auth_throttle';
import type { ServePredictor } from '../src/serve/predictor_port';
import { lastComponent, publicMeta } from '../src/serve/public_meta';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';

const GOOD = 'right-token-s36-0123456789';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let dir = '';
let predictor: ServePredictor;
let audit: AuditStore;
const apps: FastifyInstance[] = [];

// Where a hospital's model was made: what no client of the API needs to know.
const SITE = {
  dataRoot: '/mnt/hospital-fs/pacs-export/chest_xray',
  memberFrom: '/srv/radiology/runs/members/run-s42',
  mirror: 'https://user:secret@mirror.hospital.internal/tfjs/mobilenet/model.json?key=abc',
  siteImages: '\\\\fileserver.hospital.internal\\radiology\\site-films',
  command: 'cxr adapt --model models/default --images /mnt/hospital-fs/site-films --out=/srv/models/adapted',
};

before(async () => {
  dir = tempDir('http-security-s36');
  const model = await makeTinyModel(path.join(dir, 'model'));
  const file = path.join(model, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  Object.assign(meta, {
    data: { root: SITE.dataRoot, valFraction: 0.15 },
    recipe: { arch: 'transfer/mobilenet_v1_0.25', backboneWeights: { url: SITE.mirror } },
    ensemble: {
      method: 'mean-logit',
      members: [
        {
          dir: 'm1',
          from: SITE.memberFrom,
          name: 'run-s42',
          version: '1',
          arch: 'cxrnet',
          sha256: 'a'.repeat(64),
          validationAuc: 0.9,
        },
      ],
    },
    // Keys another writer added (cxr.json keeps unknown keys): a path, and a command with paths in it.
    siteImages: SITE.siteImages,
    command: SITE.command,
    preprocessingNote: 'x*2-1 (= pixel/127.5 - 1), ratio 3294/4434',
  });
  fs.writeFileSync(file, JSON.stringify(meta));
  // The card records the command that made the model, with its paths (models/card.ts).
  fs.writeFileSync(
    path.join(model, 'MODEL_CARD.md'),
    '# tiny\n\nCommand:\n\n```sh\ncxr train --data /mnt/hospital-fs/films --out /srv/radiology/runs/x\n```\n\n' +
      'As [the CLI guide](../../docs/cli.md) says, with `--data ../shared/data/chest_xray`: 0.4% / 0.8%.\n',
  );
  predictor = await loadPredictor(model);
  audit = await openAuditStore(path.join(dir, 'audit.db'));
});

after(async () => {
  for (const app of apps) await app.close();
  await audit?.close();
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function app(opts: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const a = await buildApp({ predictor, audit, webDir: null, requestLog: false, ...opts });
  apps.push(a);
  return a;
}

test('GET /model: cxr.json without the folders and hosts it was made from, the facts kept', async () => {
  const a = await app({ tokens: [{ name: 'ward', token: GOOD }] });
  const res = await a.inject({ url: '/api/v1/model', headers: bearer(GOOD) });
  assert.equal(res.statusCode, 200);
  for (const leak of ['/mnt/', '/srv/', 'hospital', 'fileserver', 'secret', 'key=abc'])
    assert.ok(!res.body.includes(leak), `the answer names ${leak}`);
  const meta = res.json().meta;
  assert.equal(meta.data.root, 'chest_xray', 'the data folder by its name');
  assert.equal(meta.ensemble.members[0].from, 'run-s42', "a member's run folder by its name");
  assert.equal(meta.ensemble.members[0].dir, 'm1');
  assert.equal(meta.recipe.backboneWeights.url, 'model.json');
  assert.equal(meta.siteImages, 'site-films');
  assert.equal(meta.command, 'cxr adapt --model models/default --images site-films --out=adapted');
  // What the page reads (model_view.ts: meta.arch, meta.createdAt) and text that only looks like a path.
  assert.equal(meta.arch, 'cxrnet');
  assert.equal(meta.recipe.arch, 'transfer/mobilenet_v1_0.25');
  assert.equal(meta.preprocessingNote, 'x*2-1 (= pixel/127.5 - 1), ratio 3294/4434');
  assert.equal(meta.createdAt, predictor.model.meta.createdAt);
  assert.deepEqual(res.json().validation, { auc: 0.5, note: 'random weights (test fixture)' });
  assert.equal(meta.data.valFraction, 0.15);
  // The card's absolute paths reduced; its relative paths and links (the repository's layout) kept.
  const card: string = res.json().modelCard;
  assert.ok(card.includes('cxr train --data films --out x\n'), card);
  assert.ok(card.includes('(../../docs/cli.md)') && card.includes('../shared/data/chest_xray'), card);
  assert.ok(card.includes('0.4% / 0.8%'), card);
  // The served model's own metadata is untouched.
  assert.equal((predictor.model.meta.data as { root?: string }).root, SITE.dataRoot);
});

test('lastComponent and publicMeta: Windows paths, shares, file: and http URLs; plain text left alone', () => {
  assert.equal(lastComponent('C:\\Users\\radiology\\films\\'), 'films');
  assert.equal(lastComponent('\\\\server\\share\\films'), 'films');
  assert.equal(lastComponent('file:///mnt/x/y'), 'y');
  assert.equal(lastComponent('https://u:p@host.internal/a/b?token=1#f'), 'b');
  assert.equal(lastComponent('https://host.internal'), '');
  assert.equal(lastComponent('../shared/data/chest_xray'), 'chest_xray');
  const shown = publicMeta({ a: ['/x/y/z', 'ensemble(transfer/a, transfer/b)', 'train split (3/4 pneumonia)'] });
  assert.deepEqual(shown.a, ['z', 'ensemble(transfer/a, transfer/b)', 'train split (3/4 pneumonia)']);
  assert.deepEqual(publicMeta({ data: { root: 'runs/../data/xr' } }), { data: { root: 'xr' } });
});

test('wrong tokens from one address: 429 TOO_MANY_BAD_TOKENS after the limit, for the rest of the window', async () => {
  let lines = '';
  const logger = createLogger({ level: 'warn', destination: { write: (l: string) => void (lines += l) } });
  const a = await app({
    tokens: [{ name: 'ward', token: GOOD }],
    authThrottle: { maxFailures: 3, windowMs: 1_500 },
    logger,
  });
  const ask = (from: string, headers: Record<string, string> = {}, url = '/api/v1/model') =>
    a.inject({ url, headers, remoteAddress: from });
  for (const guess of ['guess-aaaaaaaa', 'guess-bbbbbbbb', 'guess-cccccccc'])
    assert.equal((await ask('10.0.0.1', bearer(guess))).statusCode, 401, 'the first guesses are answered 401');
  const refused = await ask('10.0.0.1', bearer('guess-dddddddd'));
  assert.equal(refused.statusCode, 429);
  assert.match(String(refused.headers['content-type']), /^application\/problem\+json/);
  assert.equal(refused.json().code, 'TOO_MANY_BAD_TOKENS');
  assert.equal(refused.json().status, 429);
  assert.equal(refused.json().type, 'urn:cxr:problem:too-many-bad-tokens');
  const retry = Number(refused.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${refused.headers['retry-after']}`);
  assert.match(String(refused.headers.vary), /Accept/);
  // A right token from that address is refused too (else the answer would tell a right guess from a wrong one).
  assert.equal((await ask('10.0.0.1', bearer(GOOD))).statusCode, 429);
  // Another address with the right token, and a public route from the throttled one, are not affected.
  assert.equal((await ask('10.0.0.2', bearer(GOOD))).statusCode, 200);
  assert.equal((await ask('10.0.0.1', {}, '/api/v1/health')).statusCode, 200);
  // Nor is an address sending one wrong token again and again: nothing new is guessed.
  for (let i = 0; i < 6; i++) assert.equal((await ask('10.0.0.3', bearer('stale-token-xx'))).statusCode, 401);
  // Logged once for the window, not once per refused request.
  await ask('10.0.0.1', bearer('guess-eeeeeeee'));
  const said = lines.split('\n').filter((l) => l.includes('wrong API tokens from 10.0.0.1'));
  assert.equal(said.length, 1, `logged ${said.length} times`);
  // After the window, the right token from that address works.
  await new Promise((r) => setTimeout(r, 1_600));
  assert.equal((await ask('10.0.0.1', bearer(GOOD))).statusCode, 200);
});

test('the throttle counts an IPv6 client by its /64, and its table stays within maxAddresses', () => {
  assert.equal(clientKey('2001:db8::1'), clientKey('2001:0db8:0:0:ffff::2'));
  assert.notEqual(clientKey('2001:db8::1'), clientKey('2001:db8:0:1::1'));
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('fe80::1%eth0'), clientKey('fe80::2'));
  let now = 0;
  const t = new AuthThrottle({ maxFailures: 2, windowMs: 1_000, maxAddresses: 100, now: () => now });
  for (let i = 0; i < 5_000; i++) t.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `Bearer guess-${i}`);
  assert.ok(t.size <= 100, `${t.size} addresses kept`);
  // The newest are the ones kept; one that reaches its limit is refused until its window ends.
  t.fail('192.0.2.1', 'Bearer a');
  assert.equal(t.fail('192.0.2.1', 'Bearer b'), true, 'the limit is said once');
  assert.equal(t.fail('192.0.2.1', 'Bearer c'), false);
  assert.equal(t.retryAfterS('192.0.2.1'), 1);
  now = 1_000;
  assert.equal(t.retryAfterS('192.0.2.1'), 0);
  // Ended windows are let go first: one new address clears them all.
  t.fail('192.0.2.2', 'Bearer a');
  assert.equal(t.size, 1);
});

/** Sends raw bytes to `a`'s port and reads the whole answer (the server closes the connection after it). */
function raw(a: FastifyInstance, request: string): Promise<string> {
  const { port } = a.server.address() as net.AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

test("Node's 431 and 408, written on the socket by hand, say Vary: Accept as every other refusal", async () => {
  const a = await app({ headersTimeoutMs: 600 });
  await a.listen({ port: 0, host: '127.0.0.1' });
  const big = await raw(a, `GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
  const slow = await raw(a, 'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a');
  for (const [answer, status] of [
    [big, 431],
    [slow, 408],
  ] as const) {
    const head = answer.split('\r\n\r\n')[0];
    assert.ok(head.startsWith(`HTTP/1.1 ${status} `), head.slice(0, 80));
    assert.ok(/\r\nvary: accept\r\n/i.test(head), `${status} without Vary: Accept`);
  }
});
