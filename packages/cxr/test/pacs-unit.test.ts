// The PACS sync's pieces that need no Orthanc: connection settings, the cursor file, which
// instances are read, and the STOW-RS body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MANUFACTURER, SOP_CLASS } from '../src/dicom_out';
import {
  classifyInstance,
  InternalFailures,
  loadOrthancConfig,
  OrthancClient,
  OrthancError,
  ProcessingError,
  readState,
  writeState,
} from '../src/pacs';
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
    // A mistyped scheme: refused, the password in it not shown (env and --url alike).
    for (const sources of [
      { env: { CXR_ORTHANC_URL: 'http//cxr:S3cret@h:1' } },
      { env: {}, url: 'http//cxr:S3cret@h:1' },
    ])
      assert.throws(
        () => loadOrthancConfig(sources),
        (e: Error) => /must be an http/.test(e.message) && !e.message.includes('S3cret'),
      );
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

test('config: a login in the URL is taken out of it and sent as basic auth; never printed, never two', () => {
  const secret = 'S3cr%2Ft'; // "S3cr/t", percent-encoded as a URL needs it
  const withLogin = `http://cxr:${secret}@127.0.0.1:8042/`;
  assert.deepEqual(loadOrthancConfig({ env: { CXR_ORTHANC_URL: withLogin } }), {
    url: 'http://127.0.0.1:8042',
    user: 'cxr',
    password: 'S3cr/t',
  });
  // The same login given both ways is no conflict; a user in the URL takes the password from the environment.
  const env = { CXR_ORTHANC_URL: withLogin, CXR_ORTHANC_USER: 'cxr', CXR_ORTHANC_PASSWORD: 'S3cr/t' };
  assert.equal(loadOrthancConfig({ env }).password, 'S3cr/t');
  assert.deepEqual(loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'http://cxr@h:1', CXR_ORTHANC_PASSWORD: 'p' } }), {
    url: 'http://h:1',
    user: 'cxr',
    password: 'p',
  });
  const hidden = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes('S3cr'), `no password in: ${e.message}`);
      return true;
    });
  hidden(
    () => loadOrthancConfig({ env: { ...env, CXR_ORTHANC_PASSWORD: 'other' } }),
    /two different Orthanc passwords.*CXR_ORTHANC_URL \(http:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:8042\/\)/,
  );
  hidden(() => loadOrthancConfig({ env: { ...env, CXR_ORTHANC_USER: 'bob' } }), /two Orthanc users: 'cxr'.*'bob'/);
  // On the command line it is in `ps` for everyone: refused, pointing at the ways that are not.
  hidden(
    () => loadOrthancConfig({ env: {}, url: withLogin }),
    /--url http:\/\/cxr:\*\*\*\*\*@.*carries a password.*CXR_ORTHANC_PASSWORD.*--config/,
  );
  hidden(
    () => loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'ftp://cxr:S3cr@h' } }),
    /'ftp:\/\/cxr:\*\*\*\*\*@h' must be/,
  );
  hidden(() => loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'http://cxr:S3cr%zz@h' } }), /not valid percent-encoding/);
  const dir = tempDir('pacs-config-login');
  try {
    const file = path.join(dir, 'orthanc.json');
    fs.writeFileSync(file, JSON.stringify({ url: withLogin }), { mode: 0o644 });
    const warnings: string[] = [];
    assert.equal(loadOrthancConfig({ env: {}, configFile: file, warn: (l) => warnings.push(l) }).user, 'cxr');
    assert.match(warnings.join(), /holds a password and is readable by others/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('client: an Orthanc away is unreachable, with the URL and no password, whatever the URL carried', async () => {
  // A port nothing listens on. Before, fetch refused the URL itself and the error repeated it, password and all.
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  const client = new OrthancClient({ url: `http://cxr:S3cret@127.0.0.1:${port}` });
  const e = await client.changes(0, 1).catch((x: unknown) => x);
  assert.ok(e instanceof OrthancError, String(e));
  assert.match(e.message, new RegExp(`Orthanc at http://127\\.0\\.0\\.1:${port} is unreachable \\(.*ECONNREFUSED`));
  assert.ok(!e.message.includes('S3cret') && !/credentials/.test(e.message), e.message);
  assert.deepEqual([e.outage, e.code], [true, 'ORTHANC_UNAVAILABLE']);
  // A login refused is a configuration fault, told apart from an outage by its code.
  assert.equal(new OrthancError('GET /changes: HTTP 401', 401).code, 'ORTHANC_AUTH');
  assert.equal(new OrthancError('GET /changes: HTTP 403', 403).code, 'ORTHANC_AUTH');
  assert.equal(new OrthancError('GET /instances/x: HTTP 404', 404).code, 'ORTHANC_HTTP');
  assert.equal(new OrthancError('HTTP 503', 503).code, 'ORTHANC_UNAVAILABLE');
});

test('a film stopped by a fault not its own is retried, passed over, and a second one in a row stops', () => {
  const stop = (id: string) => new ProcessingError(id, '1.2.3', 'predicting it', new Error('bug'));
  const f = new InternalFailures(3);
  assert.deepEqual([f.retry(stop('a')), f.retry(stop('a'))], ['again', 'again']);
  assert.equal(f.retry(stop('a')), 'pass-over', 'the third pass in a row at the same film gives it up');
  assert.equal(f.attempts, 3);
  assert.ok(f.passedOver('a') && !f.passedOver('b'));
  assert.ok(!f.passedOver('a'), 'counted failed once; sent again later, it is tried again');
  // The next film fails too before any other worked: the install is at fault.
  assert.deepEqual([f.retry(stop('b')), f.retry(stop('b'))], ['again', 'again'], 'another film counts from one');
  assert.equal(f.retry(stop('b')), 'stop');
  // With a film processed in between, a second bad film is passed over as the first was.
  const g = new InternalFailures(1);
  assert.equal(g.retry(stop('a')), 'pass-over');
  g.worked();
  assert.equal(g.retry(stop('b')), 'pass-over');
  f.reset();
  assert.equal(f.attempts, 0);
  assert.match(stop('a').message, /instance a \(1\.2\.3\): predicting it failed, and not because of the film: bug/);
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
  // Free text in these tags (a name) is never written into the skip reason, which is logged.
  for (const odd of [{ Modality: 'ROE^RICHARD' }, { BodyPartExamined: 'SMITH JOHN 1962' }]) {
    const reason = (classifyInstance({ ...film, ...odd }) as { reason: string }).reason;
    assert.doesNotMatch(reason, /ROE|RICHARD|SMITH|1962/, reason);
    assert.match(reason, /not a DICOM defined term, not shown/);
  }
  assert.match(
    (classifyInstance({ ...film, BodyPartExamined: 'HAND' }) as { reason: string }).reason,
    /body part HAND/,
  );
  assert.match((classifyInstance({ ...film, Manufacturer: MANUFACTURER }) as { reason: string }).reason, /cxr result/);
  // Any vendor's SR is not a cxr result: only what cxr wrote is (dicom_out/identity.ts isOwnResult).
  assert.match(
    (classifyInstance({ ...film, Modality: 'SR', SOPClassUID: SOP_CLASS.comprehensiveSr }) as { reason: string })
      .reason,
    /modality SR is not CR/,
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

test('an OrthancClient given a login in its URL and another beside it refuses, as loadOrthancConfig does', () => {
  assert.throws(
    () => new OrthancClient({ url: 'http://cxr:S3cret@h:1', user: 'other' }),
    (e: Error) => /a login in the URL and another beside it/.test(e.message) && !e.message.includes('S3cret'),
  );
  assert.equal(new OrthancClient({ url: 'http://cxr:S3cret@h:1', user: 'cxr' }).config.user, 'cxr');
});
