// Review of pacs/ and dicom_out/ (session 33): what the review found wrong, held by a test each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { buildResults, readSource } from '../src/dicom_out';
import { OrthancClient, OrthancError } from '../src/pacs/client';
import { loadOrthancConfig } from '../src/pacs/config';
import { writeState } from '../src/pacs/state';
import { syncOnce } from '../src/pacs/sync';
import type { Prediction } from '../src/predict/predictor';
import { imageElements, writeDicom } from './dicom-writer';
import { tempDir } from './serve-fixtures';

/** An HTTP server that starts a 200 answer and then either cuts the connection or never finishes it. */
async function halfAnswering(how: 'cut' | 'stall'): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"Changes":[');
    if (how === 'cut') setTimeout(() => req.socket.destroy(), 20);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('client: an answer cut off mid-body (connection lost, or the timeout) is Orthanc away', async (t) => {
  // The client's 60 s bound, made short for the test.
  const timeout = AbortSignal.timeout;
  t.after(() => {
    AbortSignal.timeout = timeout;
  });
  AbortSignal.timeout = () => timeout(200);
  for (const how of ['cut', 'stall'] as const) {
    const server = await halfAnswering(how);
    try {
      const client = new OrthancClient({ url: server.url });
      const calls: [string, () => Promise<unknown>][] = [
        ['changes', () => client.changes(0, 10)],
        ['instanceTags', () => client.instanceTags('abc')],
        ['instanceFile', () => client.instanceFile('abc')],
      ];
      for (const [name, call] of calls) {
        const err = await call().then(
          () => assert.fail(`${how} ${name}: resolved`),
          (e: unknown) => e,
        );
        // Before: ORTHANC_BAD_ANSWER "the answer is not JSON (is ... an Orthanc?)" (a worker's job then had only
        // its few tries for other faults), and for the film's bytes no OrthancError at all (a TimeoutError that
        // stopped a polling `cxr orthanc sync` for good, naming neither Orthanc nor the request).
        assert.ok(err instanceof OrthancError, `${how} ${name}: ${(err as Error).name}: ${(err as Error).message}`);
        assert.equal(err.code, 'ORTHANC_UNAVAILABLE', `${how} ${name}: ${err.message}`);
        assert.equal(err.outage, true, `${how} ${name}`);
        assert.match(err.message, /^GET \/(changes|instances)\S*: Orthanc at http:\/\/127\.0\.0\.1:\d+ /);
      }
    } finally {
      server.close();
    }
  }
});

test('client: an answer that arrives whole but is not JSON is still a bad answer', async () => {
  const server = http.createServer((_req, res) => res.end('<html>not orthanc</html>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const client = new OrthancClient({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
    await assert.rejects(
      client.instanceTags('abc'),
      (e: unknown) => e instanceof OrthancError && e.code === 'ORTHANC_BAD_ANSWER' && !e.outage,
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('sync: a state file names the same Orthanc whether its login was in the URL or beside it', async () => {
  const dir = tempDir('pacs-review-state');
  try {
    const stateFile = path.join(dir, 'state.json');
    // The same URL given with the login in it (taken out by new URL(), which drops the default port and lowers the
    // host) and without (kept as written): the operator moved the password out of CXR_ORTHANC_URL, as advised.
    const withLogin = loadOrthancConfig({ env: { CXR_ORTHANC_URL: 'http://cxr:pw@Orthanc.LAN:80/' } });
    const beside = loadOrthancConfig({
      env: { CXR_ORTHANC_URL: 'http://Orthanc.LAN:80/', CXR_ORTHANC_USER: 'cxr', CXR_ORTHANC_PASSWORD: 'pw' },
    });
    assert.notEqual(withLogin.url, beside.url, 'the two spellings this test is about');
    const seen: string[] = [];
    const pass = (url: string) =>
      syncOnce({
        client: fakeFeed(url, 5) as unknown as OrthancClient,
        stateFile,
        handleInstance: async (id) => {
          seen.push(id);
          return 'processed';
        },
      });
    writeState(stateFile, withLogin.url, 3);
    // Before: "state file ... belongs to http://orthanc.lan, not http://Orthanc.LAN:80: use another --state file (or
    // --since-start)", and either way round the restart read nothing: the films after change 3 waited on the
    // operator, whose quick ways out (--since-start, or a new state file: a first run, from the feed's end) reread
    // the whole feed or skipped them.
    const s = await pass(beside.url);
    assert.deepEqual(seen, ['i4', 'i5']);
    assert.equal(s.cursor, 5);
    // A truly different server is still refused.
    writeState(stateFile, 'http://other-orthanc.lan', 3);
    await assert.rejects(pass(beside.url), /belongs to http:\/\/other-orthanc\.lan, not/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A change feed of `n` NewInstance changes (ids i1..in), as OrthancClient answers it, for syncOnce. */
function fakeFeed(url: string, n: number) {
  const feed = Array.from({ length: n }, (_, i) => ({ Seq: i + 1, ChangeType: 'NewInstance', ID: `i${i + 1}` }));
  return {
    config: { url },
    lastChange: async () => n,
    changes: async (since: number, limit: number) => {
      const changes = feed.filter((c) => c.Seq > since).slice(0, limit);
      return { Changes: changes, Done: changes.length < limit, Last: changes.at(-1)?.Seq ?? n };
    },
  };
}

test("results copy a film's over-long names as they are, rather than failing to be written", async () => {
  // PN allows 64 characters a component group; modalities write longer ones (several given names, titles), and
  // the PACS keeps them. dcmjs refused to write such a value (the LO and SH attributes it already copied whole), so
  // the film's results were never stored: a ProcessingError "not because of the film", polled three times, then
  // passed over, and a second such film in a row stopped the whole sync as a broken install.
  const name = `${'WOLFESCHLEGELSTEINHAUSENBERGERDORFF'.repeat(2)}^MARIA THERESIA`;
  const referring = `DR ${'R'.repeat(70)}`;
  const film = writeDicom(
    imageElements({
      rows: 2,
      columns: 2,
      bitsAllocated: 8,
      pixels: new Uint8Array(4),
      extra: [
        { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
        { tag: 0x00080018, vr: 'UI', value: '1.2.3.4.5' },
        { tag: 0x0020000d, vr: 'UI', value: '1.2.345' },
        { tag: 0x0020000e, vr: 'UI', value: '1.2.3.4' },
        { tag: 0x00100010, vr: 'PN', value: name.length % 2 ? `${name} ` : name },
        { tag: 0x00080090, vr: 'PN', value: referring.length % 2 ? `${referring} ` : referring },
      ],
    }),
  );
  const heatmapPng = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  const { sr, sc } = await buildResults({
    source: readSource(film),
    prediction: {
      probability: 0.7,
      label: 'PNEUMONIA',
      operatingPoint: 'balanced',
      threshold: 0.5,
      warnings: [],
      verdict: { status: 'assessed', reasons: [] },
      heatmapPng,
    } as unknown as Prediction,
    model: { name: 'm', version: '1', sha256: 'ab'.repeat(32) },
  });
  assert.ok(sc, 'a heat map');
  for (const result of [sr, sc]) {
    const ds = dicomParser.parseDicom(new Uint8Array(result.bytes));
    assert.equal(ds.string('x00100010')?.trim(), name);
    assert.equal(ds.string('x00080090')?.trim(), referring);
    assert.equal(ds.string('x0020000d')?.replace(/\0/g, ''), '1.2.345');
  }
});
