// What QA (as hospital IT) met with a real Orthanc (scripts/stack.sh):
// - a login in the URL (`--url http://cxr:PASSWORD@...`, CXR_ORTHANC_URL, the config file's url) was printed
//   twice in "Orthanc at http://cxr:PASSWORD@... is unreachable (Request cannot be constructed from a URL that
//   includes credentials ...)". Now it is taken out of the URL and sent as basic auth (refused in --url, which
//   `ps` shows), and no message prints a URL's password.
// - a wrong password was found film by film; now `checkConnection()` (GET /system) says so at start, with a
//   code (ORTHANC_AUTH) that the queue's workers and `cxr orthanc sync` treat as a configuration fault.
// - a saved position past the end of Orthanc's change feed (its database reset or restored) gave "0 new
//   instances", exit 0, for ever. Now the sync warns and reads the feed again from its beginning.
// - any exception of predict() or of writing the results counted as a bad film, passed over for good. Now only
//   the film's own faults do; anything else stops the pass before the film (ProcessingError).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSource } from '../src/dicom_out';
import {
  loadOrthancConfig,
  OrthancClient,
  OrthancError,
  ProcessingError,
  readState,
  syncOnce,
  writeState,
} from '../src/pacs';
import { Predictor } from '../src/predict/predictor';
import { imageElements, writeDicom } from './dicom-writer';
import { findInstances } from './pacs-results';
import { CLI, DICOM_DIR, makeTinyModel, tempDir } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
if (skip) console.log(`# pacs-sync-faults skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let predictor: Predictor;

before(async () => {
  if (skip) return;
  dir = tempDir('pacs-sync-faults');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  predictor = await Predictor.load(modelDir, { warmUp: false });
  stack = startStack('pacs-sync-faults', ['orthanc']);
});
after(() => {
  predictor?.dispose();
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The stack's URL with its login in it, as an operator may write it. */
const urlWithLogin = () => {
  const u = new URL(stack!.env.CXR_ORTHANC_URL);
  u.username = stack!.env.CXR_ORTHANC_USER;
  u.password = stack!.env.CXR_ORTHANC_PASSWORD;
  return u.href.replace(/\/$/, '');
};

function cli(args: string[], env: Record<string, string>, killAfterMs = 60_000) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'orthanc', 'sync', ...args], {
      // Only what the test gives: no CXR_ORTHANC_* of the caller's shell.
      env: { PATH: process.env.PATH ?? '', HOME: dir, CXR_MODEL: modelDir, ...env },
      cwd: dir,
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

async function upload(bytes: Buffer): Promise<string> {
  const res = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(bytes) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { ID: string }).ID;
}

/** The Seq of the NewInstance change of Orthanc instance `id`. */
async function seqOf(id: string): Promise<number> {
  const page = (await (await orthanc(stack!, '/changes?since=0&limit=1000')).json()) as {
    Changes: { ChangeType: string; ID: string; Seq: number }[];
  };
  return page.Changes.find((c) => c.ChangeType === 'NewInstance' && c.ID === id)!.Seq;
}

const sample = (name: string) => fs.readFileSync(path.join(DICOM_DIR, name));

test('a login in the URL is used, never printed; a wrong one is said at start with code ORTHANC_AUTH', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const password = stack!.env.CXR_ORTHANC_PASSWORD;
  const fromUrl = loadOrthancConfig({ env: { CXR_ORTHANC_URL: urlWithLogin() } });
  assert.equal(fromUrl.url, stack!.env.CXR_ORTHANC_URL);
  assert.deepEqual(await new OrthancClient(fromUrl).checkConnection(), { name: 'cxr-stack', version: '1.10.1' });

  const refused = async (config: { url: string; user?: string; password?: string }) => {
    const e = await new OrthancClient(config).checkConnection().catch((x: unknown) => x);
    assert.ok(e instanceof OrthancError, String(e));
    assert.deepEqual([e.code, e.status, e.outage], ['ORTHANC_AUTH', 401, false]);
    return e.message;
  };
  const wrong = await refused({ url: stack!.env.CXR_ORTHANC_URL, user: 'cxr', password: 'wrong-pw' });
  assert.match(wrong, /GET \/system: HTTP 401: Orthanc at http:\/\/127\.0\.0\.1:\d+ refused the login \(user 'cxr'\)/);
  assert.match(
    wrong,
    /check the login where it is given: CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD.*user:password in CXR_ORTHANC_URL/,
  );
  assert.ok(!wrong.includes('wrong-pw'), wrong);
  assert.match(await refused({ url: stack!.env.CXR_ORTHANC_URL }), /refused the login \(no user given\)/);

  // QA's command: refused before any request, pointing at the ways that keep the password out of `ps`.
  const flag = await cli(['--once', '--url', urlWithLogin(), '--state', path.join(dir, 'flag.json')], {});
  assert.equal(flag.code, 1, flag.stderr);
  assert.match(flag.stderr, /--url http:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+ carries a password/);
  assert.ok(!flag.stderr.includes(password), flag.stderr);

  // The same URL in CXR_ORTHANC_URL: it logs in (a first run starts at the feed's end).
  const state = path.join(dir, 'env-url.json');
  const fromEnv = await cli(['--once', '--no-audit', '--state', state], { CXR_ORTHANC_URL: urlWithLogin() });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.match(
    fromEnv.stderr,
    /no state file \S+env-url\.json, so this is a first run: starting at the end of the change feed \(change \d+\)/,
  );
  assert.ok(!fromEnv.stderr.includes(password), fromEnv.stderr);
  assert.equal(readState(state)?.url, stack!.env.CXR_ORTHANC_URL, 'no password in the cursor file');

  // Polling with a wrong password stops at start, exit 1, rather than failing every poll.
  const started = Date.now();
  const poll = await cli(
    ['--interval', '0.5', '--no-audit', '--state', path.join(dir, 'poll.json')],
    { ...stack!.env, CXR_ORTHANC_PASSWORD: 'wrong-pw' },
    20_000,
  );
  assert.equal(poll.code, 1, poll.stderr);
  assert.match(poll.stderr, /refused the login \(user 'cxr'\)/);
  assert.ok(Date.now() - started < 30_000);
});

test('a saved position past the end of the change feed: a warning, and the feed read again from its start', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const client = new OrthancClient(loadOrthancConfig({ env: stack!.env }));
  const film = await upload(sample('gdcm-CR-MONO1-10-chest.dcm'));
  const state = path.join(dir, 'ahead.json');
  // As after Orthanc's database was reset or restored from a backup: its numbering is far behind the cursor.
  writeState(state, client.config.url, 999_999);
  const log: string[] = [];
  const run = () => syncOnce({ client, predictor, stateFile: state, log: (l) => log.push(l) });

  const s = await run();
  const said = log.join('\n');
  assert.match(
    said,
    /warning: the saved position \(change 999999 in .*ahead\.json\) is past the end of the change feed/,
  );
  assert.match(said, /whose last change is \d+: its database was reset or restored\. Reading the feed again/);
  assert.deepEqual({ instances: s.instances, processed: s.processed }, { instances: 1, processed: 1 }, log.join('\n'));
  assert.ok(s.cursor >= (await seqOf(film)) && s.cursor < 999_999, `cursor ${s.cursor}`);
  assert.equal(readState(state)?.last, s.cursor);

  log.length = 0;
  const again = await run();
  assert.equal(again.processed, 0);
  assert.doesNotMatch(log.join('\n'), /past the end/, 'said once, not on every pass');
});

test("a fault not the film's own stops the pass before it; a film that cannot be read is still passed over", {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const client = new OrthancClient(loadOrthancConfig({ env: stack!.env }));
  const state = path.join(dir, 'internal.json');
  writeState(state, client.config.url, await client.lastChange());
  const bytes = sample('siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
  const film = await upload(bytes);
  const uid = readSource(bytes).sopInstanceUid;

  // A predictor used after dispose() throws as a bug would: nothing about the film.
  const broken = await Predictor.load(modelDir, { warmUp: false });
  broken.dispose();
  const log: string[] = [];
  const e = await syncOnce({ client, predictor: broken, stateFile: state, log: (l) => log.push(l) }).catch(
    (x: unknown) => x,
  );
  assert.ok(e instanceof ProcessingError, `${String(e)}\n${log.join('\n')}`);
  assert.match(e.message, new RegExp(`instance ${film} \\(${uid.replace(/\./g, '\\.')}\\): predicting it failed, `));
  assert.match(e.message, /not because of the film: Predictor: used after dispose\(\)/);
  assert.ok(readState(state)!.last < (await seqOf(film)), 'the cursor stays before the film');
  assert.deepEqual(
    await findInstances(stack!, { Modality: 'SR', StudyInstanceUID: readSource(bytes).studyInstanceUid }),
    [],
  );

  // Mended (here: a working predictor), the next pass does the film.
  const mended = await syncOnce({ client, predictor, stateFile: state });
  assert.deepEqual({ processed: mended.processed, failed: mended.failed }, { processed: 1, failed: 0 });

  // A film whose pixel data stops short is the film's fault: counted failed, and the sync moves on.
  const uidOf = (n: number) => ({ tag: n, vr: 'UI', value: `2.25.${777000 + n}` });
  const truncated = writeDicom(
    imageElements({
      rows: 256,
      columns: 256,
      bitsAllocated: 8,
      pixels: new Uint8Array(1000).fill(90),
      extra: [
        { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
        uidOf(0x00080018),
        uidOf(0x0020000d),
        uidOf(0x0020000e),
      ],
    }),
  );
  const bad = await upload(truncated);
  log.length = 0;
  const passed = await syncOnce({ client, predictor, stateFile: state, log: (l) => log.push(l) });
  assert.deepEqual({ processed: passed.processed, failed: passed.failed }, { processed: 0, failed: 1 }, log.join('\n'));
  assert.match(log.join('\n'), new RegExp(`failed ${bad} `));
  assert.ok(readState(state)!.last >= (await seqOf(bad)), 'the cursor moves past a bad film');

  // An operating point the model lacks would fail every film: refused at start.
  const typo = await cli(['--once', '--no-audit', '--operating-point', 'screenig', '--state', state], stack!.env);
  assert.equal(typo.code, 1, typo.stderr);
  assert.match(typo.stderr, /--operating-point screenig: this model has screening, balanced/);
});
