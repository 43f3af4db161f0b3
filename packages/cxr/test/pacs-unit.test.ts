// The PACS sync's pieces that need no Orthanc: connection settings, the cursor file, which
// instances are read, and the STOW-RS body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MANUFACTURER, SOP_CLASS } from '../src/dicom_out';
import { classifyInstance, loadOrthancConfig, readState, writeState } from '../src/pacs';
import { stowBody } from '../src/pacs/multipart';
import { tempDir } from './serve-fixtures';

test('config: environment, config file over environment, --url over both, errors named', () => {
  const dir = tempDir('pacs-config');
  try {
    const env = { CXR_ORTHANC_URL: 'http://127.0.0.1:8042/', CXR_ORTHANC_USER: 'u', CXR_ORTHANC_PASSWORD: 'p' };
    assert.deepEqual(loadOrthancConfig({ env }), { url: 'http://127.0.0.1:8042', user: 'u', password: 'p' });
    assert.deepEqual(
      loadOrthancConfig({ env, url: 'https://pacs.example:443/orthanc' }).url,
      'https://pacs.example:443/orthanc',
    );

    const file = path.join(dir, 'orthanc.json');
    fs.writeFileSync(file, JSON.stringify({ url: 'http://10.0.0.5:8042', user: 'f', password: 'secret' }), {
      mode: 0o644,
    });
    const warnings: string[] = [];
    assert.deepEqual(loadOrthancConfig({ env, configFile: file, warn: (l) => warnings.push(l) }), {
      url: 'http://10.0.0.5:8042',
      user: 'f',
      password: 'secret',
    });
    assert.match(warnings.join(), /readable by others/);
    fs.chmodSync(file, 0o600);
    warnings.length = 0;
    loadOrthancConfig({ env, configFile: file, warn: (l) => warnings.push(l) });
    assert.deepEqual(warnings, []);

    assert.deepEqual(loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'http://h:1' } }), {
      url: 'http://h:1',
      user: undefined,
      password: undefined,
    });
    assert.throws(() => loadOrthancConfig({ env: {} }), /no Orthanc URL: set CXR_ORTHANC_URL/);
    assert.throws(() => loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'ftp://h' } }), /must be an http/);
    assert.throws(
      () => loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'http://h', CXR_ORTHANC_USER: 'u' } }),
      /both a user and a password/,
    );
    fs.writeFileSync(file, JSON.stringify({ url: 'http://h', pasword: 'typo' }));
    assert.throws(() => loadOrthancConfig({ env: {}, configFile: file }), /Unrecognized key.*pasword/i);
    fs.writeFileSync(file, '{not json');
    assert.throws(() => loadOrthancConfig({ env: {}, configFile: file }), /is not JSON/);
    assert.throws(
      () => loadOrthancConfig({ env: {}, configFile: path.join(dir, 'missing.json') }),
      /cannot read config file/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('state: absent is null, written atomically, read back, foreign files refused', () => {
  const dir = tempDir('pacs-state');
  try {
    const file = path.join(dir, 'sub', 'state.json');
    assert.equal(readState(file), null);
    writeState(file, 'http://h:1', 42);
    assert.equal(readState(file)?.last, 42);
    assert.equal(readState(file)?.url, 'http://h:1');
    writeState(file, 'http://h:1', 43);
    assert.equal(readState(file)?.last, 43);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['state.json'], 'no temporary file left behind');
    fs.writeFileSync(file, JSON.stringify({ last: 'x' }));
    assert.throws(() => readState(file), /not a cxr sync state/);
    fs.writeFileSync(file, 'garbage');
    assert.throws(() => readState(file), /is not JSON/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("filter: chest CR/DX/DR read; other modalities, body parts and cxr's own results skipped", () => {
  const film = {
    Modality: 'CR',
    BodyPartExamined: 'CHEST',
    SOPInstanceUID: '1.2.3',
    StudyInstanceUID: '1.2',
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
  };
  assert.deepEqual(classifyInstance(film), { accept: true });
  assert.deepEqual(classifyInstance({ ...film, Modality: 'DX', BodyPartExamined: undefined }), { accept: true });
  assert.deepEqual(classifyInstance({ ...film, Modality: 'DR', BodyPartExamined: '' }), { accept: true });
  // A secondary capture of a chest film from elsewhere is still a chest film (as in the SIIM sample).
  assert.deepEqual(classifyInstance({ ...film, SOPClassUID: SOP_CLASS.secondaryCapture }), { accept: true });
  assert.match((classifyInstance({ ...film, Modality: 'CT' }) as { reason: string }).reason, /modality CT/);
  assert.match(
    (classifyInstance({ ...film, BodyPartExamined: 'HAND' }) as { reason: string }).reason,
    /body part HAND/,
  );
  assert.match((classifyInstance({ ...film, Manufacturer: MANUFACTURER }) as { reason: string }).reason, /cxr result/);
  assert.match(
    (classifyInstance({ ...film, Modality: 'SR', SOPClassUID: SOP_CLASS.comprehensiveSr }) as { reason: string })
      .reason,
    /cxr result/,
  );
  assert.match(
    (classifyInstance({ ...film, SOPInstanceUID: undefined }) as { reason: string }).reason,
    /no SOP instance/,
  );
});

test('STOW-RS body: one application/dicom part per instance, bytes intact', () => {
  const a = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
  const b = Buffer.alloc(1000, 7);
  const { body, contentType } = stowBody([a, b]);
  const m = /^multipart\/related; type="application\/dicom"; boundary=(\S+)$/.exec(contentType);
  assert.ok(m);
  const delim = Buffer.from(`--${m[1]}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delim);
  for (;;) {
    const next = body.indexOf(delim, at + delim.length);
    if (next < 0) break;
    parts.push(body.subarray(at + delim.length, next));
    at = next;
  }
  assert.equal(body.subarray(at).toString(), `--${m[1]}--\r\n`);
  assert.equal(parts.length, 2);
  const payload = (p: Buffer) => {
    const head = p.indexOf('\r\n\r\n');
    assert.match(p.subarray(0, head).toString(), /Content-Type: application\/dicom/);
    return p.subarray(head + 4, p.length - 2);
  };
  assert.deepEqual(payload(parts[0]), a);
  assert.deepEqual(payload(parts[1]), b);
});
