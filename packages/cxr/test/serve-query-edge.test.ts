// What the API takes at its edge, read strictly: history times (leap seconds, offsets and years the
// JavaScript Date cannot read or misreads), numbers in query strings (hex, exponents, Infinity), an
// image sent without a filename, bodies of other multipart types, odd paths beside the web page, and
// how fresh /health's row count is.
import { mock, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { ServeMetrics } from '../src/serve/metrics';
import { HEALTH_RECOUNT_WAIT_MS } from '../src/serve/routes/health';
import { HttpError } from '../src/serve/http_error';
import { auditRecord, idleJobs, multipartBody, serverParts, XRAY_JPEG } from './serve-fixtures';

const REFUSED_LOGIN = 'ffffffff-ffffffff-ffffffff-ffffffff-ffffffff';
let app: FastifyInstance;
const submitted: string[] = [];

/** A queue that takes every upload: the route's reading of the body is what is tested. */
const jobs = idleJobs({
  submitUpload: async (_bytes, name) => {
    submitted.push(name);
    return { id: `job-${submitted.length}`, status: 'queued' };
  },
  submitOrthancAll: async (ids) => {
    // As queue/api.ts answers a PACS that refuses the server's login.
    if (ids.includes(REFUSED_LOGIN)) throw new HttpError(503, 'PACS_UNAVAILABLE', 'the PACS refuses the login', 300);
    return ids.map(() => ({ id: null, status: 'skipped' as const }));
  },
});

const parts = serverParts('serve-edge', {
  ready: async ({ dir, predictor, audit }) => {
    const web = path.join(dir, 'web');
    fs.mkdirSync(path.join(web, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>cxr</title>');
    fs.writeFileSync(path.join(web, 'assets', 'app.js'), 'console.log(1);');
    fs.writeFileSync(path.join(web, '.env'), 'SECRET=1');
    // Rows at 00:01, 00:02 and 00:03 on 2026-01-01 (UTC), and one in the year 50.
    for (const n of [1, 2, 3]) await audit.insert(auditRecord(n), null);
    await audit.insert(auditRecord(4, { createdAt: '0050-06-01T00:00:00.000Z' }), null);
    app = await buildApp({ predictor, audit, webDir: web, jobs });
  },
  closing: () => app?.close(),
});

async function history(query: string) {
  const res = await app.inject(`/api/v1/predictions?${query}`);
  return { status: res.statusCode, body: res.json() };
}

test('a stated age that is not a number is refused without repeating it (the server log keeps no age)', async () => {
  for (const [bad, chars] of [
    ['FORTY', 5],
    ['ABOUT%205%20YEARS', 13],
    ['4O', 2],
  ] as const) {
    const res = await predict(`?heatmap=false&patientAge=${bad}`);
    assert.equal(res.statusCode, 400, `${bad}: ${res.body}`);
    assert.equal(
      res.json().detail,
      "query parameter 'patientAge' must be a number from 0 to 130 in decimal digits (e.g. 7 or 3.5); " +
        `got a value of ${chars} characters (not shown: patient data)`,
    );
  }
  // Other parameters still quote what they were given; their numbers take no sign either.
  assert.match((await history('page=0x10')).body.detail, /got "0x10"$/);
  assert.match((await history('limit=-0')).body.detail, /^query parameter 'limit' must be a whole number .*got "-0"$/);
});

test('history times: a leap second is a 400 that says so, as `cxr history --since` refuses it', async () => {
  for (const q of ['since=2026-12-31T23:59:60Z', 'until=2026-12-31T23:59:60Z', 'since=9999-12-31T23:59:60Z']) {
    const { status, body } = await history(q);
    assert.equal(status, 400, `${q}: ${JSON.stringify(body)}`);
    assert.equal(body.code, 'INVALID_REQUEST', q);
    assert.match(body.detail, /query parameter '(since|until)' has second 60 \(a leap second\)/, q);
  }
  const feb30 = await history('since=2026-02-30T00:00:00Z');
  assert.deepEqual([feb30.status, feb30.body.code], [400, 'INVALID_REQUEST']);
  assert.match(feb30.body.detail, /since/);
  // Between date and time RFC 3339 allows T or a space, not a tab or a line break.
  for (const gap of ['%09', '%0A']) {
    const r = await history(`since=2026-11-01${gap}08:00:00Z`);
    assert.deepEqual([r.status, r.body.code], [400, 'INVALID_REQUEST'], gap);
  }
});

test('history times: every form the schema takes is read as RFC 3339 says, whatever Date makes of it', async () => {
  const cases: [string, number][] = [
    ['since=2026-01-01T00:02:00Z', 2],
    // A 2-digit offset: Date cannot read it (was a 500).
    ['since=2026-01-01T01:02:00%2B01', 2],
    ['since=2026-01-01T01:02:00%2B0100', 2],
    // Read to the millisecond, as the log keeps times; finer digits are dropped.
    ['since=2026-01-01t00:02:00.0019z', 1],
    ['since=2026-01-01t00:02:00.0009z', 2],
    // Date reads the year 50 written with a space as 1950.
    ['since=0050-01-01%2000:00:00Z', 4],
    ['until=0050-12-31%2000:00:00Z', 1],
    // Past 9999 in UTC: toISOString() writes +010000-…, which sorts before every row as text.
    ['until=9999-12-31T23:59:59-01:00', 4],
    ['since=0000-01-01T00:00:00%2B01:00', 4],
  ];
  for (const [q, total] of cases) {
    const { status, body } = await history(q);
    assert.equal(status, 200, `${q}: ${JSON.stringify(body)}`);
    assert.equal(body.total, total, q);
  }
});

test('the audit store clamps times past 4-digit years, and refuses a time it cannot read as the API does', async () => {
  // As `cxr history --since` hands them on: toISOString() of year 10000 sorted before every row as text.
  assert.equal((await parts.audit.list({ until: '9999-12-31T23:59:59-01:00' })).total, 4);
  assert.equal((await parts.audit.list({ since: '9999-12-31T23:59:59-01:00' })).total, 0);
  assert.equal((await parts.audit.list({ since: '0000-01-01T00:00:00Z' })).total, 4);
  await assert.rejects(parts.audit.list({ since: 'soon' }), /audit log: since "soon" is not a date \(2026-11-01/);
  // A program's times are read as the API's and the CLI's are (date_time.ts): Date.parse would read one without
  // its zone in the machine's zone, and take an impossible date or a bare number.
  await assert.rejects(
    parts.audit.list({ since: '2026-12-06 04:46' }),
    /audit log: since "2026-12-06 04:46" has no zone/,
  );
  await assert.rejects(parts.audit.list({ until: '2026-02-30' }), /audit log: until "2026-02-30" is not a real date/);
  await assert.rejects(parts.audit.list({ since: '6' }), /audit log: since "6" is not a date/);
  // A fraction of many digits at the end of a day stays in that day (it rolled over to the next, refused).
  assert.equal((await parts.audit.list({ until: '9999-12-31T23:59:59.99999999999999999Z' })).total, 4);
});

async function predict(query: string, target = app) {
  const { body, headers } = multipartBody('image', 'x.jpeg', fs.readFileSync(XRAY_JPEG));
  return target.inject({ method: 'POST', url: `/api/v1/predictions${query}`, payload: body, headers });
}

test('query numbers: decimal digits only, one code for a bad age, none counted as a decode failure', async () => {
  const metrics = new ServeMetrics();
  const counted = await buildApp({ predictor: parts.predictor, audit: parts.audit, metrics });
  try {
    // %20 is a space, %2B a plus sign.
    for (const bad of [
      'Infinity',
      '-Infinity',
      'NaN',
      '0x10',
      '0b1',
      '1e1',
      '%205',
      '5%20',
      '%2B5',
      '.5',
      '5.',
      '-1',
      // No sign at all: a minus zero is no age either (it passed the minimum of 0).
      '-0',
      '-00',
      '-0.0',
      '131',
    ]) {
      const res = await predict(`?heatmap=false&patientAge=${bad}`, counted);
      assert.equal(res.statusCode, 400, `${bad}: ${res.body}`);
      assert.equal(res.json().code, 'INVALID_REQUEST', bad);
      assert.match(res.json().detail, /^query parameter 'patientAge' must be a number from 0 to 130 in decimal digits/);
    }
    const ok = await predict('?heatmap=false&patientAge=016', counted);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().verdict.status, 'outside-population', '016 is sixteen');
    const text = await (await counted.inject('/metrics')).body;
    assert.doesNotMatch(text, /^cxr_decode_failures_total\{/m, 'a bad request parameter is no decode failure');
  } finally {
    await counted.close();
  }
  const job = multipartBody('image', 'x.jpeg', fs.readFileSync(XRAY_JPEG));
  const queued = await app.inject({ method: 'POST', url: '/api/v1/jobs?patientAge=0x10', ...job });
  assert.equal(queued.statusCode, 400, queued.body);
  assert.match(queued.json().detail, /patientAge/);

  for (const q of ['page=Infinity', 'page=1e1', 'limit=0x10', 'limit=%2010', 'page=1.5', 'limit=0']) {
    const { status, body } = await history(q);
    assert.equal(status, 400, `${q}: ${JSON.stringify(body)}`);
    assert.match(body.detail, /^query parameter '(page|limit)' must be a whole number from 1 to/, q);
  }
  const twice = await history('page=1&page=2');
  assert.deepEqual([twice.status, twice.body.detail], [400, "query parameter 'page' is given 2 times: give it once"]);
  assert.equal((await history('page=01&limit=2')).body.items.length, 2);
});

test('the request-parameter codes of the predictor are not decode failures in /metrics', async () => {
  const metrics = new ServeMetrics();
  metrics.inputFailure('BAD_PATIENT_AGE');
  metrics.inputFailure('UNKNOWN_OPERATING_POINT');
  metrics.inputFailure('TRUNCATED');
  const text = await metrics.text();
  assert.match(text, /^cxr_decode_failures_total\{reason="TRUNCATED"\} 1$/m);
  assert.doesNotMatch(text, /BAD_PATIENT_AGE|UNKNOWN_OPERATING_POINT/);
});

/** A multipart body with one part named "image" that has no filename: a plain form field. */
function fieldBody(value: string) {
  const b = '----cxredge';
  return {
    payload: `--${b}\r\nContent-Disposition: form-data; name="image"\r\n\r\n${value}\r\n--${b}--\r\n`,
    headers: { 'content-type': `multipart/form-data; boundary=${b}` },
  };
}

test('an image sent as a plain form field, and a multipart type that is not form-data, are said as such', async () => {
  for (const url of ['/api/v1/predictions', '/api/v1/jobs']) {
    const res = await app.inject({ method: 'POST', url, ...fieldBody('hello') });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.equal(res.json().code, 'NO_FILE');
    assert.match(res.json().detail, /the part named "image" is a plain form field, not a file .*no filename/, url);
  }
  assert.equal(submitted.length, 0, 'nothing was queued');
  for (const [url, code] of [
    ['/api/v1/predictions', 'NOT_MULTIPART'],
    ['/api/v1/jobs', 'UNSUPPORTED_MEDIA_TYPE'],
  ]) {
    for (const type of ['multipart/mixed; boundary=x', 'text/xml']) {
      const res = await app.inject({ method: 'POST', url, payload: 'x', headers: { 'content-type': type } });
      assert.equal(res.statusCode, 415, `${url} ${type}: ${res.body}`);
      assert.equal(res.json().code, code);
      assert.ok(res.json().detail.endsWith(`, got ${type}`), res.json().detail);
    }
  }
  // The route's error handler passes everything else on as before.
  const empty = await app.inject({ method: 'POST', url: '/api/v1/predictions', ...fieldBody('') });
  assert.equal(empty.statusCode, 400);
});

test('paths beside the web page: an empty segment is 404 like any unknown path; hidden files say why', async () => {
  for (const url of ['/api/v1//health', '//api/v1/health', '/assets//app.js', '//']) {
    const res = await app.inject(url);
    assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
    assert.equal(res.json().code, 'NOT_FOUND', url);
    assert.match(res.json().detail, /empty '\/\/' or '\.' segment names nothing here/, url);
  }
  const hidden = await app.inject('/.env');
  assert.deepEqual([hidden.statusCode, hidden.json().code], [403, 'FORBIDDEN']);
  assert.match(hidden.json().detail, /names start with '\.' are not served/);
  assert.doesNotMatch(hidden.body, /SECRET/);
  const up = await app.inject('/assets/..%2f..%2fmodel%2fmodel.json');
  assert.deepEqual([up.statusCode, up.json().code], [403, 'FORBIDDEN']);
  assert.match(up.json().detail, /'\.\.' segment would leave the page's folder/);
  assert.equal((await app.inject('/assets/app.js')).statusCode, 200);
  assert.equal((await app.inject('/')).statusCode, 200);
});

test('health: a count older than 5 s is redone before the answer; a slow recount delays it briefly', async () => {
  const store = await openAuditStore(path.join(parts.dir, 'health.db'));
  let slow = false;
  /** Counts begun and counts finished: a closed server leaves none running on the store closed after it. */
  const counts = { begun: 0, done: 0 };
  // The slow count ends when the test lets it (or 10 s after it began, to fail a server that waits for it rather
  // than hang): not on a timer that a loaded machine could let run out before the answer it is measured against.
  let release = () => {};
  const slowCount = new Promise<void>((resolve) => {
    release = resolve;
  });
  const counting: AuditStore = Object.create(store);
  counting.count = async () => {
    counts.begun++;
    if (slow) {
      setTimeout(release, 10_000).unref();
      await slowCount;
    }
    const n = await store.count();
    counts.done++;
    return n;
  };
  const probed = await buildApp({ predictor: parts.predictor, audit: counting });
  let afterClose = { ...counts };
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  try {
    const count = async () => (await probed.inject('/api/v1/health')).json().predictions;
    assert.equal(await count(), 0);
    for (const n of [1, 2, 3]) await store.insert(auditRecord(n), null);
    assert.equal(await count(), 0, 'within 5 s the count is reused');
    mock.timers.setTime(Date.now() + 5_001);
    assert.equal(await count(), 3, 'a count over 5 s old is not answered (it was after a quiet spell)');
    await store.insert(auditRecord(5), null);
    slow = true;
    mock.timers.setTime(Date.now() + 6_000);
    // Each probe waits 250 ms (HEALTH_RECOUNT_WAIT_MS) for the same running count, not the 2 s bound of a first
    // count: the fastest of up to three is bounded, so that a test process descheduled for a while cannot fail
    // it, and the bound stays tight (750 ms: a recount wait of 900 ms fails it).
    assert.equal(HEALTH_RECOUNT_WAIT_MS, 250, 'the bound below is set for a 250 ms recount wait');
    let fastest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3 && fastest >= 750; i++) {
      const t0 = performance.now();
      const res = await probed.inject('/api/v1/health');
      fastest = Math.min(fastest, performance.now() - t0);
      assert.deepEqual([res.statusCode, res.json().predictions, res.json().audit], [200, 3, 'ok']);
    }
    assert.ok(fastest < 750, `a slow count held /health ${fastest.toFixed(0)} ms`);
    assert.deepEqual(counts, { begun: 3, done: 2 }, 'the slow count goes on after the answer');
  } finally {
    mock.timers.reset();
    // Let go once the server is closing: its close waits for the count (else the check below finds done: 2).
    setTimeout(release, 300);
    await probed.close();
    afterClose = { ...counts };
    await store.close();
  }
  // Closing the server waited for the count it started: nothing ran on the store closed after it.
  assert.deepEqual(afterClose, { begun: 3, done: 3 }, 'a count was left running on a closed server');
});

test('the OpenAPI document says how times and numbers are read', async () => {
  const doc = (await app.inject('/api/v1/openapi.json')).json();
  const param = (p: string, m: string, name: string) =>
    doc.paths[p][m].parameters.find((x: { name: string }) => x.name === name);
  // Every form readDateTime takes (a date alone, a space for the T, the short offsets), and what it refuses.
  for (const name of ['since', 'until']) {
    const text = param('/api/v1/predictions', 'get', name).description;
    assert.match(text, /date alone \(2026-11-01\) is its first moment in UTC/);
    assert.match(text, /RFC 3339 with its zone/);
    assert.match(text, /'T' or one space/);
    assert.match(text, /±hh:mm, ±hhmm or ±hh/);
    assert.match(text, /without its zone, or with a leap second \(:60\), is refused/);
  }
  assert.match(param('/api/v1/predictions', 'post', 'patientAge').description, /decimal digits/);
});

test('a 503 whose cause lasts (the PACS refusing the login) asks for a long Retry-After', async () => {
  const post = (id: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ orthancInstances: [id] }),
    });
  const refused = await post(REFUSED_LOGIN);
  assert.equal(refused.statusCode, 503);
  assert.equal(refused.headers['retry-after'], '300');
  assert.equal((await post('0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d')).statusCode, 202);
});
