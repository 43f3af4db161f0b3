// The shared audit log end to end: `cxr serve --db postgres://...` answers a prediction that is
// then in PostgreSQL, `cxr predict` and `cxr history` use the same database through CXR_DB, and
// no password is ever printed. The URL checks themselves need no server.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AuditRecord, openAuditStore } from '../src/serve/audit';
import { parseAuditTarget, redactSecret, redactUrl } from '../src/serve/audit_target';
import { Client } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import { postgresBackend } from './audit-backends';
import { auditRecord, CLI, makeTinyModel, multipartBody, spawnServer, tempDir, XRAY_JPEG } from './serve-fixtures';

const pg = postgresBackend();
let dir = '';
let model = '';

before(async () => {
  if (pg.skip) return;
  dir = tempDir('audit-pg');
  model = await makeTinyModel(path.join(dir, 'model'));
});
after(() => {
  pg.done();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function cxr(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CXR_MODEL: model, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const password = (url: string) => decodeURIComponent(new URL(url).password);

test('URLs: postgres:// and postgresql:// name PostgreSQL, anything else a file; bad ones are refused', () => {
  assert.deepEqual(parseAuditTarget('/var/lib/cxr/audit.db'), { kind: 'sqlite', file: '/var/lib/cxr/audit.db' });
  const t = parseAuditTarget('postgresql://cxr:s%40cr%2Fet@db.lan:5433/audit?sslmode=verify-full');
  assert.equal(t.kind, 'postgres');
  assert.equal(t.kind === 'postgres' && t.password, 's@cr/et');
  assert.equal(t.kind === 'postgres' && t.display, 'postgresql://cxr:*****@db.lan:5433/audit?sslmode=verify-full');
  const refused: [string, RegExp][] = [
    ['mysql://u:p@h/db', /mysql:\/\/ is not supported/],
    // Not URLs to SQLite: relative file names that would land in the working folder.
    [
      'sqlite:/tmp/x.db',
      /sqlite:\/tmp\/x\.db: a sqlite: name is not taken; give the SQLite file's path \(\/tmp\/x\.db\)/,
    ],
    ['file:/tmp/y.db', /a file: name is not taken/],
    ['postgres://cxr:pw@/db', /not a valid URL/],
    ['postgres:///db', /no host/],
    ['postgres://cxr:pw@db.lan', /no database name/],
    ['postgres://cxr:pw@db.lan/a/b', /not a database name/],
    ['postgres://cxr:pw@db.lan/db?sslcert=/etc/x', /unknown parameter 'sslcert'/],
    ['postgres://cxr:pw@db.lan/db?sslmode=maybe', /sslmode has an invalid value/],
    ['postgres://cxr:pw@db.lan:99999/db', /not a valid URL/],
    ['', /empty/],
  ];
  for (const [url, why] of refused) {
    assert.throws(() => parseAuditTarget(url), why, url);
    assert.throws(
      () => parseAuditTarget(url),
      (e: Error) => !/\bpw\b/.test(e.message),
      `${url}: the password is not in the message`,
    );
  }
  assert.equal(redactUrl('postgres://u:p@ss@h/db'), 'postgres://u:*****@h/db', 'an unencoded @ in the password');
  // A mistyped scheme is no URL, but its password is still hidden (and only it: cli-leftovers-s35 has more forms).
  for (const [typo, shown] of [
    ['http//cxr:S3cret@h:1', 'http//cxr:*****@h:1'],
    ['//cxr:S3cret@h:1', '//cxr:*****@h:1'],
    ['cxr:S3cret@h:1', 'cxr:*****@h:1'],
  ])
    assert.equal(redactUrl(typo), shown, typo);
  assert.equal(redactUrl('/var/lib/cxr/audit.db'), '/var/lib/cxr/audit.db');
  // Such a --db is refused rather than taken as a file named after the login (rows going to a local file).
  const typos = [
    'postgres//cxr:S3cret@db/cxr',
    'postgres:/cxr:S3cret@db/cxr',
    '//cxr:S3cret@db/cxr',
    'cxr:S3cret@db/x',
  ];
  for (const typo of typos)
    assert.throws(
      () => parseAuditTarget(typo),
      (e: Error) => /looks like a database URL but is not one/.test(e.message) && !e.message.includes('S3cret'),
      typo,
    );
  assert.equal(parseAuditTarget('postgres/audit.db').kind, 'sqlite', 'a folder named postgres is a folder');
  assert.equal(redactUrl('postgres://h/db'), 'postgres://h/db');
  assert.equal(redactSecret('failed for s@cr/et and s%40cr%2Fet', 's@cr/et'), 'failed for ***** and *****');
});

test('a wrong password or a closed port: a clear error without the password', { skip: pg.skip }, async () => {
  const url = await pg.fresh();
  const wrong = url.replace(`:${encodeURIComponent(password(url))}@`, ':not-the-password-42@');
  await assert.rejects(openAuditStore(wrong), (e: Error) => {
    assert.match(e.message, /^audit log postgres:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+\/cxr: .*password authentication/);
    assert.ok(!e.message.includes('not-the-password-42'), e.message);
    return true;
  });
  const r = cxr(['history', '--db', wrong]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /password authentication failed/);
  assert.ok(!r.stderr.includes('not-the-password-42'), r.stderr);
  // PGPASSWORD supplies a password the URL leaves out.
  const bare = url.replace(/:[^:@/]+@/, '@');
  await (await openAuditStore(url)).close();
  const viaEnv = cxr(['history', '--db', bare], { PGPASSWORD: password(url) });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.match(viaEnv.stdout, /^0 prediction\(s\) in postgres:\/\/cxr@127\.0\.0\.1/);
});

test('sslmode means what PostgreSQL documents (require: encrypted, certificate unchecked), without warnings', () => {
  const warnings: string[] = [];
  const hear = (w: Error) => warnings.push(w.message);
  process.on('warning', hear);
  try {
    const driver = (mode: string) => {
      const t = parseAuditTarget(`postgres://cxr@db.lan/audit?sslmode=${mode}`);
      assert.ok(t.kind === 'postgres');
      assert.ok(!t.display.includes('uselibpqcompat'), 'the display is what the user wrote');
      return parseConnectionString(t.url).ssl as { rejectUnauthorized?: boolean } | boolean;
    };
    assert.deepEqual(driver('require'), { rejectUnauthorized: false });
    assert.deepEqual(driver('prefer'), { rejectUnauthorized: false });
    assert.deepEqual(driver('verify-full'), {});
    assert.equal(driver('disable'), false);
  } finally {
    process.off('warning', hear);
  }
  assert.deepEqual(
    warnings.filter((w) => /SSL modes/.test(w)),
    [],
  );
  // An encrypted but unchecked connection is said once at open (target.caution); a check that cannot be
  // made (verify-ca with no CA) is refused before any connection.
  const require = parseAuditTarget('postgres://cxr@db.lan/audit?sslmode=require');
  assert.match(String(require.kind === 'postgres' && require.caution), /does not check the server's certificate/);
  const checked = parseAuditTarget('postgres://cxr@db.lan/audit?sslmode=require&sslrootcert=/etc/ca.pem');
  assert.equal(checked.kind === 'postgres' && checked.caution, undefined);
  assert.throws(
    () => parseAuditTarget('postgres://cxr:pw@db.lan/audit?sslmode=verify-ca'),
    /sslrootcert, which is missing/,
  );
});

test('pool_size in the URL is a cxr parameter: bounded, and taken out of what the driver sees', () => {
  const t = parseAuditTarget('postgres://cxr:pw@db.lan/audit?sslmode=verify-full&pool_size=3');
  assert.ok(t.kind === 'postgres');
  assert.equal(t.poolSize, 3);
  assert.equal(t.url, 'postgres://cxr:pw@db.lan/audit?sslmode=verify-full');
  assert.equal(t.display, 'postgres://cxr:*****@db.lan/audit?sslmode=verify-full&pool_size=3');
  const plain = parseAuditTarget('postgres://cxr:pw@db.lan/audit');
  assert.equal(plain.kind === 'postgres' && plain.poolSize, 8);
  for (const bad of ['0', '100', 'x', '']) {
    assert.throws(
      () => parseAuditTarget(`postgres://cxr:pw@db.lan/audit?pool_size=${bad}`),
      /pool_size has an invalid/,
    );
  }
});

test('pool_size bounds the connections one process opens', { skip: pg.skip }, async () => {
  const url = await pg.fresh();
  // Its own application_name, so that no other connection to the test server is counted.
  const sep = url.includes('?') ? '&' : '?';
  const store = await openAuditStore(`${url}${sep}application_name=cxr-pool-test&pool_size=2`);
  try {
    await Promise.all(Array.from({ length: 12 }, () => store.count()));
    const [{ n }] = (await pg.raw(
      url,
      "SELECT CAST(COUNT(*) AS INTEGER) AS n FROM pg_stat_activity WHERE application_name = 'cxr-pool-test'",
    )) as { n: number }[];
    assert.equal(n, 2, 'twelve queries at once share the two pooled connections');
  } finally {
    await store.close();
  }
});

test('cxr serve --db postgres://: the answered prediction is in PostgreSQL; cxr predict and history share it', {
  skip: pg.skip,
  timeout: 300_000,
}, async () => {
  const url = await pg.fresh();
  const server = await spawnServer(['--model', model, '--db', url]);
  let id: string;
  try {
    assert.match(server.log(), /"auditLog":"postgres:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+\/cxr"/);
    assert.ok(!server.log().includes(password(url)), 'the password is not logged');
    const { body, headers } = multipartBody('image', 'x.jpeg', fs.readFileSync(XRAY_JPEG));
    const res = await fetch(`${server.url}/api/v1/predictions`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers,
    });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as AuditRecord & { heatmapUrl: string };
    id = answer.id;
    assert.equal(answer.resultKey, null);
    // Straight from PostgreSQL, not through the server.
    const rows = await pg.raw(url, 'SELECT id, label, probability FROM predictions');
    assert.deepEqual(rows, [{ id, label: answer.label, probability: answer.probability }]);
    const heat = await fetch(`${server.url}${answer.heatmapUrl}`);
    assert.equal(heat.status, 200);
    assert.equal(
      Buffer.from(await heat.arrayBuffer())
        .subarray(1, 4)
        .toString(),
      'PNG',
    );
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0, server.log());
  }
  // cxr predict through CXR_DB (no password on the command line) adds a row; history sees both.
  const p = cxr(['predict', XRAY_JPEG, '--json'], { CXR_DB: url });
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stderr, /1 prediction\(s\) written to the audit log postgres:\/\/cxr:\*\*\*\*\*@/);
  assert.ok(!p.stderr.includes(password(url)));
  const h = cxr(['history', '--json'], { CXR_DB: url });
  assert.equal(h.code, 0, h.stderr);
  const listed = h.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditRecord);
  assert.equal(listed.length, 2);
  assert.equal(listed[1].id, id, 'newest first: the served one is older');
  assert.equal(listed[0].requestedBy, null);
});

test('a connection lost inside a transaction is an outage for the caller, not a crash of the process', {
  skip: pg.skip,
}, async () => {
  const url = await pg.fresh();
  const sep = url.includes('?') ? '&' : '?';
  const store = await openAuditStore(`${url}${sep}application_name=cxr-lost-test`);
  const locker = new Client({ connectionString: url });
  await locker.connect();
  try {
    // Hold the table so that the insert's transaction waits inside it, then end that connection as a
    // stopping PostgreSQL does: its client emits 'error' while checked out of the pool.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE');
    const insert = store.insert(auditRecord(1), null);
    const outcome = insert.then(
      () => 'inserted',
      (e: Error) => e.message,
    );
    for (let i = 0; i < 100; i++) {
      const waiting = await locker.query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'cxr-lost-test' " +
          "AND wait_event_type = 'Lock'",
      );
      if (waiting.rowCount) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(await outcome, /does not answer|terminat/, 'the insert fails as an outage');
    await locker.query('ROLLBACK');
    // The pool replaced the lost connection: the store works on.
    await store.insert(auditRecord(2), null);
    assert.equal(await store.count(), 1);
  } finally {
    await locker.end();
    await store.close();
  }
});
