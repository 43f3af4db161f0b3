// Bad input met by a clinician (the page, POST /predictions), `cxr predict` and a program using the library: a
// DICOM cut short inside its header was CORRUPT in dcmjs's words ("Request more than currently allocated buffer")
// from readSource, and CORRUPT or NO_PIXEL_DATA ("not an image object") from the decoder for some cuts, where every
// other cut DICOM, JPEG or PNG is TRUNCATED saying where it ends; a PNG declaring a large image over a few bytes of
// data was "libpng read error"; an audit log path that is a folder (or no SQLite file) opened with no `code`.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { AuditStoreOpenError, type AuditStore, buildApp, openAuditStore, readSource, SourceError } from '../src/index';
import type { ServePredictor } from '../src/serve/predictor_port';
import { CLI, DICOM_DIR, loadPredictor, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';

const SC = fs.readFileSync(path.join(DICOM_DIR, 'siim_Fake_MONOHR1.dcm')); // Secondary Capture, JPEG baseline
const J2K = fs.readFileSync(path.join(DICOM_DIR, 'WG04_RG1_J2KI.dcm'));
const BARE = fs.readFileSync(path.join(DICOM_DIR, 'CR-MONO1-10-chest_nometa.dcm')); // no preamble, implicit VR

/** DICOM films cut short inside their header, and what each must say of where it ends. */
const CUT: [name: string, bytes: Buffer, where: RegExp][] = [
  // In the header, right after the file meta group (dcmjs: "Request more than currently allocated buffer").
  ['sc-300.dcm', SC.subarray(0, 300), /the file ends at byte 300, within or right after its file meta information/],
  // In the first fragment of encapsulated pixel data (was CORRUPT: "an element's length runs past the end").
  ['sc-1000.dcm', SC.subarray(0, 1000), /ends inside element \(7FE0,0010\): its value, of open length/],
  ['sc-whole-less-one.dcm', SC.subarray(0, SC.length - 1), /ends inside element \(7FE0,0010\)/],
  // Inside a sequence of open length (Source Image Sequence).
  ['j2k-1000.dcm', J2K.subarray(0, 1000), /ends inside element \(0008,2112\): its value, of open length/],
  // Inside the sequence after one of open length closed by its delimiter.
  ['j2k-1150.dcm', J2K.subarray(0, 1150), /ends inside element \(0008,9215\): its value, of open length/],
  // Between two elements of the header, before Rows (was NO_PIXEL_DATA "not an image object").
  ['sc-500.dcm', SC.subarray(0, 500), /ends at byte 500 without its image's size \(Rows .* which every Secondary/],
  ['bare-500.dcm', BARE.subarray(0, 500), /ends at byte 500 without its image's size .* CR Image Storage/],
];

function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}

/** A whole, well-formed PNG (IHDR, IDAT, IEND, right CRCs) declaring 4000×4000 gray over 10 deflated zeros. */
function hollowPng(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(4000, 0);
  ihdr.writeUInt32BE(4000, 4);
  ihdr[8] = 8; // 8-bit gray
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const idat = zlib.deflateSync(Buffer.alloc(10));
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

let dir = '';
let modelDir = '';
let audit: AuditStore;
let predictor: ServePredictor;

before(async () => {
  dir = tempDir('edges-s38');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  predictor = await loadPredictor(modelDir);
  fs.mkdirSync(path.join(dir, 'films'));
  for (const [name, bytes] of CUT) fs.writeFileSync(path.join(dir, 'films', name), bytes);
  fs.writeFileSync(path.join(dir, 'films', 'hollow.png'), hollowPng());
});

after(async () => {
  predictor?.dispose();
  await audit?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** `cxr predict` on the test's films: the error column of each file's CSV row, by file name. */
function cliErrors(): Map<string, { error: string; code: string }> {
  const files = [...CUT.map(([name]) => name), 'hollow.png'].map((n) => path.join(dir, 'films', n));
  const r = spawnSync(process.execPath, [CLI, 'predict', '--model', modelDir, '--no-audit', '--json', ...files], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr.slice(0, 500));
  const rows = JSON.parse(r.stdout) as { file: string; error: string; errorCode: string }[];
  return new Map(rows.map((row) => [path.basename(row.file), { error: row.error, code: row.errorCode }]));
}

test('a DICOM cut short in its header is 422 TRUNCATED saying where it ends, on POST and cxr predict', async () => {
  const app = await buildApp({ predictor, audit, webDir: null });
  const cli = cliErrors();
  try {
    for (const [name, bytes, where] of CUT) {
      const { body, headers } = multipartBody('image', name, bytes);
      const res = await app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
      assert.equal(res.statusCode, 422, `${name}: ${res.body.slice(0, 300)}`);
      const problem = res.json();
      assert.equal(problem.code, 'TRUNCATED', `${name}: ${problem.detail}`);
      assert.match(problem.detail, where, name);
      assert.match(problem.detail, /(the file is truncated\)|it is truncated)$/, name);
      // The same words from the command line: the page shows the server's.
      const row = cli.get(name);
      assert.ok(row, `cxr predict has a row for ${name}`);
      assert.equal(row.code, 'TRUNCATED', `${name}: ${row.error}`);
      assert.ok(problem.detail.endsWith(row.error), `${name}: "${row.error}" vs "${problem.detail}"`);
    }
    const hollow = cli.get('hollow.png');
    assert.equal(hollow?.code, 'CORRUPT');
    assert.match(hollow.error, /image data \(IDAT, \d+ bytes\) cannot hold the 4000×4000 image/);
  } finally {
    await app.close();
  }
});

test('a PNG of 4000×4000 over 10 bytes of data is 422 CORRUPT naming its IDAT (not "libpng read error")', async () => {
  const app = await buildApp({ predictor, audit, webDir: null });
  try {
    const { body, headers } = multipartBody('image', 'hollow.png', hollowPng());
    const res = await app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
    assert.equal(res.statusCode, 422, res.body.slice(0, 300));
    const problem = res.json();
    assert.equal(problem.code, 'CORRUPT');
    assert.match(problem.detail, /image data \(IDAT, \d+ bytes\) cannot hold the 4000×4000 image its header/);
    assert.doesNotMatch(problem.detail, /libpng/);
  } finally {
    await app.close();
  }
});

test('readSource refuses a DICOM cut short in its header as TRUNCATED, in the decoder words, not dcmjs', () => {
  for (const [name, bytes, where] of CUT.filter(([n]) => !n.startsWith('sc-1000') && !n.includes('less-one'))) {
    assert.throws(
      () => readSource(bytes),
      (e: unknown) => {
        assert.ok(e instanceof SourceError, `${name}: ${e}`);
        assert.equal(e.code, 'TRUNCATED', `${name}: ${e.message}`);
        assert.match(e.message, where, name);
        assert.doesNotMatch(e.message, /allocated buffer|Finding view/, name);
        return true;
      },
    );
  }
  // Cut between two elements after Rows, a bare data set reads whole to the decoder (NO_PIXEL_DATA); dcmjs's words
  // for running out of bytes are not shown.
  assert.throws(
    () => readSource(BARE.subarray(0, 704)),
    (e: unknown) => {
      assert.ok(e instanceof SourceError && e.code === 'CORRUPT', String(e));
      assert.match(e.message, /its header runs past the end of the file, at byte 704 \(the file is truncated or/);
      return true;
    },
  );
  // Cut inside its pixel data, the header is whole: readSource needs no more.
  assert.equal(readSource(SC.subarray(0, SC.length - 1)).sopClassUid, readSource(SC).sopClassUid);
});

test('AuditStoreOpenError has a code for every SQLite path the opener refuses itself', async () => {
  const folder = path.join(dir, 'log-folder.db');
  fs.mkdirSync(folder);
  const text = path.join(dir, 'notes.db');
  fs.writeFileSync(text, 'not a database, some notes\n'.repeat(10));
  const cases: [string, string, Parameters<typeof openAuditStore>[1]][] = [
    [folder, 'EISDIR', {}],
    [folder, 'EISDIR', { readonly: true }],
    [text, 'SQLITE_NOTADB', {}],
    [path.join(dir, 'none.db'), 'ENOENT', { readonly: true }],
    [path.join(text, 'audit.db'), 'ENOTDIR', {}],
  ];
  for (const [file, code, opts] of cases) {
    await assert.rejects(openAuditStore(file, opts), (e: unknown) => {
      assert.ok(e instanceof AuditStoreOpenError, String(e));
      assert.equal(e.code, code, `${file} ${JSON.stringify(opts)}: ${e.message}`);
      assert.equal(e.away, false);
      assert.ok(e.message.includes(file), e.message);
      return true;
    });
  }
});
