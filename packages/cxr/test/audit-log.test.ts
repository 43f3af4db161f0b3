// The audit log on its own, against both stores (an SQLite file and PostgreSQL): migrations,
// filters and paging, idempotent insertOnce, read-only use (cxr history), image retention, and
// that nothing patient-identifying has a column to go into. SQLite-only facts (WAL) at the end.
import { after, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { type AuditRecord, openAuditStore, SCHEMA_VERSION } from '../src/serve/audit';
import { VERDICT_STATUSES } from '../src/predict/prediction_schema';
import { statusOf } from '../src/predict/verdict';
import { MIGRATIONS, POSTGRES, SQLITE } from '../src/serve/audit_migrations';
import { parseRetention, retentionCutoff } from '../src/serve/retention';
import { type AuditBackend, postgresBackend, sqliteBackend } from './audit-backends';
import { register as registerHistory } from '../src/cli/history';
import { runInProcess } from './in-process-cli';
import { tempDir } from './serve-fixtures';

const run = promisify(execFile);

function record(i: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
    input: { sha256: 'ab'.repeat(32), kind: 'jpeg', bytes: 1000 + i, width: 800, height: 600 },
    model: { name: 'm', version: '1', sha256: 'cd'.repeat(32) },
    probability: i / 10,
    logit: i - 5,
    threshold: 0.5,
    operatingPoint: i % 2 ? 'screening' : 'balanced',
    label: i / 10 >= 0.5 ? 'PNEUMONIA' : 'NORMAL',
    warnings: i % 3 === 0 ? ['low contrast'] : [],
    ood: i % 4 === 0 ? { score: 1.5, threshold: 3, outOfDistribution: false } : null,
    hasHeatmap: true,
    hasThumbnail: true,
    timings: { decodeMs: 1, inferMs: 2, heatmapMs: 3, totalMs: 6 },
    latencyMs: 7,
    requestedBy: i % 2 ? 'alice' : null,
    resultKey: null,
    ...over,
  };
}

const backends = [sqliteBackend(), postgresBackend()];
after(() => {
  for (const b of backends) b.done();
});

for (const b of backends) describeBackend(b);

