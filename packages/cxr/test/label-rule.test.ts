// One rule for `label` wherever an answer is given: null when the verdict is cannot-assess (the model's label of
// an image it cannot read is no finding), kept for outside-population (for reference) and assessed answers.
// Predictor.predict, POST /predictions, the history (list and one), `cxr history` (text, CSV, JSON) and a row
// logged before the rule (which kept the model's label) all agree. Also what Predictor.predict says to a
// program that passes something other than the file's bytes, or an age that is not a number.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { buildApp } from '../src/serve/app';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { auditRecord, CLI, makeTinyModel, multipartBody, tempDir, XRAY_JPEG } from './serve-fixtures';

let dir: string;
let db: string;
let predictor: Predictor;
let audit: AuditStore;
let app: FastifyInstance;
let onePixel: Buffer;

// Rows logged before the rule: a cannot-assess answer with its model label, and one from before verdicts
// were kept whose warnings make it cannot-assess to every reader.
const OLD_VERDICT = auditRecord(1, {
  label: 'PNEUMONIA',
  warnings: ['image is too small to read'],
  verdict: { status: 'cannot-assess', reasons: [{ code: 'TOO_SMALL', message: 'image is too small to read' }] },
});
const OLD_NO_VERDICT = auditRecord(2, { label: 'PNEUMONIA', warnings: ['does not look like a chest X-ray'] });
const OLD_ASSESSED = auditRecord(3, { label: 'PNEUMONIA', verdict: { status: 'assessed', reasons: [] } });

