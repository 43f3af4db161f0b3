// Three gaps a hospital integrator met: a film the OOD gate refused (422 NOT_A_CHEST_XRAY) answered without the
// gate's reason codes, which the library's InputError carries (and lost them crossing into `cxr serve`'s engine
// process); a too-short API token refused with a plain Error (the CLI printing its stack trace); and buildApp used
// alone serving no page where startServer serves the package's own.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import sharp from 'sharp';
import {
  ApiTokenError,
  buildApp,
  defaultWebDir,
  openAuditStore,
  type AuditStore,
  VERDICT_REASON_CODES,
} from '../src/index';
import { loadChildPredictor } from '../src/serve/predictor_process';
import type { ServePredictor } from '../src/serve/predictor_port';
import { CLI, envWithoutTokens, loadPredictor, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';

let dir = '';
let modelDir = '';
let audit: AuditStore;
let warn: ServePredictor;
let refuse: ServePredictor;
/** A grey square: the tiny model's image checks find it blank, so a refusing gate refuses it. */
let blank: Buffer;

before(async () => {
  dir = tempDir('api-gaps-s31');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  warn = await loadPredictor(modelDir);
  refuse = await loadPredictor(modelDir, 'refuse');
  blank = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
});

after(async () => {
  warn?.dispose();
  refuse?.dispose();
  await audit?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const upload = (bytes: Buffer, name = 'film.png') => {
  const { body, headers } = multipartBody('image', name, bytes);
  return { method: 'POST' as const, url: '/api/v1/predictions?heatmap=false', payload: body, headers };
};

/** The reason codes the 'warn' answer gives for the same bytes. */
async function warnedCodes(bytes: Buffer): Promise<string[]> {
  return (await warn.predict(bytes)).verdict.reasons.map((r) => r.code);
}

/** Checks `body` against the Problem schema of the document the app serves (additionalProperties: false there). */
async function assertDocumentedProblem(app: Awaited<ReturnType<typeof buildApp>>, body: unknown): Promise<void> {
  const doc = (await app.inject('/api/v1/openapi.json')).json();
  const schema = doc.components.schemas.Problem;
  // Every code a verdict may give today is named, from the one list; no enum, as the vocabulary grows.
  assert.equal(schema.properties.reasons.items.enum, undefined);
  for (const code of VERDICT_REASON_CODES)
    assert.match(schema.properties.reasons.items.description, new RegExp(`\\b${code}\\b`));
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const valid = ajv.compile(schema);
  assert.ok(valid(body), JSON.stringify(valid.errors));
}

for (const where of ['in this process (buildApp with a Predictor)', 'in an engine process, as `cxr serve` runs']) {
  test(`422 NOT_A_CHEST_XRAY carries the gate's reason codes as \`reasons\`: ${where}`, async () => {
    const engine = where.startsWith('in an engine')
      ? await loadChildPredictor(modelDir, { oodPolicy: 'refuse', decodeWorkers: 1 })
      : null;
    const app = await buildApp({ predictor: engine ?? refuse, audit, webDir: null });
    try {
      const res = await app.inject(upload(blank));
      assert.equal(res.statusCode, 422, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json();
      assert.equal(body.code, 'NOT_A_CHEST_XRAY');
      const warned = await warnedCodes(blank);
      assert.ok(warned.length > 0, 'the warn answer has reasons');
      assert.deepEqual(body.reasons, warned, 'the codes the warn answer gives, in its order');
      await assertDocumentedProblem(app, body);
      // Any other input error has no such member.
      const other = await app.inject(upload(Buffer.from('GIF89a not really'), 'x.gif'));
      assert.equal(other.statusCode, 415, other.body);
      assert.equal('reasons' in other.json(), false, other.body);
    } finally {
      await app.close();
      engine?.dispose();
    }
  });
}

test('a too-short apiToken is an ApiTokenError (BAD_TOKEN) from the package entry, saying the minimum', async () => {
  for (const apiToken of ['short', '', 'has a space in it']) {
    await assert.rejects(buildApp({ predictor: warn, audit, apiToken }), (e: unknown) => {
      assert.ok(e instanceof ApiTokenError, String(e));
      assert.equal(e.code, 'BAD_TOKEN');
      assert.equal(e.name, 'ApiTokenError');
      assert.match(e.message, /^apiToken must be 8-512 printable characters without spaces; .*openssl rand -hex 32/);
      assert.ok(apiToken === '' || !e.message.includes(apiToken), 'the token is never in the message');
      return true;
    });
  }
  await assert.rejects(
    buildApp({
      predictor: warn,
      audit,
      tokens: [
        { name: 'ops', token: 'ops-token-1' },
        { name: 'ops', token: 'x' },
      ],
    }),
    (e: unknown) => e instanceof ApiTokenError && e.code === 'BAD_TOKEN' && /the token of 'ops'/.test(e.message),
  );
  await assert.rejects(
    buildApp({ predictor: warn, audit, apiToken: 'same-token-1', tokens: [{ name: 'default', token: 'other-one' }] }),
    (e: unknown) => e instanceof ApiTokenError && e.code === 'DUPLICATE',
  );
});

test('cxr serve with a too-short CXR_API_TOKEN: one fatal line with the code, no stack, exit 1', async () => {
  const token = 'shorty';
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--model', modelDir, '--db', path.join(dir, 'cli.db')],
    { env: envWithoutTokens({ CXR_API_TOKEN: token, CXR_LOG_LEVEL: '' }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  assert.equal(code, 1, stderr);
  assert.equal(stdout, '');
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, stderr);
  const line = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(line.level, 'fatal');
  assert.equal(line.code, 'BAD_TOKEN');
  assert.equal(line.err, undefined, 'no stack trace: a configuration fault, not a bug');
  assert.match(
    String(line.msg),
    /^CXR_API_TOKEN must be 8-512 printable characters without spaces; .*openssl rand -hex 32.*: not starting$/,
  );
  assert.ok(!stderr.includes(token), 'the token is never printed');
  assert.equal(fs.existsSync(path.join(dir, 'cli.db')), false, 'refused before the audit log is opened');
});

test("buildApp alone serves the package's page by default, as startServer does; webDir null serves none", async () => {
  const index = path.join(defaultWebDir(), 'index.html');
  const app = await buildApp({ predictor: warn, audit });
  try {
    const page = await app.inject('/');
    assert.equal(page.statusCode, 200, page.body);
    if (fs.existsSync(index)) {
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.equal(page.body, fs.readFileSync(index, 'utf8'));
    } else {
      // A source checkout whose page is not built: said, with how to build it.
      assert.match(page.body, /not in its folder \(no index\.html\)/);
    }
  } finally {
    await app.close();
  }
  const none = await buildApp({ predictor: warn, audit, webDir: null });
  try {
    assert.match((await none.inject('/')).body, /started without the web page/);
  } finally {
    await none.close();
  }
});

const PAGE_BUILT = fs.existsSync(path.join(defaultWebDir(), 'index.html'));

test("with the page served, a path too long for a file is 404 NOT_FOUND, not the file handler's bare 403", {
  skip: !PAGE_BUILT && 'the page is not built (node dist/src/web/build.js): no file handler to reach',
}, async () => {
  const app = await buildApp({ predictor: warn, audit });
  try {
    const long = 'a'.repeat(5_000);
    for (const url of [`/${long}`, `/api/v1/predictions/${long}`, `/${'ab/'.repeat(1_400)}x`]) {
      const res = await app.inject(url);
      assert.equal(res.statusCode, 404, `${url.slice(0, 40)}: ${res.body.slice(0, 200)}`);
      assert.equal(res.json().code, 'NOT_FOUND');
    }
  } finally {
    await app.close();
  }
});