function describeBackend(b: AuditBackend): void {
  // `cxr history` in this process (its words and files are the subject, not a process of its own).
  const cli = async (...args: string[]) => (await runInProcess([registerHistory], args)).stdout;

  describe(`audit store on ${b.name}`, { skip: b.skip }, () => {
    test('migrates a new log to the current schema, and reopens without migrating again', async () => {
      const target = await b.fresh();
      const a = await openAuditStore(target);
      assert.equal(a.kind, b.name);
      await a.insert(record(1), { thumbnailPng: Buffer.from([1, 2]), heatmapPng: Buffer.from([3]) });
      await a.close();
      assert.equal(await b.version(target), SCHEMA_VERSION);
      const again = await openAuditStore(target);
      assert.equal(await again.count(), 1);
      assert.deepEqual(await again.get(record(1).id), record(1));
      assert.deepEqual(await again.image(record(1).id, 'thumbnail'), Buffer.from([1, 2]));
      assert.deepEqual(await again.image(record(1).id, 'heatmap'), Buffer.from([3]));
      await again.close();
      assert.equal(await b.version(target), SCHEMA_VERSION);
    });

    test('a v2 log (before result_key) migrates: old rows read with no key, new rows take one', async () => {
      const target = await b.fresh();
      if (b.name === 'sqlite') {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const raw = new Database(target);
        for (const m of MIGRATIONS.slice(0, 2)) raw.exec(m(SQLITE));
        raw.pragma('user_version = 2');
        raw.close();
      } else {
        await b.raw(target, 'CREATE TABLE audit_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)');
        for (const [v, m] of MIGRATIONS.slice(0, 2).entries()) {
          await b.raw(target, m(POSTGRES));
          await b.raw(target, 'INSERT INTO audit_schema_migrations VALUES ($1, $2)', [v + 1, 'then']);
        }
      }
      const r = record(1);
      await b.raw(
        target,
        `INSERT INTO predictions (id, created_at, input_sha256, input_kind, input_bytes, width, height, model_name,
        model_version, model_sha256, probability, logit, threshold, operating_point, label, warnings, warning_count,
        has_heatmap, has_thumbnail, decode_ms, infer_ms, total_ms, latency_ms, requested_by)
        VALUES ($1, $2, 'ab', 'jpeg', 1, 1, 1, 'm', '1', 'cd', 0.5, 0, 0.5, 'balanced', 'PNEUMONIA', '[]', 0, 0, 0,
        1, 1, 2, 3, 'bob')`,
        [r.id, r.createdAt],
      );
      const a = await openAuditStore(target);
      const old = await a.get(r.id);
      assert.equal(old?.resultKey, null);
      assert.equal(old?.verdict, undefined, 'a row logged before verdicts were kept has none');
      assert.equal(old?.requestedBy, 'bob');
      assert.equal(await a.insertOnce(record(3), null, 'sha256:01'), 'inserted');
      assert.equal((await a.get(record(3).id))?.resultKey, 'sha256:01');
      await a.close();
      assert.equal(await b.version(target), SCHEMA_VERSION);
    });

    test('refuses a log written by a newer cxr', async () => {
      const target = await b.fresh();
      await (await openAuditStore(target)).close();
      await b.setVersion(target, SCHEMA_VERSION + 1);
      await assert.rejects(openAuditStore(target), /newer/);
      await assert.rejects(openAuditStore(target, { readonly: true }), /newer/);
    });

    test('filters and pages, newest first', async () => {
      const a = await openAuditStore(await b.fresh());
      for (let i = 0; i < 10; i++) await a.insert(record(i), null);
      const all = await a.list({ limit: 4 });
      assert.equal(all.total, 10);
      assert.deepEqual(
        all.items.map((r) => r.probability),
        [0.9, 0.8, 0.7, 0.6],
      );
      assert.equal((await a.list({ limit: 4, page: 3 })).items.length, 2);
      // Rows 6 and 9 are PNEUMONIA but logged without a verdict and with warnings: 'cannot assess', no finding.
      assert.equal((await a.list({ label: 'PNEUMONIA' })).total, 3);
      assert.equal((await a.list({ operatingPoint: 'screening' })).total, 5);
      assert.equal((await a.list({ hasWarnings: true })).total, 4);
      assert.equal((await a.list({ hasWarnings: false })).total, 6);
      assert.equal((await a.list({ since: record(7).createdAt })).total, 3);
      assert.equal((await a.list({ until: record(2).createdAt })).total, 3);
      assert.equal((await a.list({ since: record(3).createdAt, until: '2026-01-01T00:05:00+00:00' })).total, 3);
      const filtered = await a.list({ label: 'NORMAL', operatingPoint: 'balanced', limit: 1, page: 2 });
      assert.deepEqual([filtered.total, filtered.items[0].id], [2, record(2).id]);
      assert.equal(await a.image(record(1).id, 'heatmap'), null);
      await a.close();
    });

    test('label matches findings only; verdict lists each status, old rows read as statusOf reads them', async () => {
      const a = await openAuditStore(await b.fresh());
      const statuses = [undefined, ...VERDICT_STATUSES];
      const rows: AuditRecord[] = [];
      for (let i = 0; i < 16; i++) {
        const status = statuses[i % 4];
        // Warnings on every other row, so that old rows (no verdict) are read both ways.
        const r = record(i, { warnings: i % 8 < 4 ? ['a warning'] : [], verdict: status && { status, reasons: [] } });
        if (!status) delete r.verdict;
        rows.push(r);
        await a.insert(r, null);
      }
      const ids = async (f: Parameters<typeof a.list>[0]) =>
        (await a.list({ ...f, limit: 100 })).items.map((r) => r.id).sort();
      const expect = (keep: (r: AuditRecord) => boolean) =>
        rows
          .filter(keep)
          .map((r) => r.id)
          .sort();
      for (const status of VERDICT_STATUSES) {
        const want = expect((r) => statusOf(r) === status);
        assert.ok(want.length >= 4, status);
        assert.deepEqual(await ids({ verdict: status }), want, status);
      }
      for (const label of ['NORMAL', 'PNEUMONIA']) {
        const want = expect((r) => r.label === label && statusOf(r) !== 'cannot-assess');
        assert.deepEqual(await ids({ label }), want, label);
        assert.ok(!(await a.list({ label, verdict: 'cannot-assess' })).total, `${label}: no finding when not assessed`);
        const strict = expect((r) => r.label === label && statusOf(r) === 'assessed');
        assert.deepEqual(await ids({ label, verdict: 'assessed' }), strict, `${label}, assessed`);
      }
      await a.close();
    });

    test('a duplicate id is refused rather than overwriting a logged prediction', async () => {
      const a = await openAuditStore(await b.fresh());
      await a.insert(record(1), null);
      await assert.rejects(a.insert(record(1, { probability: 0.99 }), null), /already logged \(UNIQUE\)/);
      assert.equal((await a.get(record(1).id))?.probability, 0.1);
      await a.close();
    });

    test('insertOnce: one row per result key, model and operating point; plain rows never deduplicated', async () => {
      const a = await openAuditStore(await b.fresh());
      const images = { thumbnailPng: Buffer.from([9]) };
      assert.equal(await a.insertOnce(record(1), images, 'sha256:aa'), 'inserted');
      assert.equal(await a.insertOnce(record(2, { operatingPoint: 'screening' }), images, 'sha256:aa'), 'exists');
      assert.equal(await a.get(record(2).id), null, 'the second row is not written');
      assert.equal(await a.image(record(2).id, 'thumbnail'), null, 'nor its images');
      // Another operating point or model is another answer.
      assert.equal(await a.insertOnce(record(4), null, 'sha256:aa'), 'inserted');
      const otherModel = { name: 'm', version: '2', sha256: 'ef'.repeat(32) };
      assert.equal(await a.insertOnce(record(5, { model: otherModel }), null, 'sha256:aa'), 'inserted');
      const found = await a.findByResultKey('sha256:aa', 'cd'.repeat(32), 'screening');
      assert.deepEqual(found, { ...record(1), resultKey: 'sha256:aa' });
      assert.deepEqual(await a.image(record(1).id, 'thumbnail'), Buffer.from([9]));
      assert.equal(await a.findByResultKey('sha256:aa', 'cd'.repeat(32), 'sensitive'), null);
      assert.equal(await a.findByResultKey('sha256:bb', 'cd'.repeat(32), 'screening'), null);
      // Plain inserts (uploads) have no key: the same image twice is two rows.
      await a.insert(record(7), null);
      await a.insert(record(9), null);
      assert.equal(await a.count(), 5);
      await a.close();
    });

    test('concurrent insertOnce of one key from two connections: exactly one row', async () => {
      const target = await b.fresh();
      const [x, y] = [await openAuditStore(target), await openAuditStore(target)];
      for (let round = 0; round < 10; round++) {
        const key = `1.2.840.99.${round}`;
        const got = await Promise.all(
          Array.from({ length: 8 }, (_, k) =>
            (k % 2 ? x : y).insertOnce(record(100 + round * 8 + k, { operatingPoint: 'balanced' }), null, key),
          ),
        );
        assert.equal(got.filter((g) => g === 'inserted').length, 1, `round ${round}: ${got.join(',')}`);
      }
      assert.equal(await x.count(), 10);
      assert.equal(Number((await b.raw(target, 'SELECT COUNT(DISTINCT result_key) AS n FROM predictions'))[0].n), 10);
      await Promise.all([x.close(), y.close()]);
    });

    test('two processes opening a new log at once both migrate it without failing', async () => {
      const target = await b.fresh();
      const script = `require(${JSON.stringify(path.join(__dirname, '..', 'src', 'serve', 'audit.js'))})
        .openAuditStore(process.argv[1]).then((s) => s.count().then((n) => s.close().then(() => console.log(n))))`;
      const outs = await Promise.all(
        Array.from({ length: 8 }, () => run(process.execPath, ['-e', script, target], { encoding: 'utf8' })),
      );
      assert.deepEqual(
        outs.map((o) => o.stdout.trim()),
        Array(8).fill('0'),
      );
      assert.equal(await b.version(target), SCHEMA_VERSION);
    });

    test('no column for patient data: only hashes, sizes and results are stored', async () => {
      const target = await b.fresh();
      await (await openAuditStore(target)).close();
      const columns = await b.columns(target);
      assert.ok(columns.includes('result_key') && columns.includes('input_sha256'), columns.join(','));
      assert.ok(
        !columns.some((c) => /patient|name_of|birth|sex|accession|institution|file_?name/i.test(c)),
        columns.join(','),
      );
    });

    test('every record field round-trips through its column: null OOD, no heat-map time, nobody asking', async () => {
      const a = await openAuditStore(await b.fresh());
      const bare = record(1, {
        ood: null,
        timings: { decodeMs: 1, inferMs: 2, totalMs: 3 },
        requestedBy: null,
        hasHeatmap: false,
      });
      const full = record(4, {
        ood: { score: 9.123456789, threshold: 3, outOfDistribution: true },
        warnings: ['a', 'b "c"'],
        probability: 0.123456789012,
        latencyMs: 1234.5678901,
        verdict: { status: 'cannot-assess', reasons: [{ code: 'OOD', message: 'not like a chest X-ray' }] },
      });
      await a.insert(bare, null);
      await a.insert(full, null);
      assert.deepEqual(await a.get(bare.id), bare);
      assert.deepEqual(await a.get(full.id), full, 'doubles keep every digit');
      assert.equal((await a.list({ hasWarnings: true })).total, 1);
      await a.close();
    });

    test('a stored label or input kind outside the schema is an error naming the row and column', async () => {
      const target = await b.fresh();
      const a = await openAuditStore(target);
      await a.insert(record(1), null);
      await a.insert(record(2), null);
      await b.raw(target, 'UPDATE predictions SET label = $1 WHERE id = $2', ['MAYBE', record(1).id]);
      await b.raw(target, 'UPDATE predictions SET input_kind = $1 WHERE id = $2', ['gif', record(2).id]);
      await assert.rejects(
        a.get(record(1).id),
        new RegExp(`row ${record(1).id}: label is 'MAYBE', not one of NORMAL, PNEUMONIA`),
      );
      await assert.rejects(a.get(record(2).id), /input_kind is 'gif', not one of jpeg, png, dicom/);
      // A JSON column changed outside cxr: named, not a bare SyntaxError from JSON.parse.
      await a.insert(record(3), null);
      await b.raw(target, 'UPDATE predictions SET warnings = $1 WHERE id = $2', ['["cut', record(3).id]);
      await assert.rejects(a.get(record(3).id), new RegExp(`row ${record(3).id}: warnings is not JSON`));
      await a.close();
    });

    test('image retention: pruneImages and `cxr history prune` drop old images, keep every prediction', async () => {
      const target = await b.fresh();
      const a = await openAuditStore(target);
      for (let i = 0; i < 6; i++)
        await a.insert(record(i), { thumbnailPng: Buffer.from([i]), heatmapPng: Buffer.from([i, i]) });
      // record(i) is made at 2026-01-01T00:0i: prune the first three.
      assert.equal(await a.pruneImages('2026-01-01T00:03:00Z'), 3);
      assert.equal(await a.image(record(2).id, 'heatmap'), null);
      assert.equal((await a.get(record(2).id))?.hasHeatmap, false);
      assert.deepEqual(await a.image(record(3).id, 'thumbnail'), Buffer.from([3]));
      assert.equal(await a.pruneImages('2026-01-01T00:03:00Z'), 0, 'idempotent');
      await a.close();
      const out = await cli('history', 'prune', '--db', target, '--before', '2026-01-01T00:05:00Z');
      assert.match(out, /removed the images of 2 prediction\(s\)/);
      const again = await openAuditStore(target);
      assert.equal(await again.count(), 6);
      assert.equal(await again.image(record(4).id, 'thumbnail'), null);
      assert.deepEqual(await again.image(record(5).id, 'thumbnail'), Buffer.from([5]));
      await again.close();
      await assert.rejects(cli('history', 'prune', '--db', target, '--before', 'last week'), /before/);
    });

    test('cxr history reads the log (text, --json, --csv), a missing log is an error', async () => {
      const target = await b.fresh();
      const a = await openAuditStore(target);
      for (let i = 0; i < 5; i++) await a.insert(record(i), null);
      await a.insert(record(5, { warnings: ['=HYPERLINK("http://evil.example","x")'] }), null);
      await a.close();
      const text = await cli('history', '--db', target, '--limit', '3');
      assert.match(text, /^6 prediction\(s\) in .*newest 3/);
      assert.equal(text.trim().split('\n').length, 4);
      assert.match(text, / by token "alice"/, 'the token name that asked');
      // record(3) predates verdicts and has warnings: read as the page reads it (not assessed, no number).
      assert.match(text, new RegExp(`${record(3).id}  cannot assess +screening`));
      const jsonIds = async (...args: string[]) =>
        (await cli('history', '--db', target, '--json', ...args))
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as AuditRecord).id);
      // Rows 3 and 0 carry warnings and no verdict: 'cannot assess', so not NORMAL findings.
      assert.deepEqual(
        await jsonIds('--label', 'NORMAL'),
        [4, 2, 1].map((i) => record(i).id),
      );
      assert.deepEqual(
        await jsonIds('--verdict', 'cannot-assess'),
        [5, 3, 0].map((i) => record(i).id),
      );
      await assert.rejects(cli('history', '--db', target, '--verdict', 'maybe'), /verdict/);
      const csv = (await cli('history', '--db', target, '--csv')).trim().split('\n');
      assert.equal(csv.length, 7);
      assert.match(csv[1], /,"'=HYPERLINK\(""http:\/\/evil\.example"",""x""\)",cannot-assess$/);
      const empty = await b.fresh(); // nothing there yet: no log to read
      await assert.rejects(cli('history', '--db', empty), /no audit log/);
      await assert.rejects(cli('history', 'prune', '--db', empty), /no audit log/);
      // A film that could not be assessed reads as the page showed it: no finding, no number. (A new
      // log: on PostgreSQL, fresh() empties the one above.)
      const vTarget = await b.fresh();
      const verdicts = await openAuditStore(vTarget);
      await verdicts.insert(record(7, { verdict: { status: 'cannot-assess', reasons: [] } }), null);
      await verdicts.insert(record(8, { verdict: { status: 'outside-population', reasons: [] } }), null);
      await verdicts.close();
      const [outside, cannot] = (await cli('history', '--db', vTarget, '--limit', '2')).trim().split('\n').slice(1);
      assert.match(cannot, new RegExp(`${record(7).id}  cannot assess +screening`));
      assert.doesNotMatch(cannot, /PNEUMONIA|%/);
      assert.match(outside, /PNEUMONIA +80\.0% .*\(outside the intended population\)/);
      const [header, ...rows] = (await cli('history', '--db', vTarget, '--csv')).trim().split('\n');
      assert.match(header, /,warnings,verdict$/);
      assert.match(rows[0], /,outside-population$/);
    });
  });
}

