// The audit log on its own: migrations by user_version, WAL, filters and paging, read-only use
// (cxr history), and that nothing patient-identifying has a column to go into.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog, AuditRecord, SCHEMA_VERSION } from '../src/serve/audit';
import { parseRetention, retentionCutoff } from '../src/serve/retention';
import { CLI, tempDir } from './serve-fixtures';

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
    ...over,
  };
}

test('migrates a new file to the current schema in WAL mode, and reopens without migrating again', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'sub', 'audit.db');
  const a = AuditLog.open(file);
  a.insert(record(1), { thumbnailPng: Buffer.from([1, 2]), heatmapPng: Buffer.from([3]) });
  a.close();
  const raw = new Database(file);
  assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.close();
  const b = AuditLog.open(file);
  assert.equal(b.count(), 1);
  assert.deepEqual(b.get(record(1).id), record(1));
  assert.deepEqual(b.image(record(1).id, 'thumbnail'), Buffer.from([1, 2]));
  assert.deepEqual(b.image(record(1).id, 'heatmap'), Buffer.from([3]));
  b.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a v1 log (before requested_by) migrates: old rows read as asked by nobody, new rows keep the token name', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  AuditLog.open(file).close();
  // Turn the fresh file back into a v1 log: no requested_by column, user_version 1.
  const raw = new Database(file);
  raw.exec('ALTER TABLE predictions DROP COLUMN requested_by');
  raw.pragma('user_version = 1');
  raw.close();
  const v1 = new Database(file);
  const r = record(1);
  v1.prepare(`INSERT INTO predictions (id, created_at, input_sha256, input_kind, input_bytes, width, height, model_name,
    model_version, model_sha256, probability, logit, threshold, operating_point, label, warnings, warning_count,
    has_heatmap, has_thumbnail, decode_ms, infer_ms, total_ms, latency_ms)
    VALUES (?, ?, 'ab', 'jpeg', 1, 1, 1, 'm', '1', 'cd', 0.5, 0, 0.5, 'balanced', 'PNEUMONIA', '[]',
      0, 0, 0, 1, 1, 2, 3)`).run(r.id, r.createdAt);
  v1.close();
  const a = AuditLog.open(file);
  assert.equal(a.get(r.id)?.requestedBy, null);
  a.insert(record(3), null);
  assert.equal(a.get(record(3).id)?.requestedBy, 'alice');
  a.close();
  const after = new Database(file, { readonly: true });
  assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  after.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('refuses a log written by a newer cxr', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  const raw = new Database(file);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => AuditLog.open(file), /newer/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('filters and pages, newest first', () => {
  const a = AuditLog.open(':memory:');
  for (let i = 0; i < 10; i++) a.insert(record(i), null);
  const all = a.list({ limit: 4 });
  assert.equal(all.total, 10);
  assert.deepEqual(
    all.items.map((r) => r.probability),
    [0.9, 0.8, 0.7, 0.6],
  );
  assert.equal(a.list({ limit: 4, page: 3 }).items.length, 2);
  assert.equal(a.list({ label: 'PNEUMONIA' }).total, 5);
  assert.equal(a.list({ operatingPoint: 'screening' }).total, 5);
  assert.equal(a.list({ hasWarnings: true }).total, 4);
  assert.equal(a.list({ hasWarnings: false }).total, 6);
  assert.equal(a.list({ since: record(7).createdAt }).total, 3);
  assert.equal(a.list({ until: record(2).createdAt }).total, 3);
  assert.equal(a.list({ since: record(3).createdAt, until: '2026-01-01T00:05:00+00:00' }).total, 3);
  assert.equal(a.image(record(1).id, 'heatmap'), null);
  a.close();
});

test('a duplicate id is refused rather than overwriting a logged prediction', () => {
  const a = AuditLog.open(':memory:');
  a.insert(record(1), null);
  assert.throws(() => a.insert(record(1, { probability: 0.99 }), null), /UNIQUE/);
  assert.equal(a.get(record(1).id)?.probability, 0.1);
  a.close();
});

test('no column for patient data: only hashes, sizes and results are stored', () => {
  const a = AuditLog.open(':memory:');
  a.close();
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  AuditLog.open(file).close();
  const raw = new Database(file);
  const columns = (raw.prepare("SELECT name FROM pragma_table_info('predictions')").all() as { name: string }[]).map(
    (c) => c.name,
  );
  raw.close();
  assert.ok(
    !columns.some((c) => /patient|name_of|birth|sex|accession|institution|file_?name/i.test(c)),
    columns.join(','),
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

test('cxr history reads the log (text and --json)', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  const a = AuditLog.open(file);
  for (let i = 0; i < 5; i++) a.insert(record(i), null);
  a.close();
  const text = execFileSync(process.execPath, [CLI, 'history', '--db', file, '--limit', '3'], { encoding: 'utf8' });
  assert.match(text, /^5 prediction\(s\) in .*newest 3/);
  assert.equal(text.trim().split('\n').length, 4);
  assert.match(text, /PNEUMONIA|NORMAL/);
  assert.match(text, / by alice/, 'the token name that asked');
  const json = execFileSync(process.execPath, [CLI, 'history', '--db', file, '--json', '--label', 'NORMAL'], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditRecord);
  assert.equal(json.length, 5 - json.filter((r) => r.label === 'PNEUMONIA').length);
  assert.ok(json.every((r) => r.label === 'NORMAL'));
  assert.throws(
    () => execFileSync(process.execPath, [CLI, 'history', '--db', path.join(dir, 'none.db')], { stdio: 'pipe' }),
    /no audit log/,
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

test('cxr history --csv: one row per prediction, formula-like text cells escaped', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  const a = AuditLog.open(file);
  a.insert(record(1, { warnings: ['=HYPERLINK("http://evil.example","x")'], operatingPoint: '@SUM(A1)' }), null);
  a.insert(record(2, { logit: -3 }), null);
  a.close();
  const text = execFileSync(process.execPath, [CLI, 'history', '--db', file, '--csv'], { encoding: 'utf8' });
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^created_at,id,label,probability,/);
  assert.match(lines[2], /,'@SUM\(A1\),/);
  assert.match(lines[2], /,"'=HYPERLINK\(""http:\/\/evil\.example"",""x""\)"$/);
  assert.ok(!lines.some((l) => /(^|,)[=+@-]/.test(l)), text);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('image retention: pruneImages and `cxr history prune --before` drop old images, keep every prediction', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  const a = AuditLog.open(file);
  for (let i = 0; i < 6; i++) a.insert(record(i), { thumbnailPng: Buffer.from([i]), heatmapPng: Buffer.from([i, i]) });
  // record(i) is made at 2026-01-01T00:0i: prune the first three.
  assert.equal(a.pruneImages('2026-01-01T00:03:00Z'), 3);
  assert.equal(a.image(record(2).id, 'heatmap'), null);
  assert.equal(a.get(record(2).id)?.hasHeatmap, false);
  assert.deepEqual(a.image(record(3).id, 'thumbnail'), Buffer.from([3]));
  assert.equal(a.pruneImages('2026-01-01T00:03:00Z'), 0, 'idempotent');
  a.close();
  const out = execFileSync(
    process.execPath,
    [CLI, 'history', 'prune', '--db', file, '--before', '2026-01-01T00:05:00Z'],
    { encoding: 'utf8' },
  );
  assert.match(out, /removed the images of 2 prediction\(s\)/);
  const b = AuditLog.open(file);
  assert.equal(b.count(), 6);
  assert.equal(b.image(record(4).id, 'thumbnail'), null);
  assert.deepEqual(b.image(record(5).id, 'thumbnail'), Buffer.from([5]));
  b.close();
  assert.throws(
    () =>
      execFileSync(process.execPath, [CLI, 'history', 'prune', '--db', file, '--before', 'last week'], {
        stdio: 'pipe',
      }),
    /before/,
  );
  assert.throws(
    () =>
      execFileSync(process.execPath, [CLI, 'history', 'prune', '--db', path.join(dir, 'none.db')], { stdio: 'pipe' }),
    /no audit log/,
  );
  assert.ok(!fs.existsSync(path.join(dir, 'none.db')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('retention durations', () => {
  assert.equal(parseRetention('30d'), 30 * 86_400_000);
  assert.equal(parseRetention('12h'), 12 * 3_600_000);
  assert.equal(parseRetention('0'), 0);
  for (const bad of ['30', 'forever', '-1d', '1w']) assert.throws(() => parseRetention(bad), /retain-images/, bad);
  assert.equal(retentionCutoff(86_400_000, Date.UTC(2026, 0, 2)), '2026-01-01T00:00:00.000Z');
});

test('every record field round-trips through its column: null OOD, no heat-map time, nobody asking', () => {
  const a = AuditLog.open(':memory:');
  const bare = record(1, {
    ood: null,
    timings: { decodeMs: 1, inferMs: 2, totalMs: 3 },
    requestedBy: null,
    hasHeatmap: false,
  });
  const full = record(4, { ood: { score: 9, threshold: 3, outOfDistribution: true }, warnings: ['a', 'b "c"'] });
  a.insert(bare, null);
  a.insert(full, null);
  assert.deepEqual(a.get(bare.id), bare);
  assert.deepEqual(a.get(full.id), full);
  assert.equal(a.list({ hasWarnings: true }).total, 1);
  a.close();
});

test('a stored label or input kind outside the schema is an error naming row and column, not a silent string', () => {
  const dir = tempDir('audit');
  const file = path.join(dir, 'audit.db');
  const a = AuditLog.open(file);
  a.insert(record(1), null);
  a.insert(record(2), null);
  a.close();
  const raw = new Database(file);
  raw.prepare('UPDATE predictions SET label = ? WHERE id = ?').run('MAYBE', record(1).id);
  raw.prepare('UPDATE predictions SET input_kind = ? WHERE id = ?').run('gif', record(2).id);
  raw.close();
  const b = AuditLog.open(file);
  assert.throws(
    () => b.get(record(1).id),
    new RegExp(`row ${record(1).id}: label is 'MAYBE', not one of NORMAL, PNEUMONIA`),
  );
  assert.throws(() => b.get(record(2).id), /input_kind is 'gif', not one of jpeg, png, dicom/);
  b.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
