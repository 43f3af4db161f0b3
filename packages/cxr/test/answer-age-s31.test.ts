// The answer says which age its verdict took and where it came from: the DICOM header's PatientAge, the age
// from its PatientBirthDate and StudyDate, or the age sent with the request (of ages that disagree, the one
// outside the intended population), null when the film has none. Only the age and its source, never a date,
// and only in the answer to POST /predictions: the audit log keeps no patient data, so a prediction read back
// has none. The OpenAPI document shows the field, optional and nullable.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { auditRecordOf } from '../src/predict/audit_record';
import { buildApp } from '../src/serve/app';
import { type Element, imageElements, writeDicom } from './dicom-writer';
import { gradientFilm, multipartBody, serverParts } from './serve-fixtures';

let app: FastifyInstance;
let png: Buffer;

const parts = serverParts('answer-age-s31', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, webDir: null });
    png = await gradientFilm();
  },
  closing: () => app?.close(),
});

const W = 120;
const H = 100;
const pixels = Uint16Array.from({ length: W * H }, (_, i) => ((i % W) * 30 + Math.floor(i / W) * 10) % 4096);
const dicom = (...extra: Element[]) =>
  writeDicom(imageElements({ rows: H, columns: W, bitsStored: 12, pixels, extra }));
const patientAge = (value: string): Element => ({ tag: 0x00101010, vr: 'AS', value });
const birth = (value: string): Element => ({ tag: 0x00100030, vr: 'DA', value });
const study = (value: string): Element => ({ tag: 0x00080020, vr: 'DA', value });

async function predict(file: Buffer, query = ''): Promise<Record<string, unknown>> {
  const { body, headers } = multipartBody('image', 'film', file);
  const res = await app.inject({ method: 'POST', url: `/api/v1/predictions${query}`, payload: body, headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

test("a DICOM's PatientAge 003Y: the answer says 3 years, from the header", async () => {
  const p = await predict(dicom(patientAge('003Y')));
  assert.deepEqual(p.age, { years: 3, untilYears: 4, source: 'header' });
  // '052W' counts completed weeks: just under a year, up to just over one (the verdict keeps it within).
  const weeks = (await predict(dicom(patientAge('052W')))).age as { years: number; untilYears: number };
  assert.ok(weeks.years < 1 && weeks.untilYears > 1, JSON.stringify(weeks));
});

/** The birth and study dates of the films below, as the DICOM writes them or as an ISO date. */
const DATES = /20160301|2016-03-01|20200101|2020-01-01/;

test('no PatientAge: the age from the birth and study dates, without the dates', async () => {
  const p = await predict(dicom(birth('20160301'), study('20200101')));
  const age = p.age as { years: number; source: string };
  assert.equal(age.source, 'dates');
  assert.ok(Math.abs(age.years - 3.84) < 0.01, `${age.years}`);
  assert.deepEqual(Object.keys(age).sort(), ['source', 'years'], 'no date in the answer');
  // The dates whole, in either form: "2016" alone is found in a probability's digits or a hash now and then.
  assert.doesNotMatch(JSON.stringify(p), DATES);
});

test('an age typed with a PNG is the stated one; none at all is null', async () => {
  assert.deepEqual((await predict(png, '?patientAge=4')).age, { years: 4, source: 'stated' });
  assert.equal((await predict(png)).age, null);
});

test('ages that disagree: the answer names the one the verdict took, outside the population', async () => {
  const p = await predict(dicom(patientAge('004Y')), '?patientAge=40');
  assert.deepEqual(p.age, { years: 40, source: 'stated' });
  // The synthetic film is not one the image checks pass; the AGE reason is the age's all the same.
  const reasons = (p.verdict as { reasons: { code: string }[] }).reasons.map((r) => r.code);
  assert.ok(reasons.includes('AGE'), reasons.join());
  // Both within: the header is trusted first.
  assert.deepEqual((await predict(dicom(patientAge('004Y')), '?patientAge=3')).age, {
    years: 4,
    untilYears: 5,
    source: 'header',
  });
});

test('the age is the answer alone: a prediction read back (one, the history) has none', async () => {
  const p = await predict(dicom(patientAge('003Y')));
  const one = (await app.inject(`/api/v1/predictions/${p.id}`)).json();
  assert.equal(one.id, p.id);
  assert.ok(!('age' in one), JSON.stringify(one));
  const page = (await app.inject('/api/v1/predictions')).json() as { items: Record<string, unknown>[] };
  assert.ok(page.items.length > 0 && page.items.every((i) => !('age' in i)));
});

test('the audit log keeps no age: not in the record auditRecordOf makes, nor in a column of the file', async () => {
  const result = await parts.predictor.predict(dicom(patientAge('003Y'), birth('20160301'), study('20200101')));
  assert.equal(result.age?.source, 'header', 'the answer has its age');
  // The one builder of every audit row (the server's, `cxr predict`'s, the queue's).
  const record = auditRecordOf(result, { model: parts.predictor.model, latencyMs: 1, requestedBy: null });
  assert.ok(!('age' in record), Object.keys(record).join());
  // The file itself, row and columns as SQLite holds them, not as the store reads them back.
  const p = await predict(dicom(patientAge('003Y'), birth('20160301'), study('20200101')));
  const db = new Database(path.join(parts.dir, 'audit.db'), { readonly: true });
  try {
    const columns = (db.prepare('PRAGMA table_info(predictions)').all() as { name: string }[]).map((c) => c.name);
    assert.ok(columns.includes('verdict_reasons'), columns.join());
    assert.deepEqual(
      columns.filter((c) => /(^|_)age($|_)|birth|patient|stated|until/i.test(c)),
      [],
    );
    const row = db.prepare('SELECT * FROM predictions WHERE id = ?').get(p.id) as Record<string, unknown>;
    assert.ok(row, 'the prediction has its row');
    assert.doesNotMatch(JSON.stringify(row), /untilYears|"source"/);
    assert.doesNotMatch(JSON.stringify(row), DATES);
  } finally {
    db.close();
  }
});

test('the OpenAPI document: Prediction.age is optional and nullable, with its sources', async () => {
  const doc = (await app.inject('/api/v1/openapi.json')).json();
  const prediction = doc.components.schemas.Prediction;
  const age = prediction.properties.age;
  assert.ok(age, 'Prediction has age');
  assert.equal(age.nullable, true);
  assert.deepEqual(age.properties.source.enum, ['header', 'dates', 'stated']);
  assert.deepEqual(age.required, ['years', 'source']);
  assert.ok(!prediction.required.includes('age'), 'optional: predictions read back have none');
});
