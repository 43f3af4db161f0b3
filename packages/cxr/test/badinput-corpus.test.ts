// A real `cxr serve` process against the bad-input corpus (badinput-files.ts) and malformed
// requests: each gets a 4xx with a clear message, the process never dies, and a valid request
// right after each one still succeeds.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BadFile, writeCorpus } from './badinput-files';
import { ChildServer, makeTinyModel, multipartBody, spawnServer, tempDir, XRAY_JPEG } from './serve-fixtures';

const MAX_UPLOAD_MB = 8;
let dir: string;
let server: ChildServer;
let corpus: BadFile[];
const valid = fs.readFileSync(XRAY_JPEG);

before(async () => {
  dir = tempDir('badinput');
  await makeTinyModel(path.join(dir, 'model'));
  corpus = await writeCorpus(path.join(dir, 'corpus'), MAX_UPLOAD_MB * 1024 * 1024);
  server = await spawnServer([
    '--model',
    path.join(dir, 'model'),
    '--db',
    path.join(dir, 'audit.db'),
    '--max-upload-mb',
    String(MAX_UPLOAD_MB),
  ]);
});

after(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function post(
  body: Buffer | string,
  headers: Record<string, string>,
  query = '',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/api/v1/predictions${query}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers,
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

async function upload(content: Buffer, name = 'x.jpeg', field = 'image', query = '') {
  const { body, headers } = multipartBody(field, name, content);
  return post(body, headers, query);
}

async function stillServing(after: string): Promise<void> {
  assert.equal(server.proc.exitCode, null, `server exited after ${after}:\n${server.log()}`);
  const ok = await upload(valid, 'valid.jpeg', 'image', '?heatmap=false');
  assert.equal(ok.status, 200, `valid request after ${after}: ${JSON.stringify(ok.json)}`);
}

function checkError(
  r: { status: number; json: Record<string, unknown> },
  want: number | number[],
  what: string,
  message?: RegExp,
): void {
  const allowed = Array.isArray(want) ? want : [want];
  assert.ok(allowed.includes(r.status), `${what}: status ${r.status} not in ${allowed}: ${JSON.stringify(r.json)}`);
  if (r.status === 200) return;
  // RFC 9457 problem details.
  assert.equal(r.json.status, r.status, `${what}: error body ${JSON.stringify(r.json)}`);
  assert.equal(typeof r.json.code, 'string', what);
  assert.equal(typeof r.json.type, 'string', what);
  assert.equal(typeof r.json.title, 'string', what);
  assert.ok(typeof r.json.detail === 'string' && r.json.detail.length > 10, `${what}: detail ${r.json.detail}`);
  assert.doesNotMatch(String(r.json.detail), /internal error|undefined|\[object/i, what);
  // The machine-readable code counts as part of the explanation (e.g. TRUNCATED + byte counts).
  if (message) assert.match(`${r.json.code} ${r.json.detail}`, message, `${what}: ${r.json.code} ${r.json.detail}`);
}

test('the corpus has at least 30 bad files', () => {
  assert.ok(corpus.length >= 30, `${corpus.length} files`);
});

test('every bad file gets a clear 4xx and the server keeps serving', { timeout: 600_000 }, async (t) => {
  // Every file is tried, and all problems are reported together.
  const problems: string[] = [];
  for (const f of corpus) {
    const r = await upload(fs.readFileSync(f.file), f.name);
    try {
      checkError(r, f.status, f.name, f.message);
    } catch (e) {
      problems.push((e as Error).message);
    }
    t.diagnostic(`${f.name}: ${r.status} ${r.json.code ?? ''} ${String(r.json.detail ?? '').slice(0, 120)}`);
    await stillServing(f.name);
  }
  assert.deepEqual(problems, []);
});

test('malformed requests get a clear 4xx', { timeout: 120_000 }, async () => {
  const cases: [string, () => ReturnType<typeof post>, number | number[], RegExp?][] = [
    ['wrong multipart field', () => upload(valid, 'x.jpeg', 'file'), 400, /field named "image"/],
    ['zero-byte file field', () => upload(Buffer.alloc(0)), 400, /empty/],
    [
      // An option sent as a form field would be silently ignored (an adult's age lost): refused instead.
      'an option as a form field beside the file',
      () => {
        const { body, headers } = multipartBody('image', 'x.jpeg', valid);
        const boundary = headers['content-type'].split('boundary=')[1];
        const field = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="patientAge"\r\n\r\n40\r\n`);
        return post(Buffer.concat([field, body]), headers);
      },
      400,
      /WRONG_FIELD the form field "patientAge" is not read: .*query string/,
    ],
    [
      'multipart without a file',
      () => {
        const b = '--B\r\nContent-Disposition: form-data; name="image"\r\n\r\nnot a file\r\n--B--\r\n';
        return post(b, { 'content-type': 'multipart/form-data; boundary=B' });
      },
      400,
      /no file/,
    ],
    ['raw JPEG body', () => post(valid, { 'content-type': 'image/jpeg' }), 415, /multipart/],
    ['JSON body', () => post('{"image":"abc"}', { 'content-type': 'application/json' }), 415, /multipart/],
    ['no content type', () => post('hello', {}), [400, 415]],
    [
      'broken multipart',
      () => post('--B\r\nContent-Disposition: form-da', { 'content-type': 'multipart/form-data; boundary=B' }),
      [400, 415],
    ],
    ['multipart without boundary', () => post('x', { 'content-type': 'multipart/form-data' }), [400, 415]],
    [
      'two files',
      () => {
        const one = multipartBody('image', 'a.jpeg', valid);
        const boundary = one.headers['content-type'].split('boundary=')[1];
        const second = Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="b.jpeg"\r\n\r\n` +
            `xx\r\n--${boundary}--\r\n`,
        );
        return post(
          Buffer.concat([one.body.subarray(0, one.body.length - `--${boundary}--\r\n`.length), second]),
          one.headers,
        );
      },
      400,
      /one file/,
    ],
    ['unknown operating point', () => upload(valid, 'x.jpeg', 'image', '?operatingPoint=yolo'), 400, /operatingPoint/],
    ['unknown query parameter', () => upload(valid, 'x.jpeg', 'image', '?debug=1'), 400],
    ['traversal file name is ignored', () => upload(valid, '../../../../etc/passwd', 'image', '?heatmap=false'), 200],
  ];
  for (const [what, send, want, message] of cases) {
    checkError(await send(), want, what, message);
    await stillServing(what);
  }
  const notFound = await fetch(`${server.url}/api/v1/predictions/../../etc/passwd`);
  assert.ok([400, 404].includes(notFound.status));
  const method = await fetch(`${server.url}/api/v1/predictions`, { method: 'DELETE' });
  assert.ok(method.status === 404 || method.status === 405);
});
