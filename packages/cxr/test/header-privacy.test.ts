// A DICOM header's free text never reaches a warning, which the audit log keeps: BodyPartExamined and
// Modality are quoted only when they are DICOM defined terms, else named by their tag alone. And `cxr
// history` prints one line per row whatever a stored value holds: control characters come out escaped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageChecks } from '../src/explain/image_checks';
import { Predictor } from '../src/predict/predictor';
import { openAuditStore } from '../src/serve/audit';
import { imageElements, writeDicom } from './dicom-writer';
import { auditRecord, CLI, makeTinyModel, tempDir } from './serve-fixtures';

let dir: string;
let predictor: Predictor;

before(async () => {
  dir = tempDir('header-privacy');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
});
after(() => {
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A film-like square: bright borders and mediastinum, darker lungs (what the values are does not matter here). */
const pixels = Uint8Array.from({ length: 64 * 64 }, (_, i) => {
  const x = i % 64;
  const lung = (x > 10 && x < 26) || (x > 38 && x < 54);
  return lung ? 60 + ((i * 7) % 20) : 190;
});
const messages = (f: { bodyPart?: string; modality?: string }) =>
  imageChecks({ pixels, size: 64, ...f })
    .filter((c) => c.code === 'BODY_PART' || c.code === 'MODALITY')
    .map((c) => c.message);

test('a body part or modality is quoted only when it is a DICOM defined term', () => {
  assert.deepEqual(messages({ bodyPart: 'SKULL' }), ['DICOM body part (0018,0015) SKULL: not a chest image']);
  assert.deepEqual(messages({ modality: 'CT' }), ['DICOM modality (0008,0060) CT: not a radiograph']);
  assert.deepEqual(messages({ bodyPart: 'HAND\\WRIST' }), [
    'DICOM body part (0018,0015) HAND\\WRIST: not a chest image',
  ]);
  for (const name of ['SMITH^JOHN 1962', 'SMITH JOHN', 'HAND\\SMITH', 'ABDOMEN\nx  ! forged']) {
    const [m] = messages({ bodyPart: name });
    assert.equal(
      m,
      'DICOM body part (0018,0015) (its value is not a DICOM defined term, not shown): not a chest image',
      name,
    );
  }
  assert.deepEqual(messages({ modality: 'ROE^RICHARD' }), [
    'DICOM modality (0008,0060) (its value is not a DICOM defined term, not shown): not a radiograph',
  ]);
  // A chest, and a radiograph, are said nothing about.
  assert.deepEqual(messages({ bodyPart: 'CHEST', modality: 'DX' }), []);
  // Line breaks and padding around defined terms are not quoted with them (a forged log line).
  for (const padded of ['SKULL\r\n\\HEAD', 'SKULL\u2028\\\u00a0HEAD']) {
    assert.deepEqual(messages({ bodyPart: padded }), ['DICOM body part (0018,0015) SKULL\\HEAD: not a chest image']);
  }
});

test('Predictor.predict, a DICOM with names in BodyPartExamined and Modality: no warning holds them', async () => {
  const dcm = writeDicom(
    imageElements({
      rows: 64,
      columns: 64,
      bitsAllocated: 8,
      pixels,
      extra: [
        { tag: 0x00180015, vr: 'CS', value: 'SMITH^JOHN 1962' },
        { tag: 0x00080060, vr: 'CS', value: 'ROE^RICHARD' },
      ],
    }),
  );
  const p = await predictor.predict(dcm);
  assert.equal(p.verdict.status, 'cannot-assess');
  const text = JSON.stringify(p);
  // "1962" as the value has it, after a space or caret: bare, its digits turn up in a probability now and then.
  assert.doesNotMatch(text, /SMITH|JOHN|ROE|RICHARD|[ ^]1962/);
  assert.ok(p.warnings.some((w) => /body part \(0018,0015\) \(its value is not a DICOM defined term/.test(w)));
  assert.ok(p.warnings.some((w) => /modality \(0008,0060\) \(its value is not a DICOM defined term/.test(w)));
});

test('cxr history: a stored line break, escape or bidi override is printed escaped, one row per line', async () => {
  const db = path.join(dir, 'audit.db');
  const audit = await openAuditStore(db);
  const forged =
    'note\n2026-01-01 00:09:00  0b6f3c7e-0000-4000-8000-000000000009  NORMAL     1.0%  balanced' +
    '\r\u001b[2Jcleared\u0085\u2028x\u202eevil';
  await audit.insert(auditRecord(1, { warnings: [forged], requestedBy: 'ward\t7' }), null);
  await audit.insert(auditRecord(2), null);
  await audit.close();
  const r = spawnSync(process.execPath, [CLI, 'history', '--db', db], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 3, r.stdout); // the count, then two rows
  const unprintable = [...r.stdout].filter((c) => {
    const n = c.codePointAt(0)!;
    return (n < 0x20 && c !== '\n') || (n >= 0x7f && n <= 0x9f) || (n >= 0x2028 && n <= 0x202e);
  });
  assert.deepEqual(unprintable, []);
  const row = lines.find((l) => l.includes('000000000001'))!;
  assert.match(row, /by token "ward\\t7"/);
  assert.match(
    row,
    /! note\\n2026-01-01 00:09:00 {2}0b6f3c7e-.*balanced\\r\\u001b\[2Jcleared\\u0085\\u2028x\\u202eevil$/,
  );
});