test('SQLite: WAL mode, and `cxr history` of a missing file creates nothing', async () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'sub', 'audit.db');
  await (await openAuditStore(file)).close();
  const raw = new Database(file);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.close();
  const none = path.join(dir, 'none.db');
  const history = (...args: string[]) => runInProcess([registerHistory], ['history', ...args]);
  await assert.rejects(history('prune', '--db', none), /no audit log/);
  assert.ok(!fs.existsSync(none));
  // A file that is not a database (a film given as --db by mistake): said so, naming the file, and left as it was.
  const film = path.join(dir, 'film.jpeg');
  fs.writeFileSync(film, Buffer.alloc(4096, 0xab));
  await assert.rejects(openAuditStore(film), /film\.jpeg: not an SQLite database/);
  await assert.rejects(history('--db', film), /film\.jpeg: not an SQLite database/);
  assert.deepEqual(fs.readFileSync(film), Buffer.alloc(4096, 0xab));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('retention durations', () => {
  assert.equal(parseRetention('30d'), 30 * 86_400_000);
  assert.equal(parseRetention('12h'), 12 * 3_600_000);
  assert.equal(parseRetention('0'), 0);
  for (const bad of ['30', 'forever', '-1d', '1w']) assert.throws(() => parseRetention(bad), /retain-images/, bad);
  assert.equal(retentionCutoff(86_400_000, Date.UTC(2026, 0, 2)), '2026-01-01T00:00:00.000Z');
  // Longer than the calendar reaches: the log's first moment, a time every reader takes (not '-000001-...').
  assert.equal(retentionCutoff(1e16, Date.UTC(2026, 0, 2)), '0000-01-01T00:00:00.000Z');
});

test("PostgreSQL that refuses the connection: the open error keeps the driver's code, not the password", async () => {
  // Port 1 on this machine: nothing listens, so the connection is refused at once.
  await assert.rejects(openAuditStore('postgres://cxr:s3cret-pw@127.0.0.1:1/cxr'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ECONNREFUSED');
    assert.doesNotMatch(e.message, /s3cret-pw/);
    return true;
  });
});
