import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { imageElements, writeDicom } from './dicom-writer';
import { makeSeededModel, tempDir } from './ood-fixtures';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
let images = '';

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CXR_MODEL: modelDir } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function parseCsv(text: string): Record<string, string>[] {
  // Enough CSV for these rows: quoted fields may hold commas and doubled quotes, not newlines.
  const lines = text.trim().split('\n');
  const split = (line: string) => {
    const out: string[] = [];
    let cur = '', quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
    }
    out.push(cur);
    return out;
  };
  const header = split(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(split(l).map((v, i) => [header[i], v])));
}

before(async () => {
  root = tempDir('predict-cli');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  images = path.join(root, 'images');
  fs.mkdirSync(path.join(images, 'sub'), { recursive: true });
  const px = Uint8Array.from({ length: 120 * 100 }, (_, i) => (i % 120) * 2);
  const raw = { raw: { width: 120, height: 100, channels: 1 as const } };
  fs.writeFileSync(path.join(images, 'a.jpeg'), await sharp(px, raw).jpeg().toBuffer());
  fs.writeFileSync(path.join(images, 'b, with comma.png'), await sharp(px, raw).png().toBuffer());
  fs.writeFileSync(path.join(images, 'c.dcm'), writeDicom(imageElements({ rows: 100, columns: 120, bitsAllocated: 8, pixels: px })));
  fs.writeFileSync(path.join(images, 'd.txt'), 'not an image');
  fs.writeFileSync(path.join(images, '.hidden.jpeg'), 'hidden');
  fs.writeFileSync(path.join(images, 'sub', 'a.jpeg'), await sharp(px, raw).jpeg().toBuffer());
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a folder: CSV rows in name order, errors as rows, exit 0', () => {
  const r = cxr('predict', images);
  assert.equal(r.code, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  assert.deepEqual(rows.map((x) => path.basename(x.file)), ['a.jpeg', 'b, with comma.png', 'c.dcm', 'd.txt']);
  for (const row of rows.slice(0, 3)) {
    const p = Number(row.probability);
    assert.ok(p > 0 && p < 1, JSON.stringify(row));
    assert.equal(row.label, p >= 0.5 ? 'PNEUMONIA' : 'NORMAL');
    assert.equal(row.operating_point, 'balanced');
    assert.equal(row.threshold, '0.5');
    assert.equal(row.error, '');
  }
  assert.equal(rows[3].probability, '');
  assert.match(rows[3].error, /not a JPEG, PNG or DICOM/);
  assert.match(r.stderr, /3 predicted, 1 failed/);
});

test('--recursive, --format json, --heatmaps, --operating-point; a missing path is a row in place', () => {
  const heat = path.join(root, 'heat');
  const missing = path.join(root, 'nope.jpeg');
  const r = cxr('predict', path.join(images, 'a.jpeg'), missing, images, '--recursive', '--format', 'json',
    '--heatmaps', heat, '--operating-point', 'screening');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(rows.map((x) => path.relative(root, x.file as string)),
    ['images/a.jpeg', 'nope.jpeg', 'images/a.jpeg', 'images/b, with comma.png', 'images/c.dcm', 'images/d.txt', 'images/sub/a.jpeg']);
  assert.match(String(rows[1].error), /no such file/);
  for (const row of rows.filter((x) => x.error === null)) {
    assert.equal(row.operatingPoint, 'screening');
    assert.equal(row.threshold, 0.3);
    assert.ok(fs.existsSync(row.heatmap as string), `heat map of ${row.file}`);
  }
  // Same base name twice: the heat maps do not overwrite each other.
  const maps = rows.map((x) => x.heatmap).filter(Boolean);
  assert.equal(new Set(maps).size, maps.length);
  assert.equal(fs.readdirSync(heat).length, 5);
});

test('exit 1 when nothing could be predicted, or for an unknown operating point', () => {
  const none = cxr('predict', path.join(images, 'd.txt'), path.join(root, 'missing'));
  assert.equal(none.code, 1);
  assert.equal(parseCsv(none.stdout).length, 2);
  const badOp = cxr('predict', images, '--operating-point', 'nonsense');
  assert.equal(badOp.code, 1);
  assert.match(badOp.stderr, /unknown operating point 'nonsense'/);
});

test('CSV: file names that look like spreadsheet formulas are written as text', () => {
  const dir = path.join(root, 'formulas');
  fs.mkdirSync(dir, { recursive: true });
  const names = ['=HYPERLINK("http:evil.example").jpeg', '@SUM(1+1).jpeg', '-2+3.jpeg'];
  for (const n of names) fs.copyFileSync(path.join(images, 'a.jpeg'), path.join(dir, n));
  const r = spawnSync(process.execPath, [MAIN, 'predict', '--', ...names], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, CXR_MODEL: modelDir } });
  assert.equal(r.status, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  assert.deepEqual(rows.map((x) => x.file), names.map((n) => `'${n}`));
  assert.ok(rows.every((x) => Number(x.probability) > 0), r.stdout);
});