before(async () => {
  dir = tempDir('label-rule');
  db = path.join(dir, 'audit.db');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
  audit = await openAuditStore(db);
  for (const r of [OLD_VERDICT, OLD_NO_VERDICT, OLD_ASSESSED]) await audit.insert(r, null);
  app = await buildApp({ predictor, audit });
  onePixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
});
after(async () => {
  await app?.close();
  await audit?.close();
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function post(file: Buffer, query = '') {
  const { body, headers } = multipartBody('image', 'x.png', file);
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/predictions?heatmap=false${query}`,
    payload: body,
    headers,
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

test('Predictor.predict: no label for a cannot-assess answer; one for outside-population', async () => {
  const p = await predictor.predict(onePixel);
  assert.equal(p.verdict.status, 'cannot-assess');
  assert.equal(p.label, null);
  assert.ok(p.probability > 0 && p.probability < 1, 'the score is kept');
  const adult = await predictor.predict(fs.readFileSync(XRAY_JPEG), { patientAge: 40 });
  assert.equal(adult.verdict.status, 'outside-population', adult.warnings.join('; '));
  assert.equal(adult.label, adult.probability >= adult.threshold ? 'PNEUMONIA' : 'NORMAL');
});

test('the API: the answer, the history and the prediction by id give null; the log keeps the model label', async () => {
  const answer = await post(onePixel);
  assert.equal(answer.verdict.status, 'cannot-assess');
  assert.equal(answer.label, null);
  const adult = await post(fs.readFileSync(XRAY_JPEG), '&patientAge=40');
  assert.equal(adult.verdict.status, 'outside-population');
  assert.match(adult.label, /^(NORMAL|PNEUMONIA)$/);

  const page = (await app.inject('/api/v1/predictions?limit=200')).json();
  const byId = new Map(page.items.map((r: { id: string; label: string | null }) => [r.id, r.label]));
  assert.equal(byId.get(answer.id), null);
  assert.equal(byId.get(adult.id), adult.label);
  assert.equal(byId.get(OLD_VERDICT.id), null, 'a row logged before the rule reads the same');
  assert.equal(byId.get(OLD_NO_VERDICT.id), null, 'a row logged before verdicts were kept too');
  assert.equal(byId.get(OLD_ASSESSED.id), 'PNEUMONIA');
  for (const id of [answer.id, OLD_VERDICT.id]) {
    assert.equal((await app.inject(`/api/v1/predictions/${id}`)).json().label, null, id);
  }
  // The label filter agrees: such rows have none.
  const pneumonia = (await app.inject('/api/v1/predictions?label=PNEUMONIA&limit=200')).json();
  assert.deepEqual(
    pneumonia.items.map((r: { id: string }) => r.id).filter((id: string) => [OLD_VERDICT.id, answer.id].includes(id)),
    [],
  );
  // The log itself keeps the model's label of every answer (its column takes no NULL).
  assert.match((await audit.get(answer.id))!.label, /^(NORMAL|PNEUMONIA)$/);
});

test('cxr history: text, CSV and JSON show no label for a cannot-assess row, old rows included', () => {
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, 'history', '--db', db, ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const json = cli('--json', '--limit', '100')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const label = (id: string) => json.find((r) => r.id === id).label;
  assert.equal(label(OLD_VERDICT.id), null);
  assert.equal(label(OLD_NO_VERDICT.id), null);
  assert.equal(label(OLD_ASSESSED.id), 'PNEUMONIA');

  const [header, ...rows] = cli('--csv', '--limit', '100').trim().split('\n');
  const col = header.split(',').indexOf('label');
  const csvLabel = (id: string) => rows.find((r) => r.includes(id))!.split(',')[col];
  assert.equal(csvLabel(OLD_VERDICT.id), '');
  assert.equal(csvLabel(OLD_NO_VERDICT.id), '');
  assert.equal(csvLabel(OLD_ASSESSED.id), 'PNEUMONIA');
  // The verdict column reads an old row as the text and --verdict do: cannot-assess when it carries warnings.
  const csvVerdict = (id: string) =>
    rows
      .find((r) => r.includes(id))!
      .split(',')
      .at(-1);
  assert.equal(csvVerdict(OLD_NO_VERDICT.id), 'cannot-assess');
  assert.equal(csvVerdict(OLD_ASSESSED.id), 'assessed');

  const text = cli('--limit', '100');
  assert.match(text.split('\n').find((l) => l.includes(OLD_VERDICT.id))!, /cannot assess/);
  assert.doesNotMatch(text.split('\n').find((l) => l.includes(OLD_VERDICT.id))!, /PNEUMONIA/);
});

test('Predictor.predict: a path, an ArrayBuffer or a string age is refused saying what was expected', async () => {
  await assert.rejects(predictor.predict(undefined as unknown as Buffer), /Uint8Array, got undefined$/);
  await assert.rejects(predictor.predict('film.png' as unknown as Buffer), (e: Error) => {
    assert.ok(e instanceof TypeError, String(e));
    assert.match(e.message, /expected the image file's bytes as a Buffer or Uint8Array, got a string \("film\.png"\)/);
    assert.match(e.message, /read the file first, e\.g\. fs\.readFileSync\(path\)/);
    return true;
  });
  const ab = new Uint8Array(onePixel).buffer;
  await assert.rejects(predictor.predict(ab as unknown as Buffer), (e: Error) => {
    assert.ok(e instanceof TypeError, String(e));
    assert.match(e.message, /got an ArrayBuffer: wrap it, e\.g\. new Uint8Array\(arrayBuffer\)/);
    return true;
  });
  // A Uint8Array is the file's bytes as much as a Buffer is.
  assert.equal((await predictor.predict(new Uint8Array(onePixel))).input.bytes, onePixel.length);
  await assert.rejects(predictor.predict(onePixel, { patientAge: '7' as unknown as number }), (e: Error) => {
    assert.ok(e instanceof InputError && e.code === 'BAD_PATIENT_AGE', String(e));
    assert.match(
      e.message,
      /must be a number of years from 0 to 130, got a string \(1 character, not shown\); give the number itself/,
    );
    return true;
  });
  await assert.rejects(predictor.predict(onePixel, { patientAge: 131 }), /got 131$/);
});
